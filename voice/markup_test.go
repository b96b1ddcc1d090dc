package voice_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/internal/golden"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

const (
	payinConfig = "sbx_cfg_3N8Y0gUGYIj3dUsq758HbYohGOy"
	pmConfig    = "sbx_pmc_3N8Y0gUGYIj3dUsq758HbYohGOz"
	swURL       = "https://api_key:sbx_apikey_0123@ivr.example.com/vendor/signalwire/pay"
)

// documents are every platform's formats for a payin config and a payment
// method config, with the connector each names.
func documents() []struct {
	platform  voice.Platform
	format    string
	connector string
} {
	return []struct {
		platform  voice.Platform
		format    string
		connector string
	}{
		{voice.Twilio, "twiml", "ivrpay_sandbox"},
		{voice.Twilio, "studio", "ivrpay_sandbox"},
		{voice.Telnyx, "texml", "ivrpay_sandbox"},
		{voice.SignalWire, "cxml", swURL},
		{voice.SignalWire, "swml", swURL},
	}
}

func configs(connector string) map[string]twilio.PayOptions {
	return map[string]twilio.PayOptions{
		"payin":          {Connector: connector, AmountCents: 1000, PayinConfigID: payinConfig, StatusCallback: "https://example.com/status"},
		"payment_method": {Connector: connector, PaymentMethodConfigID: pmConfig},
		// With the caller's number for the risk rules (ivrpay twiml --caller).
		"payin-caller": {Connector: connector, AmountCents: 1000, PayinConfigID: payinConfig, StatusCallback: "https://example.com/status", Caller: true},
	}
}

// TestDocuments: each platform's document for a config, byte for byte; its
// check finds nothing; and the simulator reads back the same <Pay>: the
// method, the amount, the config parameter and (SignalWire) the connector URL.
func TestDocuments(t *testing.T) {
	t.Parallel()
	for _, d := range documents() {
		for kind, o := range configs(d.connector) {
			t.Run(d.format+"/"+kind, func(t *testing.T) {
				doc, _, err := d.platform.Document(o, d.format)
				if err != nil {
					t.Fatal(err)
				}
				if d.platform != voice.Twilio { // Twilio's goldens live in package twilio
					golden.Check(t, kind+"."+d.format+".golden", doc)
				}
				opts := twilio.LintOptions{AmountCents: o.AmountCents, ConfigKind: strings.TrimSuffix(kind, "-caller"), WantCaller: o.Caller}
				findings, err := d.platform.Check(doc, opts)
				if err != nil || len(findings) != 0 {
					t.Fatalf("check of the generated document: %v %v\n%s", err, findings, doc)
				}
				if d.format == "studio" {
					return // the simulator plays TwiML
				}
				p, err := d.platform.ParsePay(doc)
				if err != nil {
					t.Fatal(err)
				}
				method, err := p.Method()
				if d.platform.Simulator() != nil && d.platform.Simulator().Method != nil {
					method, err = d.platform.Simulator().Method(p)
				}
				if v, ok := p.Param(twilio.ParamCaller); o.Caller && (!ok || v == "") {
					t.Fatalf("read back %+v: no caller parameter", p)
				}
				wantMethod, wantParam := twilio.MethodCharge, twilio.ParamPayinConfigID
				if kind == "payment_method" {
					wantMethod, wantParam = twilio.MethodTokenize, twilio.ParamPaymentMethodConfigID
				}
				if v, _ := p.Param(wantParam); err != nil || method != wantMethod || v == "" {
					t.Fatalf("read back %+v: method %q (%v)", p, method, err)
				}
				if d.platform == voice.SignalWire && voice.ConnectorURL(p) != swURL {
					t.Fatalf("connector URL %q", voice.ConnectorURL(p))
				}
			})
		}
	}
}

