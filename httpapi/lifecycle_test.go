package httpapi_test

// Payin lifecycle and webhooks over real HTTP on loopback: the REST API and
// the Twilio connector endpoint served by httptest, the real store on every
// engine, the settlement loop and the webhook delivery worker, and webhook
// receivers that check signatures with their own verifier. Helpers are
// prefixed lc so they stay apart from the package's other test helpers.

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/webhook"
)

type lcEnv struct {
	t          *testing.T
	store      *sqlstore.Store
	base       string
	platformID string
	merchantID string
	admin      string
	ivrKey     string
}

// lcSetup serves the API on a fresh store of engine, bootstraps a platform
// with a merchant, an admin key and an IVR key (payin:create only), and runs
// the sandbox processor's confirmations (after settleAfter) and the delivery
// worker until the test ends. adjust may change the test configuration first
// (its processor, say).
func lcSetup(t *testing.T, engine string, settleAfter time.Duration, adjust ...func(*paymentstest.Config)) *lcEnv {
	t.Helper()
	opts := paymentstest.Options(t)
	for _, f := range adjust {
		f(&opts)
	}
	store := paymentstest.Open(t, engine, opts)
	pay := opts.Payments(store)
	api := &httpapi.Server{Services: httpapi.NewServices(store, pay)}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// The sandbox processor's confirmations, as serve's worker sends them.
		for t := time.NewTicker(20 * time.Millisecond); ctx.Err() == nil; <-t.C {
			pay.ConfirmSandboxDue(ctx, settleAfter)
		}
	}()
	w := &webhook.Worker{Outbox: store, AllowPrivate: true, PollInterval: 10 * time.Millisecond,
		Schedule: []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}}
	go func() { defer wg.Done(); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	p, admin, err := store.CreatePlatform(context.Background(), "Lifecycle platform", true)
	if err != nil {
		t.Fatal(err)
	}
	e := &lcEnv{t: t, store: store, base: srv.URL, platformID: p.ID, admin: admin.Secret}
	e.merchantID = e.ok("POST", "/v1/merchants", e.admin, map[string]any{"name": "Lifecycle shop"}).str("merchant_id")
	e.ivrKey = e.ok("POST", "/v1/api_keys", e.admin, map[string]any{"statements": []any{map[string]any{
		"permissions": []string{"payin:create"}, "constraints": map[string]any{"platform": map[string]any{"platform_id": p.ID}}}}}).str("api_key")
	return e
}

type lcResp struct {
	status int
	data   json.RawMessage
	errors []struct{ Field, Code, Message string }
	raw    string
}

type lcObj map[string]any

func (o lcObj) str(k string) string { s, _ := o[k].(string); return s }
func (o lcObj) num(k string) int64  { f, _ := o[k].(float64); return int64(f) }

func (r lcResp) obj(t *testing.T) lcObj {
	t.Helper()
	var o lcObj
	if err := json.Unmarshal(r.data, &o); err != nil {
		t.Fatalf("data is not an object: %s", r.raw)
	}
	return o
}

func (e *lcEnv) do(method, path, key string, body any, headers ...string) lcResp {
	e.t.Helper()
	req, err := (&httpapi.Client{BaseURL: e.base, APIKey: key}).NewRequest(context.Background(), method, path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Errors []struct{ Field, Code, Message string }
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		e.t.Fatalf("%s %s: HTTP %d, body is not the envelope: %s", method, path, res.StatusCode, raw)
	}
	if (res.StatusCode == 200) != (env.Status == "SUCCESS") {
		e.t.Fatalf("%s %s: HTTP %d with envelope status %s", method, path, res.StatusCode, env.Status)
	}
	return lcResp{status: res.StatusCode, data: env.Data, errors: env.Errors, raw: string(raw)}
}

