package httpapi_test

// The processor event endpoints (SPEC §4.2) through the real server on a
// real store: deliveries signed as Stripe (stripe-go's test helper) and
// Adyen (the HMAC recipe) sign them reach the receiver as normalized
// events; a missing, wrong or stale signature answers 400, reaches nothing
// and is audited and limited like any authentication failure; an account
// that cannot take the delivery answers 404.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

const (
	eventsWhsec    = "whsec_httpapiEventsSecret0123456789"
	eventsOldWhsec = "whsec_httpapiPreviousSecret98765432"
)

// recordingInbox is the inbox's stand-in: it records what it is given,
// or fails.
type recordingInbox struct {
	mu     sync.Mutex
	events []ivrpay.ProcessorEvent
	fail   error
}

func (r *recordingInbox) ReceiveProcessorEvent(_ context.Context, e ivrpay.ProcessorEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, e)
	return nil
}

// take returns the events received since the last take.
func (r *recordingInbox) take() []ivrpay.ProcessorEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// eventServer is a server whose limiter counts in the store and audits to
// it, with a Stripe and an Adyen account holding events secrets and one
// Stripe account without.
type eventServer struct {
	url      string
	store    *sqlstore.Store
	srv      *httpapi.Server
	receiver *recordingInbox
}

func newEventServer(t *testing.T, engine string) *eventServer {
	t.Helper()
	ctx := context.Background()
	opts := paymentstest.Options(t)
	store := paymentstest.Open(t, engine, opts)
	encrypt := func(s string) string {
		ct, err := opts.Vault.Encrypt(s)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	for _, a := range []ivrpay.ProcessorAccount{
		{Name: "stripe-main", Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: encrypt("sk_test_51Events"), EventsSecretCiphertext: encrypt(eventsWhsec)},
		{Name: "stripe-quiet", Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: encrypt("sk_test_51Quiet")},
		{Name: "adyen-main", Kind: ivrpay.ProcessorKindAdyen, MerchantAccount: adyentest.MerchantAccount, SecretCiphertext: encrypt("AQEkey"),
			EventsSecretCiphertext: encrypt(adyentest.HMACKey)},
	} {
		if err := store.CreateProcessorAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	limiter := httpapi.NewSharedAuthLimiter(store, limiterSecret)
	limiter.Audit = store
	rcv := &recordingInbox{}
	services := httpapi.NewServices(store, opts.Payments(store))
	services.EventSecrets = &payments.AccountRouter{Store: store, Vault: opts.Vault}
	services.ProcessorEvents = rcv
	srv := &httpapi.Server{Logger: slog.New(slog.DiscardHandler), Limiter: limiter, BehindProxy: true, Services: services}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &eventServer{url: ts.URL, store: store, srv: srv, receiver: rcv}
}

// post delivers body to path with the headers given (name, value pairs),
// from the client address forwardedFor, and returns the answer.
func (s *eventServer) post(t *testing.T, path string, body []byte, forwardedFor string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Forwarded-For", forwardedFor)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func succeededIntent() map[string]any {
	return map[string]any{"id": "pi_3Endpoint", "object": "payment_intent", "amount": 1500, "amount_received": 1500,
		"amount_capturable": 0, "currency": "usd", "status": "succeeded", "metadata": map[string]any{"ivrpay_reference": "pyn_endpoint"}}
}

func TestStripeEventEndpoint(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := newEventServer(t, engine)
		const path = "/vendor/stripe/events/stripe-main"
		payload := stripetest.Event("evt_1Endpoint", "payment_intent.succeeded", succeededIntent())
		now := time.Now()

		t.Run("verified", func(t *testing.T) {
			for _, tc := range []struct {
				name, header string
			}{
				{"signed with the secret", stripetest.Sign(payload, now, eventsWhsec)},
				{"two v1 while the secret rolls", stripetest.Sign(payload, now, eventsOldWhsec, eventsWhsec)},
				{"the same delivery again", stripetest.Sign(payload, now, eventsWhsec)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					status, h, body := s.post(t, path, payload, "203.0.113.10", "Stripe-Signature", tc.header)
					if status != 200 || h.Get("Content-Type") != "application/json" || strings.TrimSpace(body) != `{"received":true}` {
						t.Fatalf("HTTP %d %q %s", status, h.Get("Content-Type"), body)
					}
					got := s.receiver.take()
					want := ivrpay.ProcessorEvent{Account: "stripe-main", Kind: "stripe", ID: "evt_1Endpoint", Type: "payment_intent.succeeded",
						Effect: ivrpay.EffectPaymentCaptured, PaymentReference: "pi_3Endpoint", Reference: "pyn_endpoint", Amount: 1500, Currency: "USD"}
					if len(got) != 1 {
						t.Fatalf("the receiver got %d events, want 1", len(got))
					}
					got[0].OccurredAt = time.Time{}
					if got[0] != want {
						t.Fatalf("the receiver got %+v\nwant %+v", got[0], want)
					}
				})
			}
			t.Run("an event ivrpay does not act on", func(t *testing.T) {
				p := stripetest.Event("evt_1Customer", "customer.created", map[string]any{"id": "cus_1", "object": "customer"})
				status, _, _ := s.post(t, path, p, "203.0.113.10", "Stripe-Signature", stripetest.Sign(p, now, eventsWhsec))
				if got := s.receiver.take(); status != 200 || len(got) != 1 || got[0].Effect != ivrpay.EffectNone || got[0].ID != "evt_1Customer" {
					t.Fatalf("HTTP %d, received %+v; want 200 and the event kept with effect NONE", status, got)
				}
			})
		})

		t.Run("refused", func(t *testing.T) {
			for _, tc := range []struct {
				name, path, header string
				body               []byte
				status             int
				authFailure        bool
			}{
				{"another secret", path, stripetest.Sign(payload, now, "whsec_someoneElse"), payload, 400, true},
				{"no signature", path, "", payload, 400, true},
				{"signed over 300 s ago", path, stripetest.Sign(payload, now.Add(-301*time.Second), eventsWhsec), payload, 400, true},
				{"the body changed", path, stripetest.Sign(payload, now, eventsWhsec), bytes.Replace(payload, []byte("1500"), []byte("15"), 1), 400, true},
				{"signed, but not an event", path, stripetest.Sign([]byte(`{"object":"v2.core.event"}`), now, eventsWhsec), []byte(`{"object":"v2.core.event"}`), 400, false},
				{"an unknown account", "/vendor/stripe/events/stripe-nobody", stripetest.Sign(payload, now, eventsWhsec), payload, 404, false},
				{"an account without an events secret", "/vendor/stripe/events/stripe-quiet", stripetest.Sign(payload, now, eventsWhsec), payload, 404, false},
				{"an Adyen account at the Stripe URL", "/vendor/stripe/events/adyen-main", stripetest.Sign(payload, now, eventsWhsec), payload, 404, false},
				{"a body over 1 MiB", path, stripetest.Sign(payload, now, eventsWhsec), bytes.Repeat([]byte(" "), httpapi.MaxProcessorEventBytes+1), 413, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					// Each case from an address of its own, so the audit rows are told apart.
					addr := "198.51.100." + string(rune('1'+len(tc.name)%9))
					before := auditedFailures(t, s, addr)
					status, h, body := s.post(t, tc.path, tc.body, addr, "Stripe-Signature", tc.header)
					if status != tc.status || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || body == "" {
						t.Fatalf("HTTP %d %q %q, want %d with a text", status, h.Get("Content-Type"), body, tc.status)
					}
					if strings.Contains(body, "stripe-nobody") || strings.Contains(body, "whsec_") && !strings.Contains(body, "NAME") {
						t.Fatalf("the answer echoes the URL or a secret: %q", body)
					}
					if got := s.receiver.take(); len(got) != 0 {
						t.Fatalf("the receiver got %+v", got)
					}
					if got := auditedFailures(t, s, addr) - before; (got == 1) != tc.authFailure || got > 1 {
						t.Fatalf("%d auth.failure counted for %s, want an authentication failure: %v", got, addr, tc.authFailure)
					}
				})
			}
		})

		t.Run("the receiver fails", func(t *testing.T) {
			s.receiver.mu.Lock()
			s.receiver.fail = errors.New("database gone")
			s.receiver.mu.Unlock()
			defer func() { s.receiver.mu.Lock(); s.receiver.fail = nil; s.receiver.mu.Unlock() }()
			status, _, body := s.post(t, path, payload, "203.0.113.10", "Stripe-Signature", stripetest.Sign(payload, now, eventsWhsec))
			if status != 500 || strings.Contains(body, "database gone") {
				t.Fatalf("HTTP %d %q; want 500 without the cause, so that Stripe delivers again", status, body)
			}
		})
	})
}

