package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/twilio"
)

// connectorFlags is the repeatable --connector NAME=URL.
type connectorFlags map[string]string

func (c connectorFlags) String() string { return "" }

func (c connectorFlags) Set(v string) error {
	name, endpoint, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" || endpoint == "" {
		return errors.New("want NAME=URL, e.g. ivrpay_sandbox=http://api_key:KEY@127.0.0.1:8080/vendor/twilio/pay_generic")
	}
	c[strings.TrimSpace(name)] = endpoint
	return nil
}

// runTwilioEmulator is `ivrpay twilio-emulator`: Twilio's Payments REST
// resource and a keypad for the caller, served locally until interrupted.
func runTwilioEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("twilio-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "address to listen on")
	accountSid := fs.String("account-sid", twilio.DefaultAccountSid, "the AccountSid clients authenticate as (HTTP Basic username)")
	authToken := fs.String("auth-token", "", "the auth token clients authenticate with, and that signs every callback")
	connectors := connectorFlags{}
	fs.Var(connectors, "connector", "a Generic Pay Connector as NAME=URL, with user:password@ in the URL (repeatable)")
	timeout := fs.Duration("timeout", twilio.DefaultTimeout, "how long each connector attempt may take")
	retries := fs.Int("retries", twilio.DefaultRetries, "how many times a timed-out connector attempt is retried")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ivrpay twilio-emulator --auth-token T --connector NAME=URL [--connector …] [--addr A] [--account-sid AC…]

Serves Twilio's Payments REST resource (agent-assisted payments) for twilio-go, twilio-node or curl:
  POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments.json        (Create)
  POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments/{Sid}.json  (Update: Capture or Status)
and the caller's keypad:
  POST /emulator/Calls/{CallSid}/Digits   Digits=4111111111111111#   ("#" ends a field)
It posts Twilio's statusCallback events, and on Status=complete sends the Generic Pay Connector request
to the named connector. See docs/simulator.md.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "ivrpay twilio-emulator: "+format+"\n", args...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *authToken == "":
		return usage("--auth-token is required: clients authenticate with it and callbacks are signed with it")
	case len(connectors) == 0:
		return usage("--connector NAME=URL is required, e.g. ivrpay_sandbox=http://api_key:KEY@127.0.0.1:8080/vendor/twilio/pay_generic")
	case *retries < 0:
		return usage("--retries cannot be negative")
	}
	retriesOpt := *retries
	if retriesOpt == 0 {
		retriesOpt = -1 // the emulator reads 0 as "the default"; here it means none
	}
	emu, err := twilio.NewEmulator(twilio.EmulatorOptions{AccountSid: *accountSid, AuthToken: *authToken,
		Connectors: connectors, Timeout: *timeout, Retries: retriesOpt})
	if err != nil {
		return usage("%v", err)
	}
	defer emu.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twilio-emulator: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	names := make([]string, 0, len(connectors))
	for name := range connectors {
		names = append(names, name)
	}
	fmt.Fprintf(stdout, "ivrpay twilio-emulator: listening on http://%s (account %s; connectors %s)\n",
		ln.Addr(), *accountSid, strings.Join(names, ", "))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return 0
	case err := <-done:
		fmt.Fprintf(stderr, "ivrpay twilio-emulator: %v\n", err)
		return 1
	}
}
