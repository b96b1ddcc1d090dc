package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

// simulatedConnector names the connector of a <Pay> built from flags when
// --connector is not given: the simulator posts to --endpoint whatever the name.
const simulatedConnector = "ivrpay-simulate"

// runSimulate is `ivrpay simulate`: it plays a voice platform's part of a
// call (Twilio's, Telnyx's or SignalWire's) against a connector endpoint and
// prints the action callback fields as JSON on stdout, with the attempts on
// stderr. It exits 0 when Result is success.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	provider := fs.String("provider", "twilio", providerUsage+": whose request, timeout, retries and results to play")
	endpoint := fs.String("endpoint", "", "the connector's ENDPOINT URL, e.g. http://127.0.0.1:8080/vendor/twilio/pay_generic (SignalWire: default the document's paymentConnectorUrl)")
	apiKey := fs.String("api-key", "", "the connector's PASSWORD (an IVR key), unless --endpoint carries user:password@")
	username := fs.String("username", "", "the connector's USERNAME (default api_key)")
	contentType := fs.String("content-type", "", "Content-Type of the connector request (default: none, as Twilio sends none)")
	accountSid := fs.String("account-sid", twilio.DefaultAccountSid, "AccountSid on every action and status callback")
	authToken := fs.String("auth-token", "", "auth token to sign every callback with X-Twilio-Signature, as Twilio does")
	configAPIKey := fs.String("config-api-key", "", "API key that can read --config (default: --api-key)")
	twimlFile := fs.String("twiml", "", "document whose pay step to play (TwiML; Telnyx: TeXML; SignalWire: cXML or SWML), instead of the twiml flags")
	var pf payFlags
	pf.register(fs)
	cardNumber := fs.String("card", "", "card number the caller types (spaces and dashes are ignored)")
	expiry := fs.String("exp", "", "expiry date the caller types, MM/YY")
	cvv := fs.String("cvv", "", "security code the caller types")
	postalCode := fs.String("postal-code", "", "postal code the caller types")
	timeout := fs.Duration("timeout", 0, "how long each connector attempt may take (default: the provider's: Twilio 10s, Telnyx 5s, SignalWire 5s)")
	retries := fs.Int("retries", 0, "how many times a timed-out attempt is retried (default: the provider's: Twilio 5, Telnyx 2 (max_attempts 3), SignalWire 0)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  ivrpay simulate --endpoint URL --api-key KEY --twiml FILE --card N --exp MM/YY --cvv C --postal-code Z
  ivrpay simulate --endpoint URL --api-key KEY --amount 10.00 --payin-config-id ID --card N --exp MM/YY ...
  ivrpay simulate --endpoint URL --api-key KEY --config ID --base-url URL [--config-api-key KEY] --card N ...
  ivrpay simulate --provider telnyx|signalwire --endpoint URL --api-key KEY ...

Plays Twilio's part of a <Pay> call (with --provider, Telnyx's or SignalWire's: their request body,
timeout, retries and result names) against a connector endpoint and prints the fields the platform
would post to the action URL (and posts them there, with --action or the <Pay>'s action).
With --status-callback (or the <Pay>'s statusCallback) it posts one event per prompt as the caller
types. Callbacks carry AccountSid and CallSid, and with --auth-token an X-Twilio-Signature.
Every flag can also be set as IVRPAY_<NAME>, e.g. IVRPAY_ENDPOINT.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	usage := usageExit(stderr, "simulate")
	platform, err := lookupProvider(*provider)
	if err != nil {
		return usage("%v", err)
	}
	// SignalWire's pay step names the connector by its URL, so a document
	// or --connector may stand for --endpoint.
	urlFromDoc := platform == voice.SignalWire && *endpoint == ""
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *endpoint == "" && !(urlFromDoc && (*twimlFile != "" || pf.connector != "")):
		return usage("--endpoint is required: the connector's URL")
	case *apiKey == "" && !endpointHasPassword(*endpoint) && !urlFromDoc:
		return usage("--api-key is required (or user:password@ in --endpoint): the key the connector authenticates")
	case *cardNumber == "" || *expiry == "":
		return usage("--card and --exp are required: what the caller types")
	case *twimlFile != "" && pf.describesPay():
		return usage("give either --twiml FILE or the flags that build the <Pay>, not both")
	case *twimlFile == "" && !pf.describesPay():
		return usage("give --twiml FILE, or the flags that build the <Pay> (see ivrpay simulate --help)")
	case *retries < 0:
		return usage("--retries cannot be negative")
	}

	var pay *twilio.Pay
	if *twimlFile != "" {
		doc, err := os.ReadFile(*twimlFile)
		if err != nil {
			return usage("%v", err)
		}
		if pay, err = platform.ParsePay(doc); err != nil {
			fmt.Fprintf(stderr, "ivrpay simulate: %s: %v\n", *twimlFile, err)
			return 1
		}
	} else {
		if pf.connector == "" {
			pf.connector = simulatedConnector
			if platform == voice.SignalWire {
				// SignalWire's pay step names the connector by its URL.
				pf.connector = connectorURLWithKey(*endpoint, *apiKey)
			}
		}
		key := *configAPIKey
		if key == "" {
			key = *apiKey
		}
		o, cfg, err := pf.payOptions(ctx, key)
		if err != nil {
			fmt.Fprintf(stderr, "ivrpay simulate: %v\n", err)
			return exitCode(err)
		}
		cfg.warnUsed(stderr, "ivrpay simulate")
		// The pay step exactly as the platform's document writes it.
		doc, _, err := platform.Document(o, platform.Formats()[0])
		if err != nil {
			return usage("%v", err)
		}
		if pay, err = platform.ParsePay(doc); err != nil {
			fmt.Fprintf(stderr, "ivrpay simulate: %v\n", err)
			return 1
		}
	}
	if urlFromDoc {
		if *endpoint = voice.ConnectorURL(pay); *endpoint == "" {
			return usage("--endpoint is required: the document has no paymentConnectorUrl")
		}
	}

	// Simulate reads 0 as "the platform's"; a --retries 0 given means none.
	retriesOpt := *retries
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "retries" && *retries == 0 {
			retriesOpt = -1
		}
	})
	sim, err := twilio.Simulate(ctx, twilio.SimulateOptions{
		Platform: platform.Simulator(),
		Endpoint: *endpoint,
		APIKey:   *apiKey,
		Pay:      pay,
		Caller: twilio.CallerInput{
			CardNumber: strings.NewReplacer(" ", "", "-", "").Replace(*cardNumber),
			Expiry:     strings.TrimSpace(*expiry),
			CVV:        strings.TrimSpace(*cvv),
			PostalCode: strings.TrimSpace(*postalCode),
		},
		Action:         pf.action,
		StatusCallback: pf.statusCallback,
		Username:       *username,
		ContentType:    *contentType,
		AccountSid:     *accountSid,
		AuthToken:      *authToken,
		Timeout:        *timeout,
		Retries:        retriesOpt,
	})
	if sim == nil {
		fmt.Fprintf(stderr, "ivrpay simulate: %v\n", err)
		return 1
	}
	reportAttempts(stderr, sim)
	out, jerr := json.MarshalIndent(sim.Callback, "", "  ")
	if jerr != nil {
		fmt.Fprintf(stderr, "ivrpay simulate: %v\n", jerr)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay simulate: %v\n", err)
		return 1
	}
	if sim.Result() != twilio.ResultSuccess {
		return 1
	}
	return 0
}

