package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/loadtest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/twilio"
)

// TestThreeProcessesActAsOne runs three `ivrpay serve` processes of the built
// binary on one PostgreSQL schema behind a round-robin proxy (a load
// balancer that health-checks /health and re-sends only requests whose
// connection failed), and checks what SPEC §10 promises of such a
// deployment: every webhook event is delivered exactly once to each of two
// endpoints; a portal user signs in and works through pages that land on
// every process; 10 failed authentications spread over the processes get
// the address 429 on all of them, except for a key that worked from the
// address before (on any process); and under the
// loadtest driver's charges one process gets SIGTERM (every connector call
// in flight at that moment gets its answer, and it exits 0) and is
// restarted, then another gets SIGKILL: afterwards every acknowledged charge
// is a payin of its transaction_id and none is duplicated.
func TestThreeProcessesActAsOne(t *testing.T) {
	bin := binaryTest(t, "builds and runs three server processes")
	cfg := clusterConfig{crashServerConfig{installationOn(t, bin, sharedPostgres(t))}}
	// The first process bootstraps the database and creates the vault key
	// the others then share.
	procs := []*serveProcess{cfg.start(t)}
	admin, ivrKey, merchant := procs[0].sandboxKeys(t)
	procs = append(procs, cfg.start(t), cfg.start(t))
	lb := newBalancer(t)
	for i, p := range procs {
		lb.set(i, p.baseURL)
	}
	lb.awaitUp(t, 3)
	ctx := context.Background()
	api := func(t *testing.T, method, path, key string, body any) map[string]any {
		t.Helper()
		var out map[string]any
		if err := (&httpapi.Client{BaseURL: lb.URL, APIKey: key}).Do(ctx, method, path, body, &out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return out
	}

	t.Run("every webhook event is delivered once to each endpoint", func(t *testing.T) {
		receivers := []*whReceiver{whNewReceiver(t), whNewReceiver(t)}
		var endpoints []string
		for _, rcv := range receivers {
			ep := api(t, "POST", "/v1/webhook_endpoints", admin, map[string]any{"url": rcv.URL + "/hooks"})
			rcv.setSecret(ep["secret"].(string))
			endpoints = append(endpoints, ep["webhook_endpoint_id"].(string))
		}
		var payins []string
		for i := range 2 {
			c := api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant,
				"idempotency_key": fmt.Sprintf("3proc-webhooks-%d", i), "amount": 1000, "currency_code": "USD"})
			answer := lb.connector(t, ivrKey, chargeBody(c["payin_config_id"].(string), fmt.Sprintf("CA-3proc-wh-%d", i), "10.00"))
			if answer.ChargeID == nil {
				t.Fatalf("charge %d: %+v", i, answer)
			}
			payins = append(payins, *answer.ChargeID)
		}
		waitUntil(t, "the payins to settle", func() bool {
			for _, id := range payins {
				if api(t, "GET", "/v1/payins/"+id, admin, nil)["status"] != "SUCCEEDED" {
					return false
				}
			}
			return true
		})
		for i, rcv := range receivers {
			var ds []any
			waitUntil(t, "every delivery to be DELIVERED", func() bool {
				ds, _ = api(t, "GET", "/v1/webhook_endpoints/"+endpoints[i]+"/deliveries", admin, nil)["results"].([]any)
				for _, d := range ds {
					if d.(map[string]any)["status"] != "DELIVERED" {
						return false
					}
				}
				return len(ds) >= 2*len(payins) // at least payin.processing and payin.succeeded each
			})
			got := rcv.ids()
			for _, d := range ds {
				id := d.(map[string]any)["event_id"].(string)
				if n := len(got[id]); n != 1 {
					t.Errorf("endpoint %d received event %s (%s) %d times, want once", i, id, d.(map[string]any)["event_type"], n)
				}
			}
			if len(got) != len(ds) {
				t.Errorf("endpoint %d received %d distinct events for %d deliveries", i, len(got), len(ds))
			}
			if bad := rcv.refused(); len(bad) > 0 {
				t.Errorf("endpoint %d refused deliveries: %v", i, bad)
			}
		}
	})

	t.Run("a portal session works on every process", func(t *testing.T) {
		b := lb.browser(t)
		signin := b.get("/portal/signin")
		home := b.post("/portal/signin", url.Values{"csrf_token": {signin.csrf(t)}, "api_key": {admin}})
		if home.status != http.StatusOK || home.url.Path != "/portal/" {
			t.Fatalf("sign-in: status %d at %s", home.status, home.url)
		}
		before := lb.portalHits()
		for _, path := range []string{"/portal/keys", "/portal/merchants", "/portal/configs", "/portal/payins", "/portal/webhooks", "/portal/ivr"} {
			if p := b.get(path); p.status != http.StatusOK || p.url.Path != path {
				t.Fatalf("GET %s: status %d at %s (signed out on another process?)", path, p.status, p.url)
			}
		}
		merchants := b.get("/portal/merchants")
		made := b.post("/portal/merchants", url.Values{"csrf_token": {merchants.csrf(t)}, "name": {"Three-process bakery"}})
		if made.status != http.StatusOK || made.url.Path == "/portal/signin" {
			t.Fatalf("POST /portal/merchants: status %d at %s", made.status, made.url)
		}
		after := lb.portalHits()
		for i := range 3 {
			if after[i] == before[i] {
				t.Errorf("no portal page of the signed-in session landed on process %d (hits %v → %v)", i, before, after)
			}
		}
		out := b.post("/portal/signout", url.Values{"csrf_token": {made.csrf(t)}})
		if out.url.Path != "/portal/signin" {
			t.Fatalf("sign-out ended at %s", out.url)
		}
		for range 3 {
			if p := b.get("/portal/keys"); p.url.Path != "/portal/signin" {
				t.Fatalf("after sign-out a page reached %s", p.url)
			}
		}
	})

	t.Run("failed authentications spread over the processes block on all of them", func(t *testing.T) {
		const attacker = "203.0.113.66"
		// The admin key has worked from the address (on one process); a
		// valid key made now has not.
		if status := lb.rest(t, attacker, 0, admin); status != http.StatusOK {
			t.Fatalf("the admin key before the failures answered %d", status)
		}
		unused := api(t, "POST", "/v1/api_keys", admin, map[string]any{"statements": []ivrpay.Statement{{Permissions: []string{"merchant:read"},
			Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: procs[0].bootstrap(t, "platform_id")}}}}})["api_key"].(string)
		for i := range httpapi.AuthFailureLimit {
			if status := lb.rest(t, attacker, -1, "wrong-key"); status != http.StatusUnauthorized {
				t.Fatalf("failure %d answered %d, want 401", i+1, status)
			}
		}
		if hits := lb.restHits(attacker); hits[0] == 0 || hits[1] == 0 || hits[2] == 0 {
			t.Fatalf("the failures did not reach every process: %v", hits)
		}
		for i := range 3 {
			// The block is read from memory, mirrored from the database within
			// a second (a failure mirrors it at once). Until then a valid key
			// new to the address would work, and so become known good there.
			waitUntil(t, fmt.Sprintf("process %d to refuse the address", i), func() bool {
				return lb.rest(t, attacker, i, "wrong-key") == http.StatusTooManyRequests
			})
			if status := lb.rest(t, attacker, i, unused); status != http.StatusTooManyRequests {
				t.Errorf("process %d answered a valid key new to the blocked address %d, want 429", i, status)
			}
			// The key that worked from the address still does, on every
			// process: the known-good list is in the database.
			if status := lb.rest(t, attacker, i, admin); status != http.StatusOK {
				t.Errorf("process %d answered the admin key that worked from the address %d while it is blocked, want 200", i, status)
			}
		}
		if status := lb.rest(t, "203.0.113.67", -1, admin); status != http.StatusOK {
			t.Errorf("another address answered %d", status)
		}
	})

	t.Run("SIGTERM and SIGKILL under load lose and duplicate no charge", func(t *testing.T) {
		target, err := loadtest.Prepare(ctx, loadtest.NewHTTPClient(8), []string{lb.URL}, admin, 1000)
		if err != nil {
			t.Fatal(err)
		}
		lb.trackFromStart(0)
		var mu sync.Mutex
		var calls []loadtest.Call
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
		driveCtx, stopDriving := context.WithCancel(ctx)
		defer stopDriving()
		done := driveCharges(driveCtx, target, 3, func(c loadtest.Call) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, c)
		})
		waitUntil(t, "the load to get going", func() bool { return count() >= 10 })

		// Two slow charges pinned to process 0 are at its processor when it
		// gets SIGTERM (the sandbox's slow amount, answered at the 6 s cut).
		slow := make(chan balancerResult, 2)
		for i := range 2 {
			c := api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant,
				"idempotency_key": fmt.Sprintf("3proc-slow-%d", i), "amount": sandbox.SlowAmount, "currency_code": "USD"})
			body := chargeBody(c["payin_config_id"].(string), fmt.Sprintf("CA-3proc-slow-%d", i), twilio.FormatCents(sandbox.SlowAmount))
			go func() { slow <- lb.send(0, ivrKey, body) }()
		}
		waitUntil(t, "the slow charges to reach process 0's processor", func() bool {
			l := api(t, "GET", "/v1/payins?source=IVR&status=CREATED&limit=100", admin, nil)
			n := 0
			for _, p := range l["results"].([]any) {
				if p.(map[string]any)["amount"] == float64(sandbox.SlowAmount) {
					n++
				}
			}
			return n == 2
		})
		inFlight := lb.inFlight(0)
		procs[0].stop(t)
		results := lb.untrack(0)
		if len(inFlight) < 2 {
			t.Errorf("%d requests were in flight at SIGTERM, want at least the 2 slow charges", len(inFlight))
		}
		for _, id := range inFlight {
			r, ok := results[id]
			switch {
			case !ok || r.err != nil:
				t.Errorf("request %d in flight at SIGTERM got no answer: %v", id, r.err)
			case r.connector && (r.status != http.StatusOK || r.errorCode == ivrpay.ConnInternal):
				t.Errorf("connector call %d in flight at SIGTERM was answered %d %s", id, r.status, r.errorCode)
			}
		}
		for range 2 {
			if r := <-slow; r.err != nil || r.status != http.StatusOK || r.errorCode == ivrpay.ConnInternal {
				t.Errorf("a slow charge in flight at SIGTERM was answered %d %q (%v)", r.status, r.errorCode, r.err)
			}
		}
		procs[0] = cfg.start(t)
		lb.set(0, procs[0].baseURL)
		lb.awaitUp(t, 3)

		// SIGKILL in the middle of the load, which then goes on a while on
		// the other two; calls cut off by the kill or by the end of the run
		// are retried below.
		n := count()
		waitUntil(t, "load on the restarted deployment", func() bool { return count() >= n+20 })
		procs[1].kill()
		n = count()
		waitUntil(t, "load after the SIGKILL", func() bool { return count() >= n+20 })
		stopDriving()
		report := <-done
		if report.Mismatches > 0 {
			t.Errorf("%d replays differed: %s", report.Mismatches, strings.Join(report.MismatchSamples, "; "))
		}

		// Twilio retries every call that got no answer (the SIGKILL's) with
		// its transaction_id; each must complete.
		acked := map[string]string{}
		retryCtx, cancel := context.WithTimeout(ctx, crashLease+30*time.Second)
		defer cancel()
		mu.Lock()
		defer mu.Unlock()
		retried := 0
		for _, c := range calls {
			switch {
			case c.Charged():
				acked[c.Response.ID] = c.TransactionID
			case c.Retryable():
				retried++
				answer, err := target.RetryUntilAnswered(retryCtx, c.Request)
				var r twilio.ConnectorResponse
				if err != nil || json.Unmarshal(answer, &r) != nil || r.ID == "" {
					t.Errorf("retry of unanswered %s: %s, %v", c.TransactionID, answer, err)
					continue
				}
				acked[r.ID] = c.TransactionID
			default:
				t.Errorf("transaction %s answered %s: %s", c.TransactionID, c.Outcome, c.Answer)
			}
		}
		audit, err := target.AuditIVRPayins(retryCtx, acked)
		if err != nil {
			t.Fatal(err)
		}
		if !audit.OK() || audit.IVRPayins < len(acked) {
			t.Errorf("audit: %d IVR payins for %d acknowledged charges; %d configs with two approved payins, %d transaction_ids with two payins, %d acknowledged charges lost: %s",
				audit.IVRPayins, len(acked), audit.DuplicateConfigs, audit.DuplicateTransactions, audit.MissingCharges, strings.Join(audit.Samples, "; "))
		}
		t.Logf("%d charges sent, %d acknowledged (%d after a retry), %d requests in flight at SIGTERM", len(calls), len(acked), retried, len(inFlight))
	})
}

