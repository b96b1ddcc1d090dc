// Package loadtest drives a running ivrpay deployment with IVR charges as
// Twilio sends them, mixing in retries and concurrent duplicates of the same
// transaction_id, and audits the deployment's payins afterwards. `ivrpay
// loadtest` and the crash test use it.
package loadtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/twilio"
)

// Outcomes a load call can have besides a connector error_code.
const (
	outcomeCharged   = "OK"
	outcomeTransport = "TRANSPORT" // no answer: connection refused or reset
	outcomeTimeout   = "TIMEOUT"   // no answer within Options.Timeout
	outcomeCanceled  = "CANCELED"  // the run ended while the call was in flight
	outcomeDropped   = "DROPPED"   // open loop: Options.MaxInFlight calls were already running
	outcomeConfigErr = "CONFIG_"   // prefix: creating the payin config failed, with the REST error code
	outcomeHTTP      = "HTTP_"     // prefix: the connector answered with an unexpected HTTP status
	card             = "4111111111111111"
	postalCode       = "94111"
	cvv              = "123"
)

// Target is a deployment prepared for load: the merchant the payin configs
// are for and a restricted IVR key that can only run the charges.
type Target struct {
	Client *http.Client
	// BaseURLs are the deployment's server processes, used in turn; they may
	// change between runs (the crash test restarts its server on a new port).
	BaseURLs   []string
	AdminKey   string
	IVRKey     string
	PlatformID string
	MerchantID string
	Amount     int64
	// Sandbox is true when the deployment's ids carry the sbx_ prefix.
	Sandbox bool
	// runID makes this target's idempotency keys and transaction ids
	// unique. The counter after it follows an "n", so that the two never
	// read as one run of digits, which the card-number check could take for
	// a card (SPEC §9).
	runID string
	seq   atomic.Int64
	turn  atomic.Uint64
}

// baseURL is the next server process to send a request to.
func (t *Target) baseURL() string {
	return t.BaseURLs[t.turn.Add(1)%uint64(len(t.BaseURLs))]
}

// NewHTTPClient returns a client that keeps conns idle connections per
// host, so that a run does not open a new connection for every call.
func NewHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: tr}
}

// AdminClient is the REST client with the admin key for the next server process.
func (t *Target) AdminClient() *httpapi.Client {
	return &httpapi.Client{BaseURL: t.baseURL(), APIKey: t.AdminKey, HTTP: t.Client}
}

