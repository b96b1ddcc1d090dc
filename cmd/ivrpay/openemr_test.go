package main

// TestOpenEMRRainforestSequence replays, against a real `ivrpay serve`, what
// OpenEMR's Rainforest integration sends (openemr/openemr,
// src/PaymentProcessing/Rainforest/Api.php getPaymentComponentParameters and
// Rainforest/Webhooks/Verifier.php): its Guzzle client's headers, a session
// for the payment component, a payin config with its nested metadata, then
// the charge the component makes with the session key (here through the
// Twilio connector, the session key as its password), and the webhook checked
// by a Svix-style verifier. This is the issue 14 regression test: before it,
// OpenEMR's first call got 404 and its verifier refused every delivery.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/webhook/webhooktest"
)

// openEMRClient sends requests as OpenEMR's Guzzle client is configured:
// Rainforest-Api-Version, accept and content-type on every request, and the
// platform API key as a Bearer token.
type openEMRClient struct {
	t       *testing.T
	baseURL string
	apiKey  string
}

func (c openEMRClient) post(path string, payload any) map[string]any {
	c.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Rainforest-Api-Version", "2024-10-16")
	req.Header.Set("accept", "application/json")
	req.Header.Set("content-type", "application/json")
	req.Header.Set("Authorization", fmt.Sprintf("Bearer %s", c.apiKey))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	// Guzzle throws on a 4xx or 5xx; OpenEMR then never reaches its next call.
	if resp.StatusCode >= 400 {
		c.t.Fatalf("POST %s: HTTP %d: %s", path, resp.StatusCode, raw)
	}
	var parsed map[string]any
	if err := json.Unmarshal(raw, &parsed); err != nil {
		c.t.Fatalf("POST %s: the body is not JSON (json_decode would throw): %s", path, raw)
	}
	return parsed
}

// uuid4 is what Ramsey\Uuid::uuid4() gives OpenEMR for idempotency keys.
func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// openEMRWebhook is what OpenEMR's verifier hands its dispatcher: the svix-id
// and the parsed body.
type openEMRWebhook struct {
	ID   string
	Body struct {
		EventType string         `json:"event_type"`
		Data      map[string]any `json:"data"`
	}
}

