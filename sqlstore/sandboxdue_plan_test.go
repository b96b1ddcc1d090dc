package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/sqlstore/testdsn"
)

// TestSandboxDueReadsOnlyItsIndex: the sandbox confirmation pass's query is
// answered from payins_sandbox_due in its order, with no scan of the
// PROCESSING payins (a real account's stay PROCESSING until their
// processor's event) and no sort; otherwise every pass reads the whole
// backlog.
func TestSandboxDueReadsOnlyItsIndex(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			whole := queryPlan(t, engine, sandboxDuePayins, "2026-01-01T00:00:00Z", 100, "PAYMENT_CAPTURED")
			if !strings.Contains(whole, "payins_sandbox_due") {
				t.Errorf("the sandbox confirmation query does not use payins_sandbox_due:\n%s", whole)
			}
			if !strings.Contains(whole, "processor_events_reference") {
				t.Errorf("the sandbox confirmation query's inbox look-up does not use processor_events_reference:\n%s", whole)
			}
			for _, bad := range []string{"TEMP B-TREE", "Sort", "Seq Scan", "SCAN payins"} {
				if strings.Contains(whole, bad) {
					t.Errorf("the sandbox confirmation query plan has %q:\n%s", bad, whole)
				}
			}
		})
	}
}

// TestProcessorEventLookupsUseTheirIndexes: the sandbox refunds' inbox
// look-up and the look-ups of an event's payin or refund by the processor's
// reference use their partial indexes. Without the indexes' predicate
// repeated, each sandbox confirmation read every event of the account and
// each event naming a processor reference read every payin or refund
// (quadratic under a backlog: a sandbox pass took 5 ms per payin at 10,000).
func TestProcessorEventLookupsUseTheirIndexes(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			for _, c := range []struct {
				name, query, index string
				args               []any
			}{
				{"sandbox refunds due", sandboxDueRefunds, "processor_events_reference", []any{"2026-01-01T00:00:00Z", 100}},
				{"payin by processor reference", payinByProcessorReference, "payins_processor_reference", []any{"pi_1", "stripe"}},
				{"refund by processor reference", refundByProcessorReference, "refunds_processor_reference", []any{"re_1", "stripe"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					whole := queryPlan(t, engine, c.query, c.args...)
					if !strings.Contains(whole, c.index) {
						t.Errorf("the query does not use %s:\n%s", c.index, whole)
					}
					for _, bad := range []string{"Seq Scan", "SCAN payins", "SCAN r\n", "SCAN e\n"} {
						if strings.Contains(whole+"\n", bad) {
							t.Errorf("the plan has %q:\n%s", strings.TrimSpace(bad), whole)
						}
					}
				})
			}
		})
	}
}

// TestLookupsDueReadTheirIndexes: the look-up fallback's pass (every 5 s in
// every serve process) finds a real account's PROCESSING payins and
// refunds from their partial indexes, the refunds' payins by their key, and
// the card-answer pass its marked payins from theirs:
// never a read of every payin, which cost each pass tens of milliseconds
// of the callers' CPU once a sandbox had made 100,000 payins.
func TestLookupsDueReadTheirIndexes(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			for _, c := range []struct{ name, table, column, where, index string }{
				{"payins", "payins", "reconcile_lease_until", lookupPayins, "payins_check_due"},
				{"refunds", "refunds", "reconcile_lease_until", lookupRefunds, "refunds_check_due"},
				{"card answers", "payins", "card_answer_due_at", cardAnswerDue, "payins_card_answer_due"},
			} {
				t.Run(c.name, func(t *testing.T) {
					whole := queryPlan(t, engine, dueQueryOn(c.table, c.column, c.where), "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 50)
					if !strings.Contains(whole, c.index) {
						t.Errorf("the query does not use %s:\n%s", c.index, whole)
					}
					for _, bad := range []string{"Seq Scan", "SCAN payins", "LIST SUBQUERY", "Hash"} {
						if strings.Contains(whole, bad) {
							t.Errorf("the plan has %q:\n%s", bad, whole)
						}
					}
				})
			}
		})
	}
}

// TestUnappliedEventCountReadsItsIndex: the metrics' count of unapplied
// processor events reads the status index, never every event.
func TestUnappliedEventCountReadsItsIndex(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			whole := queryPlan(t, engine, unappliedEventCounts, "PENDING", "UNMATCHED", "FAILED")
			if !strings.Contains(whole, "processor_events_received") {
				t.Errorf("the count does not use processor_events_received:\n%s", whole)
			}
			for _, bad := range []string{"Seq Scan", "SCAN processor_events"} {
				if strings.Contains(whole, bad) {
					t.Errorf("the plan has %q:\n%s", bad, whole)
				}
			}
		})
	}
}

// TestSandboxDisputesDueReadsOnlyItsIndex: the sandbox's dispute triggers
// are found from payins_sandbox_disputes, which holds only the settled
// payins of the two trigger amounts, in its order: never a scan of the
// payins.
func TestSandboxDisputesDueReadsOnlyItsIndex(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			whole := queryPlan(t, engine, sandboxDisputesDue, "2026-01-01T00:00:00Z", 100)
			if !strings.Contains(whole, "payins_sandbox_disputes") {
				t.Errorf("the sandbox dispute query does not use payins_sandbox_disputes:\n%s", whole)
			}
			for _, line := range strings.Split(whole, "\n") {
				scansPayins := strings.Contains(line, "Seq Scan on payins") || strings.Contains(line, "SCAN p ") || strings.Contains(line, "SCAN payins")
				if strings.Contains(line, "TEMP B-TREE") || strings.Contains(line, "Sort") ||
					(scansPayins && !strings.Contains(line, "payins_sandbox_disputes")) {
					t.Errorf("the sandbox dispute query plan reads more than its index at %q:\n%s", line, whole)
				}
			}
		})
	}
}

// queryPlan is the plan the engine makes for query on an empty store, one
// line per step. On PostgreSQL sequential scans are off: an empty table is
// cheapest to scan, and the question is whether an index can answer at all.
func queryPlan(t *testing.T, engine, query string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, testdsn.DSN(t, engine), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	explain := "EXPLAIN QUERY PLAN "
	if engine == EnginePostgres {
		if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		explain = "EXPLAIN "
	}
	rows, err := conn.QueryContext(ctx, explain+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		dest := make([]any, len(cols))
		for i := range dest {
			dest[i] = new(any)
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		line := ""
		for _, d := range dest {
			line += " " + strings.TrimSpace(toString(*(d.(*any))))
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

func toString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}