// Prepare finds an ACTIVE merchant of the admin key's platform (or creates
// one) and creates a restricted IVR key with payin:create on that platform.
func Prepare(ctx context.Context, client *http.Client, baseURLs []string, adminKey string, amount int64) (*Target, error) {
	var b [6]byte
	rand.Read(b[:])
	t := &Target{Client: client, AdminKey: adminKey, Amount: amount, runID: hex.EncodeToString(b[:])}
	for _, u := range baseURLs {
		t.BaseURLs = append(t.BaseURLs, strings.TrimRight(u, "/"))
	}
	merchants, err := t.AdminClient().ListMerchants(ctx, ivrpay.Page{Limit: ivrpay.MaxPageLimit})
	if err != nil {
		return nil, fmt.Errorf("list merchants: %w", err)
	}
	for _, m := range merchants.Results {
		if m.Status == ivrpay.MerchantStatusActive {
			t.MerchantID, t.PlatformID = m.ID, m.PlatformID
			break
		}
	}
	if t.MerchantID == "" {
		m, err := t.AdminClient().CreateMerchant(ctx, ivrpay.MerchantCreate{Name: "ivrpay loadtest merchant"})
		if err != nil {
			return nil, fmt.Errorf("create merchant: %w", err)
		}
		if m.Status != ivrpay.MerchantStatusActive {
			return nil, fmt.Errorf("merchant %s was created %s; activate it (ivrpay admin merchant activate %s) and run again", m.ID, m.Status, m.ID)
		}
		t.MerchantID, t.PlatformID = m.ID, m.PlatformID
	}
	t.Sandbox = strings.HasPrefix(t.MerchantID, "sbx_")
	statements := []ivrpay.Statement{{Permissions: []string{"payin:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: t.PlatformID}}}}
	key, err := t.AdminClient().CreateAPIKey(ctx, statements)
	if err != nil {
		return nil, fmt.Errorf("create the IVR key: %w", err)
	}
	t.IVRKey = key.Secret
	return t, nil
}

// createPayinConfig creates one payin config with a unique idempotency key.
func (t *Target) createPayinConfig(ctx context.Context, n int64) (string, error) {
	cfg, err := t.AdminClient().CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{
		MerchantID: t.MerchantID, IdempotencyKey: fmt.Sprintf("loadtest-%s-n%d", t.runID, n),
		Amount: json.Number(strconv.FormatInt(t.Amount, 10)), CurrencyCode: "USD", Metadata: json.RawMessage(`{"source":"ivrpay loadtest"}`),
	})
	if err != nil {
		return "", err
	}
	return cfg.ID, nil
}

// chargeBody is the connector request Twilio would send for a charge on
// cfgID: Basic auth aside, all-string JSON with a two-digit expiry year.
func (t *Target) chargeBody(txID, cfgID string) []byte {
	exp := time.Now().AddDate(2, 0, 0)
	b, _ := json.Marshal(twilio.ConnectorRequest{
		Method: twilio.MethodCharge, TransactionID: txID, CardNumber: card, CVV: cvv,
		ExpiryMonth: "12", ExpiryYear: exp.Format("06"), PostalCode: postalCode,
		Amount: twilio.FormatCents(t.Amount), CurrencyCode: "usd", Description: "ivrpay loadtest",
		Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfgID},
	})
	return b
}

// SendCharge posts a connector request with the IVR key and returns the raw
// answer; a non-200 status is returned with its body and no error.
func (t *Target) SendCharge(ctx context.Context, body []byte) (status int, answer []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, "POST", t.baseURL()+httpapi.ConnectorPath, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("api_key", t.IVRKey)
	resp, err := t.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

// RetryUntilAnswered sends a charge again until the server gives an answer
// that is not an internal error, as Twilio's retries would, or ctx ends.
func (t *Target) RetryUntilAnswered(ctx context.Context, body []byte) ([]byte, error) {
	for {
		status, answer, err := t.SendCharge(ctx, body)
		if err == nil && replayable(status, answer) {
			return answer, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer: last status %d, error %v, body %s", status, err, answer)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Options shape a run. Exactly one of Rate and Concurrency is positive.
type Options struct {
	// Rate is the open-loop arrival rate in calls per second.
	Rate float64
	// Concurrency is the number of closed-loop callers.
	Concurrency int
	Duration    time.Duration
	MaxCalls    int
	// MaxInFlight bounds the open loop's running calls.
	MaxInFlight       int
	RetryFraction     float64
	DuplicateFraction float64
	// Timeout bounds each request.
	Timeout time.Duration
	// Progress, when set, gets a progress line rewritten once a second.
	Progress io.Writer
	// OnCall, when set, sees every finished call (the crash test keeps them).
	OnCall func(Call)
}

// Connections is how many connections a run keeps open: one per caller and
// its concurrent duplicate, or one per call in flight in the open loop.
func (o Options) Connections() int {
	if o.Rate > 0 {
		return o.MaxInFlight
	}
	return o.Concurrency * 2
}

// Call is one finished call: a payin config and its charge.
type Call struct {
	TransactionID string
	PayinConfigID string
	// Request is the connector body, for a retry with the same transaction_id.
	Request []byte
	// Answer is the raw connector answer, nil when none came.
	Answer   []byte
	Response twilio.ConnectorResponse
	// Outcome is "OK", the answer's error_code, or another outcome (TRANSPORT, TIMEOUT, CANCELED, DROPPED, CONFIG_…, HTTP_…).
	Outcome string
	Latency time.Duration
}

// Charged reports whether the call was acknowledged with a charge_id.
func (c Call) Charged() bool { return c.Response.ID != "" }

// Retryable reports whether Twilio would retry the call's charge: it got no
// answer, or an internal error (which the deployment does not store).
func (c Call) Retryable() bool {
	switch c.Outcome {
	case outcomeTransport, outcomeTimeout, outcomeCanceled, ivrpay.ConnInternal:
		return true
	}
	return strings.HasPrefix(c.Outcome, outcomeHTTP)
}

// recorder collects results from the callers.
type recorder struct {
	mu         sync.Mutex
	chargeLat  []time.Duration
	configLat  []time.Duration
	outcomes   map[string]int
	calls      int
	charged    int
	retries    int
	concurrent int
	mismatches int
	samples    []string
	acked      map[string]string
	inFlight   atomic.Int64
}

func (r *recorder) mismatch(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mismatches++
	if len(r.samples) < 10 {
		r.samples = append(r.samples, fmt.Sprintf(format, args...))
	}
}

// Run sends calls until the duration, the call budget or ctx ends, and
// returns what it measured (without the audit).
func Run(ctx context.Context, t *Target, o Options) *Report {
	rec := &recorder{outcomes: map[string]int{}, acked: map[string]string{}}
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var budget atomic.Int64
	budget.Store(int64(o.MaxCalls))
	take := func() bool { return budget.Add(-1) >= 0 }

	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if o.Progress == nil {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := 0, start
		line := func() {
			rec.mu.Lock()
			calls, charged := rec.calls, rec.charged
			errs := calls - charged
			rec.mu.Unlock()
			now := time.Now()
			perS := float64(charged-last) / now.Sub(lastAt).Seconds()
			last, lastAt = charged, now
			fmt.Fprintf(o.Progress, "\r%5.0fs  calls %d  charged %d  errors %d  in flight %d  %.0f charges/s   ",
				now.Sub(start).Seconds(), calls, charged, errs, rec.inFlight.Load(), perS)
		}
		for {
			select {
			case <-stopProgress:
				line()
				fmt.Fprintln(o.Progress)
				return
			case <-tick.C:
				line()
			}
		}
	}()

	var wg sync.WaitGroup
	if o.Rate > 0 {
		interval := time.Duration(float64(time.Second) / o.Rate)
		next := time.Now()
	arrivals:
		for take() {
			select {
			case <-runCtx.Done():
				break arrivals
			case <-time.After(time.Until(next)):
			}
			next = next.Add(interval)
			if rec.inFlight.Load() >= int64(o.MaxInFlight) {
				rec.mu.Lock()
				rec.calls++
				rec.outcomes[outcomeDropped]++
				rec.mu.Unlock()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.call(ctx, o, rec)
			}()
		}
	} else {
		for range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil && take() {
					t.call(ctx, o, rec)
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	mode := fmt.Sprintf("closed loop, %d callers, %s", o.Concurrency, o.Duration)
	if o.Rate > 0 {
		mode = fmt.Sprintf("open loop, %g calls/s, %s", o.Rate, o.Duration)
	}
	return &Report{Mode: mode, BaseURL: strings.Join(t.BaseURLs, ","), Seconds: elapsed.Seconds(), Calls: rec.calls, Charged: rec.charged,
		ChargesPerS: float64(rec.charged) / elapsed.Seconds(), Latency: summarize(rec.chargeLat), ConfigLat: summarize(rec.configLat),
		Outcomes: rec.outcomes, Retries: rec.retries, Concurrent: rec.concurrent, Mismatches: rec.mismatches,
		MismatchSamples: rec.samples, acknowledged: rec.acked}
}

// call runs one call: a payin config, then its charge, sent twice at once
// for a fraction of calls and repeated after the answer for another
// fraction. A call that has started runs to its end even when the run's
// duration is over, so that every answer is known; only ctx stops it.
func (t *Target) call(ctx context.Context, o Options, rec *recorder) {
	rec.inFlight.Add(1)
	defer rec.inFlight.Add(-1)
	n := t.seq.Add(1)
	c := Call{TransactionID: fmt.Sprintf("lt-%s-n%d", t.runID, n)}
	defer func() {
		rec.mu.Lock()
		rec.calls++
		rec.outcomes[c.Outcome]++
		if c.Charged() {
			rec.charged++
			rec.acked[c.Response.ID] = c.TransactionID
		}
		if c.Answer != nil {
			rec.chargeLat = append(rec.chargeLat, c.Latency)
		}
		rec.mu.Unlock()
		if o.OnCall != nil {
			o.OnCall(c)
		}
	}()

	reqCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	began := time.Now()
	cfgID, err := t.createPayinConfig(reqCtx, n)
	cancel()
	if err != nil {
		c.Outcome = outcomeOf(err, ctx)
		if apiErr, ok := errors.AsType[*httpapi.Error](err); ok {
			c.Outcome = outcomeConfigErr + cmp.Or(apiErr.Code, "Unknown")
		}
		return
	}
	rec.mu.Lock()
	rec.configLat = append(rec.configLat, time.Since(began))
	rec.mu.Unlock()
	c.PayinConfigID, c.Request = cfgID, t.chargeBody(c.TransactionID, cfgID)

	send := func() (int, []byte, time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		began := time.Now()
		status, answer, err := t.SendCharge(ctx, c.Request)
		return status, answer, time.Since(began), err
	}
	dup, retry := mrand.Float64() < o.DuplicateFraction, mrand.Float64() < o.RetryFraction
	var status int
	var answer []byte
	if dup {
		type result struct {
			status int
			answer []byte
			err    error
		}
		second := make(chan result, 1)
		go func() {
			s, a, _, err := send()
			second <- result{s, a, err}
		}()
		status, answer, c.Latency, err = send()
		other := <-second
		rec.mu.Lock()
		rec.concurrent++
		rec.mu.Unlock()
		if err == nil && other.err == nil && replayable(status, answer) && replayable(other.status, other.answer) && !bytes.Equal(answer, other.answer) {
			rec.mismatch("concurrent duplicates of %s answered differently: %s vs %s", c.TransactionID, answer, other.answer)
		}
	} else {
		status, answer, c.Latency, err = send()
	}
	if err != nil {
		c.Outcome = outcomeOf(err, ctx)
		return
	}
	c.Answer = answer
	c.Outcome = outcomeHTTP + fmt.Sprint(status)
	if status == http.StatusOK {
		c.Outcome = "NO_CHARGE_ID"
		if jerr := json.Unmarshal(answer, &c.Response); jerr != nil {
			c.Outcome = outcomeHTTP + "200_NOT_JSON"
		} else if c.Response.ErrorCode != "" {
			c.Outcome = c.Response.ErrorCode
		} else if c.Response.ID != "" {
			c.Outcome = outcomeCharged
		}
	}
	if retry && replayable(status, answer) {
		s, again, _, err := send()
		rec.mu.Lock()
		rec.retries++
		rec.mu.Unlock()
		if err == nil && replayable(s, again) && !bytes.Equal(answer, again) {
			rec.mismatch("retry of %s answered differently: %s then %s", c.TransactionID, answer, again)
		}
	}
}

// replayable reports whether an answer is one the deployment stored and
// must therefore replay byte for byte: internal errors are not stored.
func replayable(status int, answer []byte) bool {
	if status != http.StatusOK {
		return false
	}
	var r twilio.ConnectorResponse
	return json.Unmarshal(answer, &r) == nil && r.ErrorCode != ivrpay.ConnInternal
}

func outcomeOf(err error, ctx context.Context) string {
	switch {
	case ctx.Err() != nil:
		return outcomeCanceled
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return outcomeTimeout
	}
	return outcomeTransport
}
