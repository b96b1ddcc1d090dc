package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds the prepared statements of the hot paths, so that their SQL
// is parsed once per connection instead of once per call (database/sql with
// modernc.org/sqlite prepares every unprepared statement on every call). A
// *sql.Stmt prepared on a *sql.DB is prepared again, lazily, on each
// connection it runs on, and reused there after; in a transaction it runs
// through tx.StmtContext, which reuses the statement already prepared on the
// transaction's connection.
type stmtCache struct {
	// stmts maps a stmtKey to its *sql.Stmt.
	stmts sync.Map
	// pending holds the queries first met inside a transaction. They cannot
	// be prepared there: preparing on the pool would wait for a connection,
	// and SQLite's writer pool has only the one the transaction holds. inTx
	// prepares them once its transaction is over.
	pending sync.Map
	// mu orders Close after the prepares in flight; closed refuses new ones.
	mu     sync.Mutex
	closed bool
}

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns the cached statement of query for q (a pool or a
// transaction on the write pool), preparing it on a pool when it is missing,
// or nil when there is none yet: the caller then runs the query unprepared.
func (s *Store) prepared(ctx context.Context, q querier, query string) *sql.Stmt {
	switch q := q.(type) {
	case *batchTx:
		if st, ok := s.stmts.stmts.Load(stmtKey{s.wdb, query}); ok {
			return q.stmt(ctx, st.(*sql.Stmt))
		}
		s.stmts.pending.Store(query, struct{}{})
	case *sql.Tx:
		if st, ok := s.stmts.stmts.Load(stmtKey{s.wdb, query}); ok {
			return q.StmtContext(ctx, st.(*sql.Stmt))
		}
		s.stmts.pending.Store(query, struct{}{})
	case *sql.DB:
		return s.prepare(ctx, q, query)
	}
	return nil
}

// prepare returns the statement of query on db, preparing and caching it on
// first use; nil if it cannot be prepared (the unprepared call then reports
// the error).
func (s *Store) prepare(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	key := stmtKey{db, query}
	if st, ok := s.stmts.stmts.Load(key); ok {
		return st.(*sql.Stmt)
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if s.stmts.closed {
		st.Close()
		return nil
	}
	if prev, loaded := s.stmts.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// preparePending prepares on the write pool the queries that transactions
// ran unprepared. It runs outside any transaction.
func (s *Store) preparePending() {
	s.stmts.pending.Range(func(query, _ any) bool {
		s.stmts.pending.Delete(query)
		s.prepare(context.Background(), s.wdb, query.(string))
		return true
	})
}

// closeStmts closes the cached statements; later ones are not cached.
func (s *Store) closeStmts() {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	s.stmts.closed = true
	s.stmts.stmts.Range(func(key, st any) bool {
		st.(*sql.Stmt).Close()
		s.stmts.stmts.Delete(key)
		return true
	})
}

// Statements counts the statements the store has run through its
// statement cache (every statement of the charge path), so that a test can
// hold the cost of a charge to a budget.
func (s *Store) Statements() int64 { return s.statements.Load() }

// RoundTrips counts, on PostgreSQL, the round trips to the server of those
// statements and of write transactions (each batch of a pgTx, and its reads,
// count one); 0 on SQLite, which runs in the process.
func (s *Store) RoundTrips() int64 { return s.roundTrips.Load() }

// counted counts a statement run through the cache on q.
func (s *Store) counted(q querier) {
	s.statements.Add(1)
	if _, pipelined := q.(*pgTx); !pipelined && s.engine == EnginePostgres {
		s.roundTrips.Add(1)
	}
}

// queryRow is q.QueryRowContext through the statement cache.
func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	s.counted(q)
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, query, args...)
}

// query is q.QueryContext through the statement cache.
func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	s.counted(q)
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, query, args...)
}

// exec is q.ExecContext through the statement cache.
func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	s.counted(q)
	if st := s.prepared(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}
