package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWALCheckpointedInTheBackground: on SQLite, what is committed reaches
// the database file within a few walCheckpointEvery, long before the WAL
// holds walCheckpointPages (when a commit would copy it on the writer), and
// the WAL then starts over from its beginning at the next write.
func TestWALCheckpointedInTheBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	write := func(query string, args ...any) {
		t.Helper()
		if err := s.inTx(ctx, func(tx querier) error { _, err := tx.ExecContext(ctx, query, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	write(`CREATE TABLE probe (n INTEGER NOT NULL)`)
	const rows = 20
	for i := range rows {
		write(`INSERT INTO probe (n) VALUES ($1)`, i)
	}
	walFrames := func() int64 {
		t.Helper()
		var busy, frames, copied int64
		if err := s.wdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			t.Fatal(err)
		}
		return frames
	}

	// The database file alone (a copy without its WAL) shows what was checkpointed.
	inFile := func() int {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(dir, "copy.db")
		if err := os.WriteFile(copyPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+copyPath+"?mode=ro&immutable=1")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM probe`).Scan(&n); err != nil {
			return -1 // the table itself is not in the file yet
		}
		return n
	}
	deadline := time.Now().Add(20 * walCheckpointEvery)
	for got := inFile(); got != rows; got = inFile() {
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d of the %d committed rows after %s (want all of them, copied by the background checkpoint)",
				got, rows, 20*walCheckpointEvery)
		}
		time.Sleep(walCheckpointEvery / 4)
	}
	before := walFrames()
	if before >= walCheckpointPages {
		t.Fatalf("the WAL holds %d frames: the writer's own checkpoint (at %d) could have copied the rows", before, walCheckpointPages)
	}
	write(`INSERT INTO probe (n) VALUES ($1)`, rows)
	if after := walFrames(); after >= before {
		t.Errorf("after one more write the WAL holds %d frames, before it %d: want it started over from its beginning", after, before)
	}
}