// connectorURLWithKey is endpoint with api_key:key@ in it (the key given
// with --api-key), as SignalWire's pay step names a connector.
func connectorURLWithKey(endpoint, key string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.User != nil || key == "" {
		return endpoint
	}
	u.User = url.UserPassword(twilio.DefaultUsername, key)
	return u.String()
}

// endpointHasPassword reports whether the endpoint URL carries user:password@.
func endpointHasPassword(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// reportAttempts says on stderr what was sent and what came back.
func reportAttempts(stderr io.Writer, sim *twilio.Simulation) {
	for _, ev := range sim.StatusEvents {
		outcome := ev.Error
		if outcome == "" {
			outcome = fmt.Sprintf("HTTP %d", ev.Status)
		}
		line := "For=" + ev.Fields.Get("For")
		if e := ev.Fields.Get("ErrorType"); e != "" {
			line += " ErrorType=" + e
		}
		fmt.Fprintf(stderr, "ivrpay simulate: status callback %s: %s\n", line, outcome)
	}
	if len(sim.Attempts) == 0 {
		fmt.Fprintf(stderr, "ivrpay simulate: caller-side check failed (%s); no request sent\n", sim.Callback.Get("PaymentError"))
	}
	for i, a := range sim.Attempts {
		outcome := a.Error
		if outcome == "" {
			outcome = fmt.Sprintf("HTTP %d in %s", a.StatusCode, a.Duration.Round(time.Millisecond))
		}
		fmt.Fprintf(stderr, "ivrpay simulate: attempt %d of %s (transaction_id %s): %s\n", i+1, sim.Method, a.TransactionID, outcome)
	}
	if n := len(sim.Attempts); n > 0 {
		if st := sim.Attempts[n-1].StatusCode; st != 0 && (st < 200 || st > 299) {
			fmt.Fprintf(stderr, "ivrpay simulate: HTTP %d from the connector\n", st)
		}
	}
	if sim.ActionStatus != 0 {
		fmt.Fprintf(stderr, "ivrpay simulate: action URL answered HTTP %d\n", sim.ActionStatus)
	}
}
