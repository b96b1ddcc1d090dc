package sqlstore_test

import (
	"testing"

	"github.com/ivrpay/ivrpay/sqlstore"
)

// chargeStatementBudget is what an approved IVR charge costs the database
// today, from the claim of its transaction to its stored answer (the payin
// config's creation, a separate REST call, excluded). docs/benchmarks.md
// tracks it; the goal is 10. A change that adds a statement to the hot path
// fails this test until the budget is raised on purpose.
const chargeStatementBudget = 11

// TestChargeStatementCount counts the statements of one approved IVR charge
// and of its replay (which must read, never write, beyond the claim).
func TestChargeStatementCount(t *testing.T) {
	b := setup(t, sqlstore.EngineSQLite)
	// Warm up: the first charge prepares the statements.
	mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 1000).ID, "CA-warm", visaOK, 1000)))
	cfg := b.payinConfig(t, 1000)
	before := b.s.Statements()
	req := chargeReq(cfg.ID, "CA-count", visaOK, 1000)
	mustSucceed(t, process(t, b.pay, b.ivrCtx, req))
	charge := b.s.Statements() - before
	t.Logf("one approved IVR charge: %d statements", charge)
	if charge > chargeStatementBudget {
		t.Fatalf("one approved IVR charge ran %d statements, over the budget of %d", charge, chargeStatementBudget)
	}
	before = b.s.Statements()
	mustSucceed(t, process(t, b.pay, b.ivrCtx, req))
	if replay := b.s.Statements() - before; replay > 3 {
		t.Fatalf("a replay ran %d statements, want at most 3 (the claim, its read, the replay check)", replay)
	}
}
