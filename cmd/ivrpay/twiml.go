package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

// usageError marks a mistake in the command line, which exits with 2 rather than 1.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is 2 for usage errors and 1 for every other failure.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// parseCommandLine runs parseFlags and turns its outcome into an exit code:
// -1 to go on, 0 after --help, 2 for bad flags (the flag package has printed why).
func parseCommandLine(fs *flag.FlagSet, args []string) int {
	switch err := parseFlags(fs, args); {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		return 2
	}
}

// usageExit returns the function a subcommand reports a mistake in its
// command line with: it prints "ivrpay command: " and the message on stderr
// and returns the exit code, 2.
func usageExit(stderr io.Writer, command string) func(format string, args ...any) int {
	return func(format string, args ...any) int {
		fmt.Fprintf(stderr, "ivrpay "+command+": "+format+"\n", args...)
		return 2
	}
}

// payFlags are the flags that describe a <Pay>: `ivrpay twiml` prints it,
// `ivrpay simulate` plays it.
type payFlags struct {
	amount                string
	payinConfigID         string
	paymentMethodConfigID string
	connector             string
	action                string
	statusCallback        string
	description           string
	config                string
	baseURL               string
}

func (f *payFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.amount, "amount", "", "the payin config's amount in dollars, e.g. 10.00")
	fs.StringVar(&f.payinConfigID, "payin-config-id", "", "payin config to charge (cfg_…)")
	fs.StringVar(&f.paymentMethodConfigID, "payment-method-config-id", "", "payment method config to store a card for (pmc_…)")
	fs.StringVar(&f.connector, "connector", "", "the connector: Twilio, its Generic Pay Connector's Unique Name; Telnyx, its Pay connector's name; SignalWire, its URL https://api_key:KEY@host/vendor/signalwire/pay")
	fs.StringVar(&f.action, "action", "", "URL Twilio posts the payment result to")
	fs.StringVar(&f.statusCallback, "status-callback", "", "URL Twilio posts progress to")
	fs.StringVar(&f.description, "description", "", "description Twilio passes to the connector")
	fs.StringVar(&f.config, "config", "", "payin config (cfg_…) or payment method config (pmc_…) to read amount and id from, with --api-key and --base-url")
	fs.StringVar(&f.baseURL, "base-url", "", "URL of the ivrpay API that holds --config, e.g. https://api.example.com")
}

// describesPay reports whether a flag other than --action and
// --status-callback describes the <Pay> (the simulator takes those two
// alongside --twiml as overrides).
func (f *payFlags) describesPay() bool {
	return f.amount != "" || f.payinConfigID != "" || f.paymentMethodConfigID != "" || f.connector != "" ||
		f.description != "" || f.config != ""
}

// payOptions resolves the flags into generator options, reading the config
// from the API when --config is given.
func (f *payFlags) payOptions(ctx context.Context, apiKey string) (twilio.PayOptions, *remoteConfig, error) {
	o := twilio.PayOptions{
		Connector: f.connector, PayinConfigID: f.payinConfigID, PaymentMethodConfigID: f.paymentMethodConfigID,
		Action: f.action, StatusCallback: f.statusCallback, Description: f.description,
	}
	cents, err := parseAmountFlag(f.amount)
	if err != nil {
		return o, nil, err
	}
	o.AmountCents = cents
	var cfg *remoteConfig
	if f.config != "" {
		if f.payinConfigID != "" || f.paymentMethodConfigID != "" {
			return o, nil, usagef("--config replaces --payin-config-id and --payment-method-config-id; give one of them")
		}
		if cfg, err = fetchConfig(ctx, f.baseURL, apiKey, f.config); err != nil {
			return o, nil, err
		}
		if o.AmountCents, err = cfg.amountWith(cents); err != nil {
			return o, nil, err
		}
		if cfg.kind == twilio.ConfigKindPayin {
			o.PayinConfigID = cfg.id
		} else {
			o.PaymentMethodConfigID = cfg.id
		}
	}
	if err := o.Validate(); err != nil {
		return o, nil, usageError{err}
	}
	return o, cfg, nil
}

