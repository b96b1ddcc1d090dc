package sqlstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// The reference server's statements on connector_transactions, copied word
// for word from /work/shared/bench-floor/cmd/floor/main.go (newWriter), whose
// run.sh starts it on this repository's sqlstore/migrations: if the schema
// stops taking them, run.sh stops at start (issue 28). Kept as copies, not
// imported: bench-floor is not part of this module.
const (
	floorClaim = `INSERT INTO connector_transactions (platform_id, transaction_id, request_hash, config_id, status, lease_until, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (platform_id, transaction_id) DO NOTHING`
	floorFinish = `UPDATE connector_transactions SET status = $3, response = $4, updated_at = $5
		WHERE platform_id = $1 AND transaction_id = $2`
	floorRead = `SELECT request_hash, status, COALESCE(response, '') FROM connector_transactions WHERE platform_id = $1 AND transaction_id = $2`
)

// TestFloorStatementsRunOnTheSchema: on a freshly migrated SQLite database
// the reference server's claim prepares and inserts a transaction (and
// inserts nothing the second time), its finish and read run on it, and its
// raw transaction_id leaves ivrpay's charge under the same id its own
// transaction (ivrpay stores the id qualified by its provider).
func TestFloorStatementsRunOnTheSchema(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.EngineSQLite)
	db := b.s.DB()
	ctx := boundedContext(t)
	const txID = "CA-floor"
	now := time.Now().UTC()
	claim, err := db.PrepareContext(ctx, floorClaim)
	if err != nil {
		t.Fatalf("floor's claim does not prepare on this schema: %v", err)
	}
	defer claim.Close()
	for i, want := range []int64{1, 0} {
		res, err := claim.ExecContext(ctx, b.platform.ID, txID, "hash", "", "RUNNING", ivrpay.FormatTime(now.Add(30*time.Second)), ivrpay.FormatTime(now))
		if err != nil {
			t.Fatalf("floor's claim #%d: %v", i+1, err)
		}
		if n, _ := res.RowsAffected(); n != want {
			t.Fatalf("floor's claim #%d inserted %d rows, want %d", i+1, n, want)
		}
	}
	res, err := db.ExecContext(ctx, floorFinish, b.platform.ID, txID, "DONE", `{"charge_id":"x"}`, ivrpay.FormatTime(now))
	if err != nil {
		t.Fatalf("floor's finish: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("floor's finish updated %d rows, want 1", n)
	}
	var hash, status, response string
	if err := db.QueryRowContext(ctx, floorRead, b.platform.ID, txID).Scan(&hash, &status, &response); err != nil {
		t.Fatalf("floor's read: %v", err)
	}
	if hash != "hash" || status != "DONE" || response != `{"charge_id":"x"}` {
		t.Fatalf("floor's read = %q %q %q", hash, status, response)
	}

	mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 1000).ID, txID, visaOK, 1000)))
	if n := count(t, db, `SELECT COUNT(*) FROM connector_transactions WHERE platform_id = $1`, b.platform.ID); n != 2 {
		t.Fatalf("%d connector transactions after floor's and ivrpay's %s, want 2", n, txID)
	}
}

// TestMigrationUpSectionsWithoutStatementBlocks: the reference server runs
// each migration's Up section as one script and refuses
// "+goose StatementBegin" there (bench-floor's migrate), so no Up has one.
func TestMigrationUpSectionsWithoutStatementBlocks(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, up, ok := strings.Cut(string(text), "-- +goose Up")
			if !ok {
				t.Fatal("no -- +goose Up section")
			}
			up, _, _ = strings.Cut(up, "-- +goose Down")
			if strings.Contains(up, "+goose StatementBegin") {
				t.Fatal("the Up section has +goose StatementBegin, which the reference server refuses")
			}
		})
	}
}
