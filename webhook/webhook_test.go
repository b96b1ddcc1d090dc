package webhook_test

import (
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
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/webhook"
	"github.com/ivrpay/ivrpay/webhook/webhooktest"
)

// TestSignStandardWebhooksVector checks Sign against the example of the
// Standard Webhooks specification's reference libraries.
func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	got, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if _, err := webhook.Sign("whsec_not base64!", "id", 1, nil); err == nil {
		t.Fatal("Sign accepted a secret that is not base64")
	}
}

// TestVerifySvixAndStandardNames: Verify accepts a signature made by Sign
// under either header naming, and refuses a changed body, another secret, a
// stale timestamp and a signature of another version; the Rainforest-style
// verifier accepts the same delivery only when the svix-* headers are there.
func TestVerifySvixAndStandardNames(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"event_type":"payin.succeeded","data":{"payin_id":"pyi_1"}}`)
	sig, err := webhook.Sign(secret, "evt_1", now.Unix(), body)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name                string
		secret, id, ts, sig string
		body                []byte
		ok                  bool
	}{
		{"as signed", secret, "evt_1", ts, sig, body, true},
		{"among other signatures", secret, "evt_1", ts, "v2,abc " + sig, body, true},
		{"changed body", secret, "evt_1", ts, sig, []byte(`{"event_type":"payin.failed"}`), false},
		{"another id", secret, "evt_2", ts, sig, body, false},
		{"another secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 24 bytes")), "evt_1", ts, sig, body, false},
		{"stale timestamp", secret, "evt_1", strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10), sig, body, false},
		{"another version", secret, "evt_1", ts, "v2," + strings.TrimPrefix(sig, "v1,"), body, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(c.secret, c.id, c.ts, c.sig, c.body, now)
			if (err == nil) != c.ok {
				t.Errorf("Verify: %v, want ok=%v", err, c.ok)
			}
			h := http.Header{}
			h.Set("svix-id", c.id)
			h.Set("svix-timestamp", c.ts)
			h.Set("svix-signature", c.sig)
			if err := webhooktest.VerifySvix(c.secret, h, c.body, now); (err == nil) != c.ok {
				t.Errorf("VerifySvix: %v, want ok=%v", err, c.ok)
			}
		})
	}
	// Only the Standard Webhooks names: a Rainforest integration refuses it.
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", sig)
	if err := webhooktest.VerifySvix(secret, h, body, now); err == nil || !strings.Contains(err.Error(), "missing signing headers") {
		t.Errorf("VerifySvix without svix-* headers: %v", err)
	}
}

// verify is an independent Standard Webhooks verifier: HMAC-SHA256 over
// "id.timestamp.body" keyed with the base64-decoded secret, compared with
// every "v1," signature of the header.
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return fmt.Errorf("missing webhook-id or webhook-timestamp")
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s too far from now", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", h.Get("webhook-signature"))
}

// receiver is a webhook endpoint under test control: while down it answers
// 503; otherwise it verifies and records every request.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	down   atomic.Bool
	// bodies holds every verified body received, by webhook-id.
	bodies map[string][]string
	bad    []string
	tries  atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{bodies: map[string][]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.tries.Add(1)
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := verify(r.secret, req.Header, body); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Every delivery must also pass a Rainforest integration's verifier,
		// which reads only the svix-* headers.
		if err := webhooktest.VerifySvix(r.secret, req.Header, body, time.Now()); err != nil {
			r.bad = append(r.bad, "svix: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if req.Header.Get("svix-id") != req.Header.Get("webhook-id") || req.Header.Get("svix-timestamp") != req.Header.Get("webhook-timestamp") {
			r.bad = append(r.bad, "svix-id/svix-timestamp differ from webhook-id/webhook-timestamp")
		}
		var ev struct {
			ID string `json:"event_id"`
		}
		if json.Unmarshal(body, &ev) != nil || ev.ID != req.Header.Get("webhook-id") {
			r.bad = append(r.bad, "event_id of the body is not the webhook-id header: "+string(body))
		}
		id := req.Header.Get("webhook-id")
		r.bodies[id] = append(r.bodies[id], string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) snapshot() (map[string][]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.bodies {
		out[k] = append([]string(nil), v...)
	}
	return out, append([]string(nil), r.bad...)
}

// fixture is one platform with a merchant and an authenticated admin key on a store.
type fixture struct {
	s        *sqlstore.Store
	pay      *payments.Service
	adminCtx context.Context
	merchant *ivrpay.Merchant
	secret   string
}

func newFixture(t *testing.T, s *sqlstore.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	p, admin, err := s.CreatePlatform(ctx, "Webhook platform", true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, pay: paymentstest.Options(t).Payments(s), adminCtx: adminContext(t, s, admin.Secret), merchant: m, secret: admin.Secret}
}

func adminContext(t *testing.T, s *sqlstore.Store, secret string) context.Context {
	t.Helper()
	key, err := s.Authenticate(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return ivrpay.NewContextWithPrincipal(context.Background(), key)
}

var txSeq atomic.Int64

// charge makes an approved IVR payin of cents and returns its id.
func (f *fixture) charge(t *testing.T, cents int64) string {
	t.Helper()
	n := txSeq.Add(1)
	cfg, err := f.s.CreatePayinConfig(f.adminCtx, ivrpay.PayinConfigCreate{MerchantID: f.merchant.ID, IdempotencyKey: fmt.Sprintf("cfg-%d", n),
		Amount: json.Number(fmt.Sprint(cents)), CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.pay.ProcessIVR(f.adminCtx, ivrpay.IVRRequest{Method: ivrpay.IVRMethodCharge, TransactionID: fmt.Sprintf("CA-%d-%d", n, time.Now().UnixNano()),
		CardNumber: "4111111111111111", CVV: "123", ExpiryMonth: "08", ExpiryYear: "39", PostalCode: "94111",
		Amount: ivrpay.ParseIVRAmount(true, ivrpay.FormatDollars(cents)), CurrencyCode: "USD", Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfg.ID}})
	if err != nil || res.ID == "" {
		t.Fatalf("charge: %+v %v", res, err)
	}
	return res.ID
}

// events returns the ids of every event in the outbox.
func events(t *testing.T, s *sqlstore.Store) []string {
	t.Helper()
	rows, err := s.DB().Query(`SELECT id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