// auditedFailures flushes the limiter's audit rows and counts the
// auth.failure failures recorded for addr on the event endpoints.
func auditedFailures(t *testing.T, s *eventServer, addr string) int {
	t.Helper()
	events, _ := authFailureRows(t, s.srv, s.store)
	var mine []ivrpay.AuditEvent
	for _, e := range events {
		if e.ClientAddress == addr && strings.Contains(e.Detail, "route=POST /vendor/") {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		return 0
	}
	return countedFailures(t, mine)
}

func TestAdyenNotificationEndpoint(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := newEventServer(t, engine)
		const path = "/vendor/adyen/notifications/adyen-main"
		capture := adyentest.Item{EventCode: "CAPTURE", Success: true, PSPReference: "MOD0000000000001", OriginalReference: "PSP0000000000001",
			MerchantReference: "capture_pyn_1", Value: 1500, Currency: "USD"}
		refund := adyentest.Item{EventCode: "REFUND_FAILED", Success: true, PSPReference: "MOD0000000000002", OriginalReference: "PSP0000000000001",
			MerchantReference: "vor_1", Value: 500, Currency: "USD"}

		status, h, body := s.post(t, path, adyentest.Notification(adyentest.HMACKey, capture, refund), "203.0.113.20")
		if status != 200 || body != "[accepted]" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("HTTP %d %q %q; want 200 [accepted]", status, h.Get("Content-Type"), body)
		}
		got := s.receiver.take()
		if len(got) != 2 || got[0].ID != "MOD0000000000001:CAPTURE:true" || got[0].Effect != ivrpay.EffectPaymentCaptured ||
			got[0].Account != "adyen-main" || got[0].PaymentReference != "PSP0000000000001" ||
			got[1].Effect != ivrpay.EffectRefundFailed || got[1].RefundReference != "MOD0000000000002" {
			t.Fatalf("the receiver got %+v", got)
		}

		wrongKey := strings.Repeat("AB", 32)
		for _, tc := range []struct {
			name, path string
			body       []byte
			status     int
			audited    bool
		}{
			{"another key", path, adyentest.Notification(wrongKey, capture), 400, true},
			{"one item of two unsigned", path, bytes.Replace(adyentest.Notification(adyentest.HMACKey, capture, refund),
				[]byte(`"hmacSignature"`), []byte(`"signature"`), 1), 400, true},
			{"not a notification", path, []byte(`{"hello":"world"}`), 400, true},
			{"a Stripe account at the Adyen URL", "/vendor/adyen/notifications/stripe-main", adyentest.Notification(adyentest.HMACKey, capture), 404, false},
			{"an unknown account", "/vendor/adyen/notifications/adyen-other", adyentest.Notification(adyentest.HMACKey, capture), 404, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				addr := "198.51.100.1" + string(rune('0'+len(tc.name)%10))
				before := auditedFailures(t, s, addr)
				status, _, body := s.post(t, tc.path, tc.body, addr)
				if status != tc.status || body == "[accepted]" {
					t.Fatalf("HTTP %d %q, want %d", status, body, tc.status)
				}
				if got := s.receiver.take(); len(got) != 0 {
					t.Fatalf("the receiver got %+v: nothing of a refused delivery may be applied", got)
				}
				if got := auditedFailures(t, s, addr) - before; (got == 1) != tc.audited || got > 1 {
					t.Fatalf("%d auth.failure counted, want an authentication failure: %v", got, tc.audited)
				}
			})
		}
	})
}

