package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/webhook"
)

// stallingEndpoints are webhook receivers that never answer in time: each
// request blocks until release is closed or the sender gives up. They count
// the requests that arrived, are open, and have ended, and which delivery
// (endpoint, webhook-id) each request was for.
type stallingEndpoints struct {
	servers []*httptest.Server
	release chan struct{}
	once    sync.Once
	arrived atomic.Int64
	open    atomic.Int64
	ended   atomic.Int64

	mu    sync.Mutex
	sends map[string]int // "endpoint URL|webhook-id" → requests received
}

func newStallingEndpoints(t *testing.T, n int) *stallingEndpoints {
	s := &stallingEndpoints{release: make(chan struct{}), sends: map[string]int{}}
	for range n {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.arrived.Add(1)
			s.open.Add(1)
			s.mu.Lock()
			s.sends[srv.URL+"|"+r.Header.Get("webhook-id")]++
			s.mu.Unlock()
			defer func() { s.open.Add(-1); s.ended.Add(1) }()
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		s.servers = append(s.servers, srv)
	}
	t.Cleanup(func() {
		s.releaseAll()
		for _, srv := range s.servers {
			srv.Close()
		}
	})
	return s
}

// releaseAll answers every open request and every later one at once.
func (s *stallingEndpoints) releaseAll() { s.once.Do(func() { close(s.release) }) }

// sendsTo returns how many requests the endpoint at url got for event id.
func (s *stallingEndpoints) sendsTo(url, eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends[url+"|"+eventID]
}

func (s *stallingEndpoints) totalSends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.sends {
		n += c
	}
	return n
}

