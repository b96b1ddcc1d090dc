package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxGroupCommit bounds how many write closures share one SQLite transaction.
const maxGroupCommit = 128

// groupLinger is how long a small batch waits for more writes when recent
// batches show that writes come concurrently (their average size, over
// about the last eight, is at least lingerFrom), and lingerBelow how many
// writes make a batch large enough to commit at once. Under moderate load
// a commit otherwise carries one to three writes, and each commit costs its
// page writes and fsync whatever it carries: holding a small batch for at
// most a millisecond cut the server's CPU per charge by 10 to 25 % at 200
// and 420 charges/s, with p99 equal or lower in paired runs
// (docs/benchmarks.md). A lone writer, whose batches hold one write, never
// waits, and a pause of lingerIdle without writes forgets the average, so
// that writes arriving one by one after a burst do not wait either.
const (
	groupLinger = time.Millisecond
	lingerBelow = 8
	lingerFrom  = 1.25
	lingerIdle  = 10 * time.Millisecond
)

// errStoreClosed answers writes that arrive after Close.
var errStoreClosed = errors.New("sqlstore: store is closed")

// groupCommit is SQLite's group commit. SQLite has one writer, and a durable
// commit (synchronous=FULL) costs an fsync whatever it carries, so
// concurrent write transactions queue here and one goroutine runs the queued
// closures in ONE transaction on the writer connection. After the one
// COMMIT, every waiter returns, so each write is durable before it is
// acknowledged. A closure that fails must lose only its own work: the batch
// first runs without savepoints (a savepoint copies every page its closure
// touches into the sub-journal, about 5 % of a charge's CPU), and only when a
// closure fails is that transaction rolled back and the batch run again with
// each closure inside its own SAVEPOINT, where a failure is rolled back to
// its savepoint and the others go on. A closure may therefore run twice; it
// writes its results to its own variables, which the second run overwrites,
// and does nothing outside the transaction. The queue
// fills while the previous batch commits; under concurrent writes a small
// batch also waits up to linger for more (groupLinger).
type groupCommit struct {
	db       *sql.DB
	requests chan *writeRequest
	// savepoint, rollbackTo and release are prepared once on the writer, so
	// that a batch does not parse them again for each of its writes.
	savepoint, rollbackTo, release batchStmt
	// linger is groupLinger (tests change it before the first write).
	linger time.Duration
	// avgBatch is the moving average of the batches' sizes, and lastRun
	// when the last batch was committed (both the loop's own).
	avgBatch float64
	lastRun  time.Time
	// batches counts the batches run (a test's view of who shared a commit).
	batches atomic.Int64
	// mu guards closed: a request is only queued while it is false, so
	// that close answers every queued request.
	mu      sync.RWMutex
	closed  bool
	stop    chan struct{}
	stopped sync.WaitGroup
	once    sync.Once
}

// writeRequest is one inTx call waiting for its batch.
type writeRequest struct {
	fn   func(tx querier) error
	done chan writeResult
}

type writeResult struct {
	err error
	// panicked holds a closure's panic, re-raised in the caller's goroutine.
	panicked any
}

// failed reports whether the closure returned an error or panicked.
func (r writeResult) failed() bool { return r.err != nil || r.panicked != nil }

func newGroupCommit(db *sql.DB) *groupCommit {
	g := &groupCommit{db: db, requests: make(chan *writeRequest, maxGroupCommit), stop: make(chan struct{}), linger: groupLinger, avgBatch: 1}
	// Prepared before the loop starts: preparing on the one-connection pool
	// from inside a batch's transaction would wait for itself.
	g.savepoint, g.rollbackTo, g.release = newBatchStmt(db, `SAVEPOINT group_commit`), newBatchStmt(db, `ROLLBACK TO group_commit`),
		newBatchStmt(db, `RELEASE group_commit`)
	g.stopped.Add(1)
	go g.loop()
	return g
}