// clusterConfig is how the three-process test runs `ivrpay serve`: as the
// crash test does, on one PostgreSQL schema and one vault key, and behind a
// proxy, with quick settlement and a drain delay the balancer notices.
type clusterConfig struct{ crashServerConfig }

func (c clusterConfig) start(t *testing.T) *serveProcess {
	t.Helper()
	return c.crashServerConfig.start(t, "--behind-proxy", "--sandbox-settle-after", "1s", "--drain-delay", "1s")
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// balancer is the test's load balancer: round robin over the backends whose
// /health answers 200 (checked every 100 ms), re-sending a request to the
// next backend only when its connection could not be made (nothing was
// sent), and one connection per request. It sets X-Forwarded-For to the
// client address in X-Test-Client (127.0.0.1 without), and X-Test-Backend
// pins a request to one backend. It records which backend served what, and
// the outcome of every request to a tracked backend.
type balancer struct {
	*httptest.Server
	client *http.Client

	mu        sync.Mutex
	backends  [3]string
	up        [3]bool
	turn      int
	seq       int
	portal    [3]int
	restCount map[string]*[3]int // client address → REST requests per backend
	tracked   [3]*tracking
}

type tracking struct {
	inFlight map[int]bool
	results  map[int]balancerResult
}

// balancerResult is what the balancer saw of one request.
type balancerResult struct {
	status    int
	errorCode string // a connector answer's error_code
	connector bool
	err       error
}

func newBalancer(t *testing.T) *balancer {
	tr := &http.Transport{DisableKeepAlives: true}
	lb := &balancer{client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		restCount: map[string]*[3]int{}}
	lb.Server = httptest.NewServer(http.HandlerFunc(lb.serve))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for i := range 3 {
				lb.mu.Lock()
				u := lb.backends[i]
				lb.mu.Unlock()
				ok := false
				if u != "" {
					if res, err := lb.client.Get(u + "/health"); err == nil {
						ok = res.StatusCode == http.StatusOK
						res.Body.Close()
					}
				}
				lb.mu.Lock()
				lb.up[i] = ok
				lb.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; lb.Close() })
	return lb
}