// ok sends a request that must succeed and returns its data object.
func (e *lcEnv) ok(method, path, key string, body any, headers ...string) lcObj {
	e.t.Helper()
	r := e.do(method, path, key, body, headers...)
	if r.status != 200 {
		e.t.Fatalf("%s %s: HTTP %d, want 200: %s", method, path, r.status, r.raw)
	}
	return r.obj(e.t)
}

// refused sends a request that must fail with status and returns the error message.
func (e *lcEnv) refused(status int, code, method, path, key string, body any) string {
	e.t.Helper()
	r := e.do(method, path, key, body)
	if r.status != status || len(r.errors) != 1 || r.errors[0].Code != code {
		e.t.Fatalf("%s %s: HTTP %d %s, want %d %s", method, path, r.status, r.raw, status, code)
	}
	return r.errors[0].Message
}

var lcSeq atomic.Int64

func lcKey(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, lcSeq.Add(1), time.Now().UnixNano())
}

// payinConfig creates a payin config of cents (extra adds fields) and returns its id.
func (e *lcEnv) payinConfig(cents int64, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{"merchant_id": e.merchantID, "idempotency_key": lcKey("cfg"), "amount": cents, "currency_code": "USD",
		"billing_contact": map[string]any{"name": "Jane Smith", "postal_code": "30305"}}
	for k, v := range extra {
		body[k] = v
	}
	return e.ok("POST", "/v1/payin_configs", e.admin, body).str("payin_config_id")
}

// chargeIVR charges a test card over the connector endpoint, as Twilio does
// (Basic auth api_key:<IVR key>, all-string JSON, no Content-Type), and
// returns the connector answer's parameters.
func (e *lcEnv) chargeIVR(cfgID string, cents int64) map[string]string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"method": "charge", "transaction_id": lcKey("CA"), "cardnumber": "4111111111111111",
		"cvv": "123", "expiry_month": "08", "expiry_year": "39", "postal_code": "94111", "amount": ivrpay.FormatDollars(cents),
		"currency_code": "usd", "parameters": map[string]string{"payin_config_id": cfgID}})
	req, _ := http.NewRequest("POST", e.base+httpapi.ConnectorPath, bytes.NewReader(body))
	req.SetBasicAuth("api_key", e.ivrKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		ChargeID   *string           `json:"charge_id"`
		ErrorCode  *string           `json:"error_code"`
		Parameters map[string]string `json:"parameters"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		e.t.Fatalf("connector: HTTP %d %v", res.StatusCode, err)
	}
	return out.Parameters
}

// approvedPayin charges a new config of cents over IVR and returns the payin id.
func (e *lcEnv) approvedPayin(cents int64, extra map[string]any) string {
	e.t.Helper()
	params := e.chargeIVR(e.payinConfig(cents, extra), cents)
	if params["payin_id"] == "" || (params["payin_status"] != "PROCESSING" && params["payin_status"] != "AUTHORIZED") {
		e.t.Fatalf("charge was not approved: %v", params)
	}
	return params["payin_id"]
}

func (e *lcEnv) payin(id string) lcObj {
	e.t.Helper()
	return e.ok("GET", "/v1/payins/"+id, e.admin, nil)
}

func (e *lcEnv) waitPayinStatus(id, status string) lcObj {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := e.payin(id)
		if p.str("status") == status {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payin %s is %s after 15s, want %s", id, p.str("status"), status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *lcEnv) voidOrRefund(payinID string, body map[string]any) lcResp {
	e.t.Helper()
	return e.do("POST", "/v1/payins/"+payinID+"/void_or_refund", e.admin, body)
}

// lcReceiver is a webhook endpoint: it verifies every request with its own
// Standard Webhooks verifier and records the events it accepts.
type lcReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	events []lcEvent
	bad    []string
}

type lcEvent struct {
	ID, Type string
	Data     lcObj
	Header   http.Header
}

func lcNewReceiver(t *testing.T) *lcReceiver {
	r := &lcReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := lcVerify(r.secret, req.Header, body); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID        string    `json:"event_id"`
			Type      string    `json:"event_type"`
			CreatedAt time.Time `json:"created_at"`
			Data      lcObj     `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get("webhook-id") || ev.CreatedAt.IsZero() || ev.Data == nil {
			r.bad = append(r.bad, "bad payload: "+string(body))
		}
		r.events = append(r.events, lcEvent{ID: ev.ID, Type: ev.Type, Data: ev.Data, Header: req.Header.Clone()})
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// lcVerify checks a Standard Webhooks signature: base64 HMAC-SHA256 of
// "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part of
// the whsec_ secret, among the header's space-separated "v1," signatures.
func lcVerify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) < 24 {
		return fmt.Errorf("secret %q is not whsec_ + base64 of 24+ bytes", secret)
	}
	ts := h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || h.Get("webhook-id") == "" {
		return fmt.Errorf("missing webhook-id/webhook-timestamp")
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("stale timestamp %s", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + ts + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if sig == "v1,"+want {
			return nil
		}
	}
	return fmt.Errorf("signature %q does not verify", h.Get("webhook-signature"))
}

