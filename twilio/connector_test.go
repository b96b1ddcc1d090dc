package twilio_test

// The Generic Pay Connector wire protocol: ParseConnectorRequest on Twilio's
// documented bodies and on everything else a caller may send, and the exact
// bytes of ConnectorResponse.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/twilio"
)

// Twilio's documented bodies (Generic Pay Connector page), verbatim, in
// testdata/gpc so that the HTTP tests replay the same bytes.
var (
	gpcCharge      = gpcBody("charge")
	gpcACHCharge   = gpcBody("ach_charge")
	gpcTokenize    = gpcBody("tokenize")
	gpcACHTokenize = gpcBody("ach_tokenize")
)

func gpcBody(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", "gpc", name+".json"))
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

const (
	// A private-beta payload (posted to the old /tokenize path: no method).
	privateBetaTokenize = `{ "transaction_id": "81e3c0b7-7680-4d3c-b22b-f3974925c4d1", "cardnumber": "4444333322221111",
  "cvv": "123", "expiry_month": "12", "expiry_year": "25", "description": null,
  "amount": "0", "currency_code": "USD", "postal_code": null }`
)

var customParams = map[string]string{"customer_defined_key_1": "customer_defined_value_1", "customer_defined_key_2": "customer_defined_value_2"}

func TestParseConnectorRequestDocumentedBodies(t *testing.T) {
	cases := []struct {
		name string
		body string
		want twilio.ConnectorRequest
		ach  bool
	}{
		{"charge", gpcCharge, twilio.ConnectorRequest{Method: "charge", TransactionID: "transaction_id", CardNumber: "4111111111111111",
			CVV: "123", ExpiryMonth: "08", ExpiryYear: "27", PostalCode: "94111", Amount: "10.0", AmountPresent: true,
			CurrencyCode: "USD", Description: "pizza", Parameters: customParams}, false},
		{"ACH charge", gpcACHCharge, twilio.ConnectorRequest{Method: "charge", TransactionID: "transaction_id",
			BankAccountNumber: "4111111111111111", RoutingNumber: "12345678", Amount: "10.0", AmountPresent: true,
			CurrencyCode: "USD", Description: "pizza", Parameters: customParams}, true},
		{"tokenize", gpcTokenize, twilio.ConnectorRequest{Method: "tokenize", TransactionID: "transaction_id", CardNumber: "4111111111111111",
			CVV: "123", ExpiryMonth: "08", ExpiryYear: "27", PostalCode: "94111", Description: "pizza", Parameters: customParams}, false},
		{"ACH tokenize", gpcACHTokenize, twilio.ConnectorRequest{Method: "tokenize", TransactionID: "transaction_id",
			BankAccountNumber: "4111111111111111", RoutingNumber: "12345678", Description: "pizza", Parameters: customParams}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := twilio.ParseConnectorRequest([]byte(c.body))
			if err != nil {
				t.Fatalf("ParseConnectorRequest: %v", err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got  %+v\nwant %+v", *got, c.want)
			}
			if got.IsACH() != c.ach {
				t.Errorf("IsACH() = %v, want %v", got.IsACH(), c.ach)
			}
		})
	}
}

func TestParseConnectorRequestTolerance(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(t *testing.T, r *twilio.ConnectorRequest)
	}{
		{"nulls", `{"method":"charge","transaction_id":"t","description":null,"postal_code":null,"cvv":null,"amount":null,"currency_code":null,"parameters":null}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.Description != "" || r.PostalCode != "" || r.CVV != "" || r.Amount != "" || r.AmountPresent || r.CurrencyCode != "" {
					t.Errorf("nulls parsed as %+v", r)
				}
				if r.Parameters == nil || len(r.Parameters) != 0 {
					t.Errorf("null parameters = %#v, want an empty map", r.Parameters)
				}
			}},
		{"null parameter values", `{"method":"charge","transaction_id":"t","parameters":{"a":null,"b":"x"}}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if !reflect.DeepEqual(r.Parameters, map[string]string{"b": "x"}) {
					t.Errorf("parameters = %v", r.Parameters)
				}
			}},
		{"absent amount", `{"method":"charge","transaction_id":"t"}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.AmountPresent || r.Amount != "" || r.Parameters == nil {
					t.Errorf("parsed as %+v", r)
				}
			}},
		{"empty amount is present", `{"method":"tokenize","transaction_id":"t","amount":""}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if !r.AmountPresent || r.Amount != "" {
					t.Errorf("parsed as %+v", r)
				}
			}},
		{"numbers and booleans as their text", `{"method":"charge","transaction_id":12345,"cardnumber":4111111111111111,"cvv":123,"amount":10.50,"expiry_month":8,"expiry_year":2027,"postal_code":94111,"parameters":{"n":7,"f":1.5e2,"b":true}}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.TransactionID != "12345" || r.CardNumber != "4111111111111111" || r.CVV != "123" || r.Amount != "10.50" || !r.AmountPresent ||
					r.ExpiryMonth != "8" || r.ExpiryYear != "2027" || r.PostalCode != "94111" {
					t.Errorf("parsed as %+v", r)
				}
				if !reflect.DeepEqual(r.Parameters, map[string]string{"n": "7", "f": "1.5e2", "b": "true"}) {
					t.Errorf("parameters = %v", r.Parameters)
				}
			}},
		{"unknown fields ignored", `{"method":"charge","transaction_id":"t","token_type":"reusable","request":{"a":[1,{"b":null}]},"chargeAmount":"10.00"}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.Method != "charge" || r.TransactionID != "t" {
					t.Errorf("parsed as %+v", r)
				}
			}},
		{"description an object", `{"method":"charge","transaction_id":"t","description":{"text":"pizza"}}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.Description == "" {
					t.Errorf("an object description was dropped: %+v", r)
				}
			}},
		{"method case and spaces", `{"method":" CHARGE ","transaction_id":" t1 ","cardnumber":" 4111111111111111 "}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.Method != "charge" || r.TransactionID != "t1" || r.CardNumber != "4111111111111111" {
					t.Errorf("parsed as %+v", r)
				}
			}},
		{"255-character transaction_id", `{"method":"tokenize","transaction_id":"` + strings.Repeat("x", 255) + `"}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if len(r.TransactionID) != 255 {
					t.Errorf("transaction_id of %d characters", len(r.TransactionID))
				}
			}},
		{"whitespace around the object", " \n\t" + `{"method":"charge","transaction_id":"t"}` + "\r\n ",
			func(t *testing.T, r *twilio.ConnectorRequest) {}},
		{"escaped strings", `{"method":"\u0063harge","transaction_id":"t\"1","parameters":{"payin_config_id":"sbx_cfg_\u0041"}}`,
			func(t *testing.T, r *twilio.ConnectorRequest) {
				if r.Method != "charge" || r.TransactionID != `t"1` || r.Parameters["payin_config_id"] != "sbx_cfg_A" {
					t.Errorf("parsed as %+v", r)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := twilio.ParseConnectorRequest([]byte(c.body))
			if err != nil {
				t.Fatalf("ParseConnectorRequest: %v", err)
			}
			c.check(t, r)
		})
	}
}

