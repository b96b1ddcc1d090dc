package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
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
	outcomeTimeout   = "TIMEOUT"   // no answer within --timeout
	outcomeCanceled  = "CANCELED"  // the run ended while the call was in flight
	outcomeDropped   = "DROPPED"   // open loop: --max-inflight calls were already running
	outcomeConfigErr = "CONFIG_"   // prefix: creating the payin config failed, with the REST error code
	outcomeHTTP      = "HTTP_"     // prefix: the connector answered with an unexpected HTTP status
	loadtestCard     = "4111111111111111"
	loadtestPostal   = "94111"
	loadtestCVV      = "123"
)

// runLoadtest is `ivrpay loadtest`: it drives a running deployment with IVR
// charges, each one a fresh payin config and a connector charge as Twilio
// sends it, mixes in retries and concurrent duplicates of the same
// transaction_id, and then checks the deployment's payins for duplicates. It
// exits 1 when any duplicate payin, mismatched replay or lost charge is found.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseURL := fs.String("base-url", "", "URL of the deployment to drive, e.g. http://127.0.0.1:8080; several, comma-separated, are used in turn (server processes sharing one database)")
	apiKey := fs.String("api-key", "", "a platform admin key (group#all) of that deployment")
	rate := fs.Float64("rate", 0, "open loop: start this many calls per second whatever the server's pace")
	concurrency := fs.Int("concurrency", 0, "closed loop: this many callers, each starting its next call when its last one ends (default 8)")
	duration := fs.Duration("duration", 10*time.Second, "how long to start calls")
	maxCalls := fs.Int("max-calls", 100000, "start at most this many calls")
	maxInFlight := fs.Int("max-inflight", 1000, "open loop: calls that may run at once; arrivals beyond it are counted as DROPPED")
	retryFraction := fs.Float64("retry-fraction", 0.10, "fraction of answered charges sent again with the same transaction_id (the answer must be byte-identical)")
	dupFraction := fs.Float64("duplicate-fraction", 0.02, "fraction of charges sent twice at once with the same transaction_id")
	amount := fs.Int64("amount", 1000, "payin config amount in cents (avoid the sandbox's special amounts 5101 to 5110)")
	timeout := fs.Duration("timeout", twilio.DefaultTimeout, "how long each request may take, like Twilio's connector timeout")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	allowProduction := fs.Bool("allow-production", false, "drive a deployment whose ids are not sandbox ids")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  ivrpay loadtest --base-url URL --api-key ADMIN_KEY [--rate R | --concurrency C] --duration D