// wait returns the first event of type about objectID (the data's
// payin_id, refund_id or payment_method_id), waiting for it.
func (r *lcReceiver) wait(t *testing.T, eventType, idKey, objectID string) lcEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Type == eventType && ev.Data.str(idKey) == objectID {
				r.mu.Unlock()
				return ev
			}
		}
		bad := append([]string(nil), r.bad...)
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s after 15s", eventType, objectID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *lcReceiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Type)
	}
	return out
}

// createEndpoint registers rcv (for events, or all when none) and hands it the secret.
func (e *lcEnv) createEndpoint(rcv *lcReceiver, events ...string) lcObj {
	e.t.Helper()
	body := map[string]any{"url": rcv.URL + "/ivrpay/webhooks"}
	if events != nil {
		body["events"] = events
	}
	ep := e.ok("POST", "/v1/webhook_endpoints", e.admin, body)
	rcv.mu.Lock()
	rcv.secret = ep.str("secret")
	rcv.mu.Unlock()
	return ep
}

// TestLifecycleWebhooks is the whole story: an IVR charge through the
// connector endpoint, payin.processing, settlement, payin.succeeded, a
// partial refund, refund.processing, refund.succeeded — each delivered to a
// loopback receiver and verified there — and the objects as GET shows them.
func TestLifecycleWebhooks(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 300*time.Millisecond)
		all, refundsOnly := lcNewReceiver(t), lcNewReceiver(t)
		ep := e.createEndpoint(all)
		filtered := e.createEndpoint(refundsOnly, ivrpay.EventRefundSucceeded)
		if !strings.HasPrefix(ep.str("webhook_endpoint_id"), "sbx_whe_") || !strings.HasPrefix(ep.str("secret"), "whsec_") ||
			ep.str("status") != "ENABLED" || fmt.Sprint(ep["events"]) != "[]" {
			t.Fatalf("created endpoint = %v", ep)
		}
		if got := e.ok("GET", "/v1/webhook_endpoints/"+ep.str("webhook_endpoint_id"), e.admin, nil); got["secret"] != nil || got.str("url") != ep.str("url") {
			t.Fatalf("GET endpoint = %v, want it without its secret", got)
		}

		params := e.chargeIVR(e.payinConfig(1000, nil), 1000)
		payinID, pmID := params["payin_id"], params["payment_method_id"]
		if params["payin_status"] != "PROCESSING" {
			t.Fatalf("charge parameters = %v", params)
		}
		processing := all.wait(t, ivrpay.EventPayinProcessing, "payin_id", payinID)
		if !strings.HasPrefix(processing.ID, "sbx_evt_") || processing.Data.str("status") != "PROCESSING" ||
			processing.Data.str("source") != "IVR" || processing.Data.num("amount") != 1000 {
			t.Fatalf("payin.processing = %+v", processing)
		}
		all.wait(t, ivrpay.EventPaymentMethodActive, "payment_method_id", pmID)
		succeeded := all.wait(t, ivrpay.EventPayinSucceeded, "payin_id", payinID)
		if succeeded.Data.num("refundable_amount") != 1000 || succeeded.ID == processing.ID {
			t.Fatalf("payin.succeeded = %+v", succeeded)
		}

		refund := e.voidOrRefund(payinID, map[string]any{"idempotency_key": "refund-1", "reason": "REQUESTED_BY_CUSTOMER", "amount": 300})
		if refund.status != 200 {
			t.Fatalf("refund: %s", refund.raw)
		}
		r := refund.obj(t)
		refundID := r.str("refund_id")
		if r.str("type") != "REFUND" || !strings.HasPrefix(refundID, "sbx_rfd_") || r.str("refund_status") != "PROCESSING" ||
			r.str("payin_status") != "SUCCEEDED" || r.num("amount") != 300 || r.str("currency_code") != "USD" || r.str("reason") != "REQUESTED_BY_CUSTOMER" {
			t.Fatalf("refund result = %v", r)
		}
		if again := e.voidOrRefund(payinID, map[string]any{"idempotency_key": "refund-1", "reason": "REQUESTED_BY_CUSTOMER", "amount": 300}); again.raw != refund.raw {
			t.Fatalf("repeat of the same request = %s, want the first result %s", again.raw, refund.raw)
		}
		rp := all.wait(t, ivrpay.EventRefundProcessing, "refund_id", refundID)
		if rp.Data.num("amount") != 300 || rp.Data.str("payin_id") != payinID || rp.Data.str("status") != "PROCESSING" {
			t.Fatalf("refund.processing = %+v", rp)
		}
		rs := all.wait(t, ivrpay.EventRefundSucceeded, "refund_id", refundID)
		if rs.Data.str("status") != "SUCCEEDED" {
			t.Fatalf("refund.succeeded = %+v", rs)
		}
		refundsOnly.wait(t, ivrpay.EventRefundSucceeded, "refund_id", refundID)

		got := e.ok("GET", "/v1/refunds/"+refundID, e.admin, nil)
		if got.str("status") != "SUCCEEDED" || got.str("merchant_id") != e.merchantID || got.num("amount") != 300 || got.str("created_at") == "" {
			t.Fatalf("GET refund = %v", got)
		}
		p := e.payin(payinID)
		refunds, _ := p["refunds"].([]any)
		if p.num("refundable_amount") != 700 || p.num("captured_amount") != 1000 || len(refunds) != 1 ||
			refunds[0].(map[string]any)["refund_id"] != refundID {
			t.Fatalf("payin after a 3.00 refund = %v", p)
		}

		// Deliveries: every event delivered once, each attempt recorded (the
		// receiver may see the last one a moment before the worker records it).
		var ds lcObj
		var results []any
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ds = e.ok("GET", "/v1/webhook_endpoints/"+ep.str("webhook_endpoint_id")+"/deliveries", e.admin, nil)
			results, _ = ds["results"].([]any)
			delivered := 0
			for _, x := range results {
				if x.(map[string]any)["status"] == "DELIVERED" {
					delivered++
				}
			}
			if delivered == 5 || time.Now().After(deadline) {
				break
			}
		}
		if len(results) != 5 || ds.num("total_results") != 5 {
			t.Fatalf("deliveries = %v, want 5 (processing, payment method, succeeded, refund processing, refund succeeded)", ds)
		}
		for _, x := range results {
			d := lcObj(x.(map[string]any))
			attempts, _ := d["attempts"].([]any)
			if d.str("status") != "DELIVERED" || d.num("attempt_count") != 1 || len(attempts) != 1 ||
				attempts[0].(map[string]any)["status_code"].(float64) != 200 || d["next_attempt_at"] != nil {
				t.Fatalf("delivery = %v", d)
			}
		}
		if types := refundsOnly.types(); len(types) != 1 {
			t.Fatalf("endpoint subscribed to refund.succeeded received %v", types)
		}
		fds := e.ok("GET", "/v1/webhook_endpoints/"+filtered.str("webhook_endpoint_id")+"/deliveries", e.admin, nil)
		if fds.num("total_results") != 1 {
			t.Fatalf("filtered endpoint deliveries = %v", fds)
		}
	})
}