// do queues fn and waits until its batch is committed (or fn failed).
func (g *groupCommit) do(fn func(tx querier) error) error {
	r := &writeRequest{fn: fn, done: make(chan writeResult, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errStoreClosed
	}
	g.requests <- r
	g.mu.RUnlock()
	res := <-r.done
	if res.panicked != nil {
		panic(res.panicked)
	}
	return res.err
}

// close stops the loop once the batch it is running is done.
func (g *groupCommit) close() {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		close(g.stop)
		g.stopped.Wait()
		for _, b := range []batchStmt{g.savepoint, g.rollbackTo, g.release} {
			b.close()
		}
		// Requests that were queued but not taken are answered, not dropped.
		for {
			select {
			case r := <-g.requests:
				r.done <- writeResult{err: errStoreClosed}
			default:
				return
			}
		}
	})
}

func (g *groupCommit) loop() {
	defer g.stopped.Done()
	batch := make([]*writeRequest, 0, maxGroupCommit)
	for {
		select {
		case <-g.stop:
			return
		case r := <-g.requests:
			batch = append(batch[:0], r)
		}
		if time.Since(g.lastRun) > lingerIdle {
			g.avgBatch = 1
		}
	more:
		for len(batch) < maxGroupCommit {
			select {
			case r := <-g.requests:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if g.avgBatch >= lingerFrom && len(batch) < lingerBelow {
			batch = g.gather(batch)
		}
		g.avgBatch += (float64(len(batch)) - g.avgBatch) / 8
		g.run(batch)
		g.lastRun = time.Now()
	}
}

// gather holds a small batch for up to g.linger while more writes join it.
func (g *groupCommit) gather(batch []*writeRequest) []*writeRequest {
	if g.linger <= 0 {
		return batch
	}
	t := time.NewTimer(g.linger)
	defer t.Stop()
	for len(batch) < lingerBelow {
		select {
		case r := <-g.requests:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-g.stop:
			return batch
		}
	}
	return batch
}

// run commits one batch and answers every request in it.
func (g *groupCommit) run(batch []*writeRequest) {
	g.batches.Add(1)
	// The transaction belongs to no caller: none of them can cancel the
	// others' work. (inTx only queues closures whose context cannot be
	// canceled, since the driver interrupts the connection on a cancel and
	// SQLite then rolls back the whole transaction.)
	ctx := context.Background()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		answerAll(batch, err)
		return
	}
	if len(batch) == 1 {
		// Alone in its transaction: no savepoint needed.
		r := batch[0]
		res := call(r.fn, &batchTx{Tx: tx})
		if res.failed() {
			tx.Rollback()
		} else {
			res.err = tx.Commit()
		}
		r.done <- res
		return
	}
	results := make([]writeResult, len(batch))
	bt := &batchTx{Tx: tx}
	for i, r := range batch {
		if results[i] = call(r.fn, bt); results[i].failed() {
			// Its partial writes cannot be told from the others': start
			// over, each closure in its savepoint. (A connection the
			// rollback left broken fails the next BEGIN, which answers all.)
			tx.Rollback()
			g.runWithSavepoints(ctx, batch, results)
			return
		}
	}
	commitAndAnswer(tx, batch, results)
}

// runWithSavepoints commits batch in a new transaction, each closure inside
// its own savepoint, and answers every request in it.
func (g *groupCommit) runWithSavepoints(ctx context.Context, batch []*writeRequest, results []writeResult) {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		answerAll(batch, err)
		return
	}
	savepoint, rollbackTo, release := g.savepoint.in(ctx, tx), g.rollbackTo.in(ctx, tx), g.release.in(ctx, tx)
	bt := &batchTx{Tx: tx}
	for i, r := range batch {
		if _, err := savepoint(); err != nil {
			g.abort(tx, batch, results, i, err)
			return
		}
		results[i] = call(r.fn, bt)
		if results[i].failed() {
			if _, err := rollbackTo(); err != nil {
				// SQLite rolled the whole transaction back (an I/O error,
				// an interrupt): the earlier closures' work is gone too.
				g.abort(tx, batch, results, i+1, fmt.Errorf("group commit: transaction lost after a failed write: %w", err))
				return
			}
		}
		if _, err := release(); err != nil {
			g.abort(tx, batch, results, i+1, fmt.Errorf("group commit: %w", err))
			return
		}
	}
	commitAndAnswer(tx, batch, results)
}