// parseAmountFlag reads a dollar amount flag into cents; "" is 0.
func parseAmountFlag(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	cents, err := twilio.ParseAmount(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	if err != nil {
		return 0, usagef("--amount: %v", err)
	}
	return cents, nil
}

// remoteConfig is what the CLI needs of a payin config or payment method config.
type remoteConfig struct {
	kind        string // twilio.ConfigKindPayin or twilio.ConfigKindPaymentMethod
	id          string
	amountCents int64
	postalCode  string
	usedBy      string // the payin or payment method that already used the config
}

// amountWith checks an --amount given alongside --config against the config
// and returns the amount to use.
func (c *remoteConfig) amountWith(flagCents int64) (int64, error) {
	switch {
	case c.kind == twilio.ConfigKindPaymentMethod && flagCents != 0:
		return 0, usagef("--amount: %s is a payment method config, which stores a card and charges nothing", c.id)
	case flagCents != 0 && flagCents != c.amountCents:
		return 0, fmt.Errorf("--amount %s does not match payin config amount %s", twilio.FormatCents(flagCents), twilio.FormatCents(c.amountCents))
	}
	return c.amountCents, nil
}

// lintOptions tells lint what the config says.
func (c *remoteConfig) lintOptions() twilio.LintOptions {
	return twilio.LintOptions{AmountCents: c.amountCents, ConfigKind: c.kind, ConfigHasPostalCode: c.postalCode != ""}
}

// configKind tells a payin config id from a payment method config id by its prefix.
func configKind(id string) (kind string, err error) {
	bare := strings.TrimPrefix(id, ivrpay.ModeSandbox.IDPrefix())
	switch {
	case strings.HasPrefix(bare, ivrpay.PrefixPayinConfig):
		return twilio.ConfigKindPayin, nil
	case strings.HasPrefix(bare, ivrpay.PrefixPaymentMethodConfig):
		return twilio.ConfigKindPaymentMethod, nil
	}
	return "", usagef("--config %q: a config id starts with %s (payin config) or %s (payment method config), with %s in front in sandbox",
		id, ivrpay.PrefixPayinConfig, ivrpay.PrefixPaymentMethodConfig, ivrpay.ModeSandbox.IDPrefix())
}

// fetchConfig reads a config with GET /v1/payin_configs/{id} or
// /v1/payment_method_configs/{id}.
func fetchConfig(ctx context.Context, baseURL, apiKey, id string) (*remoteConfig, error) {
	kind, err := configKind(id)
	if err != nil {
		return nil, err
	}
	if baseURL == "" || apiKey == "" {
		return nil, usagef("--config needs --base-url and an API key that can read the config")
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usagef("--base-url %q is not an http(s) URL", baseURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	api := &httpapi.Client{BaseURL: baseURL, APIKey: apiKey}
	c := &remoteConfig{kind: kind, id: id}
	var contact *ivrpay.BillingContact
	if kind == twilio.ConfigKindPayin {
		cfg, err := api.GetPayinConfig(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading config %s: %w", id, err)
		}
		if cfg.Amount <= 0 {
			return nil, fmt.Errorf("reading config %s: the payin config has no amount", id)
		}
		c.amountCents, contact = cfg.Amount, cfg.BillingContact
		if cfg.Payin != nil {
			c.usedBy = cfg.Payin.PayinID
		}
	} else {
		cfg, err := api.GetPaymentMethodConfig(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading config %s: %w", id, err)
		}
		contact = cfg.BillingContact
		if cfg.PaymentMethod != nil {
			c.usedBy = cfg.PaymentMethod.PaymentMethodID
		}
	}
	if contact != nil {
		c.postalCode = strings.TrimSpace(contact.PostalCode)
	}
	return c, nil
}

// warnUsed tells the user, on stderr, that a call with this config would be refused.
func (c *remoteConfig) warnUsed(stderr io.Writer, cmd string) {
	if c != nil && c.usedBy != "" {
		fmt.Fprintf(stderr, "%s: warning: config %s was already used by %s; the connector answers CONFIG_ALREADY_USED to a new call\n", cmd, c.id, c.usedBy)
	}
}

// providerUsage describes --provider for every command that takes it.
const providerUsage = "voice platform: twilio, telnyx or signalwire"

// lookupProvider returns the voice platform --provider names.
func lookupProvider(name string) (voice.Platform, error) {
	if p, ok := voice.Lookup(name); ok {
		return p, nil
	}
	return nil, usagef("--provider must be twilio, telnyx or signalwire, not %q", name)
}

// connectorRequired says, in the platform's terms, that --connector is missing.
func connectorRequired(p voice.Platform) error {
	switch p {
	case voice.Telnyx:
		return usagef("--connector is required: the name of the Telnyx Pay connector (type generic) whose endpoint is ivrpay's %s", p.Path())
	case voice.SignalWire:
		return usagef("--connector is required: the connector URL, https://api_key:<IVR API key>@<ivrpay host>%s", p.Path())
	}
	return usagef("--connector is required: the Unique Name of the Generic Pay Connector in the Twilio Console")
}

// runTwiML is `ivrpay twiml`: it prints the pay step (TwiML, a Studio flow,
// TeXML, cXML or SWML) for a config, or with `check FILE` lints a document.
func runTwiML(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return runTwiMLCheck(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("twiml", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf payFlags
	pf.register(fs)
	apiKey := fs.String("api-key", "", "API key that can read the config given with --config")
	provider := fs.String("provider", "twilio", providerUsage)
	format := fs.String("format", "", "Twilio: twiml (default) or studio (an importable Studio flow; the widget's values on stderr); Telnyx: texml; SignalWire: cxml (default) or swml")
	caller := fs.Bool("caller", false, `pass the caller's number to the connector (<Parameter name="caller" value="{{From}}"/>), which the risk rules count declines by (docs/risk.md)`)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  ivrpay twiml --amount 10.00 --payin-config-id ID --connector NAME [--action URL] [--status-callback URL]
  ivrpay twiml --payment-method-config-id ID --connector NAME [--action URL] [--status-callback URL]
  ivrpay twiml --config ID --api-key KEY --base-url URL --connector NAME [...]
  ivrpay twiml --provider telnyx --amount 10.00 --payin-config-id ID --connector NAME
  ivrpay twiml --provider signalwire [--format swml] --amount 10.00 --payin-config-id ID --connector https://api_key:KEY@HOST/vendor/signalwire/pay
  ivrpay twiml check FILE [--provider P] [--amount A] [--config ID --api-key KEY --base-url URL]

Prints the pay step for a payin config or payment method config (stdout holds the document alone):
Twilio's <Pay> TwiML, or with --format studio a Studio flow definition to import (the Capture Payments
widget's values on stderr); Telnyx's TeXML; SignalWire's cXML, or with --format swml an SWML document.
Every flag can also be set as IVRPAY_<NAME>, e.g. IVRPAY_CONNECTOR.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ivrpay twiml: unexpected argument %q (did you mean `ivrpay twiml check FILE`?)\n", fs.Arg(0))
		return 2
	}
	platform, err := lookupProvider(*provider)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml: %v\n", err)
		return 2
	}
	if *format == "" {
		*format = platform.Formats()[0]
	}
	if !slices.Contains(platform.Formats(), *format) {
		fmt.Fprintf(stderr, "ivrpay twiml: --format must be %s for --provider %s, not %q\n", strings.Join(platform.Formats(), " or "), *provider, *format)
		return 2
	}
	if strings.TrimSpace(pf.connector) == "" {
		err := connectorRequired(platform)
		fmt.Fprintf(stderr, "ivrpay twiml: %v\n", err)
		return exitCode(err)
	}
	o, cfg, err := pf.payOptions(ctx, *apiKey)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml: %v\n", err)
		return exitCode(err)
	}
	cfg.warnUsed(stderr, "ivrpay twiml")
	o.Caller = *caller
	out, notes, err := platform.Document(o, *format)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml: %v\n", err)
		return 2
	}
	// stdout is the document; notes (Studio's widget values) are for a person to read.
	_, _ = stderr.Write(notes)
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml: %v\n", err)
		return 1
	}
	return 0
}