// TestConcurrentRefunds sends ten refunds of 30% each at once, with different
// idempotency keys: exactly three succeed and the rest are 409, on every
// engine, because the refundable amount is enforced by the database.
func TestConcurrentRefunds(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 10*time.Millisecond)
		payinID := e.approvedPayin(1000, nil)
		e.waitPayinStatus(payinID, "SUCCEEDED")

		const n = 10
		statuses := make([]int, n)
		messages := make([]string, n)
		paymentstest.AllAtOnce(n, func(i int) {
			r := e.do("POST", "/v1/payins/"+payinID+"/void_or_refund", e.admin,
				map[string]any{"idempotency_key": fmt.Sprintf("conc-%d", i), "reason": "DUPLICATE", "amount": 300})
			statuses[i] = r.status
			if len(r.errors) > 0 {
				messages[i] = r.errors[0].Message
			}
		})
		var ok, conflict int
		for i, s := range statuses {
			switch s {
			case 200:
				ok++
			case 409:
				conflict++
				if !strings.Contains(messages[i], "refundable amount") {
					t.Errorf("409 message %q does not say why", messages[i])
				}
			default:
				t.Errorf("refund %d: HTTP %d", i, s)
			}
		}
		if ok != 3 || conflict != 7 {
			t.Fatalf("%d refunds succeeded and %d were refused, want 3 and 7", ok, conflict)
		}
		p := e.payin(payinID)
		refunds, _ := p["refunds"].([]any)
		var sum int64
		for _, r := range refunds {
			sum += int64(r.(map[string]any)["amount"].(float64))
		}
		if p.num("refundable_amount") != 100 || len(refunds) != 3 || sum != 900 {
			t.Fatalf("payin after concurrent refunds: refundable %d, %d refunds summing to %d", p.num("refundable_amount"), len(refunds), sum)
		}

		// The same key sent ten times at once makes one refund.
		results := make([]string, n)
		paymentstest.AllAtOnce(n, func(i int) {
			results[i] = e.do("POST", "/v1/payins/"+payinID+"/void_or_refund", e.admin,
				map[string]any{"idempotency_key": "same-key", "reason": "DUPLICATE", "amount": 50}).raw
		})
		for _, r := range results[1:] {
			if r != results[0] {
				t.Fatalf("repeats of one key answered differently:\n%s\n%s", results[0], r)
			}
		}
		if p := e.payin(payinID); p.num("refundable_amount") != 50 {
			t.Fatalf("refundable after ten repeats of one 0.50 refund = %d, want 50", p.num("refundable_amount"))
		}
	})
}

