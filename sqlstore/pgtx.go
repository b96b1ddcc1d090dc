package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgTx is a PostgreSQL write transaction that pipelines its writes.
// ExecContext queues a statement and returns at once; the queue goes to the
// server as one pgx batch when the transaction next needs an answer: a read,
// a queued statement's RowsAffected, or the end, where COMMIT rides in the
// same batch. BEGIN rides on the first batch. An approved charge's outcome
// (six statements and BEGIN/COMMIT, one RowsAffected) thereby costs two
// round trips instead of eight.
//
// A statement that fails aborts the transaction on the server; its error is
// kept, every later call answers with it, and inTx returns it whatever the
// closure made of it (a closure that reads RowsAffected and sees 0 must not
// turn a lost connection into "state changed"). Closures therefore learn of
// a failed write later than with database/sql, but PostgreSQL lets a
// transaction do nothing after a failed statement anyway.
type pgTx struct {
	s    *Store
	ctx  context.Context
	conn *sql.Conn
	// begun: BEGIN has been sent.
	begun bool
	// queued are the statements not sent yet.
	queued []*pgResult
	// err is the first failure; once it is set the transaction only rolls back.
	err error
}

// pgResult is a queued statement's sql.Result.
type pgResult struct {
	tx    *pgTx
	query string
	args  []any
	sent  bool
	rows  int64
	err   error
}

func (r *pgResult) LastInsertId() (int64, error) {
	return 0, errors.New("sqlstore: LastInsertId is not supported by PostgreSQL")
}

// RowsAffected sends the queue if r is still in it.
func (r *pgResult) RowsAffected() (int64, error) {
	if !r.sent {
		r.tx.send(false)
	}
	return r.rows, r.err
}

func (t *pgTx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	if t.err != nil {
		return nil, t.err
	}
	r := &pgResult{tx: t, query: query, args: args}
	t.queued = append(t.queued, r)
	return r, nil
}

func (t *pgTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(t.readContext(ctx), query, args...)
}

func (t *pgTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(t.readContext(ctx), query, args...)
}

// readContext sends the queue (a read sees the transaction's writes) and
// returns the context to read with: a canceled one when the transaction has
// failed, so that nothing more reaches the server (a failure before BEGIN
// was sent would otherwise let the read run outside the transaction).
func (t *pgTx) readContext(ctx context.Context) context.Context {
	t.send(false)
	if t.err != nil {
		failed, cancel := context.WithCancelCause(ctx)
		cancel(t.err)
		return failed
	}
	t.s.roundTrips.Add(1)
	return ctx
}

// send sends BEGIN (the first time), the queued statements and, with
// commit, COMMIT, in one batch, and records each statement's result.
func (t *pgTx) send(commit bool) {
	if t.err != nil || (t.begun && len(t.queued) == 0 && !commit) {
		return
	}
	var b pgx.Batch
	if !t.begun {
		b.Queue("BEGIN")
	}
	for _, r := range t.queued {
		b.Queue(r.query, r.args...)
	}
	if commit {
		b.Queue("COMMIT")
	}
	queued := t.queued
	t.queued = nil
	t.s.roundTrips.Add(1)
	err := t.conn.Raw(func(dc any) error {
		br := dc.(*stdlib.Conn).Conn().SendBatch(t.ctx, &b)
		if !t.begun {
			if _, err := br.Exec(); err != nil {
				t.err = err
			}
			t.begun = true
		}
		for _, r := range queued {
			r.sent = true
			if t.err != nil {
				r.err = t.err
				continue
			}
			tag, err := br.Exec()
			r.rows, r.err, t.err = tag.RowsAffected(), err, err
		}
		if commit && t.err == nil {
			if _, err := br.Exec(); err != nil {
				t.err = err
			}
		}
		return errors.Join(t.err, br.Close())
	})
	if t.err == nil {
		t.err = err
	}
	// Statements the batch never reached (the connection failed first) share its error.
	for _, r := range queued {
		if !r.sent {
			r.sent, r.err = true, t.err
		}
	}
}

// inPipelinedTx is inTx on PostgreSQL: fn's writes pipelined on one connection.
func (s *Store) inPipelinedTx(ctx context.Context, fn func(tx querier) error) error {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := &pgTx{s: s, ctx: ctx, conn: conn}
	err = fn(t)
	if err == nil && t.err == nil {
		if !t.begun && len(t.queued) == 0 {
			return nil // nothing to write
		}
		t.send(true)
		if t.err == nil {
			return nil
		}
	}
	if t.begun {
		t.rollback()
	}
	// The transaction's own failure is the cause of whatever fn returned.
	if t.err != nil {
		return t.err
	}
	return err
}

// rollback ends a failed transaction; a connection it cannot roll back is
// discarded rather than returned to the pool inside a transaction.
func (t *pgTx) rollback() {
	t.s.roundTrips.Add(1)
	t.conn.Raw(func(dc any) error {
		if _, err := dc.(*stdlib.Conn).Conn().Exec(context.WithoutCancel(t.ctx), "ROLLBACK"); err != nil {
			return driver.ErrBadConn
		}
		return nil
	})
}
