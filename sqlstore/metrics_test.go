package sqlstore_test

import (
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestRecentPayinStatusCounts counts only the payins created in the window
// (a range of ids), on every engine.
func TestRecentPayinStatusCounts(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		clock := newFakeClock(time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
		b := setup(t, engine, func(o *paymentstest.Config) { o.Clock = clock })
		ctx := boundedContext(t)
		charge := func(tx string) {
			cfg := b.payinConfig(t, 1000)
			mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, tx, visaOK, 1000)))
		}
		charge("old-1")
		clock.Advance(48 * time.Hour)
		charge("new-1")
		charge("new-2")
		counts, err := b.s.RecentPayinStatusCounts(ctx, clock.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		if total != 2 {
			t.Fatalf("recent payins by status = %v, want 2 in all (the one from two days ago excluded)", counts)
		}
	})
}