Drives a running deployment with IVR charges: with the admin key it finds or creates an ACTIVE merchant,
creates a restricted IVR key (payin:create) and, for each call, a payin config; then it posts the charge to
/vendor/twilio/pay_generic as Twilio does (card 4111 1111 1111 1111). Some charges are retried with the same
transaction_id, some sent twice at once; every replay must be byte-identical. Afterwards it pages through
GET /v1/payins?source=IVR and counts duplicate payins per config and per transaction_id. It prints
throughput, latency percentiles and errors by error_code, and exits 1 on any duplicate or mismatch.
A progress line on stderr is updated once a second.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "ivrpay loadtest: "+format+"\n", args...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *baseURL == "":
		return usage("--base-url is required")
	case *apiKey == "":
		return usage("--api-key is required (a platform admin key, e.g. the one `ivrpay serve` prints on a new sandbox)")
	case *rate > 0 && *concurrency > 0:
		return usage("give --rate (open loop) or --concurrency (closed loop), not both")
	case *rate < 0 || *concurrency < 0 || *duration <= 0 || *maxCalls <= 0 || *maxInFlight <= 0 || *timeout <= 0:
		return usage("--rate, --concurrency, --duration, --max-calls, --max-inflight and --timeout must be positive")
	case *retryFraction < 0 || *retryFraction > 1 || *dupFraction < 0 || *dupFraction > 1:
		return usage("--retry-fraction and --duplicate-fraction must be between 0 and 1")
	case *amount <= 0:
		return usage("--amount must be positive")
	}
	baseURLs := strings.Split(*baseURL, ",")
	for _, b := range baseURLs {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usage("--base-url must be http(s) URLs, e.g. http://127.0.0.1:8080")
		}
	}
	o := loadOptions{Rate: *rate, Concurrency: *concurrency, Duration: *duration, MaxCalls: *maxCalls, MaxInFlight: *maxInFlight,
		RetryFraction: *retryFraction, DuplicateFraction: *dupFraction, Timeout: *timeout, Progress: stderr}
	if o.Rate == 0 && o.Concurrency == 0 {
		o.Concurrency = 8
	}
	conns := o.Concurrency * 2
	if o.Rate > 0 {
		conns = o.MaxInFlight
	}
	target, err := prepareLoadTarget(ctx, newLoadClient(conns), baseURLs, *apiKey, *amount)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay loadtest: %v\n", err)
		return 1
	}
	if !target.Sandbox && !*allowProduction {
		fmt.Fprintf(stderr, "ivrpay loadtest: %s is not a sandbox deployment (merchant %s); refusing without --allow-production\n", *baseURL, target.MerchantID)
		return 1
	}
	report := runLoad(ctx, target, o)
	auditCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	report.Audit, err = target.auditIVRPayins(auditCtx, report.acknowledged)
	if err != nil {
		report.AuditError = err.Error()
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else {
		report.print(stdout)
	}
	if !report.OK() {
		return 1
	}
	return 0
}

// loadTarget is a deployment prepared for load: the merchant the payin
// configs are for and a restricted IVR key that can only run the charges.
type loadTarget struct {
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
	// runID makes this target's idempotency keys and transaction ids unique.
	runID string
	seq   atomic.Int64
	turn  atomic.Uint64
}

// baseURL is the next server process to send a request to.
func (t *loadTarget) baseURL() string {
	return t.BaseURLs[t.turn.Add(1)%uint64(len(t.BaseURLs))]
}

func newLoadClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: tr}
}

