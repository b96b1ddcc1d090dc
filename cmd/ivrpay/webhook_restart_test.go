package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/httpapi"
)

// TestWebhooksSurviveSIGKILL runs the built binary: events are produced while
// the receiver answers 503, the server is killed with SIGKILL, the receiver
// comes back, and a new server on the same database (the same SQLite file, or
// the same PostgreSQL schema) delivers every event
// (settling what was still PROCESSING on the way), repeats keeping their
// webhook-id and body. A final SIGTERM must stop the server and its workers
// cleanly.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	binaryTestOnEachEngine(t, "builds and runs the binary", webhooksSurviveSIGKILL)
}

func webhooksSurviveSIGKILL(t *testing.T, inst installation) {
	rcv := whNewReceiver(t)
	rcv.down.Store(true)

	srv := whStart(t, inst)
	admin, ivrKey, merchant := srv.sandboxKeys(t)
	ep := srv.api(t, "POST", "/v1/webhook_endpoints", admin, map[string]any{"url": rcv.URL + "/hooks"})
	rcv.setSecret(ep["secret"].(string))
	endpointID := ep["webhook_endpoint_id"].(string)
	cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": "order-1",
		"amount": 1000, "currency_code": "USD"})
	payinID := srv.chargeIVR(t, ivrKey, cfg["payin_config_id"].(string))
	srv.waitFor(t, "the payin to settle", func() bool {
		return srv.api(t, "GET", "/v1/payins/"+payinID, admin, nil)["status"] == "SUCCEEDED"
	})
	refund := srv.api(t, "POST", "/v1/payins/"+payinID+"/void_or_refund", admin, map[string]any{"idempotency_key": "refund-1",
		"reason": "REQUESTED_BY_CUSTOMER", "amount": 250})
	refundID := refund["refund_id"].(string)
	// payin.processing, payment_method.active, payin.succeeded, refund.processing.
	srv.waitFor(t, "a failed attempt of each of the four deliveries", func() bool {
		ds := srv.deliveries(t, admin, endpointID)
		for _, d := range ds {
			if d["attempt_count"].(float64) < 1 {
				return false
			}
		}
		return len(ds) >= 4
	})
	srv.kill()
	if got := rcv.ids(); len(got) != 0 {
		t.Fatalf("the receiver was down but accepted %v", got)
	}

	rcv.down.Store(false)
	srv = whStart(t, inst)
	var ds []map[string]any
	srv.waitFor(t, "every delivery DELIVERED after the restart (refund.succeeded included)", func() bool {
		ds = srv.deliveries(t, admin, endpointID)
		for _, d := range ds {
			if d["status"] != "DELIVERED" {
				return false
			}
		}
		return len(ds) == 5
	})
	if r := srv.api(t, "GET", "/v1/refunds/"+refundID, admin, nil); r["status"] != "SUCCEEDED" {
		t.Fatalf("refund after the restart = %v", r)
	}
	got := rcv.ids()
	for _, d := range ds {
		id := d["event_id"].(string)
		bodies := got[id]
		if len(bodies) == 0 {
			t.Errorf("event %s (%s) was never received", id, d["event_type"])
		}
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("event %s was received with different bodies", id)
			}
		}
	}
	if len(got) != 5 {
		t.Errorf("the receiver got %d distinct webhook-ids, want 5", len(got))
	}
	if bad := rcv.refused(); len(bad) > 0 {
		t.Fatalf("the receiver refused deliveries: %v", bad)
	}
	srv.stop(t)
}

// whServer is one `ivrpay serve` process of the webhook restart test.
type whServer struct{ *serveProcess }

// whStart starts a server of inst that settles payins after 1 s (extra
// flags may change that) and retries webhooks every second.
func whStart(t *testing.T, inst installation, extra ...string) *whServer {
	t.Helper()
	// Retries every second, so the test does not wait for the real 5-minute step.
	env := []string{webhookScheduleEnv + "=0s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"}
	return &whServer{inst.serve(t, env, append([]string{"--sandbox-settle-after", "1s"}, extra...)...)}
}

func (s *whServer) api(t *testing.T, method, path, key string, body any) map[string]any {
	t.Helper()
	var data map[string]any
	if err := (&httpapi.Client{BaseURL: s.baseURL, APIKey: key}).Do(context.Background(), method, path, body, &data); err != nil {
		t.Fatal(err)
	}
	return data
}

func (s *whServer) deliveries(t *testing.T, key, endpointID string) []map[string]any {
	t.Helper()
	l := s.api(t, "GET", "/v1/webhook_endpoints/"+endpointID+"/deliveries", key, nil)
	var out []map[string]any
	for _, r := range l["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func (s *whServer) chargeIVR(t *testing.T, ivrKey, cfgID string) string {
	t.Helper()
	out := s.connector(t, ivrKey, chargeBody(cfgID, fmt.Sprintf("CA%d", time.Now().UnixNano()), "10.00"))
	if out.ChargeID == nil {
		t.Fatalf("IVR charge failed: %+v", out)
	}
	return *out.ChargeID
}

// connectorAnswer is the part of a connector answer the restart tests read.
type connectorAnswer struct {
	ChargeID   *string           `json:"charge_id"`
	ErrorCode  *string           `json:"error_code"`
	Parameters map[string]string `json:"parameters"`
}

// chargeBody is a connector charge as Twilio sends it.
func chargeBody(cfgID, txID, amount string) []byte {
	body, _ := json.Marshal(map[string]any{"method": "charge", "transaction_id": txID,
		"cardnumber": "4111111111111111", "cvv": "123", "expiry_month": "08", "expiry_year": "39", "postal_code": "94111",
		"amount": amount, "currency_code": "USD", "parameters": map[string]string{"payin_config_id": cfgID}})
	return body
}

// ivrKeyRequest is the body of POST /v1/api_keys that makes an IVR key: one
// that may create payins on the platform.
func ivrKeyRequest(platformID string) map[string]any {
	return map[string]any{"statements": []any{map[string]any{
		"permissions": []string{"payin:create"}, "constraints": map[string]any{"platform": map[string]any{"platform_id": platformID}}}}}
}

// connector posts a connector request with ivrKey and decodes the answer.
func (s *whServer) connector(t *testing.T, ivrKey string, body []byte) connectorAnswer {
	t.Helper()
	return postConnector(t, s.baseURL, ivrKey, body)
}

// postConnector posts a connector request to the server at baseURL with
// ivrKey and decodes the answer, which must be a 200.
func postConnector(t *testing.T, baseURL, ivrKey string, body []byte) connectorAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", baseURL+httpapi.ConnectorPath, bytes.NewReader(body))
	req.SetBasicAuth("api_key", ivrKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out connectorAnswer
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("connector: HTTP %d %v", res.StatusCode, err)
	}
	return out
}

func (s *whServer) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: a kill in the middle of an attempt leaves its lease (20 s) behind.
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// whReceiver answers 503 while down; otherwise it verifies the Standard
// Webhooks signature on its own and records bodies by webhook-id.
type whReceiver struct {
	*httptest.Server
	down   atomic.Bool
	mu     sync.Mutex
	secret string
	bodies map[string][]string
	bad    []string
}

func whNewReceiver(t *testing.T) *whReceiver {
	r := &whReceiver{bodies: map[string][]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		if req.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			r.bad = append(r.bad, "bad signature for "+id)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.bodies[id] = append(r.bodies[id], string(body))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *whReceiver) setSecret(s string) { r.mu.Lock(); r.secret = s; r.mu.Unlock() }

func (r *whReceiver) ids() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.bodies {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func (r *whReceiver) refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}