func (lb *balancer) set(i int, baseURL string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.backends[i], lb.up[i] = baseURL, false
}

func (lb *balancer) awaitUp(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d backends to be healthy", n), func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		up := 0
		for _, u := range lb.up {
			if u {
				up++
			}
		}
		return up == n
	})
}

// pick returns the next healthy backend after skipping tries of them, or
// the pinned one.
func (lb *balancer) pick(pinned int) (int, string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if pinned >= 0 {
		return pinned, lb.backends[pinned]
	}
	for range 3 {
		lb.turn = (lb.turn + 1) % 3
		if lb.up[lb.turn] {
			return lb.turn, lb.backends[lb.turn]
		}
	}
	return -1, ""
}

func (lb *balancer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	pinned := -1
	if p := r.Header.Get("X-Test-Backend"); p != "" {
		pinned, _ = strconv.Atoi(p)
	}
	client := r.Header.Get("X-Test-Client")
	if client == "" {
		client = "127.0.0.1"
	}
	for try := 0; try < 3; try++ {
		i, base := lb.pick(pinned)
		if i < 0 {
			http.Error(w, "no healthy backend", http.StatusServiceUnavailable)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		req.Header.Del("X-Test-Backend")
		req.Header.Del("X-Test-Client")
		req.Header.Set("X-Forwarded-For", client)
		id := lb.begin(i, r, client)
		res, err := lb.client.Do(req)
		var opErr *net.OpError
		if err != nil && errors.As(err, &opErr) && opErr.Op == "dial" && pinned < 0 {
			lb.end(i, id, balancerResult{err: err})
			continue // nothing was sent: the next backend may take it
		}
		if err != nil {
			lb.end(i, id, balancerResult{err: err})
			http.Error(w, "backend: "+err.Error(), http.StatusBadGateway)
			return
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		result := balancerResult{status: res.StatusCode, err: err, connector: r.URL.Path == httpapi.ConnectorPath}
		if result.connector {
			var cr twilio.ConnectorResponse
			json.Unmarshal(answer, &cr)
			result.errorCode = cr.ErrorCode
		}
		lb.end(i, id, result)
		if err != nil {
			http.Error(w, "backend: "+err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		w.Write(answer)
		return
	}
	http.Error(w, "no backend could be reached", http.StatusBadGateway)
}

// begin counts a request sent to backend i and tracks it when i is tracked.
func (lb *balancer) begin(i int, r *http.Request, client string) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.seq++
	if strings.HasPrefix(r.URL.Path, "/portal") {
		lb.portal[i]++
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		if lb.restCount[client] == nil {
			lb.restCount[client] = &[3]int{}
		}
		lb.restCount[client][i]++
	}
	if tr := lb.tracked[i]; tr != nil {
		tr.inFlight[lb.seq] = true
	}
	return lb.seq
}

func (lb *balancer) end(i, id int, r balancerResult) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if tr := lb.tracked[i]; tr != nil && tr.inFlight[id] {
		tr.results[id] = r
	}
}

// inFlight returns the requests in flight to backend i now (tracked since
// trackFromStart).
func (lb *balancer) inFlight(i int) []int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	tr := lb.tracked[i]
	var ids []int
	for id := range tr.inFlight {
		if _, done := tr.results[id]; !done {
			ids = append(ids, id)
		}
	}
	return ids
}

// trackFromStart makes backend i's requests recorded from now on.
func (lb *balancer) trackFromStart(i int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.tracked[i] = &tracking{inFlight: map[int]bool{}, results: map[int]balancerResult{}}
}

// untrack stops recording backend i and returns the results recorded.
func (lb *balancer) untrack(i int) map[int]balancerResult {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	tr := lb.tracked[i]
	lb.tracked[i] = nil
	return tr.results
}

func (lb *balancer) portalHits() [3]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.portal
}