// TestEventSignatureFailuresAreLimited: bad signatures for one account from
// one address are blocked after AuthFailureLimit (429 with Retry-After,
// even for a good signature); another account's events from the same
// address (a processor's shared sender) still go through, and so do the
// blocked account's from another address.
func TestEventSignatureFailuresAreLimited(t *testing.T) {
	t.Parallel()
	s := newEventServer(t, paymentstest.Engines(t)[0])
	payload := stripetest.Event("evt_1Limited", "payment_intent.succeeded", succeededIntent())
	bad := stripetest.Sign(payload, time.Now(), "whsec_guessing")
	for i := 1; i <= httpapi.AuthFailureLimit; i++ {
		if status, _, _ := s.post(t, "/vendor/stripe/events/stripe-main", payload, "192.0.2.7", "Stripe-Signature", bad); status != 400 {
			t.Fatalf("bad signature %d: HTTP %d, want 400", i, status)
		}
	}
	good := stripetest.Sign(payload, time.Now(), eventsWhsec)
	status, h, _ := s.post(t, "/vendor/stripe/events/stripe-main", payload, "192.0.2.7", "Stripe-Signature", good)
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("after %d bad signatures: HTTP %d Retry-After %q, want 429", httpapi.AuthFailureLimit, status, h.Get("Retry-After"))
	}
	if got := s.receiver.take(); len(got) != 0 {
		t.Fatalf("a blocked delivery reached the receiver: %+v", got)
	}
	notice := adyentest.Notification(adyentest.HMACKey, adyentest.Item{EventCode: "CAPTURE", Success: true, PSPReference: "MOD1", OriginalReference: "PSP1", Value: 1, Currency: "USD"})
	if status, _, _ := s.post(t, "/vendor/adyen/notifications/adyen-main", notice, "192.0.2.7"); status != 200 {
		t.Fatalf("another account's delivery from the same address: HTTP %d, want 200", status)
	}
	if status, _, _ := s.post(t, "/vendor/stripe/events/stripe-main", payload, "192.0.2.8", "Stripe-Signature", good); status != 200 {
		t.Fatalf("the account's delivery from another address: HTTP %d, want 200", status)
	}
	events, total := authFailureRows(t, s.srv, s.store)
	if total != httpapi.AuthFailureLimit || len(events) != 1 || !strings.Contains(events[0].Detail, "blocked_for") {
		t.Fatalf("auth.failure rows %+v counting %d; want one row of %d noting the block", events, total, httpapi.AuthFailureLimit)
	}
}
