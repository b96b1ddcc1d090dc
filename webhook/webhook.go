// Package webhook delivers events from the durable outbox to the platforms'
// endpoints, signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com): headers webhook-id (the event id, the
// same on every attempt), webhook-timestamp (unix seconds of the attempt) and
// webhook-signature ("v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body", keyed with the base64-decoded part of the whsec_
// secret). The same three values are also sent as svix-id, svix-timestamp
// and svix-signature: Rainforest's webhooks come from Svix, which is Standard
// Webhooks under those names, and integrations written for Rainforest
// (OpenEMR's verifier, for one) read them. Delivery is at least once: a 2xx answer delivers; anything else is
// retried on a schedule, and a worker that dies mid-send loses only its lease.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// The same headers under Svix's names, which Rainforest integrations check.
const (
	HeaderSvixID        = "svix-id"
	HeaderSvixTimestamp = "svix-timestamp"
	HeaderSvixSignature = "svix-signature"
)

// Tolerance is how far a signed timestamp may be from the receiver's clock
// for Verify (Svix and Standard Webhooks both use five minutes).
const Tolerance = 5 * time.Minute

// Verify checks a delivery as a receiver does: timestamp (unix seconds)
// within Tolerance of now, and one of the space-separated "v1,<base64>"
// signatures equal to the HMAC-SHA256 of "id.timestamp.body" under the
// secret. Pass the svix-* or the webhook-* header values: they are the same.
func Verify(secret, id, timestamp, signatures string, body []byte, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || id == "" {
		return errors.New("webhook: missing id or timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("webhook: timestamp %s is more than %v from now", timestamp, Tolerance)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(signatures) {
		v, b64, ok := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("webhook: no valid v1 signature")
}

// DefaultSchedule is when attempts are made: the first at once, then after
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (about 28 hours in all); a
// delivery that no attempt delivered is then marked FAILED.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// secretKey decodes a "whsec_…" secret into its HMAC key.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("webhook: the signing secret is not whsec_ followed by base64")
	}
	return key, nil
}

