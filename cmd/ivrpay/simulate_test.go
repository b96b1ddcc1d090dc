package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const cliPAN = "4111111111111111"

// connectorStub answers like ivrpay's connector and records the bodies it got.
type connectorStub struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  []map[string]any
	actions []url.Values // forms posted to /action
}

// newConnectorStub answers approve, or a decline for the amount "51.01"; the
// first request sleeps for slowFirst when it is set.
func newConnectorStub(t *testing.T, slowFirst time.Duration) *connectorStub {
	t.Helper()
	c := &connectorStub{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/action" {
			_ = r.ParseForm()
			c.mu.Lock()
			c.actions = append(c.actions, r.PostForm)
			c.mu.Unlock()
			return
		}
		if user, pass, ok := r.BasicAuth(); !ok || user != "api_key" || pass != "ivr_key" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"charge_id":null,"token_id":null,"error_code":"UNAUTHORIZED","error_message":"bad credentials","parameters":{}}`)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		c.mu.Lock()
		c.bodies = append(c.bodies, body)
		n := len(c.bodies)
		c.mu.Unlock()
		if n == 1 && slowFirst > 0 {
			select {
			case <-time.After(slowFirst):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case body["method"] == "tokenize":
			_, _ = io.WriteString(w, `{"token_id":"sbx_mtd_1","error_code":null,"error_message":null,"parameters":{"payment_method_id":"sbx_mtd_1"}}`)
		case body["amount"] == "51.01":
			_, _ = io.WriteString(w, `{"charge_id":null,"error_code":"DECLINED","error_message":"The card was declined","parameters":{"payin_id":"sbx_pyi_2","payin_status":"FAILED"}}`)
		default:
			_, _ = io.WriteString(w, `{"charge_id":"sbx_pyi_1","error_code":null,"error_message":null,"parameters":{"payin_id":"sbx_pyi_1"}}`)
		}
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *connectorStub) requests() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.bodies...)
}

func TestSimulateCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	twimlFile := filepath.Join(dir, "pay.xml")
	if err := os.WriteFile(twimlFile, []byte(twilioGolden(t, "payin.twiml.golden")), 0o644); err != nil {
		t.Fatal(err)
	}
	caller := []string{"--card", "4111 1111 1111 1111", "--exp", "12/99", "--cvv", "123", "--postal-code", "94111"}
	tests := []struct {
		name       string
		slowFirst  time.Duration
		args       []string
		code       int
		stdout     string // the exact callback JSON, when set
		stderr     string // substring
		wantParams string // the parameters the connector got, when set
	}{
		{
			name: "charge from a TwiML file", args: []string{"--twiml", twimlFile},
			stdout: `{
  "Result": "success",
  "PaymentConfirmationCode": "sbx_pyi_1",
  "PaymentCardNumber": "xxxxxxxxxxxx1111",
  "PaymentCardType": "visa",
  "ExpirationDate": "1299",
  "PaymentCardPostalCode": "94111",
  "PaymentMethod": "credit-card",
  "PayConnector_payin_id": "sbx_pyi_1"
}
`,
			stderr: "attempt 1 of charge", wantParams: `{"payin_config_id":"sbx_cfg_2abcDEF345ghiJKL678mnoPQR90"}`,
		},
		{
			name: "decline from the twiml flags", args: []string{"--amount", "51.01", "--payin-config-id", "cfg_9"}, code: 1,
			stderr: "HTTP 200", wantParams: `{"payin_config_id":"cfg_9"}`,
		},
		{
			name: "tokenize from the twiml flags", args: []string{"--payment-method-config-id", "pmc_9", "--connector", "c"},
			stderr: "attempt 1 of tokenize", wantParams: `{"payment_method_config_id":"pmc_9"}`,
		},
		{
			name: "retry after a slow answer", slowFirst: 2 * time.Second, args: []string{"--twiml", twimlFile, "--timeout", "200ms"},
			stderr: "attempt 2 of charge",
		},
		{name: "wrong key", args: []string{"--twiml", twimlFile, "--api-key", "other"}, code: 1, stderr: "HTTP 401"},
		{name: "caller-side failure", args: []string{"--twiml", twimlFile, "--exp", "01/20"}, code: 1, stderr: "invalid-date"},
		{name: "no endpoint", args: []string{"--twiml", twimlFile, "--endpoint", ""}, code: 2, stderr: "--endpoint"},
		{name: "no card", args: []string{"--twiml", twimlFile, "--card", ""}, code: 2, stderr: "--card"},
		{name: "no pay", args: nil, code: 2, stderr: "--twiml"},
		{name: "both --twiml and flags", args: []string{"--twiml", twimlFile, "--amount", "1.00"}, code: 2, stderr: "not both"},
		{name: "missing TwiML file", args: []string{"--twiml", filepath.Join(dir, "nope.xml")}, code: 2, stderr: "nope.xml"},
		{name: "bad timeout", args: []string{"--twiml", twimlFile, "--timeout", "soon"}, code: 2},
		{name: "negative retries", args: []string{"--twiml", twimlFile, "--retries", "-1"}, code: 2, stderr: "--retries"},
		{name: "unknown provider", args: []string{"--twiml", twimlFile, "--provider", "vonage"}, code: 2, stderr: "--provider must be twilio, telnyx or signalwire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stub := newConnectorStub(t, tt.slowFirst)
			// Later flags win, so a test's args can override these.
			args := append([]string{"--endpoint", stub.URL + "/vendor/twilio/pay_generic", "--api-key", "ivr_key",
				"--action", stub.URL + "/action"}, caller...)
			code, stdout, stderr := runCLI(runSimulate, append(args, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if tt.stdout != "" && stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			if strings.Contains(stdout+stderr, cliPAN) || strings.Contains(stdout+stderr, "4111 1111 1111 1111") {
				t.Errorf("the card number was printed:\n%s\n%s", stdout, stderr)
			}
			if code != 2 && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not JSON: %s", stdout)
			}
			reqs := stub.requests()
			if tt.wantParams != "" {
				if len(reqs) != 1 {
					t.Fatalf("%d requests", len(reqs))
				}
				if got, _ := json.Marshal(reqs[0]["parameters"]); string(got) != tt.wantParams {
					t.Errorf("parameters %s, want %s", got, tt.wantParams)
				}
				if reqs[0]["cardnumber"] != cliPAN {
					t.Errorf("cardnumber %v: spaces must be dropped", reqs[0]["cardnumber"])
				}
			}
			stub.mu.Lock()
			actions := stub.actions
			stub.mu.Unlock()
			if code != 2 && (len(actions) != 1 || actions[0].Get("PaymentCardNumber") != "xxxxxxxxxxxx1111") {
				t.Errorf("action URL got %v, want the callback fields once", actions)
			}
			if tt.slowFirst > 0 && (len(reqs) != 2 || reqs[0]["transaction_id"] != reqs[1]["transaction_id"]) {
				t.Errorf("want 2 requests with one transaction_id, got %v", reqs)
			}
		})
	}
}

// strictGateway is a connector like the community gateways that read every
// key of Twilio's documented body and answer 500 when one is missing: it
// succeeds only when each key of the method's body is present (null allowed).
func strictGateway(t *testing.T) *httptest.Server {
	t.Helper()
	keys := map[string][]string{
		"charge": {"method", "transaction_id", "cardnumber", "cvv", "amount", "currency_code", "expiry_month", "expiry_year",
			"description", "postal_code", "parameters"},
		"tokenize": {"method", "transaction_id", "cardnumber", "cvv", "expiry_month", "expiry_year", "description", "postal_code", "parameters"},
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "not JSON", http.StatusInternalServerError)
			return
		}
		var method string
		_ = json.Unmarshal(body["method"], &method)
		want, known := keys[method]
		if !known {
			http.Error(w, "unknown method", http.StatusInternalServerError)
			return
		}
		for _, k := range want {
			if _, ok := body[k]; !ok {
				http.Error(w, "TypeError: Cannot read properties of undefined (reading '"+k+"')", http.StatusInternalServerError)
				return
			}
		}
		if method == "charge" {
			_, _ = io.WriteString(w, `{"charge_id":"ch_strict_1","error_code":null,"error_message":null}`)
		} else {
			_, _ = io.WriteString(w, `{"token_id":"tok_strict_1","error_code":null,"error_message":null}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestSimulateStrictGateway: `ivrpay simulate` without optional flags (no
// --description, no --content-type) sends every key Twilio sends, so a
// gateway that needs them all answers success, for a charge and a tokenize,
// as Twilio and as Telnyx (whose body is Twilio's).
func TestSimulateStrictGateway(t *testing.T) {
	t.Parallel()
	caller := []string{"--card", "4111111111111111", "--exp", "12/99", "--cvv", "123", "--postal-code", "94111"}
	for _, tc := range []struct {
		name, provider, confirmation string
		pay                          []string
	}{
		{"twilio charge", "twilio", `"PaymentConfirmationCode": "ch_strict_1"`, []string{"--amount", "10.00", "--payin-config-id", "cfg_1"}},
		{"twilio tokenize", "twilio", `"PaymentToken": "tok_strict_1"`, []string{"--payment-method-config-id", "pmc_1"}},
		{"telnyx charge", "telnyx", `"PaymentConfirmationCode": "ch_strict_1"`, []string{"--amount", "10.00", "--payin-config-id", "cfg_1", "--connector", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := strictGateway(t)
			args := append([]string{"--provider", tc.provider, "--endpoint", g.URL + "/pay", "--api-key", "k"}, caller...)
			code, stdout, stderr := runCLI(runSimulate, append(args, tc.pay...)...)
			if code != 0 || !strings.Contains(stdout, `"Result": "success"`) || !strings.Contains(stdout, tc.confirmation) {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}