// TestVoidAndCapture covers what each state allows: voiding a PROCESSING
// payin (→ CANCELED, payin.canceled), refusing a partial void, a void after
// settlement and a capture of a payin that is not AUTHORIZED (409s that say
// why), partial capture of an AUTHORIZED payin, and the idempotency key.
func TestVoidAndCapture(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, time.Hour) // settlement only when the test asks
		rcv := lcNewReceiver(t)
		e.createEndpoint(rcv)
		settle := func() {
			t.Helper()
			paymentstest.Settle(t, e.store)
		}
		reason := "REQUESTED_BY_CUSTOMER"

		// Void while PROCESSING.
		a := e.approvedPayin(1000, nil)
		msg := e.refused(409, "Conflict", "POST", "/v1/payins/"+a+"/void_or_refund", e.admin, map[string]any{"idempotency_key": lcKey("v"), "reason": reason, "amount": 400})
		if !strings.Contains(msg, "cannot be partially voided") {
			t.Fatalf("partial void message = %q", msg)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+a+"/void_or_refund", e.admin, map[string]any{"idempotency_key": lcKey("v"), "reason": reason, "type": "REFUND"})
		if !strings.Contains(msg, "has not settled") {
			t.Fatalf("refund before settlement message = %q", msg)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+a+"/capture", e.admin, nil)
		if !strings.Contains(msg, "only AUTHORIZED payins") || !strings.Contains(msg, "PROCESSING") {
			t.Fatalf("capture of a PROCESSING payin message = %q", msg)
		}
		void := e.voidOrRefund(a, map[string]any{"idempotency_key": "void-a", "reason": reason})
		v := void.obj(t)
		if void.status != 200 || v.str("type") != "VOID" || v.str("payin_status") != "CANCELED" || v.num("amount") != 1000 ||
			v["refund_id"] != nil || v["refund_status"] != nil {
			t.Fatalf("void = %s", void.raw)
		}
		if canceled := rcv.wait(t, ivrpay.EventPayinCanceled, "payin_id", a); canceled.Data.str("status") != "CANCELED" {
			t.Fatalf("payin.canceled = %+v", canceled)
		}
		if p := e.payin(a); p.str("status") != "CANCELED" || p.num("refundable_amount") != 0 {
			t.Fatalf("voided payin = %v", p)
		}
		settle() // a voided payin never settles
		if p := e.payin(a); p.str("status") != "CANCELED" {
			t.Fatalf("voided payin settled: %v", p)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+a+"/void_or_refund", e.admin, map[string]any{"idempotency_key": lcKey("v"), "reason": reason})
		if !strings.Contains(msg, "CANCELED") {
			t.Fatalf("void of a CANCELED payin message = %q", msg)
		}
		// Idempotency: a repeat replays, another request under the key is 409,
		// and a 400 does not use a key up.
		if again := e.voidOrRefund(a, map[string]any{"idempotency_key": "void-a", "reason": reason}); again.raw != void.raw {
			t.Fatalf("repeat of the void = %s", again.raw)
		}
		if r := e.voidOrRefund(a, map[string]any{"idempotency_key": "void-a", "reason": "FRAUDULENT"}); r.status != 409 || r.errors[0].Field != "idempotency_key" {
			t.Fatalf("same key, other body = %s", r.raw)
		}
		b := e.approvedPayin(2000, nil)
		if r := e.voidOrRefund(b, map[string]any{"idempotency_key": "key-b", "reason": "BECAUSE"}); r.status != 400 || r.errors[0].Field != "reason" {
			t.Fatalf("bad reason = %s", r.raw)
		}
		if r := e.voidOrRefund(b, map[string]any{"idempotency_key": "key-b", "reason": reason, "unknown": 1}); r.status != 400 {
			t.Fatalf("unknown field = %s", r.raw)
		}

		// After settlement: a void is refused, a refund works.
		settle()
		rcv.wait(t, ivrpay.EventPayinSucceeded, "payin_id", b)
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+b+"/void_or_refund", e.admin, map[string]any{"idempotency_key": "key-b", "reason": reason, "type": "VOID"})
		if !strings.Contains(msg, "can no longer be voided") || !strings.Contains(msg, "use a refund") {
			t.Fatalf("void after settlement message = %q", msg)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+b+"/void_or_refund", e.admin, map[string]any{"idempotency_key": "key-b", "reason": reason, "amount": 2001})
		if !strings.Contains(msg, "more than the refundable amount 20.00") {
			t.Fatalf("over-refund message = %q", msg)
		}
		full := e.voidOrRefund(b, map[string]any{"idempotency_key": "key-b", "reason": reason}) // the key was not used up by the refusals
		if f := full.obj(t); full.status != 200 || f.str("type") != "REFUND" || f.num("amount") != 2000 {
			t.Fatalf("full refund = %s", full.raw)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+b+"/void_or_refund", e.admin, map[string]any{"idempotency_key": lcKey("r"), "reason": reason, "amount": 1})
		if !strings.Contains(msg, "fully refunded") {
			t.Fatalf("refund of a fully refunded payin message = %q", msg)
		}

		// A declined payin: payin.failed, and nothing to void or refund.
		declined := e.chargeIVR(e.payinConfig(5101, nil), 5101)
		if declined["payin_status"] != "FAILED" {
			t.Fatalf("5101 cents was not declined: %v", declined)
		}
		rcv.wait(t, ivrpay.EventPayinFailed, "payin_id", declined["payin_id"])
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+declined["payin_id"]+"/void_or_refund", e.admin, map[string]any{"idempotency_key": lcKey("v"), "reason": reason})
		if !strings.Contains(msg, "FAILED") {
			t.Fatalf("void of a FAILED payin message = %q", msg)
		}

		// AUTHORIZE: payin.authorized, a partial capture, then settlement.
		c := e.approvedPayin(1000, map[string]any{"processing_mode": "AUTHORIZE"})
		if auth := rcv.wait(t, ivrpay.EventPayinAuthorized, "payin_id", c); auth.Data.str("status") != "AUTHORIZED" || auth.Data.num("captured_amount") != 0 {
			t.Fatalf("payin.authorized = %+v", auth)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+c+"/capture", e.admin, map[string]any{"amount": 1001})
		if !strings.Contains(msg, "more than the authorized amount") {
			t.Fatalf("over-capture message = %q", msg)
		}
		e.refused(400, "RequestBody", "POST", "/v1/payins/"+c+"/capture", e.admin, map[string]any{"amount": 0})
		captured := e.ok("POST", "/v1/payins/"+c+"/capture", e.admin, map[string]any{"amount": 600})
		if captured.str("status") != "PROCESSING" || captured.num("captured_amount") != 600 || captured.num("authorized_amount") != 1000 {
			t.Fatalf("captured payin = %v", captured)
		}
		if ev := rcv.wait(t, ivrpay.EventPayinProcessing, "payin_id", c); ev.Data.num("captured_amount") != 600 {
			t.Fatalf("payin.processing after capture = %+v", ev)
		}
		msg = e.refused(409, "Conflict", "POST", "/v1/payins/"+c+"/capture", e.admin, nil)
		if !strings.Contains(msg, "only AUTHORIZED payins") {
			t.Fatalf("second capture message = %q", msg)
		}
		settle()
		if p := rcv.wait(t, ivrpay.EventPayinSucceeded, "payin_id", c); p.Data.num("refundable_amount") != 600 {
			t.Fatalf("settled partial capture = %+v", p)
		}
		// A full capture with no body, and a void of an AUTHORIZED payin.
		d := e.approvedPayin(800, map[string]any{"processing_mode": "AUTHORIZE"})
		if p := e.ok("POST", "/v1/payins/"+d+"/capture", e.admin, nil); p.num("captured_amount") != 800 {
			t.Fatalf("full capture = %v", p)
		}
		f := e.approvedPayin(900, map[string]any{"processing_mode": "AUTHORIZE"})
		if v := e.voidOrRefund(f, map[string]any{"idempotency_key": lcKey("v"), "reason": reason}); v.status != 200 || v.obj(t).num("amount") != 900 {
			t.Fatalf("void of an AUTHORIZED payin = %s", v.raw)
		}
		rcv.wait(t, ivrpay.EventPayinCanceled, "payin_id", f)
	})
}

