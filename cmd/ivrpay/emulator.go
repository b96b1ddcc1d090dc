package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// namedFlags is a repeatable NAME=VALUE flag: --connector NAME=URL,
// --connector-password-file NAME=FILE.
type namedFlags struct {
	values  map[string]string
	example string // shown when a value is not NAME=VALUE
}

func (c namedFlags) String() string { return "" }

func (c namedFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" || value == "" {
		return errors.New("want " + c.example)
	}
	c.values[strings.TrimSpace(name)] = value
	return nil
}

// connectorPasswordEnv is the variable that holds the password of the
// connector name: IVRPAY_CONNECTOR_PASSWORD_ and the name upper-cased, any
// character but a letter or a digit as "_" (ivrpay_sandbox →
// IVRPAY_CONNECTOR_PASSWORD_IVRPAY_SANDBOX).
func connectorPasswordEnv(name string) string {
	return "IVRPAY_CONNECTOR_PASSWORD_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}

// emulatorSecret reads one of the emulator's secrets from file, without its
// surrounding space. The emulator is a development tool: any file mode is
// read, as a sandbox reads it.
func emulatorSecret(flagName, file string) (string, error) {
	b, err := readSecretFile(flagName, file, ivrpay.ModeSandbox)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s %s is empty", flagName, file)
	}
	return secret, nil
}

// withConnectorPasswords puts into each connector URL that has no password
// the one from its --connector-password-file, or else from its
// IVRPAY_CONNECTOR_PASSWORD_<NAME>, so that no password needs to be on the
// command line, where ps shows it.
func withConnectorPasswords(connectors, passwordFiles map[string]string) (map[string]string, error) {
	for name := range passwordFiles {
		if _, ok := connectors[name]; !ok {
			return nil, fmt.Errorf("--connector-password-file %s: there is no --connector %s=URL", name, name)
		}
	}
	out := make(map[string]string, len(connectors))
	for name, endpoint := range connectors {
		out[name] = endpoint
		u, err := url.Parse(endpoint)
		if err != nil {
			continue // NewEmulator says what is wrong with it
		}
		_, inURL := u.User.Password()
		password := ""
		if file, ok := passwordFiles[name]; ok {
			if inURL {
				return nil, fmt.Errorf("connector %s: its URL has a password and --connector-password-file gives one; give it once", name)
			}
			if password, err = emulatorSecret("--connector-password-file", file); err != nil {
				return nil, err
			}
		} else if !inURL {
			password = os.Getenv(connectorPasswordEnv(name))
		}
		if password == "" {
			continue
		}
		user := twilio.DefaultUsername
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, password)
		out[name] = u.String()
	}
	return out, nil
}

// runTwilioEmulator is `ivrpay twilio-emulator`: Twilio's Payments REST
// resource and a keypad for the caller, served locally until interrupted.
func runTwilioEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("twilio-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "address to listen on")
	accountSid := fs.String("account-sid", twilio.DefaultAccountSid, "the AccountSid clients authenticate as (HTTP Basic username)")
	authToken := fs.String("auth-token", "", "the auth token clients authenticate with, and that signs every callback")
	authTokenFile := fs.String("auth-token-file", "", "a file holding the auth token (instead of --auth-token, which ps shows)")
	connectors := namedFlags{values: map[string]string{}, example: "NAME=URL, e.g. ivrpay_sandbox=http://api_key:KEY@127.0.0.1:8080/vendor/twilio/pay_generic"}
	fs.Var(connectors, "connector", "a Generic Pay Connector as NAME=URL, with user:password@ in the URL (repeatable); without a password in the URL, it comes from --connector-password-file or IVRPAY_CONNECTOR_PASSWORD_<NAME>")
	passwordFiles := namedFlags{values: map[string]string{}, example: "NAME=FILE, e.g. ivrpay_sandbox=ivr.key"}
	fs.Var(passwordFiles, "connector-password-file", "NAME=FILE: the PASSWORD of connector NAME, read from FILE (repeatable)")
	timeout := fs.Duration("timeout", twilio.DefaultTimeout, "how long each connector attempt may take")
	retries := fs.Int("retries", twilio.DefaultRetries, "how many times a timed-out connector attempt is retried")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ivrpay twilio-emulator --auth-token T|--auth-token-file F --connector NAME=URL [--connector …]
                               [--connector-password-file NAME=FILE …] [--addr A] [--account-sid AC…]

Serves Twilio's Payments REST resource (agent-assisted payments) for twilio-go, twilio-node or curl:
  POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments.json        (Create)
  POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments/{Sid}.json  (Update: Capture or Status)
and the caller's keypad, with the same HTTP Basic AccountSid:AuthToken:
  POST /emulator/Calls/{CallSid}/Digits   Digits=4111111111111111#   ("#" ends a field)
It posts Twilio's statusCallback events, and on Status=complete sends the Generic Pay Connector request
to the named connector. It prints one line per request and per connector exchange. Secrets can stay off
the command line: IVRPAY_AUTH_TOKEN or --auth-token-file, and a connector's password in
--connector-password-file NAME=FILE or IVRPAY_CONNECTOR_PASSWORD_<NAME>. See docs/simulator.md.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	usage := usageExit(stderr, "twilio-emulator")
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *authToken != "" && *authTokenFile != "":
		return usage("--auth-token and --auth-token-file both give the auth token; give it once")
	case *authToken == "" && *authTokenFile == "":
		return usage("--auth-token (or --auth-token-file, or IVRPAY_AUTH_TOKEN) is required: clients authenticate with it and callbacks are signed with it")
	case len(connectors.values) == 0:
		return usage("--connector NAME=URL is required, e.g. ivrpay_sandbox=http://api_key:KEY@127.0.0.1:8080/vendor/twilio/pay_generic")
	case *retries < 0:
		return usage("--retries cannot be negative")
	}
	if *authTokenFile != "" {
		var err error
		if *authToken, err = emulatorSecret("--auth-token-file", *authTokenFile); err != nil {
			return usage("%v", err)
		}
	}
	endpoints, err := withConnectorPasswords(connectors.values, passwordFiles.values)
	if err != nil {
		return usage("%v", err)
	}
	retriesOpt := *retries
	if retriesOpt == 0 {
		retriesOpt = -1 // the emulator reads 0 as "the default"; here it means none
	}
	emu, err := twilio.NewEmulator(twilio.EmulatorOptions{AccountSid: *accountSid, AuthToken: *authToken,
		Connectors: endpoints, Timeout: *timeout, Retries: retriesOpt, Log: stdout})
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
	names := make([]string, 0, len(endpoints))
	for name := range endpoints {
		names = append(names, name)
	}
	sort.Strings(names)
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
