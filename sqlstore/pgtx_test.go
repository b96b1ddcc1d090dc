package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	"github.com/ivrpay/ivrpay/sqlstore/testdsn"
)

// openPipelineStore opens a PostgreSQL store whose write pool holds one
// connection, so that a connection left inside a transaction would be the
// one the next transaction gets.
func openPipelineStore(t *testing.T) *Store {
	t.Helper()
	if os.Getenv("IVRPAY_TEST_POSTGRES") == "" && os.Getenv("CI") == "true" {
		t.Fatal("CI=true but IVRPAY_TEST_POSTGRES is not set: the pipelined transactions must be tested on PostgreSQL")
	}
	s, err := Open(context.Background(), testdsn.DSN(t, EnginePostgres), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.wdb.SetMaxOpenConns(1)
	if _, err := s.wdb.Exec(`CREATE TABLE pt (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return s
}

func ptRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM pt`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPipelinedTxRoundTrips: queued writes, BEGIN and COMMIT go in one
// round trip; a read or a RowsAffected sends what is queued first, and
// sees it.
func TestPipelinedTxRoundTrips(t *testing.T) {
	t.Parallel()
	s := openPipelineStore(t)
	ctx := context.Background()
	insert := `INSERT INTO pt (id, note) VALUES ($1, 'row')`
	for _, tc := range []struct {
		name  string
		fn    func(t *testing.T, tx querier) error
		trips int64
		rows  int
	}{
		{"five writes", func(t *testing.T, tx querier) error {
			for i := range 5 {
				if _, err := tx.ExecContext(ctx, insert, i); err != nil {
					return err
				}
			}
			return nil
		}, 1, 5},
		{"a read sees the writes queued before it", func(t *testing.T, tx querier) error {
			for i := 10; i < 13; i++ {
				if _, err := tx.ExecContext(ctx, insert, i); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pt WHERE id >= 10`).Scan(&n); err != nil {
				return err
			}
			if n != 3 {
				t.Errorf("the transaction's read saw %d of its 3 writes", n)
			}
			_, err := tx.ExecContext(ctx, insert, 13)
			return err
		}, 3, 9},
		{"RowsAffected sends the queue", func(t *testing.T, tx querier) error {
			miss, err := tx.ExecContext(ctx, `UPDATE pt SET note = 'x' WHERE id = 99`)
			if err != nil {
				return err
			}
			hit, err := tx.ExecContext(ctx, `UPDATE pt SET note = 'x' WHERE id >= 10`)
			if err != nil {
				return err
			}
			if n, err := miss.RowsAffected(); n != 0 || err != nil {
				t.Errorf("an update of no row: RowsAffected = %d, %v", n, err)
			}
			if n, err := hit.RowsAffected(); n != 4 || err != nil {
				t.Errorf("an update of 4 rows: RowsAffected = %d, %v", n, err)
			}
			return nil
		}, 2, 9},
		{"nothing to write", func(t *testing.T, tx querier) error { return nil }, 0, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.RoundTrips()
			if err := s.inTx(ctx, func(tx querier) error { return tc.fn(t, tx) }); err != nil {
				t.Fatal(err)
			}
			if trips := s.RoundTrips() - before; trips != tc.trips {
				t.Errorf("the transaction took %d round trips, want %d", trips, tc.trips)
			}
			if n := ptRows(t, s); n != tc.rows {
				t.Errorf("%d rows after the transaction, want %d", n, tc.rows)
			}
		})
	}
}

// TestPipelinedTxFailures: a failed statement, a closure's error or a panic
// leave nothing of the transaction behind, inTx returns the statement's own
// error even when the closure turned what it saw into another, and the one
// connection is rolled back and kept (not discarded) for the next transaction.
func TestPipelinedTxFailures(t *testing.T) {
	t.Parallel()
	s := openPipelineStore(t)
	ctx := context.Background()
	if _, err := s.wdb.Exec(`INSERT INTO pt (id, note) VALUES (0, 'base')`); err != nil {
		t.Fatal(err)
	}
	backend := func() (pid int) {
		t.Helper()
		if err := s.wdb.QueryRow(`SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	insert := `INSERT INTO pt (id, note) VALUES ($1, 'row')`
	errOwn := errors.New("the closure's own error")
	errMisread := errors.New("state changed")
	for _, tc := range []struct {
		name string
		fn   func(tx querier) error
		want func(error) bool
	}{
		{"a duplicate key among queued writes", func(tx querier) error {
			tx.ExecContext(ctx, insert, 1)
			tx.ExecContext(ctx, insert, 0)
			tx.ExecContext(ctx, insert, 2)
			return nil
		}, isUniqueViolation},
		{"a closure that reads the failure as 0 rows", func(tx querier) error {
			tx.ExecContext(ctx, insert, 1)
			res, _ := tx.ExecContext(ctx, insert, 0)
			if n, _ := res.RowsAffected(); n != 1 {
				return errMisread
			}
			return nil
		}, isUniqueViolation},
		{"a read after the failure", func(tx querier) error {
			tx.ExecContext(ctx, insert, 0)
			var n int
			return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pt`).Scan(&n)
		}, isUniqueViolation},
		{"a write after the failure was seen", func(tx querier) error {
			res, _ := tx.ExecContext(ctx, insert, 0)
			res.RowsAffected()
			_, err := tx.ExecContext(ctx, insert, 3)
			return err
		}, isUniqueViolation},
		{"the closure's error after its writes were sent", func(tx querier) error {
			res, _ := tx.ExecContext(ctx, insert, 1)
			if n, err := res.RowsAffected(); n != 1 || err != nil {
				t.Errorf("the write before the error: RowsAffected = %d, %v", n, err)
			}
			return errOwn
		}, func(err error) bool { return errors.Is(err, errOwn) }},
		{"the closure's error before anything was sent", func(tx querier) error {
			tx.ExecContext(ctx, insert, 1)
			return errOwn
		}, func(err error) bool { return errors.Is(err, errOwn) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := backend()
			err := s.inTx(ctx, tc.fn)
			if !tc.want(err) {
				t.Fatalf("inTx returned %v", err)
			}
			if n := ptRows(t, s); n != 1 {
				t.Fatalf("%d rows after a failed transaction, want only the 1 from before it", n)
			}
			if err := s.inTx(ctx, func(tx querier) error {
				_, err := tx.ExecContext(ctx, `UPDATE pt SET note = note WHERE id = 0`)
				return err
			}); err != nil {
				t.Fatalf("the next transaction: %v", err)
			}
			if backend() != pid {
				t.Fatal("the failed transaction's connection was discarded, not rolled back")
			}
		})
	}
	t.Run("a connection lost in the middle", func(t *testing.T) {
		other, err := sql.Open("pgx", os.Getenv("IVRPAY_TEST_POSTGRES"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		var rowsErr error
		err = s.inTx(ctx, func(tx querier) error {
			var pid int
			if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			if _, err := other.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatalf("terminating the transaction's backend: %v", err)
			}
			res, _ := tx.ExecContext(ctx, insert, 7)
			var n int64
			if n, rowsErr = res.RowsAffected(); n != 1 {
				return errMisread
			}
			return nil
		})
		if rowsErr == nil {
			t.Fatal("RowsAffected of a statement on a lost connection returned no error")
		}
		if err == nil || errors.Is(err, errMisread) {
			t.Fatalf("inTx returned %v, want the lost connection's error", err)
		}
		if n := ptRows(t, s); n != 1 {
			t.Fatalf("%d rows after a transaction whose connection was lost, want 1", n)
		}
	})
	t.Run("a panic after its writes were sent", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the closure's panic did not reach the caller")
				}
			}()
			s.inTx(ctx, func(tx querier) error {
				res, _ := tx.ExecContext(ctx, insert, 5)
				res.RowsAffected()
				panic("closure")
			})
		}()
		if err := s.inTx(ctx, func(tx querier) error {
			_, err := tx.ExecContext(ctx, insert, 6)
			return err
		}); err != nil {
			t.Fatalf("the next transaction: %v", err)
		}
		var ids []int
		rows, err := s.rdb.Query(`SELECT id FROM pt ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			rows.Scan(&id)
			ids = append(ids, id)
		}
		if len(ids) != 2 || ids[1] != 6 {
			t.Fatalf("rows %v after a panicking transaction and a good one, want [0 6]", ids)
		}
	})
}