// TestCheckSameMistakes: a wrong amount and a missing config parameter are
// the same findings in every platform's formats, each named and fixed in
// the document's own terms.
func TestCheckSameMistakes(t *testing.T) {
	t.Parallel()
	// What each markup calls chargeAmount, and how it writes the fixes.
	dialects := map[string]struct {
		amountAttr, amountFix, paramFix string
	}{
		"twiml":  {"chargeAmount", `set chargeAmount="10.50"`, `add <Parameter name="payin_config_id"`},
		"studio": {"payment_amount", "set Charge Card with Amount (payment_amount) to 10.50", "under Parameters (parameters), add the key payin_config_id"},
		"texml":  {"chargeAmount", `set chargeAmount="10.50"`, `add <Parameter name="payin_config_id"`},
		"cxml":   {"chargeAmount", `set chargeAmount="10.50"`, `add <Parameter name="payin_config_id"`},
		"swml":   {"charge_amount", `set pay.charge_amount to "10.50"`, `add {"name": "payin_config_id"`},
	}
	// dropParam removes the config parameter from any of the formats.
	dropParam := regexp.MustCompile(`(?s)\s*<Parameter name="payin_config_id"[^>]*/>|,\s*"parameters": \[.*?\]|"parameters": \{[^}]*\},?`)
	for _, d := range documents() {
		t.Run(d.format, func(t *testing.T) {
			want := dialects[d.format]
			doc, _, err := d.platform.Document(configs(d.connector)["payin"], d.format)
			if err != nil {
				t.Fatal(err)
			}
			// Wrong amount: the config says 10.50.
			findings, err := d.platform.Check(doc, twilio.LintOptions{AmountCents: 1050, ConfigKind: twilio.ConfigKindPayin})
			if err != nil {
				t.Fatal(err)
			}
			if f := only(t, findings, "AMOUNT_MISMATCH"); f.Attribute != want.amountAttr || f.Fix != want.amountFix ||
				!strings.Contains(f.Message, want.amountAttr+" 10.00 does not match payin config amount 10.50") {
				t.Errorf("wrong amount: %s", f)
			}
			// Missing config parameter.
			without := dropParam.ReplaceAll(doc, nil)
			if bytes.Equal(without, doc) {
				t.Fatalf("the test could not remove the parameter from\n%s", doc)
			}
			findings, err = d.platform.Check(without, twilio.LintOptions{AmountCents: 1000, ConfigKind: twilio.ConfigKindPayin})
			if err != nil {
				t.Fatalf("%v\n%s", err, without)
			}
			if f := only(t, findings, "MISSING_CONFIG_ID"); !strings.HasPrefix(f.Fix, want.paramFix) || f.Severity != twilio.SeverityError {
				t.Errorf("missing parameter: %s", f)
			}
		})
	}
}

// only returns the one finding, whose message names the connector's code.
func only(t *testing.T, findings []twilio.Finding, code string) twilio.Finding {
	t.Helper()
	if len(findings) != 1 || !strings.Contains(findings[0].Message, code) {
		t.Fatalf("findings %v, want one that says %s", findings, code)
	}
	return findings[0]
}

// TestCheckPlatformRules: what only one platform's markup can get wrong.
func TestCheckPlatformRules(t *testing.T) {
	t.Parallel()
	payin := configs(swURL)["payin"]
	cxml, _, _ := voice.SignalWire.Document(payin, "cxml")
	swml, _, _ := voice.SignalWire.Document(payin, "swml")
	texmlOpts := payin
	texmlOpts.Connector = "ivrpay_sandbox"
	texml, _, _ := voice.Telnyx.Document(texmlOpts, "texml")
	opts := twilio.LintOptions{AmountCents: 1000, ConfigKind: twilio.ConfigKindPayin}
	for _, c := range []struct {
		name     string
		platform voice.Platform
		doc      []byte
		attr     string
		severity twilio.Severity
		message  string
	}{
		{"cXML URL without credentials", voice.SignalWire, bytes.Replace(cxml, []byte("api_key:sbx_apikey_0123@"), nil, 1),
			"paymentConnectorUrl", twilio.SeverityError, "401 UNAUTHORIZED"},
		{"cXML URL to Twilio's endpoint", voice.SignalWire, bytes.Replace(cxml, []byte("/vendor/signalwire/pay"), []byte("/vendor/twilio/pay_generic"), 1),
			"paymentConnectorUrl", twilio.SeverityError, "Twilio's endpoint"},
		{"cXML without a connector URL", voice.SignalWire, regexp.MustCompile(` paymentConnectorUrl="[^"]*"`).ReplaceAll(cxml, nil),
			"paymentConnectorUrl", twilio.SeverityError, "missing"},
		{"SWML charge_amount a number", voice.SignalWire, bytes.Replace(swml, []byte(`"charge_amount": "10.00"`), []byte(`"charge_amount": 10.00`), 1),
			"charge_amount", twilio.SeverityError, "refuses a number"},
		{"SWML URL with another username", voice.SignalWire, bytes.Replace(swml, []byte("api_key:"), []byte("admin:"), 1),
			"payment_connector_url", twilio.SeverityError, "not api_key"},
		{"TeXML without transactionType", voice.Telnyx, bytes.Replace(texml, []byte(` transactionType="charge"`), nil, 1),
			"transactionType", twilio.SeverityWarning, "Telnyx's default"},
		{"TeXML transactionType tokenize for a payin config", voice.Telnyx, bytes.Replace(texml, []byte(`transactionType="charge"`), []byte(`transactionType="tokenize"`), 1),
			"chargeAmount", twilio.SeverityError, "Telnyx asks the connector to store the card"},
		{"TeXML without paymentConnector", voice.Telnyx, bytes.Replace(texml, []byte(` paymentConnector="ivrpay_sandbox"`), nil, 1),
			"paymentConnector", twilio.SeverityError, `Telnyx sends the card to its connector named "Default"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			findings, err := c.platform.Check(c.doc, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				if f.Attribute == c.attr && f.Severity == c.severity && strings.Contains(f.Message, c.message) {
					return
				}
			}
			t.Fatalf("findings %v, want a %s on %s saying %q\n%s", findings, c.severity, c.attr, c.message, c.doc)
		})
	}
}
