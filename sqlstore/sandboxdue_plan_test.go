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
				// An empty table is cheapest to scan; forbid that to learn
				// whether the index can answer at all.
				if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
					t.Fatal(err)
				}
				explain = "EXPLAIN "
			}
			rows, err := conn.QueryContext(ctx, explain+sandboxDuePayins, "2026-01-01T00:00:00Z", 100, "PAYMENT_CAPTURED")
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
			whole := strings.Join(plan, "\n")
			if !strings.Contains(whole, "payins_sandbox_due") {
				t.Errorf("the sandbox confirmation query does not use payins_sandbox_due:\n%s", whole)
			}
			for _, bad := range []string{"TEMP B-TREE", "Sort", "Seq Scan", "SCAN payins"} {
				if strings.Contains(whole, bad) {
					t.Errorf("the sandbox confirmation query plan has %q:\n%s", bad, whole)
				}
			}
		})
	}
}

func toString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}