func deliveries(t *testing.T, ctx context.Context, s *sqlstore.Store, endpointID string) []*ivrpay.WebhookDelivery {
	t.Helper()
	l, err := s.ListWebhookDeliveries(ctx, endpointID, ivrpay.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return l.Results
}

// deliveriesAre reports whether the endpoint has n deliveries, all in status.
func deliveriesAre(t *testing.T, ctx context.Context, s *sqlstore.Store, endpointID string, n int, status string) bool {
	t.Helper()
	ds := deliveries(t, ctx, s, endpointID)
	for _, d := range ds {
		if d.Status != status {
			return false
		}
	}
	return len(ds) == n
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, f := range state {
				msg += "\n" + f()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startWorker(w *webhook.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// testSchedule retries quickly and long enough to outlast the tests' outages.
var testSchedule = []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond,
	300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}

// TestRestartLosesNothing produces events while the receiver is down, kills
// the worker (one of its claims is left unrecorded, as a process killed
// mid-send leaves it), closes the store, reopens the same database in a new
// store and worker, and brings the receiver back: every event arrives, and
// repeats carry the same webhook-id and body.
func TestRestartLosesNothing(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		dsn, opts := paymentstest.DSN(t, engine), paymentstest.Options(t)
		s1, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, s1)
		rcv := newReceiver(t)
		rcv.down.Store(true)
		ep, err := s1.CreateWebhookEndpoint(f.adminCtx, ivrpay.WebhookEndpointCreate{URL: rcv.URL + "/hooks"})
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret
		stop1 := startWorker(&webhook.Worker{Outbox: s1, AllowPrivate: true, Schedule: testSchedule, PollInterval: 10 * time.Millisecond})

		payin := f.charge(t, 1000)
		paymentstest.Settle(t, s1)
		if _, err := f.pay.VoidOrRefund(f.adminCtx, payin, ivrpay.VoidOrRefund{IdempotencyKey: "r1", Reason: ivrpay.RefundReasonDuplicate, Amount: "250"}); err != nil {
			t.Fatal(err)
		}
		paymentstest.Settle(t, s1)
		f.charge(t, 2000)
		// payin.processing, payment_method.active, payin.succeeded, refund.processing, refund.succeeded,
		// and the second charge's payin.processing and payment_method.active.
		if n := len(events(t, s1)); n != 7 {
			t.Fatalf("%d events in the outbox, want 7", n)
		}
		waitUntil(t, "a failed attempt of every delivery", 10*time.Second, func() bool {
			for _, d := range deliveries(t, f.adminCtx, s1, ep.ID) {
				if d.AttemptCount == 0 {
					return false
				}
			}
			return true
		})
		stop1()
		// A process killed after claiming (maybe after sending) never records.
		if _, err := s1.ClaimWebhookDeliveries(ctx, ivrpay.WebhookClaim{Limit: 3, Lease: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		for _, d := range deliveries(t, f.adminCtx, s1, ep.ID) {
			if d.Status != ivrpay.DeliveryStatusPending || d.Attempts[0].StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("delivery while the receiver was down: %+v", d)
			}
		}
		s1.Close()

		rcv.down.Store(false)
		s2, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		adminCtx := adminContext(t, s2, f.secret)
		stop2 := startWorker(&webhook.Worker{Outbox: s2, AllowPrivate: true, Schedule: testSchedule, PollInterval: 10 * time.Millisecond})
		defer stop2()
		waitUntil(t, "every delivery DELIVERED after the restart", 15*time.Second, func() bool {
			for _, d := range deliveries(t, adminCtx, s2, ep.ID) {
				if d.Status != ivrpay.DeliveryStatusDelivered {
					return false
				}
			}
			return true
		}, func() string { return dump(deliveries(t, adminCtx, s2, ep.ID)) })
		got, bad := rcv.snapshot()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		for _, id := range events(t, s2) {
			bodies := got[id]
			if len(bodies) == 0 {
				t.Errorf("event %s was never delivered", id)
			}
			for _, b := range bodies[1:] {
				if b != bodies[0] {
					t.Errorf("event %s was delivered with different bodies:\n%s\n%s", id, bodies[0], b)
				}
			}
		}
		if len(got) != 7 {
			t.Errorf("receiver got %d distinct webhook-ids, want 7", len(got))
		}
	})
}

// TestWorkersNeverDoubleSend runs two stores (two "processes") with two
// workers each on one database: with no crash, each event is sent once.
func TestWorkersNeverDoubleSend(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		dsn, opts := paymentstest.DSN(t, engine), paymentstest.Options(t)
		s1, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s1.Close()
		s2, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		f := newFixture(t, s1)
		rcv := newReceiver(t)
		ep, err := s1.CreateWebhookEndpoint(f.adminCtx, ivrpay.WebhookEndpointCreate{URL: rcv.URL, Events: []string{ivrpay.EventPayinProcessing}})
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret
		for _, s := range []*sqlstore.Store{s1, s2, s1, s2} {
			defer startWorker(&webhook.Worker{Outbox: s, AllowPrivate: true, Schedule: testSchedule, PollInterval: 5 * time.Millisecond, Concurrency: 3})()
		}
		const payins = 12
		for range payins {
			f.charge(t, 700)
		}
		waitUntil(t, "every delivery DELIVERED", 15*time.Second, func() bool {
			return deliveriesAre(t, f.adminCtx, s1, ep.ID, payins, ivrpay.DeliveryStatusDelivered)
		})
		got, bad := rcv.snapshot()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if len(got) != payins {
			t.Fatalf("receiver got %d events, want %d (the endpoint subscribes to payin.processing only)", len(got), payins)
		}
		for id, bodies := range got {
			if len(bodies) != 1 {
				t.Errorf("event %s was sent %d times", id, len(bodies))
			}
		}
	})
}