func TestOpenEMRRainforestSequence(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	admin, merchantID := srv.bootstrap(t, "admin api_key"), srv.bootstrap(t, "merchant_id")

	// OpenEMR's webhook endpoint: verified the way its Verifier does (svix-*
	// headers only, five minutes of tolerance), then parsed.
	var mu sync.Mutex
	var received []openEMRWebhook
	var refused []string
	secret := make(chan string, 1)
	var signingSecret string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if signingSecret == "" {
			signingSecret = <-secret
		}
		if err := webhooktest.VerifySvix(signingSecret, r.Header, body, time.Now()); err != nil {
			refused = append(refused, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var hook openEMRWebhook
		hook.ID = r.Header.Get("svix-id")
		if err := json.Unmarshal(body, &hook.Body); err != nil {
			refused = append(refused, "body: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		received = append(received, hook)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)

	platform := openEMRClient{t: t, baseURL: srv.baseURL, apiKey: admin}
	// The platform registers the endpoint once (on Rainforest, in its portal).
	hook := platform.post("/v1/webhook_endpoints", map[string]any{"url": receiver.URL + "/interface/payment/rainforest/webhook.php"})
	secret <- hook["data"].(map[string]any)["secret"].(string)

	// 1. The session for the payment component, exactly as OpenEMR sends it.
	sessionPayload := map[string]any{
		"ttl": 3600,
		"statements": []any{map[string]any{
			"permissions": []string{"group#payment_component"},
			"constraints": map[string]any{"merchant": map[string]any{"merchant_id": merchantID}},
		}},
	}
	sessionResponse := platform.post("/v1/sessions", sessionPayload)
	sessionKey, _ := sessionResponse["data"].(map[string]any)["session_key"].(string)
	if !strings.HasPrefix(sessionKey, "sbx_session_") {
		t.Fatalf("data.session_key = %q: %v", sessionKey, sessionResponse)
	}

	// 2. The payin config, with OpenEMR's metadata: a patient, encounters
	// whose amounts are moneyphp's JSON (a string amount and a currency), and
	// a format version.
	metadata := map[string]any{
		"patientId": "12346",
		"encounters": []any{
			map[string]any{"id": "5", "code": "99213", "codeType": "CPT4", "amount": map[string]any{"amount": "1000", "currency": "USD"}},
			map[string]any{"id": "6", "code": "J1100", "codeType": "HCPCS", "amount": map[string]any{"amount": "250", "currency": "USD"}},
		},
		"formatVersion": 1,
	}
	payinResponse := platform.post("/v1/payin_configs", map[string]any{
		"merchant_id":     merchantID,
		"idempotency_key": uuid4(),
		"amount":          1250,
		"currency_code":   "USD",
		"metadata":        metadata,
	})
	payinConfigID, _ := payinResponse["data"].(map[string]any)["payin_config_id"].(string)
	if !strings.HasPrefix(payinConfigID, "sbx_cfg_") {
		t.Fatalf("data.payin_config_id = %q: %v", payinConfigID, payinResponse)
	}

	// 3. The component, holding payin_config_id and session_key, reads the
	// config and charges it; the session key is the only credential it has.
	component := openEMRClient{t: t, baseURL: srv.baseURL, apiKey: sessionKey}
	req, _ := http.NewRequest("GET", srv.baseURL+"/v1/payin_configs/"+payinConfigID, nil)
	req.Header.Set("Authorization", "Bearer "+sessionKey)
	req.Header.Set("Rainforest-Api-Version", "2024-10-16")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the session cannot read its payin config: %v %v", resp, err)
	}
	charge, _ := json.Marshal(map[string]any{
		"method": "charge", "transaction_id": uuid4(), "cardnumber": "4111111111111111", "cvv": "123",
		"amount": "12.50", "currency_code": "USD", "expiry_month": "08", "expiry_year": fmt.Sprintf("%02d", (time.Now().Year()+3)%100),
		"postal_code": "94111", "parameters": map[string]any{"payin_config_id": payinConfigID},
	})
	creq, _ := http.NewRequest("POST", srv.baseURL+"/vendor/twilio/pay_generic", bytes.NewReader(charge))
	creq.SetBasicAuth("api_key", component.apiKey)
	cresp, err := http.DefaultClient.Do(creq)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ChargeID  *string `json:"charge_id"`
		ErrorCode *string `json:"error_code"`
	}
	json.NewDecoder(cresp.Body).Decode(&answer)
	cresp.Body.Close()
	if answer.ChargeID == nil || answer.ErrorCode != nil {
		t.Fatalf("the charge with the session key failed: HTTP %d %+v", cresp.StatusCode, answer)
	}
	payinID := *answer.ChargeID

	// The session cannot make what OpenEMR makes with its platform key.
	body, _ := json.Marshal(map[string]any{"merchant_id": merchantID, "idempotency_key": uuid4(), "amount": 100, "currency_code": "USD"})
	preq, _ := http.NewRequest("POST", srv.baseURL+"/v1/payin_configs", bytes.NewReader(body))
	preq.Header.Set("Authorization", "Bearer "+sessionKey)
	preq.Header.Set("content-type", "application/json")
	if resp, err := http.DefaultClient.Do(preq); err != nil || resp.StatusCode != 403 {
		t.Fatalf("the payment component session created a payin config: %v %v", resp, err)
	}

	// 4. The webhook: verified with the svix-* headers, and carrying what
	// OpenEMR's RecordPayment reads back (payin_id, amount, currency_code,
	// merchant_id, and the metadata it wrote, nested as it was).
	var got openEMRWebhook
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		for _, h := range received {
			if h.Body.Data["payin_id"] == payinID {
				got = h
			}
		}
		bad := append([]string(nil), refused...)
		mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("OpenEMR's verifier refused deliveries: %v", bad)
		}
		if got.ID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook for payin %s within 30s:\n%s", payinID, srv.logTail())
		}
	}
	if !strings.HasPrefix(got.Body.EventType, "payin.") || !strings.HasPrefix(got.ID, "sbx_evt_") {
		t.Errorf("webhook %s event_type %q", got.ID, got.Body.EventType)
	}
	d := got.Body.Data
	if d["amount"] != float64(1250) || d["currency_code"] != "USD" || d["merchant_id"] != merchantID {
		t.Errorf("webhook data amount %v currency %v merchant %v", d["amount"], d["currency_code"], d["merchant_id"])
	}
	gotMeta, _ := json.Marshal(d["metadata"])
	wantMeta, _ := json.Marshal(metadata)
	if string(gotMeta) != string(wantMeta) {
		t.Errorf("metadata came back as\n%s\nwant\n%s", gotMeta, wantMeta)
	}
}

