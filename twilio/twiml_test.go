package twilio

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/card"
	"github.com/ivrpay/ivrpay/internal/golden"
	"github.com/twilio/twilio-go/twiml"
)

func TestCardTypeMapping(t *testing.T) {
	t.Parallel()
	if len(card.Brands) != len(cardTypes) {
		t.Fatalf("card.Brands has %d brands, the Twilio table %d", len(card.Brands), len(cardTypes))
	}
	for _, b := range card.Brands {
		t.Run(string(b), func(t *testing.T) {
			name := CardType(b)
			if name == "" {
				t.Errorf("CardType(%s) is empty", b)
			}
			if got := BrandForCardType(name); got != b {
				t.Errorf("BrandForCardType(%q) = %q, want %q", name, got, b)
			}
		})
	}
	tests := []struct {
		in   string
		want card.Brand
	}{
		{"master-card", card.Mastercard},
		{"MasterCard", card.Mastercard},
		{" diners-club ", card.DinersClub},
		{"maestro", ""},
		{"enroute", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := BrandForCardType(tt.in); got != tt.want {
				t.Errorf("BrandForCardType(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if CardType("UNIONPAY") != "" {
		t.Error("CardType of an unknown brand should be empty")
	}
	if SupportedCardTypes != "visa mastercard amex discover jcb diners-club" {
		t.Errorf("SupportedCardTypes = %q", SupportedCardTypes)
	}
}

// goldenOptions are the generator inputs the golden files are made from.
var goldenOptions = map[string]PayOptions{
	"payin": {
		Connector: "ivrpay_sandbox", AmountCents: 1000, PayinConfigID: "sbx_cfg_2abcDEF345ghiJKL678mnoPQR90",
		Action: "https://example.com/pay/done?call=1&step=2", StatusCallback: "https://example.com/pay/status",
	},
	"payment_method": {
		Connector: "ivrpay_sandbox", PaymentMethodConfigID: "sbx_pmc_2abcDEF345ghiJKL678mnoPQR90",
	},
}

func TestGenerateTwiMLGolden(t *testing.T) {
	t.Parallel()
	for name, o := range goldenOptions {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := GenerateTwiML(o)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".twiml.golden", doc)
			p, err := NewPay(o)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".studio.golden", p.StudioFlow())
			golden.Check(t, name+".studio-widget.golden", p.StudioWidget())
		})
	}
}

func TestGenerateTwiML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    PayOptions
		want    []string // substrings of the document
		wantErr string
	}{
		{
			name: "amount from cents, never a float",
			opts: PayOptions{Connector: "c", AmountCents: 1999, PayinConfigID: "cfg_1"},
			want: []string{`chargeAmount="19.99"`, `<Parameter name="payin_config_id" value="cfg_1"/>`, `currency="usd"`, `tokenType="reusable"`},
		},
		{
			name: "one cent",
			opts: PayOptions{Connector: "c", AmountCents: 1, PayinConfigID: "cfg_1"},
			want: []string{`chargeAmount="0.01"`},
		},
		{
			name: "store a card",
			opts: PayOptions{Connector: "c", PaymentMethodConfigID: "pmc_1"},
			want: []string{`chargeAmount="0"`, `<Parameter name="payment_method_config_id" value="pmc_1"/>`},
		},
		{
			name: "values are escaped",
			opts: PayOptions{Connector: `a"<b>&c`, PaymentMethodConfigID: "pmc_1", Description: "Joe's <pizza>"},
			want: []string{`paymentConnector="a&#34;&lt;b&gt;&amp;c"`, `description="Joe&#39;s &lt;pizza&gt;"`},
		},
		{name: "no connector", opts: PayOptions{PayinConfigID: "cfg_1", AmountCents: 100}, wantErr: "connector"},
		{name: "no config", opts: PayOptions{Connector: "c"}, wantErr: "config id"},
		{name: "both configs", opts: PayOptions{Connector: "c", PayinConfigID: "cfg_1", PaymentMethodConfigID: "pmc_1", AmountCents: 1}, wantErr: "not both"},
		{name: "payin without amount", opts: PayOptions{Connector: "c", PayinConfigID: "cfg_1"}, wantErr: "amount"},
		{name: "payin above Twilio's maximum", opts: PayOptions{Connector: "c", PayinConfigID: "cfg_1", AmountCents: 1_000_000_01}, wantErr: "at most 1000000.00"},
		{name: "payment method with amount", opts: PayOptions{Connector: "c", PaymentMethodConfigID: "pmc_1", AmountCents: 5}, wantErr: "amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, err := GenerateTwiML(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !bytes.Contains(doc, []byte(w)) {
					t.Errorf("document lacks %s:\n%s", w, doc)
				}
			}
			// What is generated parses back to the same model.
			p, err := ParsePay(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.TwiML(), doc) {
				t.Errorf("round trip changed the document:\n%s\nvs\n%s", p.TwiML(), doc)
			}
		})
	}
}

