package sqlstore

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ivrpay/ivrpay/sqlstore/testdsn"
)

// BenchmarkCommit measures durable one-row write transactions, the unit every
// charge is made of, with SQLite at synchronous=FULL (and PostgreSQL, when
// IVRPAY_TEST_POSTGRES is set, at its defaults: fsync and synchronous_commit on):
//
//   - serial: one BEGIN / INSERT one row / COMMIT at a time on the store's
//     write pool: the engine's bare single-row commit rate;
//   - parallel: the same transaction through Store.inTx from 16 goroutines,
//     as concurrent requests write.
//
// Each reports commits/s. Run it with
//
//	go test ./sqlstore -run '^$' -bench Commit -benchtime 5s
//
// The results are recorded in docs/benchmarks.md.
func BenchmarkCommit(b *testing.B) {
	engines := []string{EngineSQLite}
	if os.Getenv("IVRPAY_TEST_POSTGRES") != "" {
		engines = append(engines, EnginePostgres)
	}
	const insert = `INSERT INTO bench_commits (id, note) VALUES ($1, 'one durable row')`
	for _, engine := range engines {
		b.Run(engine+"/serial", func(b *testing.B) {
			s := openBenchStore(b, engine)
			ctx := context.Background()
			var id int64
			for b.Loop() {
				id++
				tx, err := s.wdb.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, insert, id); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
		b.Run(engine+"/parallel", func(b *testing.B) {
			s := openBenchStore(b, engine)
			ctx := context.Background()
			var id atomic.Int64
			b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.inTx(ctx, func(tx querier) error {
						_, err := tx.ExecContext(ctx, insert, id.Add(1))
						return err
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// openBenchStore opens a store on a fresh database (a SQLite file, or a new
// PostgreSQL schema dropped afterwards) with a one-row table to commit into.
func openBenchStore(b *testing.B, engine string) *Store {
	b.Helper()
	ctx := context.Background()
	dsn := testdsn.DSN(b, engine)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if engine == EngineSQLite {
		var sync int
		if err := s.wdb.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			b.Fatalf("PRAGMA synchronous = %d (%v), want 2 (FULL)", sync, err)
		}
	}
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE bench_commits (id BIGINT PRIMARY KEY, note TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return s
}
