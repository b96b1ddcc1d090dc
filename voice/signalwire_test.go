package voice_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

func readDoc(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "signalwire", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignalWireRequest: SignalWire's documented bodies and its variants map
// onto the service's request: chargeAmount (a number or a string) above 0
// charges, anything else stores the card.
func TestSignalWireRequest(t *testing.T) {
	t.Parallel()
	charge, tokenize := readDoc(t, "charge"), readDoc(t, "tokenize")
	swap := func(doc []byte, old, new string) []byte {
		out := strings.Replace(string(doc), old, new, 1)
		if out == string(doc) {
			t.Fatalf("%q is not in the documented body", old)
		}
		return []byte(out)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		method string
		cents  int64
		ach    bool
	}{
		{"documented charge (chargeAmount a number)", charge, ivrpay.IVRMethodCharge, 12345, false},
		{"chargeAmount a string (SWML)", swap(charge, `123.45`, `"123.45"`), ivrpay.IVRMethodCharge, 12345, false},
		{"chargeAmount a whole number", swap(charge, `123.45`, `25`), ivrpay.IVRMethodCharge, 2500, false},
		{"documented tokenize (amount 0, no method)", tokenize, ivrpay.IVRMethodTokenize, 0, false},
		{"chargeAmount 0 (SWML's tokenize)", swap(charge, `123.45`, `"0"`), ivrpay.IVRMethodTokenize, 0, false},
		{"chargeAmount null", swap(charge, `123.45`, `null`), ivrpay.IVRMethodTokenize, 0, false},
		{"ach-debit", swap(charge, `"credit-card"`, `"ach-debit"`), ivrpay.IVRMethodCharge, 12345, true},
		{"method in capitals", swap(charge, `"credit-card"`, `"CREDIT-CARD"`), ivrpay.IVRMethodCharge, 12345, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := voice.SignalWire.ParseRequest(c.body)
			if err != nil {
				t.Fatal(err)
			}
			if req.Provider != ivrpay.ProviderSignalWire || req.Method != c.method || req.TransactionID != "id" || req.ACH != c.ach ||
				req.CardNumber != "4111111111111111" || req.ExpiryYear != "38" || req.Parameters["custom1"] != "value1" {
				t.Fatalf("request %+v", req)
			}
			if c.method == ivrpay.IVRMethodCharge && (req.Amount.Err != nil || req.Amount.Cents != c.cents) {
				t.Fatalf("amount %+v, want %d cents", req.Amount, c.cents)
			}
		})
	}
}

// TestSignalWireAnswer: a success is a 200, a refusal a 402 (401 for
// credentials), with the Generic Pay Connector's keys either way.
func TestSignalWireAnswer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		res    ivrpay.IVRResult
		status int
	}{
		{ivrpay.IVRResult{ID: "sbx_pyi_1"}, 200},
		{ivrpay.IVRResult{ErrorCode: "DECLINED", ErrorMessage: "declined"}, 402},
		{ivrpay.IVRResult{ErrorCode: ivrpay.ConnPaymentPending, ErrorMessage: "pending"}, 402},
		{ivrpay.IVRResult{ErrorCode: ivrpay.ConnUnauthorized, ErrorMessage: "no"}, 401},
		{ivrpay.IVRResult{ErrorCode: ivrpay.ConnRateLimited, ErrorMessage: "later"}, 429},
		{ivrpay.IVRResult{ErrorCode: ivrpay.ConnInternal, ErrorMessage: "oops"}, 500},
	} {
		t.Run(c.res.ErrorCode, func(t *testing.T) {
			status, body := voice.SignalWire.Answer(ivrpay.IVRMethodCharge, c.res)
			var got map[string]any
			if status != c.status || json.Unmarshal(body, &got) != nil {
				t.Fatalf("HTTP %d %s, want %d", status, body, c.status)
			}
			if _, ok := got["charge_id"]; !ok || got["error_code"] != map[bool]any{true: nil, false: c.res.ErrorCode}[c.res.ErrorCode == ""] {
				t.Fatalf("answer %s", body)
			}
		})
	}
}

func FuzzSignalWireRequest(f *testing.F) {
	for _, seed := range []string{
		`{"transaction_id":"t","method":"credit-card","chargeAmount":10,"parameters":{"payin_config_id":"sbx_cfg_1"}}`,
		`{"transaction_id":"t","amount":0,"token_type":"reusable","parameters":{"payment_method_config_id":"sbx_pmc_1"}}`,
		`{"transaction_id":"t","chargeAmount":"0","token_type":1}`,
		`{"transaction_id":"t","method":"charge","chargeAmount":[]}`,
		`{"transaction_id":"t","chargeAmount":1,"chargeAmount":2}`,
		`{"transaction_id":"t","method":{},"cardnumber":"4111111111111111"}`,
		`null`, `[]`, `{}`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := voice.SignalWire.ParseRequest(body)
		if req.Provider != ivrpay.ProviderSignalWire {
			t.Fatalf("provider %q", req.Provider)
		}
		if err != nil {
			if !errors.Is(err, twilio.ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			if strings.Contains(err.Error(), "4111111111111111") {
				t.Fatalf("error echoes a card number: %v", err)
			}
			return
		}
		if req.Method != ivrpay.IVRMethodCharge && req.Method != ivrpay.IVRMethodTokenize {
			t.Fatalf("accepted method %q", req.Method)
		}
		if req.TransactionID == "" || !json.Valid(body) {
			t.Fatalf("accepted %q as %+v", body, req)
		}
		status, answer := voice.SignalWire.Answer(req.Method, ivrpay.IVRResult{ErrorCode: "DECLINED", ErrorMessage: "no"})
		if status != 402 || !json.Valid(answer) {
			t.Fatalf("answer %d %s", status, answer)
		}
	})
}
