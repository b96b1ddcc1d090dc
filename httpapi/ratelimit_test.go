package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

func TestAuthLimiterWindowAndBlock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := httpapi.NewAuthLimiter()
	l.Now = func() time.Time { return now }
	// Failures older than the window do not count.
	for i := 0; i < 9; i++ {
		if l.Fail("a") {
			t.Fatalf("blocked after %d failures", i+1)
		}
	}
	now = now.Add(httpapi.AuthFailureWindow)
	if l.Fail("a") {
		t.Fatal("failures outside the window counted")
	}
	for i := 0; i < 8; i++ {
		l.Fail("a")
	}
	if !l.Fail("a") {
		t.Fatal("10 failures in the window did not block")
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Fatal("another key is blocked")
	}
	now = now.Add(httpapi.AuthBlockDuration - time.Second)
	if left, blocked := l.Blocked("a"); !blocked || left != time.Second {
		t.Fatalf("Blocked = %v, %v; want 1s, true", left, blocked)
	}
	now = now.Add(time.Second)
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("still blocked after the block duration")
	}
}

// limitedServer is a real server with the limiter and metrics on a SQLite store.
func limitedServer(t *testing.T) (url, admin string, store *sqlstore.Store, metrics http.Handler) {
	t.Helper()
	url, admin, store, srv := limitedServerWith(t)
	return url, admin, store, srv.MetricsHandler
}

// limitedServerWith is limitedServer, returning the server (and its limiter).
func limitedServerWith(t *testing.T) (url, admin string, store *sqlstore.Store, srv *httpapi.Server) {
	t.Helper()
	opts := paymentstest.Options(t)
	store = paymentstest.Open(t, sqlstore.EngineSQLite, opts)
	_, key, err := store.CreatePlatform(context.Background(), "Limited", true)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	limiter := httpapi.NewAuthLimiter()
	limiter.Audit = store
	srv = &httpapi.Server{Logger: slog.New(slog.DiscardHandler), Limiter: limiter, Metrics: httpapi.NewMetrics(reg),
		Services: httpapi.NewServices(store, opts.Payments(store))}
	srv.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, key.Secret, store, srv
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRESTAuthFailuresAreRateLimited(t *testing.T) {
	t.Parallel()
	url, admin, store, srv := limitedServerWith(t)
	get := func(secret string) (*http.Response, string) {
		req, err := (&httpapi.Client{BaseURL: url, APIKey: secret}).NewRequest(context.Background(), "GET", "/v1/merchants", nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req)
	}
	for i := 0; i < httpapi.AuthFailureLimit; i++ {
		if resp, _ := get("sbx_apikey_wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	// Blocked now, even with a valid key from the same address.
	resp, body := get(admin)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"RateLimited"`) {
		t.Fatalf("after the limit: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The 401s are audited with where they came from, aggregated per
	// address: one row with the count, noting the block.
	if err := srv.Limiter.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, err := store.ListAudit(context.Background(), ivrpay.AuditFilter{Action: "auth.failure"})
	if err != nil || len(events) != 1 {
		t.Fatalf("auth.failure audit records: %d, %v", len(events), err)
	}
	if events[0].ClientAddress != "127.0.0.1" || events[0].Actor != ivrpay.ActorAnonymous || !strings.Contains(events[0].Detail, "blocked_for") ||
		!strings.Contains(events[0].Detail, "failures=10 ") || !strings.Contains(events[0].Detail, "route=GET /v1/merchants") {
		t.Fatalf("auth.failure records = %+v", events)
	}
}

func TestConnectorLimitIsPerCredential(t *testing.T) {
	t.Parallel()
	url, admin, _, metrics := limitedServer(t)
	post := func(password string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", url+httpapi.ConnectorPath, strings.NewReader(`{"method":"charge","transaction_id":"t1"}`))
		req.SetBasicAuth("api_key", password)
		return do(t, req)
	}
	for i := 0; i < httpapi.AuthFailureLimit; i++ {
		post("sbx_apikey_misconfigured")
	}
	resp, body := post("sbx_apikey_misconfigured")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("misconfigured connector after the limit: %d %s", resp.StatusCode, body)
	}
	var shape map[string]any
	if err := json.Unmarshal([]byte(body), &shape); err != nil || shape["error_code"] != "RATE_LIMITED" {
		t.Fatalf("429 body %s", body)
	}
	if _, ok := shape["charge_id"]; !ok {
		t.Fatalf("429 body lacks charge_id: %s", body)
	}
	// Another credential from the same (Twilio) address is not locked out.
	if resp, body := post(admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid key after another credential was blocked: %d %s", resp.StatusCode, body)
	}
	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`ivrpay_http_requests_total{route="POST /vendor/twilio/pay_generic",status="401"} 10`,
		`ivrpay_auth_rate_limited_total 1`, `ivrpay_connector_outcomes_total{error_code="UNAUTHORIZED"} 10`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