// runTwiMLCheck is `ivrpay twiml check FILE`: one line per finding and a
// summary on stdout; exit 1 when any finding is an error.
func runTwiMLCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("twiml check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	amount := fs.String("amount", "", "the payin config's amount in dollars, e.g. 10.00")
	provider := fs.String("provider", "twilio", providerUsage+" (the document's markup: TwiML or a Studio flow, TeXML, cXML or SWML)")
	config := fs.String("config", "", "payin config (cfg_…) or payment method config (pmc_…) the document is for, read with --api-key and --base-url")
	apiKey := fs.String("api-key", "", "API key that can read --config")
	baseURL := fs.String("base-url", "", "URL of the ivrpay API that holds --config")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ivrpay twiml check FILE [--provider P] [--amount A] [--config ID --api-key KEY --base-url URL]

Checks every pay step of a document against what the ivrpay connector needs: every <Pay> of a TwiML
document or capture-payments widget of a Studio flow export (twilio), every <Pay> of TeXML (telnyx),
every <Pay> of cXML or pay method of SWML (signalwire). Exits 0 when there is no error, 1 when there is.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "ivrpay twiml check: give exactly one FILE (a TwiML document or a Studio flow JSON export)")
		return 2
	}
	file := fs.Arg(0)
	platform, err := lookupProvider(*provider)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml check: %v\n", err)
		return 2
	}
	cents, err := parseAmountFlag(*amount)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml check: %v\n", err)
		return 2
	}
	opts := twilio.LintOptions{AmountCents: cents}
	var cfg *remoteConfig
	if *config != "" {
		cfg, err = fetchConfig(ctx, *baseURL, *apiKey, *config)
		if err == nil {
			_, err = cfg.amountWith(cents)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ivrpay twiml check: %v\n", err)
			return exitCode(err)
		}
		opts = cfg.lintOptions()
	}
	doc, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay twiml check: %v\n", err)
		return 2
	}
	opts.WantCaller = true
	findings, err := platform.Check(doc, opts)
	if err != nil {
		fmt.Fprintf(stdout, "error %s: %v\n", file, err)
		fmt.Fprintf(stdout, "%s: cannot be checked\n", file)
		return 1
	}
	errs, warnings := 0, 0
	if cfg != nil && cfg.usedBy != "" {
		// A warning like any other, so that the summary counts it.
		fmt.Fprintf(stdout, "warning %s: config %s was already used by %s, so the connector answers CONFIG_ALREADY_USED to a new call. Fix: create a new config for the next call\n",
			*config, cfg.id, cfg.usedBy)
		warnings++
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
		if f.Severity == twilio.SeverityError {
			errs++
		} else {
			warnings++
		}
	}
	if errs == 0 && warnings == 0 {
		fmt.Fprintf(stdout, "%s: no problems found\n", file)
	} else {
		fmt.Fprintf(stdout, "%s: %s, %s\n", file, plural(errs, "error"), plural(warnings, "warning"))
	}
	if errs > 0 {
		return 1
	}
	return 0
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
