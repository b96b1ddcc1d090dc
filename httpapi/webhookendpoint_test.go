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

// await returns the requests received once there are n.
func (r *recordingReceiver) await(t *testing.T, n int) []signedRequest {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		got := append([]signedRequest(nil), r.reqs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %d requests, want %d", len(got), n)
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
// secret's overlap at once.
func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := &offsetClock{}
		opts := paymentstest.Options(t)
		opts.Clock = clock
		log := &syncBuffer{}
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

		// Each charge: payin.processing and payment_method.active.
		b.ivr(ivrKey, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		for i, req := range rcv.await(t, 2) {
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
		for i, req := range rcv.await(t, 4)[2:] {
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
		for i, req := range rcv.await(t, 6)[4:] {
			if !verifies(t, thirdSecret, req, clock.Now()) || !verifies(t, secondSecret, req, clock.Now()) || verifies(t, newSecret, req, clock.Now()) {
				t.Errorf("delivery %d after two rotations: third %v, second %v, first %v; want the last two only", i,
					verifies(t, thirdSecret, req, clock.Now()), verifies(t, secondSecret, req, clock.Now()), verifies(t, newSecret, req, clock.Now()))
			}
		}
	})
}