func TestParseConnectorRequestRefusals(t *testing.T) {
	const pan = "4111111111111111"
	cases := []struct {
		name, body string
		method     string // the method returned alongside the error
		mention    string // the message names this
	}{
		{"not JSON", "cardnumber=" + pan, "", "JSON"},
		{"empty", "", "", "JSON"},
		{"null", "null", "", "JSON"},
		{"array", `[{"method":"charge"}]`, "", "JSON"},
		{"string", `"charge"`, "", "JSON"},
		{"truncated", `{"method":"charge","transaction_id":"t"`, "", "JSON"},
		{"trailing brace", `{"method":"charge","transaction_id":"t"}}`, "", "after"},
		{"trailing bracket", `{"method":"charge","transaction_id":"t"}]`, "", "after"},
		{"two objects", `{"method":"charge","transaction_id":"t"}{}`, "", "after"},
		{"trailing garbage", `{"method":"charge","transaction_id":"t"} x`, "", "after"},
		{"no method", privateBetaTokenize, "", "method"},
		{"unknown method", `{"method":"refund","transaction_id":"t"}`, "refund", "refund"},
		{"method a number", `{"method":1,"transaction_id":"t"}`, "1", "method"},
		{"method an object", `{"method":{},"transaction_id":"t"}`, "", "method"},
		{"method a PAN", `{"method":"` + pan + `","transaction_id":"t"}`, pan, "method"},
		{"no transaction_id", `{"method":"charge"}`, "charge", "transaction_id"},
		{"blank transaction_id", `{"method":"tokenize","transaction_id":"  "}`, "tokenize", "transaction_id"},
		{"null transaction_id", `{"method":"charge","transaction_id":null}`, "charge", "transaction_id"},
		{"long transaction_id", `{"method":"charge","transaction_id":"` + strings.Repeat("x", 256) + `"}`, "charge", "transaction_id"},
		{"cardnumber an object", `{"method":"charge","transaction_id":"t","cardnumber":{"pan":"` + pan + `"}}`, "charge", "cardnumber"},
		{"cvv an array", `{"method":"charge","transaction_id":"t","cvv":["123"]}`, "charge", "cvv"},
		{"amount an object", `{"method":"charge","transaction_id":"t","amount":{"value":"10.00"}}`, "charge", "amount"},
		{"parameters an array", `{"method":"charge","transaction_id":"t","parameters":["cfg"]}`, "charge", "parameters"},
		{"parameters a string", `{"method":"charge","transaction_id":"t","parameters":"cfg"}`, "charge", "parameters"},
		{"parameter value an object", `{"method":"charge","transaction_id":"t","parameters":{"payin_config_id":{"id":"cfg"}}}`, "charge", "parameters.payin_config_id"},
		{"duplicated amount", `{"method":"charge","transaction_id":"t","amount":"10.00","amount":"0.07"}`, "charge", "amount"},
		{"duplicated parameter", `{"method":"charge","transaction_id":"t","parameters":{"payin_config_id":"a","payin_config_id":"b"}}`, "charge", "parameters.payin_config_id"},
		{"postal_code a card number", `{"method":"charge","transaction_id":"t","postal_code":"` + pan + `"}`, "charge", "postal_code"},
		{"postal_code a spaced card number", `{"method":"tokenize","transaction_id":"t","postal_code":"4111 1111 1111 1111"}`, "tokenize", "postal_code"},
		{"postal_code a JSON number card", `{"method":"charge","transaction_id":"t","postal_code":` + pan + `}`, "charge", "postal_code"},
		{"postal_code 11 characters", `{"method":"charge","transaction_id":"t","postal_code":"12345-67890"}`, "charge", "postal_code"},
		{"postal_code punctuation", `{"method":"charge","transaction_id":"t","postal_code":"941;11"}`, "charge", "postal_code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := twilio.ParseConnectorRequest([]byte(c.body))
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if !errors.Is(err, twilio.ErrInvalidRequest) {
				t.Errorf("error %v does not wrap ErrInvalidRequest", err)
			}
			if r == nil {
				t.Fatal("nil request with the error; the handler needs the method")
			}
			if r.Method != c.method {
				t.Errorf("method %q returned with the error, want %q", r.Method, c.method)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
			if strings.Contains(err.Error(), pan) {
				t.Errorf("error %q echoes the card number", err)
			}
		})
	}
}