func (lb *balancer) restHits(client string) [3]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if h := lb.restCount[client]; h != nil {
		return *h
	}
	return [3]int{}
}

// rest sends GET /v1/merchants with key from client (to backend pin, or -1
// for the next) and returns the status.
func (lb *balancer) rest(t *testing.T, client string, pin int, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", lb.URL+"/v1/merchants", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Test-Client", client)
	if pin >= 0 {
		req.Header.Set("X-Test-Backend", strconv.Itoa(pin))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// send posts a connector request pinned to backend i.
func (lb *balancer) send(i int, ivrKey string, body []byte) balancerResult {
	req, _ := http.NewRequest("POST", lb.URL+httpapi.ConnectorPath, bytes.NewReader(body))
	req.SetBasicAuth("api_key", ivrKey)
	req.Header.Set("X-Test-Backend", strconv.Itoa(i))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return balancerResult{err: err}
	}
	defer res.Body.Close()
	var cr twilio.ConnectorResponse
	err = json.NewDecoder(res.Body).Decode(&cr)
	return balancerResult{status: res.StatusCode, errorCode: cr.ErrorCode, connector: true, err: err}
}

// connector posts a connector request through the balancer and decodes the answer.
func (lb *balancer) connector(t *testing.T, ivrKey string, body []byte) connectorAnswer {
	t.Helper()
	return postConnector(t, lb.URL, ivrKey, body)
}

// browser is a client with a cookie jar that follows redirects, through the balancer.
type browser struct {
	lb   *balancer
	http *http.Client
	t    *testing.T
}

func (lb *balancer) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{lb: lb, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}, t: t}
}

type browserPage struct {
	status int
	body   string
	url    *url.URL
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (p browserPage) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf_token on %s", p.url)
	}
	return html.UnescapeString(m[1])
}

func (b *browser) get(path string) browserPage {
	b.t.Helper()
	res, err := b.http.Get(b.lb.URL + path)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	return b.read(res)
}

func (b *browser) post(path string, form url.Values) browserPage {
	b.t.Helper()
	res, err := b.http.PostForm(b.lb.URL+path, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	return b.read(res)
}

func (b *browser) read(res *http.Response) browserPage {
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return browserPage{status: res.StatusCode, body: string(body), url: res.Request.URL}
}
