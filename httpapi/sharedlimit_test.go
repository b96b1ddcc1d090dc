package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestSharedAuthLimiterCountsEveryProcess runs three limiters (three
// processes) on one database: failures spread over them count as one, the
// block reaches every limiter (at once where it was set, on Refresh in the
// others), a credential's key is the same in every process, and the shared
// rows are pruned to the cap.
func TestSharedAuthLimiterCountsEveryProcess(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		store := paymentstest.Open(t, engine, paymentstest.Options(t))
		now := time.Now().Truncate(time.Millisecond) // the database keeps microseconds
		secret := []byte("a secret every process of the deployment shares")
		var limiters []*httpapi.AuthLimiter
		for range 3 {
			l := httpapi.NewSharedAuthLimiter(store, secret)
			l.Now = func() time.Time { return now }
			limiters = append(limiters, l)
		}
		ctx := context.Background()

		t.Run("failures spread over the processes block on all of them", func(t *testing.T) {
			for i := range httpapi.AuthFailureLimit - 1 {
				if limiters[i%3].Fail("198.51.100.7") {
					t.Fatalf("blocked after %d failures", i+1)
				}
			}
			for i, l := range limiters {
				if _, blocked := l.Blocked("198.51.100.7"); blocked {
					t.Fatalf("limiter %d blocks after %d failures", i, httpapi.AuthFailureLimit-1)
				}
			}
			if !limiters[0].Fail("198.51.100.7") {
				t.Fatalf("failure %d (spread over three processes) did not block", httpapi.AuthFailureLimit)
			}
			if left, blocked := limiters[0].Blocked("198.51.100.7"); !blocked || left != httpapi.AuthBlockDuration {
				t.Fatalf("the process that blocked: Blocked = %v, %v", left, blocked)
			}
			for i, l := range limiters[1:] {
				if err := l.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				if left, blocked := l.Blocked("198.51.100.7"); !blocked || left != httpapi.AuthBlockDuration {
					t.Fatalf("limiter %d after Refresh: Blocked = %v, %v", i+1, left, blocked)
				}
			}
			if _, blocked := limiters[1].Blocked("198.51.100.8"); blocked {
				t.Fatal("another address is blocked")
			}
		})

		t.Run("a failure on a process that missed the block learns it", func(t *testing.T) {
			for i := range httpapi.AuthFailureLimit {
				limiters[i%3].Fail("198.51.100.9")
			}
			fresh := httpapi.NewSharedAuthLimiter(store, secret)
			fresh.Now = func() time.Time { return now }
			if !fresh.Fail("198.51.100.9") {
				t.Fatal("a failure while another process's block runs was not reported blocked")
			}
			if _, blocked := fresh.Blocked("198.51.100.9"); !blocked {
				t.Fatal("the block was not mirrored")
			}
		})

		t.Run("credential keys are alike across processes", func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.SetBasicAuth("api_key", "guess")
			a, b := limiters[0].CredentialKey("203.0.113.1", r), limiters[2].CredentialKey("203.0.113.1", r)
			if a != b {
				t.Fatalf("credential keys differ: %s vs %s", a, b)
			}
			if other := httpapi.NewSharedAuthLimiter(store, []byte("another deployment's secret........")).CredentialKey("203.0.113.1", r); other == a {
				t.Fatal("the credential key does not depend on the secret")
			}
		})

		t.Run("known-good credentials are shared, and pruned after a day and capped", func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.SetBasicAuth("api_key", "a valid key")
			key := limiters[0].CredentialKey("203.0.113.2", r)
			if err := limiters[0].Succeeded(ctx, key); err != nil {
				t.Fatal(err)
			}
			fresh := httpapi.NewSharedAuthLimiter(store, secret)
			fresh.Now = func() time.Time { return now }
			if !fresh.KnownGood(ctx, key) {
				t.Fatal("a process that never saw the credential does not know it")
			}
			if fresh.KnownGood(ctx, limiters[0].CredentialKey("203.0.113.3", r)) {
				t.Fatal("the credential is known good from another address")
			}
			for i := range 5 {
				if err := store.RecordKnownGood(ctx, fmt.Sprintf("192.0.2.%d|x", i), now.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.PruneKnownGood(ctx, now.Add(-24*time.Hour), 3); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := store.DB().QueryRow(`SELECT COUNT(*) FROM auth_known_good`).Scan(&n); err != nil || n != 3 {
				t.Fatalf("%d known-good rows (%v) after capping at 3", n, err)
			}
			if seen, err := store.KnownGoodSince(ctx, "192.0.2.4|x", now.Add(-time.Hour)); err != nil || !seen.Equal(now.Add(4*time.Second)) {
				t.Fatalf("the most recent row: %v, %v", seen, err)
			}
			if err := store.PruneKnownGood(ctx, now.Add(time.Minute), 100); err != nil {
				t.Fatal(err)
			}
			if err := store.DB().QueryRow(`SELECT COUNT(*) FROM auth_known_good`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%d known-good rows (%v) after the day", n, err)
			}
			later := httpapi.NewSharedAuthLimiter(store, secret)
			later.Now = func() time.Time { return now.Add(25 * time.Hour) }
			if later.KnownGood(ctx, key) {
				t.Fatal("a credential is known good a day after it last authenticated")
			}
		})

		t.Run("rows are pruned and capped", func(t *testing.T) {
			for i := range 30 {
				limiters[0].Fail(fmt.Sprintf("192.0.2.%d", i))
			}
			if err := store.PruneAuthFailures(ctx, now, httpapi.AuthFailureWindow, 20); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := store.DB().QueryRow(`SELECT COUNT(*) FROM auth_limits`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 20 {
				t.Fatalf("%d rows after pruning to 20", n)
			}
			// The blocks are the last rows to go.
			if err := limiters[1].Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			blocks, err := store.ActiveAuthBlocks(ctx, now)
			if err != nil || len(blocks) != 2 {
				t.Fatalf("blocks after pruning = %v, %v; want the two addresses", blocks, err)
			}
			later := now.Add(httpapi.AuthBlockDuration + time.Second)
			if err := store.PruneAuthFailures(ctx, later, httpapi.AuthFailureWindow, 20); err != nil {
				t.Fatal(err)
			}
			if err := store.DB().QueryRow(`SELECT COUNT(*) FROM auth_limits`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%d rows (%v) once every failure and block is over", n, err)
			}
		})
	})
}
