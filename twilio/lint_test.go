package twilio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/twiml"
)

// goodPay returns, as a twilio-go element, the <Pay> the generator makes for
// a payin of 10.00 (or for storing a card when store is true).
func goodPay(store bool) *twiml.VoicePay {
	p := &twiml.VoicePay{
		PaymentConnector: "ivrpay_sandbox", ValidCardTypes: SupportedCardTypes, SecurityCode: "true",
		PostalCode: "true", TokenType: "reusable", ChargeAmount: "10.00", Currency: "usd", PaymentMethod: "credit-card",
		InnerElements: []twiml.Element{&twiml.VoiceParameter{Name: "payin_config_id", Value: "cfg_1"}},
	}
	if store {
		p.ChargeAmount = "0"
		p.InnerElements = []twiml.Element{&twiml.VoiceParameter{Name: "payment_method_config_id", Value: "pmc_1"}}
	}
	return p
}

// voiceDoc renders elements with twilio-go, as an integrator's code would.
func voiceDoc(t testing.TB, elems ...twiml.Element) []byte {
	t.Helper()
	doc, err := twiml.Voice(elems)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(doc)
}

// want is the part of a Finding a rule test pins down.
type want struct {
	sev       Severity
	element   string
	attribute string
	contains  string // in Message or Fix
}

func checkFindings(t *testing.T, got []Finding, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d findings, want %d:\n%s", len(got), len(wants), findingLines(got))
	}
	for i, w := range wants {
		f := got[i]
		element := w.element
		if element == "" {
			element = "Pay[1]"
		}
		if f.Severity != w.sev || f.Element != element || f.Attribute != w.attribute ||
			!strings.Contains(f.Message+" Fix: "+f.Fix, w.contains) {
			t.Errorf("finding %d = %s\nwant %s %s %s containing %q", i, f, w.sev, element, w.attribute, w.contains)
		}
		if f.Fix == "" || f.Message == "" {
			t.Errorf("finding %d has no message or fix: %s", i, f)
		}
	}
}