// TestWebhookEndpointsAPI covers endpoint management and who may do it.
func TestWebhookEndpointsAPI(t *testing.T) {
	t.Parallel()
	e := lcSetup(t, sqlstore.EngineSQLite, time.Hour)
	ep := e.ok("POST", "/v1/webhook_endpoints", e.admin, map[string]any{"url": "http://127.0.0.1:9/hooks", "events": []string{"payin.succeeded", "refund.failed"}})
	id := ep.str("webhook_endpoint_id")
	secret, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ep.str("secret"), "whsec_"))
	if len(secret) < 24 || fmt.Sprint(ep["events"]) != "[payin.succeeded refund.failed]" || ep.str("platform_id") != e.platformID {
		t.Fatalf("created endpoint = %v", ep)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"url": "ftp://example.com"}, "url"},
		{map[string]any{}, "url"},
		{map[string]any{"url": "https://example.com", "events": []string{"payin.exploded"}}, "events[0]"},
		{map[string]any{"url": "https://example.com", "secret": "mine"}, "secret"},
	} {
		t.Run(tc.field+fmt.Sprint(len(tc.body)), func(t *testing.T) {
			if r := e.do("POST", "/v1/webhook_endpoints", e.admin, tc.body); r.status != 400 || len(r.errors) == 0 || r.errors[0].Field != tc.field {
				t.Errorf("create %v = %s, want 400 naming %s", tc.body, r.raw, tc.field)
			}
		})
	}
	list := e.ok("GET", "/v1/webhook_endpoints", e.admin, nil)
	results, _ := list["results"].([]any)
	if list.num("total_results") != 1 || len(results) != 1 || results[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list = %v", list)
	}
	// Platform-level objects: a merchant-constrained key never gets them, even with the permissions.
	merchantKey := e.ok("POST", "/v1/api_keys", e.admin, map[string]any{"statements": []any{map[string]any{
		"permissions": []string{"webhook_endpoint:create", "webhook_endpoint:read", "webhook_endpoint:delete"},
		"constraints": map[string]any{"platform": map[string]any{"platform_id": e.platformID}, "merchant": map[string]any{"merchant_id": e.merchantID}}}}}).str("api_key")
	e.refused(403, "AuthForbidden", "POST", "/v1/webhook_endpoints", merchantKey, map[string]any{"url": "https://example.com"})
	e.refused(403, "AuthForbidden", "GET", "/v1/webhook_endpoints", merchantKey, nil)
	e.refused(403, "AuthForbidden", "GET", "/v1/webhook_endpoints/"+id, merchantKey, nil)
	e.refused(403, "AuthForbidden", "GET", "/v1/webhook_endpoints/"+id+"/deliveries", merchantKey, nil)
	e.refused(403, "AuthForbidden", "DELETE", "/v1/webhook_endpoints/"+id, merchantKey, nil)
	// The IVR key has no webhook permission at all.
	e.refused(403, "AuthForbidden", "GET", "/v1/webhook_endpoints", e.ivrKey, nil)
	// Another platform sees nothing.
	_, other, err := e.store.CreatePlatform(context.Background(), "Other", false)
	if err != nil {
		t.Fatal(err)
	}
	e.refused(404, "EntityNotFound", "GET", "/v1/webhook_endpoints/"+id, other.Secret, nil)
	if l := e.ok("GET", "/v1/webhook_endpoints", other.Secret, nil); l.num("total_results") != 0 {
		t.Fatalf("other platform lists %v", l)
	}
	// Refunds are read with refund:read; an unknown refund is a 404.
	e.refused(404, "EntityNotFound", "GET", "/v1/refunds/sbx_rfd_unknown", e.admin, nil)
	e.refused(404, "EntityNotFound", "POST", "/v1/payins/sbx_pyi_unknown/void_or_refund", e.admin, map[string]any{"idempotency_key": "k", "reason": "DUPLICATE"})

	e.ok("DELETE", "/v1/webhook_endpoints/"+id, e.admin, nil)
	e.refused(404, "EntityNotFound", "GET", "/v1/webhook_endpoints/"+id, e.admin, nil)
	if l := e.ok("GET", "/v1/webhook_endpoints", e.admin, nil); l.num("total_results") != 0 {
		t.Fatalf("list after delete = %v", l)
	}
}