func TestParseTwiMLFromTwilioGo(t *testing.T) {
	t.Parallel()
	// twilio-go renders attributes in map order, and its For_ field as for_;
	// the parser must not care about the first and must keep the second for lint.
	doc, err := twiml.Voice([]twiml.Element{
		&twiml.VoiceSay{Message: "Please enter your card"},
		&twiml.VoicePay{
			PaymentConnector: "ivrpay", ChargeAmount: "10.00", Currency: "usd", Timeout: "7",
			ValidCardTypes: "visa amex",
			InnerElements: []twiml.Element{
				&twiml.VoiceParameter{Name: "payin_config_id", Value: "cfg_1"},
				&twiml.VoiceParameter{Name: "note", Value: "a&b"},
				&twiml.VoicePrompt{OptionalAttributes: map[string]string{"for": "payment-card-number"},
					InnerElements: []twiml.Element{&twiml.VoiceSay{Message: "Card number"}}},
				&twiml.VoicePrompt{For_: "expiration-date"},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePay([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.PaymentConnector != "ivrpay" || p.ChargeAmount != "10.00" || p.ValidCardTypes != "visa amex" {
		t.Errorf("attributes not read: %+v", p)
	}
	if len(p.Other) != 1 || p.Other[0].Name.Local != "timeout" || p.Other[0].Value != "7" {
		t.Errorf("Other = %+v, want timeout=7", p.Other)
	}
	if v, _ := p.Param("note"); v != "a&b" {
		t.Errorf("note = %q", v)
	}
	if len(p.Parameters) != 2 || len(p.Prompts) != 2 {
		t.Errorf("got %d parameters and %d prompts, want 2 and 2", len(p.Parameters), len(p.Prompts))
	}
	if m, err := p.Method(); err != nil || m != MethodCharge {
		t.Errorf("Method() = %q, %v", m, err)
	}
}

func TestParsePay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, wantErr string
		wantMethod         string
	}{
		{name: "tokenize when absent", doc: `<Response><Pay/></Response>`, wantMethod: MethodTokenize},
		{name: "tokenize at 0.00", doc: `<Response><Pay chargeAmount="0.00"/></Response>`, wantMethod: MethodTokenize},
		{name: "charge", doc: `<Response><Pay chargeAmount="0.01"/></Response>`, wantMethod: MethodCharge},
		{name: "bad amount", doc: `<Response><Pay chargeAmount="ten"/></Response>`, wantErr: "invalid amount"},
		{name: "no pay", doc: `<Response><Say>hi</Say></Response>`, wantErr: "no <Pay>"},
		{name: "two pays", doc: `<Response><Pay/><Pay/></Response>`, wantErr: "2 <Pay>"},
		{name: "not XML", doc: `hello`, wantErr: "not TwiML"},
		{name: "broken XML", doc: `<Response><Pay></Response>`, wantErr: "well-formed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePay([]byte(tt.doc))
			if err == nil {
				_, err = p.Method()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := p.Method(); m != tt.wantMethod {
				t.Errorf("Method() = %q, want %q", m, tt.wantMethod)
			}
		})
	}
}