func TestConnectorResponseMarshal(t *testing.T) {
	cases := []struct {
		name string
		res  twilio.ConnectorResponse
		want string
	}{
		{"charge success", twilio.ConnectorResponse{Method: "charge", ID: "pyi_1", Parameters: map[string]string{"payin_id": "pyi_1", "card_brand": "VISA"}},
			`{"charge_id":"pyi_1","error_code":null,"error_message":null,"parameters":{"card_brand":"VISA","payin_id":"pyi_1"}}`},
		{"charge failure", twilio.ConnectorResponse{Method: "charge", ErrorCode: "DECLINED", ErrorMessage: "Card declined", Parameters: map[string]string{"payin_id": "pyi_2"}},
			`{"charge_id":null,"error_code":"DECLINED","error_message":"Card declined","parameters":{"payin_id":"pyi_2"}}`},
		{"tokenize success", twilio.ConnectorResponse{Method: "tokenize", ID: "mtd_1"},
			`{"token_id":"mtd_1","error_code":null,"error_message":null,"parameters":{}}`},
		{"tokenize failure", twilio.ConnectorResponse{Method: "tokenize", ErrorCode: "FORBIDDEN", ErrorMessage: "no"},
			`{"token_id":null,"error_code":"FORBIDDEN","error_message":"no","parameters":{}}`},
		{"unknown method", twilio.ConnectorResponse{Method: "refund", ErrorCode: "INVALID_REQUEST", ErrorMessage: "bad"},
			`{"charge_id":null,"token_id":null,"error_code":"INVALID_REQUEST","error_message":"bad","parameters":{}}`},
		{"no method", twilio.ConnectorResponse{ErrorCode: "UNAUTHORIZED", ErrorMessage: "unauthorized"},
			`{"charge_id":null,"token_id":null,"error_code":"UNAUTHORIZED","error_message":"unauthorized","parameters":{}}`},
		{"unknown method with an id keeps both ids null", twilio.ConnectorResponse{Method: "Refund", ID: "x"},
			`{"charge_id":null,"token_id":null,"error_code":null,"error_message":null,"parameters":{}}`},
		{"more parameters than an answer has", twilio.ConnectorResponse{Method: "charge", ID: "pyi_3", Parameters: map[string]string{
			"j": "10", "i": "9", "h": "8", "g": "7", "f": "6", "e": "5", "d": "4", "c": "3", "b": "2", "a": "1"}},
			`{"charge_id":"pyi_3","error_code":null,"error_message":null,"parameters":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10"}}`},
		{"quotes", twilio.ConnectorResponse{Method: "charge", ErrorCode: "E", ErrorMessage: `say "hi"` + "\n"},
			`{"charge_id":null,"error_code":"E","error_message":"say \"hi\"\n","parameters":{}}`},
		{"markup and text beyond ASCII", twilio.ConnectorResponse{Method: "charge", ErrorCode: "E", ErrorMessage: "<b> & é\u2028",
			Parameters: map[string]string{"k<": "v&", "a": "\x01"}},
			`{"charge_id":null,"error_code":"E","error_message":"\u003cb\u003e \u0026 é\u2028","parameters":{"a":"\u0001","k\u003c":"v\u0026"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(c.res)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			// The answer is written with MarshalJSON alone (voice.answerBody),
			// without json.Marshal's compaction: the same bytes.
			if direct, _ := c.res.MarshalJSON(); string(direct) != c.want {
				t.Errorf("MarshalJSON %s\nwant        %s", direct, c.want)
			}
			// Equal responses are equal bytes, every time.
			again, _ := json.Marshal(c.res)
			if string(again) != string(got) {
				t.Errorf("marshal is not deterministic: %s vs %s", got, again)
			}
			// And they read back as written (an unknown method has no id).
			want := c.res
			if want.Method != "charge" && want.Method != "tokenize" {
				want.Method, want.ID = "", ""
			}
			if want.Parameters == nil {
				want.Parameters = map[string]string{}
			}
			var back twilio.ConnectorResponse
			if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, want) {
				t.Errorf("read back as %+v (%v), want %+v", back, err, want)
			}
		})
	}
	// Markup in messages stays valid JSON and reads back.
	res := twilio.ConnectorResponse{Method: "charge", ErrorCode: "MISSING_CONFIG_ID", ErrorMessage: `add <Parameter name="payin_config_id" value="cfg_…"/> & retry`}
	b, _ := json.Marshal(res)
	var back twilio.ConnectorResponse
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, twilio.ConnectorResponse{Method: "charge", ErrorCode: res.ErrorCode, ErrorMessage: res.ErrorMessage, Parameters: map[string]string{}}) {
		t.Errorf("round trip of %s = %+v, %v", b, back, err)
	}
}

func TestConnectorResponseUnmarshal(t *testing.T) {
	for body, want := range map[string]twilio.ConnectorResponse{
		`{"charge_id":"some_id","error_code":null,"error_message":null}`:                        {Method: "charge", ID: "some_id"},
		`{"token_id":"any_token","error_code":null,"error_message":null}`:                       {Method: "tokenize", ID: "any_token"},
		`{"charge_id":null,"error_code":"DECLINED","error_message":"x","parameters":{"a":"b"}}`: {Method: "charge", ErrorCode: "DECLINED", ErrorMessage: "x", Parameters: map[string]string{"a": "b"}},
		`{"error_code":"X"}`: {ErrorCode: "X"},
		`{"token_id":null,"error_code":"FORBIDDEN","error_message":"no"}`:                       {Method: "tokenize", ErrorCode: "FORBIDDEN", ErrorMessage: "no"},
		`{"charge_id":null,"token_id":null,"error_code":"INVALID_REQUEST","error_message":"m"}`: {ErrorCode: "INVALID_REQUEST", ErrorMessage: "m"},
	} {
		t.Run(body, func(t *testing.T) {
			var got twilio.ConnectorResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %+v, want %+v", body, got, want)
			}
		})
	}
	for _, body := range []string{`{"charge_id":7}`, `{"token_id":{}}`, `[]`, `{"parameters":{"a":1}}`} {
		t.Run(body, func(t *testing.T) {
			var got twilio.ConnectorResponse
			if err := json.Unmarshal([]byte(body), &got); err == nil {
				t.Errorf("%s: read as %+v, want an error", body, got)
			}
		})
	}
}

func FuzzParseConnectorRequest(f *testing.F) {
	for _, seed := range []string{
		gpcCharge, gpcACHCharge, gpcTokenize, gpcACHTokenize, privateBetaTokenize,
		`{"method":"charge","transaction_id":"t","amount":10,"parameters":{"payin_config_id":"sbx_cfg_1"}}`,
		`{"method":"CHARGE","transaction_id":" t ","description":{"a":1},"parameters":null}`,
		`{"method":"tokenize","transaction_id":"t","amount":"0","parameters":{"payment_method_id":null}}`,
		`{"method":"refund","transaction_id":"t"}`,
		`{"method":"charge","transaction_id":"t"}}`,
		`{"method":"charge","transaction_id":"t","cardnumber":{}}`,
		`{"method":"charge","transaction_id":"t","parameters":{"k":[]}}`,
		`{"method":"charge","transaction_id":"` + strings.Repeat("x", 256) + `"}`,
		`{"method":"\u0074okenize","transaction_id":"\u00e9"}`,
		`{"method":"charge","method":"tokenize","transaction_id":"t"}`,
		`{"method":"charge","transaction_id":-0.5e-3,"cvv":true}`,
		`null`, `[]`, `""`, `{}`, ``, `{`, `{"method":`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := twilio.ParseConnectorRequest(body)
		if r == nil {
			t.Fatal("nil request")
		}
		if err != nil {
			if !errors.Is(err, twilio.ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
		} else {
			if r.Method != twilio.MethodCharge && r.Method != twilio.MethodTokenize {
				t.Fatalf("accepted method %q", r.Method)
			}
			if r.TransactionID == "" || len(r.TransactionID) > 255 || strings.TrimSpace(r.TransactionID) != r.TransactionID {
				t.Fatalf("accepted transaction_id %q", r.TransactionID)
			}
			if r.Parameters == nil {
				t.Fatal("nil parameters on success")
			}
			if !json.Valid(body) {
				t.Fatalf("accepted a body that is not JSON: %q", body)
			}
		}
		// Whatever was parsed, the answer is valid JSON with the right id keys.
		res := twilio.ConnectorResponse{Method: r.Method, ErrorCode: "INVALID_REQUEST", ErrorMessage: "x", Parameters: r.Parameters}
		out, merr := json.Marshal(res)
		if merr != nil || !json.Valid(out) {
			t.Fatalf("response %q: %v", out, merr)
		}
		var keys map[string]json.RawMessage
		json.Unmarshal(out, &keys)
		_, charge := keys["charge_id"]
		_, token := keys["token_id"]
		switch {
		case r.Method == twilio.MethodCharge && (!charge || token),
			r.Method == twilio.MethodTokenize && (charge || !token),
			r.Method != twilio.MethodCharge && r.Method != twilio.MethodTokenize && (!charge || !token):
			t.Fatalf("method %q answered with keys %v", r.Method, keys)
		}
	})
}

// BenchmarkParseConnectorRequest parses Twilio's documented charge body,
// which every IVR charge goes through (allocations are garbage the server's
// collector pays for under load).
func BenchmarkParseConnectorRequest(b *testing.B) {
	body := []byte(gpcCharge)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := twilio.ParseConnectorRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnectorResponseMarshal writes an approved charge's answer, as
// every connector charge does:
//
//	go test ./twilio -run '^$' -bench ConnectorResponseMarshal -benchmem
func BenchmarkConnectorResponseMarshal(b *testing.B) {
	res := twilio.ConnectorResponse{Method: "charge", ID: "sbx_pyi_3MvqXkjRynkN5661vpwCm1M2gtj", Parameters: map[string]string{
		"payin_id": "sbx_pyi_3MvqXkjRynkN5661vpwCm1M2gtj", "payin_status": "PROCESSING", "payment_method_id": "sbx_mtd_3MvqXkjRynkN5661vpwCm1M2gtk",
		"card_brand": "VISA", "card_last_4": "1111"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := res.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