func findingLines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func TestLintRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		store  bool
		mutate func(p *twiml.VoicePay)
		opts   LintOptions
		want   []want
	}{
		{name: "generated payin is clean", opts: LintOptions{AmountCents: 1000, ConfigKind: ConfigKindPayin}},
		{name: "generated store is clean", store: true, opts: LintOptions{ConfigKind: ConfigKindPaymentMethod}},
		{name: "paymentConnector missing",
			mutate: func(p *twiml.VoicePay) { p.PaymentConnector = "" },
			want:   []want{{SeverityError, "", "paymentConnector", `"Default"`}}},
		{name: "validCardTypes missing means Twilio's default",
			mutate: func(p *twiml.VoicePay) { p.ValidCardTypes = "" },
			want:   []want{{SeverityWarning, "", "validCardTypes", `"visa mastercard amex"`}}},
		{name: "validCardTypes with an unsupported type",
			mutate: func(p *twiml.VoicePay) { p.ValidCardTypes = SupportedCardTypes + " maestro" },
			want:   []want{{SeverityError, "", "validCardTypes", "maestro, which ivrpay cannot process"}}},
		{name: "validCardTypes with fewer than six",
			mutate: func(p *twiml.VoicePay) { p.ValidCardTypes = "visa mastercard" },
			want:   []want{{SeverityWarning, "", "validCardTypes", "leaves out amex, discover, jcb, diners-club"}}},
		{name: "securityCode false lowers approval",
			mutate: func(p *twiml.VoicePay) { p.SecurityCode = "false" },
			want:   []want{{SeverityWarning, "", "securityCode", "approval"}}},
		{name: "securityCode not a boolean",
			mutate: func(p *twiml.VoicePay) { p.SecurityCode = "yes" },
			want:   []want{{SeverityError, "", "securityCode", "true or false"}}},
		{name: "postalCode false without one on file",
			mutate: func(p *twiml.VoicePay) { p.PostalCode = "false" },
			want:   []want{{SeverityError, "", "postalCode", "MISSING_POSTAL_CODE"}}},
		{name: "postalCode false with one on file",
			mutate: func(p *twiml.VoicePay) { p.PostalCode = "false" },
			opts:   LintOptions{ConfigHasPostalCode: true}},
		{name: "postalCode fixed value",
			mutate: func(p *twiml.VoicePay) { p.PostalCode = "94111" },
			want:   []want{{SeverityWarning, "", "postalCode", `"94111"`}}},
		{name: "tokenType one-time",
			mutate: func(p *twiml.VoicePay) { p.TokenType = "one-time" },
			want:   []want{{SeverityError, "", "tokenType", `tokenType="reusable"`}}},
		{name: "tokenType payment-method",
			mutate: func(p *twiml.VoicePay) { p.TokenType = "payment-method" },
			want:   []want{{SeverityError, "", "tokenType", "Stripe"}}},
		{name: "tokenType absent defaults to reusable",
			mutate: func(p *twiml.VoicePay) { p.TokenType = "" }},
		{name: "currency upper case is fine",
			mutate: func(p *twiml.VoicePay) { p.Currency = "USD" }},
		{name: "currency not USD",
			mutate: func(p *twiml.VoicePay) { p.Currency = "eur" },
			want:   []want{{SeverityError, "", "currency", "UNSUPPORTED_CURRENCY"}}},
		{name: "paymentMethod ach-debit",
			mutate: func(p *twiml.VoicePay) { p.PaymentMethod = "ach-debit" },
			want:   []want{{SeverityError, "", "paymentMethod", "UNSUPPORTED_PAYMENT_METHOD"}}},
		{name: "chargeAmount differs from the payin config",
			mutate: func(p *twiml.VoicePay) { p.ChargeAmount = "10.5" },
			opts:   LintOptions{AmountCents: 1000},
			want:   []want{{SeverityError, "", "chargeAmount", "chargeAmount 10.50 does not match payin config amount 10.00"}}},
		{name: "chargeAmount equal in another spelling",
			mutate: func(p *twiml.VoicePay) { p.ChargeAmount = "10" },
			opts:   LintOptions{AmountCents: 1000}},
		{name: "chargeAmount not a decimal",
			mutate: func(p *twiml.VoicePay) { p.ChargeAmount = "$10.00" },
			want:   []want{{SeverityError, "", "chargeAmount", "not a decimal amount"}}},
		{name: "chargeAmount above Twilio's maximum",
			mutate: func(p *twiml.VoicePay) { p.ChargeAmount = "1000000.01" },
			want:   []want{{SeverityError, "", "chargeAmount", "maximum"}}},
		{name: "payin without payin_config_id",
			mutate: func(p *twiml.VoicePay) { p.InnerElements = nil },
			want:   []want{{SeverityError, "", "Parameter", "MISSING_CONFIG_ID"}}},
		{name: "payin with an empty payin_config_id",
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = []twiml.Element{&twiml.VoiceParameter{Name: "payin_config_id", OptionalAttributes: map[string]string{"value": " "}}}
			},
			want: []want{{SeverityError, "", "Parameter", "empty"}}},
		{name: "payin with a payment method config id",
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = []twiml.Element{&twiml.VoiceParameter{Name: "payment_method_config_id", Value: "pmc_1"}}
			},
			want: []want{{SeverityError, "", "Parameter", "CONFIG_METHOD_MISMATCH"}}},
		{name: "store with the guide's alias", store: true,
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = []twiml.Element{&twiml.VoiceParameter{Name: "payment_method_id", Value: "pmc_1"}}
			},
			want: []want{{SeverityWarning, "", "Parameter", "rename the parameter payment_method_id to payment_method_config_id"}}},
		{name: "store with a payin config id", store: true,
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = []twiml.Element{&twiml.VoiceParameter{Name: "payin_config_id", Value: "cfg_1"}}
			},
			want: []want{{SeverityError, "", "Parameter", "CONFIG_METHOD_MISMATCH"}}},
		{name: "store with chargeAmount absent and no parameter", store: true,
			mutate: func(p *twiml.VoicePay) { p.ChargeAmount = ""; p.InnerElements = nil },
			want:   []want{{SeverityError, "", "Parameter", "payment_method_config_id"}}},
		{name: "payin config but the step stores", store: true,
			opts: LintOptions{ConfigKind: ConfigKindPayin, AmountCents: 1000},
			want: []want{
				{SeverityError, "", "chargeAmount", `chargeAmount="10.00"`},
				{SeverityError, "", "Parameter", "CONFIG_METHOD_MISMATCH"},
			}},
		{name: "payment method config but the step charges",
			opts: LintOptions{ConfigKind: ConfigKindPaymentMethod},
			want: []want{
				{SeverityError, "", "chargeAmount", `chargeAmount="0"`},
				{SeverityError, "", "Parameter", "CONFIG_METHOD_MISMATCH"},
			}},
		{name: "attribute in the wrong case",
			mutate: func(p *twiml.VoicePay) {
				p.TokenType = ""
				p.OptionalAttributes = map[string]string{"tokentype": "reusable"}
			},
			want: []want{{SeverityError, "", "tokentype", "rename it to tokenType"}}},
		{name: "twilio-go's For_ bug",
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = append(p.InnerElements, &twiml.VoicePrompt{For_: "payment-card-number"})
			},
			want: []want{{SeverityError, "Pay[1]/Prompt[1]", "for_", "OptionalAttributes"}}},
		{name: "Prompt with for set through OptionalAttributes",
			mutate: func(p *twiml.VoicePay) {
				p.InnerElements = append(p.InnerElements, &twiml.VoicePrompt{
					OptionalAttributes: map[string]string{"for": "payment-card-number"},
					InnerElements:      []twiml.Element{&twiml.VoiceSay{Message: "Card number, please"}},
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := goodPay(tt.store)
			if tt.mutate != nil {
				tt.mutate(p)
			}
			got, err := Lint(voiceDoc(t, &twiml.VoiceSay{Message: "Let's take your payment"}, p), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkFindings(t, got, tt.want)
		})
	}
}

func TestLintDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		opts    LintOptions
		want    []want
		wantErr string
	}{
		{name: "no Pay at all", doc: `<?xml version="1.0"?><Response><Say>Hello</Say></Response>`,
			want: []want{{SeverityError, "Response", "", "no <Pay>"}}},
		{name: "every Pay is checked, numbered in order",
			doc: `<Response><Pay paymentConnector="c" validCardTypes="` + SupportedCardTypes + `" chargeAmount="1.00"><Parameter name="payin_config_id" value="cfg_1"/></Pay>` +
				`<Pay paymentConnector="c" validCardTypes="` + SupportedCardTypes + `" currency="cad"><Parameter name="payment_method_config_id" value="pmc_1"/></Pay></Response>`,
			want: []want{{SeverityError, "Pay[2]", "currency", "cad"}}},
		{name: "attribute order and a byte order mark do not matter",
			doc:  "\xef\xbb\xbf<Response><Pay chargeAmount=\"2.00\" validCardTypes=\"" + SupportedCardTypes + "\" paymentConnector=\"c\"><Parameter value=\"cfg_1\" name=\"payin_config_id\"/></Pay></Response>",
			opts: LintOptions{AmountCents: 200}},
		{name: "malformed XML", doc: `<Response><Pay>`, wantErr: "well-formed"},
		{name: "plain text", doc: `chargeAmount=10`, wantErr: "not TwiML"},
		{name: "JSON that is not a flow", doc: `{"hello": 1}`, wantErr: "no states"},
		{name: "broken JSON", doc: `{"states": [`, wantErr: "not a Studio flow"},
		{name: "bad options", doc: `<Response/>`, opts: LintOptions{ConfigKind: "refund"}, wantErr: "config kind"},
		{name: "negative amount", doc: `<Response/>`, opts: LintOptions{AmountCents: -1}, wantErr: "negative"},
		{name: "amount for a payment method config", doc: `<Response/>`, opts: LintOptions{AmountCents: 1, ConfigKind: ConfigKindPaymentMethod}, wantErr: "no amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Lint([]byte(tt.doc), tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFindings(t, got, tt.want)
		})
	}
}