// TestGiveUpAndPrivateAddresses: a production worker refuses to connect to a
// loopback receiver, records each refusal, and marks the delivery FAILED
// when the schedule runs out.
func TestGiveUpAndPrivateAddresses(t *testing.T) {
	t.Parallel()
	s := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	f := newFixture(t, s)
	rcv := newReceiver(t)
	ep, err := s.CreateWebhookEndpoint(f.adminCtx, ivrpay.WebhookEndpointCreate{URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.secret = ep.Secret
	w := &webhook.Worker{Outbox: s, AllowPrivate: false, Schedule: []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}, PollInterval: 5 * time.Millisecond}
	defer startWorker(w)()
	f.charge(t, 900)
	waitUntil(t, "the deliveries to be marked FAILED", 10*time.Second, func() bool {
		return deliveriesAre(t, f.adminCtx, s, ep.ID, 2, ivrpay.DeliveryStatusFailed)
	})
	for _, d := range deliveries(t, f.adminCtx, s, ep.ID) {
		if d.AttemptCount != 3 || len(d.Attempts) != 3 || d.NextAttemptAt != nil {
			t.Fatalf("failed delivery = %+v, want 3 recorded attempts and no next attempt", d)
		}
		for _, a := range d.Attempts {
			if a.StatusCode != 0 || !strings.Contains(string(a.Error), "only sent to public addresses") {
				t.Fatalf("attempt = %+v, want a refusal to connect to a non-public address", a)
			}
		}
	}
	if n := rcv.tries.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests from a production worker", n)
	}
}