// register creates one webhook endpoint of f's platform per stalling server.
func (s *stallingEndpoints) register(t *testing.T, f *fixture) []*ivrpay.WebhookEndpoint {
	t.Helper()
	var eps []*ivrpay.WebhookEndpoint
	for _, srv := range s.servers {
		ep, err := f.s.CreateWebhookEndpoint(f.adminCtx, ivrpay.WebhookEndpointCreate{URL: srv.URL + "/stall"})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	return eps
}

// TestStallingPlatformDoesNotDelayOthers: one platform's 16 endpoints (the
// most a platform may have) all stall, over real HTTP on loopback, and the
// delivery worker runs with its defaults and a one-minute attempt timeout.
// Another platform's events, written while every one of those attempts is
// open, are delivered while they are all still open: the stalled platform
// takes only its share of the worker, so another platform waits for no
// attempt timeout (SPEC §7). Before the fix a pass waited for its whole batch
// and the other platform's delivery came only after the stalled attempts
// timed out.
func TestStallingPlatformDoesNotDelayOthers(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		s := paymentstest.Open(t, engine, paymentstest.Options(t))
		slow, healthy := newFixture(t, s), newFixture(t, s)
		stalls := newStallingEndpoints(t, ivrpay.MaxWebhookEndpointsPerPlatform)
		stalls.register(t, slow)
		rcv := newReceiver(t)
		ep, err := s.CreateWebhookEndpoint(healthy.adminCtx, ivrpay.WebhookEndpointCreate{URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret

		const timeout = time.Minute
		defer startWorker(&webhook.Worker{Outbox: s, AllowPrivate: true, Schedule: testSchedule,
			PollInterval: 10 * time.Millisecond, Timeout: timeout})()
		defer stalls.releaseAll() // before the worker stops, which waits for its attempts
		// payin.processing and payment_method.active to each of 16 endpoints.
		slow.charge(t, 1500)
		waitUntil(t, "the stalling platform's attempts to be open", 10*time.Second, func() bool { return stalls.open.Load() > 0 })
		time.Sleep(50 * time.Millisecond) // let the worker fill what it will with the stalled platform
		openBefore := stalls.open.Load()

		healthy.charge(t, 800)
		waitUntil(t, "the other platform's two events while the stalled attempts are open", 20*time.Second, func() bool {
			got, _ := rcv.snapshot()
			return len(got) == 2
		}, func() string {
			return fmt.Sprintf("stalled requests: %d arrived, %d open, %d ended", stalls.arrived.Load(), stalls.open.Load(), stalls.ended.Load())
		})
		if n := stalls.ended.Load(); n != 0 {
			t.Fatalf("%d stalled attempts ended before the other platform's delivery: it waited for an attempt timeout", n)
		}
		if open := stalls.open.Load(); open < openBefore {
			t.Fatalf("stalled attempts open: %d before, %d after the other platform's delivery", openBefore, open)
		}
		if _, bad := rcv.snapshot(); len(bad) > 0 {
			t.Fatalf("the receiver refused deliveries: %v", bad)
		}
	})
}

// TestTwoProcessesSendEachAttemptOnce runs two stores (two processes) on one
// database, each with a delivery worker of 4 slots and a 2-second attempt
// timeout, while one platform's 16 endpoints stall until the sender gives
// up: 32 stalled deliveries take far longer than one lease. Every delivery
// must reach its endpoint exactly as many times as attempts were recorded
// (once): a claim's lease outlasts the work claimed, so the other process
// never takes over an attempt still to be sent. Before the fix a worker
// claimed 50 deliveries at a time for one lease and sent the last of them
// after it ran out, when the other process had claimed and sent them too.
func TestTwoProcessesSendEachAttemptOnce(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		dsn, opts := paymentstest.DSN(t, engine), paymentstest.Options(t)
		var stores []*sqlstore.Store
		for range 2 {
			s, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			stores = append(stores, s)
		}
		slow, healthy := newFixture(t, stores[0]), newFixture(t, stores[1])
		stalls := newStallingEndpoints(t, ivrpay.MaxWebhookEndpointsPerPlatform)
		endpoints := stalls.register(t, slow)
		rcv := newReceiver(t)
		ep, err := stores[1].CreateWebhookEndpoint(healthy.adminCtx, ivrpay.WebhookEndpointCreate{URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret

		// One attempt each: the retry is an hour away.
		schedule := []time.Duration{0, time.Hour}
		var stops []func()
		for _, s := range stores {
			stops = append(stops, startWorker(&webhook.Worker{Outbox: s, AllowPrivate: true, Schedule: schedule,
				PollInterval: 20 * time.Millisecond, Timeout: 2 * time.Second, Concurrency: 4}))
		}
		slow.charge(t, 1500)
		healthy.charge(t, 800)
		attempted := func() bool {
			for _, e := range endpoints {
				ds := deliveries(t, slow.adminCtx, stores[0], e.ID)
				if len(ds) != 2 {
					return false
				}
				for _, d := range ds {
					if d.AttemptCount == 0 {
						return false
					}
				}
			}
			got, _ := rcv.snapshot()
			return len(got) == 2
		}
		waitUntil(t, "one attempt of every delivery", 90*time.Second, attempted, func() string {
			return fmt.Sprintf("stalled requests: %d arrived, %d open, %d ended", stalls.arrived.Load(), stalls.open.Load(), stalls.ended.Load())
		})
		for _, stop := range stops {
			stop() // finishes and records what is in flight
		}

		recorded := 0
		for _, e := range endpoints {
			for _, d := range deliveries(t, slow.adminCtx, stores[0], e.ID) {
				recorded += len(d.Attempts)
				if n := stalls.sendsTo(strings.TrimSuffix(e.URL, "/stall"), d.EventID); n != len(d.Attempts) {
					t.Errorf("delivery of %s to %s: %d requests for %d recorded attempts", d.EventID, e.ID, n, len(d.Attempts))
				}
			}
		}
		if sends := stalls.totalSends(); sends != recorded {
			t.Errorf("the stalling endpoints got %d requests for %d recorded attempts", sends, recorded)
		}
		got, bad := rcv.snapshot()
		if len(bad) > 0 {
			t.Fatalf("the receiver refused deliveries: %v", bad)
		}
		for id, bodies := range got {
			if len(bodies) != 1 {
				t.Errorf("the other platform's event %s was sent %d times", id, len(bodies))
			}
		}
	})
}
