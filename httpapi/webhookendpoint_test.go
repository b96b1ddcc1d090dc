package httpapi_test

// Webhook endpoints over HTTP: the 16-endpoint cap and secret rotation
// (SPEC §7), with deliveries checked by the verifiers receivers use.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/webhook"
	"github.com/ivrpay/ivrpay/webhook/webhooktest"
)

// TestWebhookEndpointCap: 24 creates sent at once to a fresh platform make
// exactly 16 endpoints; the others get a 409 that names the limit. Another
// platform is not affected, and deleting an endpoint makes room for one.
func TestWebhookEndpointCap(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		const tries = 24
		statuses := make([]apiResp, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": "http://127.0.0.1:9/hooks"})
			}()
		}
		wg.Wait()
		var created []string
		for _, r := range statuses {
			switch r.Status {
			case 200:
				created = append(created, r.data(t)["webhook_endpoint_id"].(string))
			case 409:
				if msg := r.err().Message; !strings.Contains(msg, "at most 16 webhook endpoints") {
					t.Errorf("409 message %q does not name the limit", msg)
				}
			default:
				t.Fatalf("create: HTTP %d\n%s", r.Status, r.Raw)
			}
		}
		if len(created) != ivrpay.MaxWebhookEndpointsPerPlatform {
			t.Fatalf("%d of %d concurrent creates succeeded, want %d", len(created), tries, ivrpay.MaxWebhookEndpointsPerPlatform)
		}
		if total, _ := b.api("GET", "/v1/webhook_endpoints?limit=100", b.admin, nil).list(t); total != ivrpay.MaxWebhookEndpointsPerPlatform {
			t.Fatalf("the platform lists %d endpoints, want %d", total, ivrpay.MaxWebhookEndpointsPerPlatform)
		}
		other := b.newTenant("Other Platform", true)
		wantStatus(t, b.api("POST", "/v1/webhook_endpoints", other.admin, map[string]any{"url": "http://127.0.0.1:9/other"}), 200)

		wantStatus(t, b.api("DELETE", "/v1/webhook_endpoints/"+created[0], b.admin, nil), 200)
		wantStatus(t, b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": "http://127.0.0.1:9/again"}), 200)
		wantStatus(t, b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": "http://127.0.0.1:9/over"}), 409)
	})
}

// signedRequest is one delivery as a receiver got it.
type signedRequest struct {
	header http.Header
	body   []byte
}

// recordingReceiver accepts every request and keeps it, for the test to
// verify afterwards with the secrets it expects.
type recordingReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []signedRequest
}

func newRecordingReceiver(t *testing.T) *recordingReceiver {
	r := &recordingReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, signedRequest{req.Header.Clone(), body})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// received returns the requests received so far.
func (r *recordingReceiver) received() []signedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]signedRequest(nil), r.reqs...)
}

// awaitDelivered waits until the endpoint has want deliveries, every one
// DELIVERED (its attempt sent and recorded), and returns their event ids.
// Then no attempt is in flight: whatever the receiver gets afterwards was
// signed afterwards.
func (b *bundle) awaitDelivered(t *testing.T, endpointID string, want int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, results := b.api("GET", "/v1/webhook_endpoints/"+endpointID+"/deliveries?limit=100", b.admin, nil).list(t)
		var ids []string
		for _, d := range results {
			if d["status"] == "DELIVERED" {
				ids = append(ids, d["event_id"].(string))
			}
		}
		if len(results) == want && len(ids) == want {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint has %d deliveries, %d of them DELIVERED; want %d, all DELIVERED", len(results), len(ids), want)
		}
	}
}

// verifies reports whether a receiver holding secret accepts req at now,
// with the Standard Webhooks headers and with the svix-* ones; the two
// verifiers must agree.
func verifies(t *testing.T, secret string, req signedRequest, now time.Time) bool {
	t.Helper()
	h := req.header
	standard := webhook.Verify(secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), req.body, now) == nil
	svix := webhooktest.VerifySvix(secret, h, req.body, now) == nil
	if standard != svix {
		t.Fatalf("the Standard Webhooks verifier says %v and the Svix one %v for the same delivery", standard, svix)
	}
	return standard
}