// commitAndAnswer commits tx and answers every request of batch: with its
// own failure, or else with the commit's outcome.
func commitAndAnswer(tx *sql.Tx, batch []*writeRequest, results []writeResult) {
	commitErr := tx.Commit()
	for i, r := range batch {
		if !results[i].failed() {
			results[i].err = commitErr
		}
		r.done <- results[i]
	}
}

// answerAll answers every request of batch with err.
func answerAll(batch []*writeRequest, err error) {
	for _, r := range batch {
		r.done <- writeResult{err: err}
	}
}

// batchTx is a batch's transaction as its closures see it. A cached
// statement is bound to the transaction once (tx.StmtContext makes a new
// *sql.Stmt on every call), and then reused by every closure of the batch.
type batchTx struct {
	*sql.Tx
	bound map[*sql.Stmt]*sql.Stmt
}

// stmt is st bound to the transaction.
func (b *batchTx) stmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	if bs := b.bound[st]; bs != nil {
		return bs
	}
	if b.bound == nil {
		b.bound = make(map[*sql.Stmt]*sql.Stmt, 16)
	}
	bs := b.StmtContext(ctx, st)
	b.bound[st] = bs
	return bs
}

// batchStmt is a statement the loop runs in every batch of several writes.
type batchStmt struct {
	query string
	st    *sql.Stmt // nil when preparing failed: the query then runs unprepared
}

func newBatchStmt(db *sql.DB, query string) batchStmt {
	st, _ := db.Prepare(query)
	return batchStmt{query: query, st: st}
}

// in returns a function that runs b in tx, bound to tx at its first use.
func (b batchStmt) in(ctx context.Context, tx *sql.Tx) func() (sql.Result, error) {
	var bound *sql.Stmt
	return func() (sql.Result, error) {
		if b.st == nil {
			return tx.ExecContext(ctx, b.query)
		}
		if bound == nil {
			bound = tx.StmtContext(ctx, b.st)
		}
		return bound.ExecContext(ctx)
	}
}

func (b batchStmt) close() {
	if b.st != nil {
		b.st.Close()
	}
}

// abort rolls back a batch whose transaction broke: the closures that ran
// (before ran) get err unless they failed on their own, and the ones that
// have not run yet run in a batch of their own, since nothing of theirs was
// written.
func (g *groupCommit) abort(tx *sql.Tx, batch []*writeRequest, results []writeResult, ran int, err error) {
	tx.Rollback()
	for i := range ran {
		if !results[i].failed() {
			results[i].err = err
		}
		batch[i].done <- results[i]
	}
	if ran < len(batch) {
		g.run(batch[ran:])
	}
}

// call runs fn, turning a panic into a result so that the loop survives it.
func call(fn func(tx querier) error, tx *batchTx) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res.panicked = p
		}
	}()
	res.err = fn(tx)
	return res
}

// writeQueryRow runs one write statement that returns at most one row (an
// INSERT … RETURNING) and scans it into dest; false when it returned none.
// On SQLite it goes through inTx, like execTx; elsewhere it is one
// autocommit statement.
func (s *Store) writeQueryRow(ctx context.Context, dest []any, query string, args ...any) (bool, error) {
	var err error
	if s.group == nil {
		s.writes.Add(1)
		err = s.queryRow(ctx, s.wdb, query, args...).Scan(dest...)
	} else {
		err = s.inTx(ctx, func(tx querier) error { return s.queryRow(ctx, tx, query, args...).Scan(dest...) })
	}
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// execTx runs one write statement and returns how many rows it affected. On
// SQLite it goes through inTx, so that single-statement writes share group
// commits too; elsewhere it is one autocommit statement.
func (s *Store) execTx(ctx context.Context, query string, args ...any) (int64, error) {
	if s.group == nil {
		s.writes.Add(1)
		res, err := s.exec(ctx, s.wdb, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	var n int64
	err := s.inTx(ctx, func(tx querier) error {
		res, err := s.exec(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