// Sign returns the webhook-signature header value, "v1,<base64 signature>",
// of body sent as message msgID at timestamp (unix seconds).
func Sign(secret, msgID string, timestamp int64, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", msgID, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Signatures returns the webhook-signature header value for several secrets:
// the "v1,<base64 signature>" of each, space-separated, as Standard Webhooks
// allows while a secret is being rotated (a receiver accepts any one).
func Signatures(secrets []string, msgID string, timestamp int64, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		sig, err := Sign(secret, msgID, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return "", errors.New("webhook: no signing secret")
	}
	return strings.Join(sigs, " "), nil
}

// recordTimeout bounds the recording of one attempt, and leaseMargin is what
// a lease holds beyond the attempt and its recording: the time the claim
// itself took, and clocks of processes that differ by a few seconds.
// claimTimeout bounds one claim.
const (
	recordTimeout = 10 * time.Second
	leaseMargin   = 5 * time.Second
	claimTimeout  = 30 * time.Second
)

// Worker drains the outbox: it claims due deliveries with a lease, sends
// them, and records every attempt. Several workers, in one process or in
// many sharing one database, never send one attempt twice: a worker claims
// only as many deliveries as it has free slots, starts each at once, and
// its lease (Timeout + 15 s) outlasts the attempt and its recording; an
// attempt that could not start in time is left for the lease to run out.
//
// Delivery is fair between platforms: each claim gives platforms turns, the
// platforms with the fewest deliveries in flight first, and one platform
// holds at most PlatformConcurrency of the Concurrency slots, so slow or
// dead endpoints of one platform leave slots free for the others.
type Worker struct {
	Outbox ivrpay.WebhookOutbox
	// Client sends the requests; nil means NewClient(AllowPrivate, Timeout).
	Client *http.Client
	// AllowPrivate lets deliveries reach loopback and private addresses
	// (sandbox). Without it the client refuses to connect to any address
	// that is not public, whatever the URL's host resolves to at send time.
	AllowPrivate bool
	// Schedule is the delay before each attempt (Schedule[0], the first
	// attempt, is at once); nil means DefaultSchedule.
	Schedule []time.Duration
	// PollInterval is how often the outbox is asked for due deliveries
	// (default 1 s); a slot that frees asks at once.
	PollInterval time.Duration
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Concurrency is how many deliveries are sent at once (default 16), and
	// PlatformConcurrency how many of them may be one platform's (default
	// half of Concurrency, at least 1).
	Concurrency         int
	PlatformConcurrency int
	// Clock is the outbox's clock (leases end by it); nil means the system clock.
	Clock  ivrpay.Clock
	Logger *slog.Logger

	once sync.Once
}

func (w *Worker) defaults() {
	w.once.Do(func() {
		if w.Schedule == nil {
			w.Schedule = DefaultSchedule
		}
		if w.PollInterval <= 0 {
			w.PollInterval = time.Second
		}
		if w.Timeout <= 0 {
			w.Timeout = 10 * time.Second
		}
		if w.Concurrency <= 0 {
			w.Concurrency = 16
		}
		if w.PlatformConcurrency <= 0 {
			w.PlatformConcurrency = max(w.Concurrency/2, 1)
		}
		if w.Clock == nil {
			w.Clock = ivrpay.SystemClock{}
		}
		if w.Logger == nil {
			w.Logger = slog.New(slog.DiscardHandler)
		}
		if w.Client == nil {
			w.Client = NewClient(w.AllowPrivate, w.Timeout)
		}
	})
}

// lease is how long a claim holds its deliveries: one attempt, its
// recording, and leaseMargin.
func (w *Worker) lease() time.Duration { return w.Timeout + recordTimeout + leaseMargin }

// Run delivers until ctx is done. Whenever slots are free (at every poll,
// and as soon as an attempt ends) it claims that many deliveries and starts
// each at once. Attempts in flight when ctx ends are finished (each within
// Timeout) and recorded, so a graceful stop leaves no lease behind; a killed
// process leaves its leases, which run out, and those deliveries are sent
// again with the same webhook-id.
func (w *Worker) Run(ctx context.Context) {
	w.defaults()
	var (
		mu       sync.Mutex
		busy     = map[string]int{} // deliveries in flight, by platform
		inFlight int
		wg       sync.WaitGroup
	)
	freed := make(chan struct{}, 1)
	defer wg.Wait()
	for ctx.Err() == nil {
		mu.Lock()
		free, snapshot := w.Concurrency-inFlight, maps.Clone(busy)
		mu.Unlock()
		if free > 0 {
			batch, err := w.claim(ctx, free, snapshot)
			if err != nil && ctx.Err() == nil {
				w.Logger.Error("webhook delivery claim failed", "error", err)
			}
			for _, d := range batch {
				mu.Lock()
				busy[d.PlatformID]++
				inFlight++
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := w.deliver(ctx, d); err != nil {
						w.Logger.Error("webhook attempt not recorded", "event_id", d.EventID, "webhook_endpoint_id", d.EndpointID, "error", err)
					}
					mu.Lock()
					if busy[d.PlatformID]--; busy[d.PlatformID] == 0 {
						delete(busy, d.PlatformID)
					}
					inFlight--
					mu.Unlock()
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
		}
		select {
		case <-ctx.Done():
		case <-freed:
		case <-time.After(w.PollInterval):
		}
	}
}

// RunOnce claims one pass of due deliveries (as many as Concurrency, in
// turns by platform), sends them and records the attempts. It returns how
// many deliveries it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	batch, err := w.claim(ctx, w.Concurrency, nil)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i, d := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.deliver(ctx, d)
		}()
	}
	wg.Wait()
	return len(batch), errors.Join(errs...)
}