// TestRotateWebhookSecret: after rotate_secret, deliveries verify with the
// new secret and with the old one for 24 hours (both with Standard Webhooks'
// and Svix's verifier), across a restart of the server on the same database;
// after 24 hours only with the new one. A second rotation ends the first
// secret's overlap at once. Each step (the clock's 24 hours, a rotation)
// waits until every earlier delivery is recorded DELIVERED: a delivery
// still in flight when the clock jumps would outlive its lease and be sent
// again (at least once), signed at the new time, and a request signed
// before a step must not be judged by the secrets after it.
func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := &offsetClock{}
		opts := paymentstest.Options(t)
		opts.Clock = clock
		log := &paymentstest.LockedBuffer{}
		opts.Logger = slog.New(slog.NewJSONHandler(log, nil))
		dsn := paymentstest.DSN(t, engine)
		s1, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		b := serve(t, engine, s1, opts, log)
		rcv := newRecordingReceiver(t)
		created := b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": rcv.URL + "/hooks"})
		wantStatus(t, created, 200)
		id, oldSecret := created.data(t)["webhook_endpoint_id"].(string), created.data(t)["secret"].(string)
		if created.data(t)["previous_secret_expires_at"] != nil {
			t.Fatalf("a new endpoint has a previous secret: %s", created.Raw)
		}

		rotated := b.api("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", b.admin, nil)
		wantStatus(t, rotated, 200)
		newSecret, _ := rotated.data(t)["secret"].(string)
		if !strings.HasPrefix(newSecret, "whsec_") || newSecret == oldSecret {
			t.Fatalf("rotate_secret answered %s", rotated.Raw)
		}
		until, _ := rotated.data(t)["previous_secret_expires_at"].(string)
		overlapEnds, err := time.Parse(time.RFC3339Nano, until)
		if d := overlapEnds.Sub(clock.Now()); err != nil || d < 24*time.Hour-time.Minute || d > 24*time.Hour {
			t.Fatalf("previous_secret_expires_at = %q, want 24 hours from now", until)
		}
		read := b.api("GET", "/v1/webhook_endpoints/"+id, b.admin, nil)
		if read.data(t)["secret"] != nil || read.data(t)["previous_secret_expires_at"] == nil {
			t.Fatalf("a rotated endpoint reads back as %s", read.Raw)
		}

		// A restart: the first server's store is closed, a second one opens the same database.
		ivrKey := b.ivrKey("payin:create")
		s1.Close()
		s2, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s2.Close() })
		b.store, b.pay = s2, opts.Payments(s2)
		b.startServer()
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			(&webhook.Worker{Outbox: s2, AllowPrivate: true, PollInterval: 10 * time.Millisecond, Clock: clock}).Run(wctx)
			close(done)
		}()
		t.Cleanup(func() { stop(); <-done })

		// deliveriesSince waits for the endpoint's total deliveries and returns
		// the requests received since the last call: at least one for every new
		// event, and none for an event of an earlier step.
		seen, seenReqs := map[string]bool{}, 0
		deliveriesSince := func(total int) []signedRequest {
			t.Helper()
			fresh := map[string]bool{}
			for _, ev := range b.awaitDelivered(t, id, total) {
				if !seen[ev] {
					fresh[ev], seen[ev] = true, true
				}
			}
			all := rcv.received()
			reqs := all[seenReqs:]
			seenReqs = len(all)
			got := map[string]bool{}
			for _, req := range reqs {
				if ev := req.header.Get("webhook-id"); !fresh[ev] {
					t.Errorf("the receiver got %s again after it was recorded DELIVERED", ev)
				}
				got[req.header.Get("webhook-id")] = true
			}
			if len(got) != len(fresh) {
				t.Fatalf("the receiver got %d of the %d new events", len(got), len(fresh))
			}
			return reqs
		}

		// Each charge: payin.processing and payment_method.active.
		b.ivr(ivrKey, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		for i, req := range deliveriesSince(2) {
			if n := len(strings.Fields(req.header.Get("webhook-signature"))); n != 2 || req.header.Get("svix-signature") != req.header.Get("webhook-signature") {
				t.Errorf("delivery %d within 24 h of the rotation: webhook-signature %q, svix-signature %q; want two signatures in both",
					i, req.header.Get("webhook-signature"), req.header.Get("svix-signature"))
			}
			if !verifies(t, newSecret, req, clock.Now()) || !verifies(t, oldSecret, req, clock.Now()) {
				t.Errorf("delivery %d within 24 h of the rotation: new secret %v, old secret %v; want both to verify", i,
					verifies(t, newSecret, req, clock.Now()), verifies(t, oldSecret, req, clock.Now()))
			}
		}

		clock.advance(24*time.Hour + time.Minute)
		if read := b.api("GET", "/v1/webhook_endpoints/"+id, b.admin, nil); read.data(t)["previous_secret_expires_at"] != nil {
			t.Fatalf("24 hours after the rotation the endpoint reads %s", read.Raw)
		}
		b.ivr(ivrKey, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		for i, req := range deliveriesSince(4) {
			if n := len(strings.Fields(req.header.Get("webhook-signature"))); n != 1 {
				t.Errorf("delivery %d after 24 h: webhook-signature %q, want one signature", i, req.header.Get("webhook-signature"))
			}
			if !verifies(t, newSecret, req, clock.Now()) || verifies(t, oldSecret, req, clock.Now()) {
				t.Errorf("delivery %d after 24 h: new secret %v, old secret %v; want only the new one to verify", i,
					verifies(t, newSecret, req, clock.Now()), verifies(t, oldSecret, req, clock.Now()))
			}
		}

		// Two rotations: the newest two secrets sign; the one before them no longer does.
		second := b.api("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", b.admin, nil)
		wantStatus(t, second, 200)
		third := b.api("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", b.admin, nil)
		wantStatus(t, third, 200)
		secondSecret, thirdSecret := second.data(t)["secret"].(string), third.data(t)["secret"].(string)
		b.ivr(ivrKey, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		for i, req := range deliveriesSince(6) {
			if !verifies(t, thirdSecret, req, clock.Now()) || !verifies(t, secondSecret, req, clock.Now()) || verifies(t, newSecret, req, clock.Now()) {
				t.Errorf("delivery %d after two rotations: third %v, second %v, first %v; want the last two only", i,
					verifies(t, thirdSecret, req, clock.Now()), verifies(t, secondSecret, req, clock.Now()), verifies(t, newSecret, req, clock.Now()))
			}
		}
	})
}
