package voice_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

// connectorStub answers with answer(n, w) for the n-th request (from 1) and
// records the bodies it got.
type connectorStub struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newConnectorStub(t *testing.T, answer func(n int, w http.ResponseWriter)) *connectorStub {
	t.Helper()
	s := &connectorStub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		_ = dec.Decode(&body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		n := len(s.bodies)
		s.mu.Unlock()
		answer(n, w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *connectorStub) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

func simulate(t *testing.T, platform voice.Platform, endpoint string, o twilio.PayOptions, timeout time.Duration) *twilio.Simulation {
	t.Helper()
	doc, _, err := platform.Document(o, platform.Formats()[0])
	if err != nil {
		t.Fatal(err)
	}
	pay, err := platform.ParsePay(doc)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := twilio.Simulate(t.Context(), twilio.SimulateOptions{Platform: platform.Simulator(), Endpoint: endpoint, APIKey: "sbx_apikey_x",
		Pay: pay, Caller: twilio.CallerInput{CardNumber: "4111111111111111", Expiry: "12/39", CVV: "123", PostalCode: "94111"}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// TestSimulateSignalWire: SignalWire's body as its cXML docs show it, one
// attempt, any 2xx a success and anything else payment-connector-error,
// and no PayConnector_* fields.
func TestSimulateSignalWire(t *testing.T) {
	t.Parallel()
	answers := map[string]func(w http.ResponseWriter){
		"success": func(w http.ResponseWriter) {
			io.WriteString(w, `{"charge_id":"sbx_pyi_1","error_code":null,"error_message":null,"parameters":{"payin_id":"sbx_pyi_1"}}`)
		},
		"decline": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusPaymentRequired)
			io.WriteString(w, `{"charge_id":null,"error_code":"DECLINED","error_message":"Card declined","parameters":{}}`)
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			stub := newConnectorStub(t, func(_ int, w http.ResponseWriter) { answer(w) })
			o := twilio.PayOptions{Connector: swURL, AmountCents: 12345, PayinConfigID: payinConfig}
			sim := simulate(t, voice.SignalWire, stub.URL+"/vendor/signalwire/pay", o, 0)
			bodies := stub.got()
			if len(bodies) != 1 {
				t.Fatalf("%d attempts, want 1", len(bodies))
			}
			b := bodies[0]
			if b["method"] != "credit-card" || b["chargeAmount"] != json.Number("123.45") || b["amount"] != nil || b["expiry_year"] != "39" {
				t.Fatalf("body %v", b)
			}
			cb := sim.Callback
			if name == "success" {
				if cb.Get("Result") != "success" || cb.Get("PaymentConfirmationCode") != "sbx_pyi_1" || cb.Get("PayConnector_payin_id") != "" {
					t.Fatalf("callback %s", mustMarshal(cb))
				}
				return
			}
			if cb.Get("Result") != "payment-connector-error" || cb.Get("ConnectorError") != "DECLINED" || !strings.Contains(cb.Get("PaymentError"), "HTTP 402") {
				t.Fatalf("callback %s", mustMarshal(cb))
			}
		})
	}
	t.Run("tokenize", func(t *testing.T) {
		stub := newConnectorStub(t, func(_ int, w http.ResponseWriter) {
			io.WriteString(w, `{"token_id":"sbx_mtd_1","error_code":null,"error_message":null}`)
		})
		sim := simulate(t, voice.SignalWire, stub.URL+"/vendor/signalwire/pay", twilio.PayOptions{Connector: swURL, PaymentMethodConfigID: pmConfig}, 0)
		b := stub.got()[0]
		if _, hasMethod := b["method"]; hasMethod || b["amount"] != json.Number("0") || b["token_type"] != "reusable" || b["chargeAmount"] != nil {
			t.Fatalf("tokenize body %v", b)
		}
		if sim.Callback.Get("PaymentToken") != "sbx_mtd_1" {
			t.Fatalf("callback %s", mustMarshal(sim.Callback))
		}
	})
}

// TestSimulateTelnyx: Twilio's body, up to max_attempts 3 with the same
// transaction_id, error_code as payment-connector-error and an answer
// without the id as internal-error.
func TestSimulateTelnyx(t *testing.T) {
	t.Parallel()
	o := twilio.PayOptions{Connector: "ivrpay", AmountCents: 1000, PayinConfigID: payinConfig}
	t.Run("retries", func(t *testing.T) {
		release := make(chan struct{})
		stub := newConnectorStub(t, func(_ int, w http.ResponseWriter) { <-release })
		t.Cleanup(func() { close(release) }) // before the stub closes, which waits for its handlers
		sim := simulate(t, voice.Telnyx, stub.URL, o, 50*time.Millisecond)
		if len(sim.Attempts) != voice.TelnyxMaxAttempts || sim.Result() != "payment-connector-error" {
			t.Fatalf("%d attempts, result %s; want %d and payment-connector-error", len(sim.Attempts), sim.Result(), voice.TelnyxMaxAttempts)
		}
		for _, a := range sim.Attempts {
			if a.TransactionID != sim.TransactionID {
				t.Fatalf("attempt with transaction_id %s, want %s", a.TransactionID, sim.TransactionID)
			}
		}
	})
	for _, c := range []struct {
		name, answer, result, connectorError string
	}{
		{"success", `{"charge_id":"sbx_pyi_1","error_code":null,"error_message":null,"parameters":{}}`, "success", ""},
		{"error_code", `{"charge_id":null,"error_code":"DECLINED","error_message":"Card declined","parameters":{}}`, "payment-connector-error", "DECLINED"},
		{"no id", `{"charge_id":null,"error_code":null,"error_message":null}`, "internal-error", ""},
		{"malformed", `ok`, "internal-error", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			stub := newConnectorStub(t, func(_ int, w http.ResponseWriter) { io.WriteString(w, c.answer) })
			sim := simulate(t, voice.Telnyx, stub.URL, o, 0)
			b := stub.got()[0]
			if b["method"] != "charge" || b["amount"] != "10.00" || len(stub.got()) != 1 {
				t.Fatalf("%d requests, body %v", len(stub.got()), b)
			}
			if sim.Result() != c.result || sim.Callback.Get("ConnectorError") != c.connectorError {
				t.Fatalf("callback %s, want result %s", mustMarshal(sim.Callback), c.result)
			}
		})
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