// claim asks the outbox for up to limit deliveries, busy counting what this
// worker is sending now. It is not cut short by ctx: a claim committed but
// not returned would hold its deliveries for a whole lease with nobody
// sending them.
func (w *Worker) claim(ctx context.Context, limit int, busy map[string]int) ([]ivrpay.ClaimedDelivery, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	return w.Outbox.ClaimWebhookDeliveries(cctx, ivrpay.WebhookClaim{Limit: limit, PerPlatform: w.PlatformConcurrency,
		Busy: busy, Lease: w.lease()})
}

// deliver makes one claimed attempt and records it. A claimed attempt runs
// to its end and is recorded even when ctx ends meanwhile: it is bounded by
// Timeout.
func (w *Worker) deliver(ctx context.Context, d ivrpay.ClaimedDelivery) error {
	ctx = context.WithoutCancel(ctx)
	a, sent := w.attempt(ctx, d)
	if !sent {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	return w.Outbox.RecordWebhookAttempt(rctx, a)
}

// attempt sends one delivery and decides what follows it. It sends nothing
// (sent is false) when the lease leaves no time for it: the claim took so
// long that another worker could take the delivery over before the attempt
// is recorded.
func (w *Worker) attempt(ctx context.Context, d ivrpay.ClaimedDelivery) (a ivrpay.WebhookAttempt, sent bool) {
	start := w.Clock.Now()
	a = ivrpay.WebhookAttempt{EventID: d.EventID, EndpointID: d.EndpointID, LeaseToken: d.LeaseToken, Attempt: d.Attempt, AttemptedAt: start}
	budget := min(w.Timeout, d.LeaseExpiresAt.Add(-recordTimeout-leaseMargin).Sub(start))
	if budget <= 0 {
		w.Logger.Warn("webhook attempt not started: its lease ran out during the claim; it is sent once the lease ends",
			"event_id", d.EventID, "webhook_endpoint_id", d.EndpointID, "attempt", d.Attempt)
		return a, false
	}
	status, err := w.send(ctx, d, start, budget)
	a.Duration = w.Clock.Now().Sub(start)
	a.StatusCode = status
	switch {
	case err != nil:
		a.Error = err.Error()
	case status < 200 || status > 299:
		a.Error = fmt.Sprintf("the endpoint answered %d %s; only a 2xx status delivers", status, http.StatusText(status))
	default:
		a.Delivered = true
		return a, true
	}
	if d.Attempt < len(w.Schedule) {
		a.RetryIn = w.Schedule[d.Attempt]
	} else {
		a.GiveUp = true
	}
	w.Logger.Warn("webhook attempt failed", "event_id", d.EventID, "webhook_endpoint_id", d.EndpointID,
		"attempt", d.Attempt, "status_code", status, "error", a.Error, "give_up", a.GiveUp)
	return a, true
}

// send posts the delivery, signed with every one of its secrets, and waits
// at most budget for the answer.
func (w *Worker) send(ctx context.Context, d ivrpay.ClaimedDelivery, now time.Time, budget time.Duration) (int, error) {
	ts := now.Unix()
	sig, err := Signatures(d.Secrets, d.EventID, ts, d.Payload)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ivrpay-webhooks/1")
	req.Header.Set(HeaderID, d.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set(HeaderSvixID, d.EventID)
	req.Header.Set(HeaderSvixTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSvixSignature, sig)
	resp, err := w.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// NewClient returns the HTTP client deliveries use: no proxy, no redirects
// (a 3xx is not a delivery), a timeout per attempt, and, unless allowPrivate,
// a dialer that refuses every address that is not public. Checking the
// address at connect time, not only when the endpoint was created, keeps a
// host whose DNS answer changes from turning the worker against internal
// systems.
func NewClient(allowPrivate bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			addr, err := netip.ParseAddr(host)
			if err != nil || !ivrpay.IsPublicAddr(addr) {
				return fmt.Errorf("refusing to connect to %s: webhooks are only sent to public addresses", host)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