// prepareLoadTarget finds an ACTIVE merchant of the admin key's platform (or
// creates one) and creates a restricted IVR key with payin:create on that platform.
func prepareLoadTarget(ctx context.Context, client *http.Client, baseURLs []string, adminKey string, amount int64) (*loadTarget, error) {
	var b [6]byte
	rand.Read(b[:])
	t := &loadTarget{Client: client, AdminKey: adminKey, Amount: amount, runID: hex.EncodeToString(b[:])}
	for _, u := range baseURLs {
		t.BaseURLs = append(t.BaseURLs, strings.TrimRight(u, "/"))
	}
	var merchants ivrpay.List[struct {
		ID         string `json:"merchant_id"`
		PlatformID string `json:"platform_id"`
		Status     string `json:"status"`
	}]
	if err := t.rest(ctx, "GET", "/v1/merchants?limit=1000", nil, &merchants); err != nil {
		return nil, fmt.Errorf("list merchants: %w", err)
	}
	for _, m := range merchants.Results {
		if m.Status == ivrpay.MerchantStatusActive {
			t.MerchantID, t.PlatformID = m.ID, m.PlatformID
			break
		}
	}
	if t.MerchantID == "" {
		var m struct {
			ID         string `json:"merchant_id"`
			PlatformID string `json:"platform_id"`
			Status     string `json:"status"`
		}
		if err := t.rest(ctx, "POST", "/v1/merchants", map[string]string{"name": "ivrpay loadtest merchant"}, &m); err != nil {
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
	var key struct {
		Secret string `json:"api_key"`
	}
	if err := t.rest(ctx, "POST", "/v1/api_keys", map[string]any{"statements": statements}, &key); err != nil {
		return nil, fmt.Errorf("create the IVR key: %w", err)
	}
	t.IVRKey = key.Secret
	return t, nil
}

// restError is a /v1 error answer.
type restError struct {
	Status  int
	Code    string
	Message string
}

func (e *restError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// rest calls the REST API with the admin key and decodes the envelope's data into into.
func (t *loadTarget) rest(ctx context.Context, method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.baseURL()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.AdminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return &restError{Status: resp.StatusCode, Code: "NotJSON", Message: truncateText(string(raw), 200)}
	}
	if resp.StatusCode != http.StatusOK {
		e := &restError{Status: resp.StatusCode, Code: "Unknown"}
		if len(env.Errors) > 0 {
			e.Code, e.Message = env.Errors[0].Code, env.Errors[0].Message
		}
		return e
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(env.Data, into)
}

// createPayinConfig creates one payin config with a unique idempotency key.
func (t *loadTarget) createPayinConfig(ctx context.Context, n int64) (string, error) {
	var cfg struct {
		ID string `json:"payin_config_id"`
	}
	err := t.rest(ctx, "POST", "/v1/payin_configs", map[string]any{
		"merchant_id": t.MerchantID, "idempotency_key": fmt.Sprintf("loadtest-%s-%d", t.runID, n),
		"amount": t.Amount, "currency_code": "USD", "metadata": map[string]string{"source": "ivrpay loadtest"},
	}, &cfg)
	return cfg.ID, err
}

// chargeBody is the connector request Twilio would send for a charge on
// cfgID: Basic auth aside, all-string JSON with a two-digit expiry year.
func (t *loadTarget) chargeBody(txID, cfgID string) []byte {
	exp := time.Now().AddDate(2, 0, 0)
	b, _ := json.Marshal(twilio.ConnectorRequest{
		Method: twilio.MethodCharge, TransactionID: txID, CardNumber: loadtestCard, CVV: loadtestCVV,
		ExpiryMonth: "12", ExpiryYear: exp.Format("06"), PostalCode: loadtestPostal,
		Amount: twilio.FormatCents(t.Amount), CurrencyCode: "usd", Description: "ivrpay loadtest",
		Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfgID},
	})
	return b
}

// sendCharge posts a connector request with the IVR key and returns the raw
// answer; a non-200 status is returned with its body and no error.
func (t *loadTarget) sendCharge(ctx context.Context, body []byte) (status int, answer []byte, err error) {
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

// loadOptions shape a run. Exactly one of Rate and Concurrency is positive.
type loadOptions struct {
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
	OnCall func(loadCall)
}

// loadCall is one finished call: a payin config and its charge.
type loadCall struct {
	TransactionID string
	PayinConfigID string
	// Request is the connector body, for a retry with the same transaction_id.
	Request []byte
	// Answer is the raw connector answer, nil when none came.
	Answer   []byte
	Response twilio.ConnectorResponse
	// Outcome is outcomeCharged, the answer's error_code, or one of the other outcome constants.
	Outcome string
	Latency time.Duration
}

// Charged reports whether the call was acknowledged with a charge_id.
func (c loadCall) Charged() bool { return c.Response.ID != "" }

// loadReport is what a run measured.
type loadReport struct {
	Mode        string         `json:"mode"`
	BaseURL     string         `json:"base_url"`
	Seconds     float64        `json:"seconds"`
	Calls       int            `json:"calls"`
	Charged     int            `json:"charged"`
	ChargesPerS float64        `json:"charges_per_second"`
	Latency     latencySummary `json:"charge_latency_ms"`
	ConfigLat   latencySummary `json:"config_latency_ms"`
	Outcomes    map[string]int `json:"outcomes"`
	Retries     int            `json:"retries"`
	Concurrent  int            `json:"concurrent_duplicates"`
	Mismatches  int            `json:"mismatches"`
	// MismatchSamples shows the first few mismatches.
	MismatchSamples []string          `json:"mismatch_samples,omitempty"`
	Audit           *payinAudit       `json:"audit"`
	AuditError      string            `json:"audit_error,omitempty"`
	acknowledged    map[string]string // charge_id → transaction_id
}

// OK reports whether the run found no duplicate, mismatch or lost charge.
func (r *loadReport) OK() bool {
	return r.Mismatches == 0 && r.AuditError == "" && (r.Audit == nil || r.Audit.OK())
}

// latencySummary holds percentiles in milliseconds.
type latencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	return latencySummary{N: len(d), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(d[len(d)-1]) / float64(time.Millisecond)}
}

// loadRecorder collects results from the callers.
type loadRecorder struct {
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

func (r *loadRecorder) mismatch(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mismatches++
	if len(r.samples) < 10 {
		r.samples = append(r.samples, fmt.Sprintf(format, args...))
	}
}

// runLoad sends calls until the duration, the call budget or ctx ends, and
// returns what it measured (without the audit).
func runLoad(ctx context.Context, t *loadTarget, o loadOptions) *loadReport {
	rec := &loadRecorder{outcomes: map[string]int{}, acked: map[string]string{}}
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
	return &loadReport{Mode: mode, BaseURL: strings.Join(t.BaseURLs, ","), Seconds: elapsed.Seconds(), Calls: rec.calls, Charged: rec.charged,
		ChargesPerS: float64(rec.charged) / elapsed.Seconds(), Latency: summarize(rec.chargeLat), ConfigLat: summarize(rec.configLat),
		Outcomes: rec.outcomes, Retries: rec.retries, Concurrent: rec.concurrent, Mismatches: rec.mismatches,
		MismatchSamples: rec.samples, acknowledged: rec.acked}
}

// call runs one call: a payin config, then its charge, sent twice at once
// for a fraction of calls and repeated after the answer for another
// fraction. A call that has started runs to its end even when the run's
// duration is over, so that every answer is known; only ctx stops it.
func (t *loadTarget) call(ctx context.Context, o loadOptions, rec *loadRecorder) {
	rec.inFlight.Add(1)
	defer rec.inFlight.Add(-1)
	n := t.seq.Add(1)
	c := loadCall{TransactionID: fmt.Sprintf("lt-%s-%d", t.runID, n)}
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
		var re *restError
		if errors.As(err, &re) {
			c.Outcome = outcomeConfigErr + re.Code
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
		status, answer, err := t.sendCharge(ctx, c.Request)
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

// payinAudit is what GET /v1/payins?source=IVR shows after a run.
type payinAudit struct {
	IVRPayins int `json:"ivr_payins"`
	// DuplicateConfigs counts configs with more than one approved (live) payin.
	DuplicateConfigs int `json:"duplicate_configs"`
	// DuplicateTransactions counts transaction_ids with more than one payin.
	DuplicateTransactions int `json:"duplicate_transactions"`
	// MissingCharges counts acknowledged charge_ids with no payin, or with a
	// payin of another transaction_id.
	MissingCharges int      `json:"missing_charges"`
	Samples        []string `json:"samples,omitempty"`
}

// OK reports whether the audit found nothing wrong.
func (a *payinAudit) OK() bool {
	return a.DuplicateConfigs == 0 && a.DuplicateTransactions == 0 && a.MissingCharges == 0
}

func (a *payinAudit) sample(format string, args ...any) {
	if len(a.Samples) < 10 {
		a.Samples = append(a.Samples, fmt.Sprintf(format, args...))
	}
}

// auditIVRPayins pages through every IVR payin of the platform and counts
// configs with two approved payins, transaction_ids with two payins, and
// acknowledged charges (charge_id → transaction_id) that have no payin.
func (t *loadTarget) auditIVRPayins(ctx context.Context, acknowledged map[string]string) (*payinAudit, error) {
	type payin struct {
		ID       string `json:"payin_id"`
		ConfigID string `json:"payin_config_id"`
		Status   string `json:"status"`
		IVR      *struct {
			TransactionID string `json:"transaction_id"`
		} `json:"ivr"`
	}
	a := &payinAudit{}
	live := map[string][]string{}
	byTx := map[string][]string{}
	txOf := map[string]string{}
	const limit = ivrpay.MaxPageLimit
	for start := ""; ; {
		var page ivrpay.List[payin]
		path := fmt.Sprintf("/v1/payins?source=%s&limit=%d", ivrpay.PayinSourceIVR, limit)
		if start != "" {
			path += "&start_key=" + url.QueryEscape(start)
		}
		if err := t.rest(ctx, "GET", path, nil, &page); err != nil {
			return nil, fmt.Errorf("list IVR payins: %w", err)
		}
		for _, p := range page.Results {
			a.IVRPayins++
			switch p.Status {
			case ivrpay.PayinStatusFailed, ivrpay.PayinStatusCanceled:
			default:
				live[p.ConfigID] = append(live[p.ConfigID], p.ID)
			}
			if p.IVR != nil {
				byTx[p.IVR.TransactionID] = append(byTx[p.IVR.TransactionID], p.ID)
				txOf[p.ID] = p.IVR.TransactionID
			}
		}
		if len(page.Results) < limit || page.LastKey == "" {
			break
		}
		start = page.LastKey
	}
	for _, k := range sortedKeys(live) {
		if ids := live[k]; len(ids) > 1 {
			a.DuplicateConfigs++
			a.sample("payin config %s has %d approved payins: %s", k, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, k := range sortedKeys(byTx) {
		if ids := byTx[k]; len(ids) > 1 {
			a.DuplicateTransactions++
			a.sample("transaction_id %s has %d payins: %s", k, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, id := range sortedKeys(acknowledged) {
		if tx, ok := txOf[id]; !ok || tx != acknowledged[id] {
			a.MissingCharges++
			a.sample("charge %s acknowledged to transaction_id %s has no such payin", id, acknowledged[id])
		}
	}
	return a, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "ivrpay loadtest: %s against %s\n", r.Mode, r.BaseURL)
	fmt.Fprintf(w, "  calls            %d in %.1fs, %d charged: %.1f charges/s\n", r.Calls, r.Seconds, r.Charged, r.ChargesPerS)
	lat := func(name string, l latencySummary) {
		fmt.Fprintf(w, "  %-16s p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)\n", name, l.P50, l.P95, l.P99, l.Max, l.N)
	}
	lat("charge latency", r.Latency)
	lat("config latency", r.ConfigLat)
	var errs []string
	for _, k := range sortedKeys(r.Outcomes) {
		if k != outcomeCharged {
			errs = append(errs, fmt.Sprintf("%s %d", k, r.Outcomes[k]))
		}
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(w, "  errors           %s\n", strings.Join(errs, ", "))
	fmt.Fprintf(w, "  replays          %d retries, %d concurrent duplicates, %d mismatches\n", r.Retries, r.Concurrent, r.Mismatches)
	for _, s := range r.MismatchSamples {
		fmt.Fprintf(w, "    %s\n", s)
	}
	switch {
	case r.AuditError != "":
		fmt.Fprintf(w, "  audit            failed: %s\n", r.AuditError)
	case r.Audit != nil:
		fmt.Fprintf(w, "  audit            %d IVR payins on platform; duplicates per config %d, per transaction_id %d; acknowledged charges missing %d\n",
			r.Audit.IVRPayins, r.Audit.DuplicateConfigs, r.Audit.DuplicateTransactions, r.Audit.MissingCharges)
		for _, s := range r.Audit.Samples {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "  result           OK: no duplicate payin, no mismatched replay, no lost charge")
	} else {
		fmt.Fprintln(w, "  result           FAILED")
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