// TestOpenEMRSessionsReachOnlyTheirOwnBill is issue 23's high finding against
// a real `ivrpay serve`: two patients' payment components, each with a
// session made as OpenEMR makes it. Bob's session saw every payin and card
// of the merchant and charged Alice's stored card for Bob's bill; now it
// finds only what it made, and Alice's card is not found.
func TestOpenEMRSessionsReachOnlyTheirOwnBill(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	admin, merchantID := srv.bootstrap(t, "admin api_key"), srv.bootstrap(t, "merchant_id")
	platform := openEMRClient{t: t, baseURL: srv.baseURL, apiKey: admin}
	session := func() string {
		return platform.post("/v1/sessions", map[string]any{"ttl": 3600, "statements": []any{map[string]any{
			"permissions": []string{"group#payment_component"},
			"constraints": map[string]any{"merchant": map[string]any{"merchant_id": merchantID}},
		}}})["data"].(map[string]any)["session_key"].(string)
	}
	bill := func(patient string) string {
		return platform.post("/v1/payin_configs", map[string]any{"merchant_id": merchantID, "idempotency_key": uuid4(), "amount": 1250,
			"currency_code": "USD", "metadata": map[string]any{"patientId": patient}})["data"].(map[string]any)["payin_config_id"].(string)
	}
	// call sends what the component sends with its session key and returns
	// the status and the envelope's data.
	call := func(method, path, key string, payload any) (int, json.RawMessage) {
		t.Helper()
		var body io.Reader
		if payload != nil {
			b, _ := json.Marshal(payload)
			body = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.baseURL+path, body)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Rainforest-Api-Version", "2024-10-16")
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var env struct{ Data json.RawMessage }
		json.NewDecoder(resp.Body).Decode(&env)
		return resp.StatusCode, env.Data
	}
	// pay charges a bill through the connector, the session key as password,
	// and returns the payin and the card stored with it.
	pay := func(key, cfg string) (payin, card string) {
		t.Helper()
		answer := (&whServer{srv}).connector(t, key, chargeBody(cfg, uuid4(), "12.50"))
		if answer.ChargeID == nil || answer.Parameters["payment_method_id"] == "" {
			t.Fatalf("the charge failed: %+v", answer)
		}
		return *answer.ChargeID, answer.Parameters["payment_method_id"]
	}
	listed := func(key, path, idKey string) []string {
		t.Helper()
		status, data := call("GET", path, key, nil)
		var l struct{ Results []map[string]any }
		if status != 200 || json.Unmarshal(data, &l) != nil {
			t.Fatalf("GET %s: HTTP %d %s", path, status, data)
		}
		var ids []string
		for _, r := range l.Results {
			ids = append(ids, fmt.Sprint(r[idKey]))
		}
		return ids
	}

	alice, bob := session(), session()
	alicePayin, aliceCard := pay(alice, bill("alice"))
	bobBill := bill("bob")

	if ids := listed(bob, "/v1/payins", "payin_id"); len(ids) != 0 {
		t.Errorf("Bob's session lists payins %v", ids)
	}
	if ids := listed(bob, "/v1/payment_methods", "payment_method_id"); len(ids) != 0 {
		t.Errorf("Bob's session lists cards %v", ids)
	}
	for _, c := range []struct{ what, method, path string }{
		{"reads Alice's payin", "GET", "/v1/payins/" + alicePayin},
		{"reads Alice's card", "GET", "/v1/payment_methods/" + aliceCard},
		{"charges Alice's card for Bob's bill", "POST", "/v1/payment_methods/" + aliceCard + "/payin"},
	} {
		if status, data := call(c.method, c.path, bob, map[string]any{"payin_config_id": bobBill}); status != 404 {
			t.Errorf("Bob's session %s: HTTP %d %s, want 404", c.what, status, data)
		}
	}
	if _, data := call("GET", "/v1/payin_configs/"+bobBill, admin, nil); !strings.Contains(string(data), `"payin":null`) {
		t.Fatalf("Bob's bill was paid: %s", data)
	}

	// Each session reaches what it made: Bob pays his bill, Alice reads hers.
	bobPayin, _ := pay(bob, bobBill)
	if ids := listed(bob, "/v1/payins", "payin_id"); strings.Join(ids, ",") != bobPayin {
		t.Errorf("Bob's session lists %v, want his payin %s", ids, bobPayin)
	}
	if ids := listed(alice, "/v1/payment_methods", "payment_method_id"); strings.Join(ids, ",") != aliceCard {
		t.Errorf("Alice's session lists cards %v, want hers %s", ids, aliceCard)
	}
	if status, _ := call("GET", "/v1/payins/"+alicePayin, alice, nil); status != 200 {
		t.Errorf("Alice's session reads her payin: HTTP %d", status)
	}
}
