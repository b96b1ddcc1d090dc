package httpapi_test

// Connector password guessing (SPEC §9): failures are limited per address
// across credentials as well as per credential, the Basic scheme is matched
// case-insensitively, and the limiter's memory and the audit rows a flood
// writes are bounded.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/httpapi"
)

// connectorPost posts a connector request with the Authorization header
// (none when "") and the X-Forwarded-For lines given, and returns the status.
func connectorPost(t *testing.T, url, authorization string, forwardedFor ...string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+httpapi.ConnectorPath, strings.NewReader(`{"method":"charge","transaction_id":"t1"}`))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for _, line := range forwardedFor {
		req.Header.Add("X-Forwarded-For", line)
	}
	resp, _ := do(t, req)
	return resp.StatusCode
}

func basic(password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("api_key:"+password))
}

func TestConnectorPasswordGuessingIsLimited(t *testing.T) {
	t.Parallel()
	url, admin, store, srv := limitedServerWith(t)
	ctx := context.Background()
	// Another platform's connector has been working from the same (Twilio) address.
	_, other, err := store.CreatePlatform(ctx, "Other", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := connectorPost(t, url, basic(other.Secret)); got != http.StatusOK {
		t.Fatalf("valid key before the run: %d", got)
	}

	// A guessing run: a new password each time.
	blockedAt := 0
	for i := 1; i <= 3*httpapi.ConnectorAddressFailureLimit; i++ {
		got := connectorPost(t, url, basic(fmt.Sprintf("sbx_apikey_%064d", i)))
		if got == http.StatusTooManyRequests {
			blockedAt = i
			break
		}
		if got != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, got)
		}
	}
	if blockedAt != httpapi.ConnectorAddressFailureLimit+1 {
		t.Fatalf("the guessing run was stopped at guess %d, want %d", blockedAt, httpapi.ConnectorAddressFailureLimit+1)
	}
	// The right password is not even checked now: the run learns nothing.
	if got := connectorPost(t, url, basic(admin)); got != http.StatusTooManyRequests {
		t.Fatalf("an untried valid key from the blocked address: %d, want 429", got)
	}
	// The platform whose key has been authenticating from this address is not locked out.
	if got := connectorPost(t, url, basic(other.Secret)); got != http.StatusOK {
		t.Fatalf("a known valid key from the blocked address: %d, want 200", got)
	}

	// The audit trail holds a few rows whose counts add up, not one per guess.
	events, total := authFailureRows(t, srv, store)
	if len(events) > 3 || total != httpapi.ConnectorAddressFailureLimit {
		t.Fatalf("%d audit rows counting %d failures, want at most 3 rows counting %d", len(events), total, httpapi.ConnectorAddressFailureLimit)
	}
	if !strings.Contains(events[0].Detail, "blocked_for") {
		t.Fatalf("newest audit row %+v does not note the block", events[0])
	}
	// Memory: one entry per tried credential at most, not growing with the run.
	if n := srv.Limiter.Len(); n > httpapi.ConnectorAddressFailureLimit+5 {
		t.Fatalf("limiter holds %d entries after the run", n)
	}
}

func TestConnectorBasicSchemeCaseDoesNotEscapeTheLimit(t *testing.T) {
	t.Parallel()
	url, _, _, _ := limitedServerWith(t)
	const password = "sbx_apikey_misconfigured"
	for i := 0; i < httpapi.AuthFailureLimit; i++ {
		if got := connectorPost(t, url, basic(password)); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, got)
		}
	}
	creds := base64.StdEncoding.EncodeToString([]byte("api_key:" + password))
	for _, scheme := range []string{"Basic", "basic", "BASIC", "bAsIc"} {
		t.Run(scheme, func(t *testing.T) {
			if got := connectorPost(t, url, scheme+" "+creds); got != http.StatusTooManyRequests {
				t.Fatalf("%s scheme after the limit: %d, want 429", scheme, got)
			}
		})
	}
}

func TestAuthLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := httpapi.NewAuthLimiter()
	l.Now = func() time.Time { return now }
	l.MaxEntries = 100
	for i := 0; i < 10_000; i++ {
		l.Fail(fmt.Sprintf("key-%d", i))
		now = now.Add(time.Millisecond)
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("limiter holds %d entries, want at most 100", n)
	}
	// The newest keys are kept, and still counted.
	for i := 0; i < httpapi.AuthFailureLimit-2; i++ {
		l.Fail("key-9999")
	}
	if !l.Fail("key-9999") {
		t.Fatal("the most recent key lost its count")
	}
	// The oldest are gone.
	for i := 0; i < httpapi.AuthFailureLimit-1; i++ {
		l.Fail("key-0")
	}
	if _, blocked := l.Blocked("key-0"); blocked {
		t.Fatal("an evicted key kept its old failures")
	}
}
