package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// panickingConnector stands in for a connector service with a bug.
type panickingConnector struct{}

func (panickingConnector) ProcessIVR(context.Context, ivrpay.IVRRequest) (ivrpay.IVRResult, error) {
	panic("bug")
}

// TestConnectorPanicKeepsTwilioShape checks that even a crashing handler
// answers each voice platform in its own shape (SignalWire with a non-2xx
// status, since it reads a 200 as a success), and reveals nothing of the panic.
func TestConnectorPanicKeepsTwilioShape(t *testing.T) {
	t.Parallel()
	store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	_, key, err := store.CreatePlatform(context.Background(), "Panics", true)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httpapi.Server{Logger: slog.New(slog.DiscardHandler), Services: httpapi.Services{Auth: store, Connector: panickingConnector{}, Health: store.Ping}}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, c := range []struct {
		path   string
		status int
	}{{httpapi.ConnectorPath, 200}, {httpapi.TelnyxConnectorPath, 200}, {httpapi.SignalWireConnectorPath, 500}} {
		t.Run(c.path, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.URL+c.path, strings.NewReader(`{"method":"charge","transaction_id":"t1","parameters":{"payin_config_id":"sbx_cfg_x"}}`))
			if c.path == httpapi.SignalWireConnectorPath {
				req, _ = http.NewRequest("POST", ts.URL+c.path, strings.NewReader(`{"method":"credit-card","chargeAmount":10,"transaction_id":"t1","parameters":{"payin_config_id":"sbx_cfg_x"}}`))
			}
			req.SetBasicAuth("api_key", key.Secret)
			resp, body := do(t, req)
			var shape map[string]any
			if err := json.Unmarshal([]byte(body), &shape); err != nil {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if id, ok := shape["charge_id"]; resp.StatusCode != c.status || !ok || id != nil || shape["error_code"] != ivrpay.ConnInternal || strings.Contains(body, "bug") {
				t.Fatalf("panic answer: %d %s, want %d", resp.StatusCode, body, c.status)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			// Twilio and Telnyx do not retry an answered request: the
			// message says how to learn the outcome, not that a retry comes.
			if msg, _ := shape["error_message"].(string); c.path != httpapi.SignalWireConnectorPath && !strings.Contains(msg, "same transaction_id returns it") {
				t.Fatalf("error_message %q, want how to learn the outcome", msg)
			}
		})
	}
}