func TestLintGeneratedIsClean(t *testing.T) {
	t.Parallel()
	for name, o := range goldenOptions {
		t.Run(name, func(t *testing.T) {
			doc, err := GenerateTwiML(o)
			if err != nil {
				t.Fatal(err)
			}
			opts := LintOptions{AmountCents: o.AmountCents, ConfigKind: ConfigKindPayin}
			if o.PaymentMethodConfigID != "" {
				opts.ConfigKind = ConfigKindPaymentMethod
			}
			got, err := Lint(doc, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("%s: the generator's own TwiML has findings:\n%s", name, findingLines(got))
			}
			p, _ := NewPay(o)
			flow := p.StudioFlow()
			got, err = Lint(flow, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("%s: the generator's own Studio flow has findings:\n%s", name, findingLines(got))
			}
			steps, err := parseStudioFlow(flow)
			if err != nil || len(steps) != 1 || steps[0].name != StudioCaptureState {
				t.Errorf("%s: the flow's capture-payments widgets: %+v, %v", name, steps, err)
			}
		})
	}
}

// studioFlow returns the fixture flow with the capture-payments widget's
// properties changed by edit.
func studioFlow(t *testing.T, edit func(props map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "studio_flow.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return raw
	}
	var flow map[string]any
	if err := json.Unmarshal(raw, &flow); err != nil {
		t.Fatal(err)
	}
	for _, s := range flow["states"].([]any) {
		st := s.(map[string]any)
		if st["type"] == StudioWidgetType {
			edit(st["properties"].(map[string]any))
		}
	}
	out, err := json.Marshal(flow)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLintStudio(t *testing.T) {
	t.Parallel()
	const w = "capture_payment"
	tests := []struct {
		name string
		edit func(props map[string]any)
		opts LintOptions
		want []want
	}{
		{name: "fixture is clean, master-card and CREDIT_CARD included", opts: LintOptions{AmountCents: 1000}},
		{name: "amount mismatch", edit: func(p map[string]any) { p["payment_amount"] = "10.50" }, opts: LintOptions{AmountCents: 1000},
			want: []want{{SeverityError, w, "payment_amount", "payment_amount 10.50 does not match payin config amount 10.00"}}},
		{name: "security code off", edit: func(p map[string]any) { p["security_code"] = false },
			want: []want{{SeverityWarning, w, "security_code", "Request Security Code (security_code) to true"}}},
		{name: "postal code off", edit: func(p map[string]any) { p["postal_code"] = "false" },
			want: []want{{SeverityError, w, "postal_code", "MISSING_POSTAL_CODE"}}},
		{name: "ACH", edit: func(p map[string]any) { p["payment_method"] = "ACH_DEBIT" },
			want: []want{{SeverityError, w, "payment_method", "UNSUPPORTED_PAYMENT_METHOD"}}},
		{name: "one-time token", edit: func(p map[string]any) { p["payment_token_type"] = "one-time" },
			want: []want{{SeverityError, w, "payment_token_type", "Payment Token Type"}}},
		{name: "no connector", edit: func(p map[string]any) { delete(p, "payment_connector") },
			want: []want{{SeverityError, w, "payment_connector", "Pay Connector"}}},
		{name: "card types left out and maestro", edit: func(p map[string]any) { p["valid_card_types"] = []any{"visa", "maestro"} },
			want: []want{
				{SeverityError, w, "valid_card_types", "maestro"},
				{SeverityWarning, w, "valid_card_types", "Visa, Master Card, American Express, Discover, JCB, Diners Club"},
			}},
		{name: "empty amount with a payin config id", edit: func(p map[string]any) { p["payment_amount"] = "" },
			want: []want{{SeverityError, w, "parameters", "CONFIG_METHOD_MISMATCH"}}},
		{name: "storing with the guide's alias", edit: func(p map[string]any) {
			delete(p, "payment_amount")
			p["parameters"] = []any{map[string]any{"key": "payment_method_id", "value": "pmc_1"}}
		}, want: []want{{SeverityWarning, w, "parameters", "payment_method_config_id"}}},
		{name: "amount as a template", edit: func(p map[string]any) { p["payment_amount"] = "{{flow.data.amount}}" },
			want: []want{{SeverityWarning, w, "payment_amount", "template"}}},
		{name: "amount as a JSON number", edit: func(p map[string]any) { p["payment_amount"] = 10 }, opts: LintOptions{AmountCents: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Lint(studioFlow(t, tt.edit), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkFindings(t, got, tt.want)
		})
	}
}

func TestLintStudioFromTheFlowsResource(t *testing.T) {
	t.Parallel()
	// The Flows REST resource wraps the export in "definition".
	doc := `{"sid":"FW1","friendly_name":"Pay","status":"published","definition":` + string(studioFlow(t, nil)) + `}`
	got, err := Lint([]byte(doc), LintOptions{AmountCents: 1200})
	if err != nil {
		t.Fatal(err)
	}
	checkFindings(t, got, []want{{SeverityError, "capture_payment", "payment_amount", "does not match"}})
}

func TestLintStudioWithoutWidget(t *testing.T) {
	t.Parallel()
	got, err := Lint([]byte(`{"states":[{"name":"Trigger","type":"trigger","properties":{}}],"initial_state":"Trigger"}`), LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFindings(t, got, []want{{SeverityError, "flow", "", StudioWidgetType}})
}

func TestFindingString(t *testing.T) {
	t.Parallel()
	f := Finding{Severity: SeverityError, Element: "Pay[1]", Attribute: "chargeAmount", Message: "m", Fix: "f"}
	if got, want := f.String(), "error Pay[1] chargeAmount: m. Fix: f"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if HasErrors([]Finding{{Severity: SeverityWarning}}) || !HasErrors([]Finding{{Severity: SeverityWarning}, f}) {
		t.Error("HasErrors is wrong")
	}
	b, _ := json.Marshal(f)
	var back Finding
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("JSON round trip: %s → %+v, %v", b, back, err)
	}
}

func FuzzLint(f *testing.F) {
	for _, o := range goldenOptions {
		doc, _ := GenerateTwiML(o)
		f.Add(doc)
	}
	fixture, _ := os.ReadFile(filepath.Join("testdata", "studio_flow.json"))
	f.Add(fixture)
	for _, s := range []string{
		``, `<`, `{`, `<Response><Pay chargeAmount="1e3" validCardTypes="  "/></Response>`,
		`<Pay><Pay><Parameter/></Pay></Pay>`, `<Response><Pay><Prompt for_="x"/></Pay></Response>`,
		`{"states":[{"type":"capture-payments","properties":{"valid_card_types":"visa","parameters":[1,{"key":null}]}}]}`,
		`{"states":[{"type":"capture-payments","properties":{"payment_amount":{"a":1},"security_code":[true]}}]}`,
		`{"states":null}`, `[1,2]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, opts := range []LintOptions{{}, {AmountCents: 1000, ConfigHasPostalCode: true}, {ConfigKind: ConfigKindPaymentMethod}} {
			findings, err := Lint(doc, opts)
			if err != nil {
				continue
			}
			for _, fd := range findings {
				if (fd.Severity != SeverityError && fd.Severity != SeverityWarning) || fd.Element == "" || fd.Message == "" || fd.Fix == "" {
					t.Fatalf("incomplete finding %#v", fd)
				}
			}
		}
	})
}
