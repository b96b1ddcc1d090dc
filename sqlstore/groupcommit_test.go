package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openGroupCommitStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "gc.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.group == nil {
		t.Fatal("a SQLite store has no group commit")
	}
	if _, err := s.wdb.Exec(`CREATE TABLE gc (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGroupCommitIsolatesFailures runs many concurrent writes, a fifth of
// which fail half-way (after a first insert, on a duplicate key): each
// failing write loses only its own rows and gets its own error, and every
// other write is committed.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	ctx := context.Background()
	if _, err := s.wdb.Exec(`INSERT INTO gc (id, note) VALUES (0, 'base')`); err != nil {
		t.Fatal(err)
	}
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	var first sync.Once
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.inTx(ctx, func(tx querier) error {
				// The first write holds its batch until the queue is full,
				// so that the next batches hold many writes each.
				first.Do(func() {
					deadline := time.Now().Add(10 * time.Second)
					for len(s.group.requests) < maxGroupCommit && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
				})
				if _, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES ($1, 'first')`, 1000+i); err != nil {
					return err
				}
				if i%5 == 0 {
					// Row 0 exists from the start: this insert always fails.
					_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES (0, 'clash')`)
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES ($1, 'second')`, 5000+i)
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i%5 == 0 && !isUniqueViolation(err):
			t.Errorf("write %d: err = %v, want its own unique violation", i, err)
		case i%5 != 0 && err != nil:
			t.Errorf("write %d: err = %v", i, err)
		}
	}
	for i := range n {
		var rows int
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM gc WHERE id IN ($1, $2)`, 1000+i, 5000+i).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		want := 2
		if i%5 == 0 {
			want = 0
		}
		if rows != want {
			t.Errorf("write %d left %d rows, want %d", i, rows, want)
		}
	}
}

// TestGroupCommitRunsABatchAgainAfterAFailure holds one batch of five
// writes in a known order, the third of which fails after an insert. The
// batch runs without savepoints until that failure, then again from the
// start with a savepoint for each write: the two writes before the failure
// run twice, the two after it once, and every write but the failed one is
// committed exactly once.
func TestGroupCommitRunsABatchAgainAfterAFailure(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	ctx := context.Background()
	if _, err := s.wdb.Exec(`INSERT INTO gc (id, note) VALUES (0, 'base')`); err != nil {
		t.Fatal(err)
	}
	const n, failing = 5, 2
	var runs [n]atomic.Int32
	errs := make([]error, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // holds the loop, so that the five queue behind it in order
		defer wg.Done()
		if err := s.inTx(ctx, func(tx querier) error { <-release; return nil }); err != nil {
			t.Error(err)
		}
	}()
	for s.group.batches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	batchesBefore := s.group.batches.Load()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.inTx(ctx, func(tx querier) error {
				runs[i].Add(1)
				if _, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES ($1, 'mine')`, 100+i); err != nil {
					return err
				}
				if i == failing {
					_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES (0, 'clash')`)
					return err
				}
				return nil
			})
		}()
		for len(s.group.requests) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	wg.Wait()
	if got := s.group.batches.Load() - batchesBefore; got != 1 {
		t.Fatalf("the five writes ran in %d batches, want 1", got)
	}
	for i := range n {
		wantRuns, wantRows := int32(2), 1
		switch {
		case i == failing:
			wantRows = 0
			if !isUniqueViolation(errs[i]) {
				t.Errorf("write %d: err = %v, want its own unique violation", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("write %d: err = %v", i, errs[i])
		}
		if i > failing {
			wantRuns = 1
		}
		if got := runs[i].Load(); got != wantRuns {
			t.Errorf("write %d ran %d times, want %d", i, got, wantRuns)
		}
		var rows int
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM gc WHERE id = $1`, 100+i).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != wantRows {
			t.Errorf("write %d left %d rows, want %d", i, rows, wantRows)
		}
	}
}

// TestGroupCommitPanic re-raises a write's panic in its caller, rolls back
// only that write, and keeps committing the others.
func TestGroupCommitPanic(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var recovered any
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 25 {
				defer func() { recovered = recover() }()
			}
			err := s.inTx(ctx, func(tx querier) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES ($1, 'row')`, i); err != nil {
					return err
				}
				if i == 25 {
					panic("write 25 panics")
				}
				return nil
			})
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if recovered != "write 25 panics" {
		t.Errorf("recovered %v, want the write's panic", recovered)
	}
	var rows int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM gc`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 49 {
		t.Errorf("%d rows, want 49 (every write but the one that panicked)", rows)
	}
}

// TestGroupCommitCancelableContext runs a write whose context can be
// canceled in a transaction of its own, as before group commit.
func TestGroupCommitCancelableContext(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.inTx(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES (1, 'solo')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := s.inTx(ctx, func(tx querier) error { return errors.New("must not run") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("inTx with a canceled context: %v, want context.Canceled", err)
	}
}

// TestGroupCommitClose answers writes that arrive after Close instead of
// hanging, and a second Close (a deferred one after an explicit one) is
// harmless.
func TestGroupCommitClose(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := s.inTx(context.Background(), func(tx querier) error { return fmt.Errorf("must not run") })
	if !errors.Is(err, errStoreClosed) {
		t.Errorf("inTx after Close: %v, want errStoreClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestGroupCommitLinger: once batches show concurrent writes, a small batch
// waits for more writes to join it (up to lingerBelow); a lone writer
// (whose batches hold one write) never waits, nor does a write after a
// pause of lingerIdle. The linger is set to an
// hour, so a write that waited for it would hang the test instead of
// passing after a while.
func TestGroupCommitLinger(t *testing.T) {
	t.Parallel()
	s := openGroupCommitStore(t)
	s.group.linger = time.Hour
	ctx := context.Background()
	insert := func(id int) error {
		return s.inTx(ctx, func(tx querier) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES ($1, 'row')`, id)
			return err
		})
	}
	// lone writes id alone and fails if it waits for the linger.
	lone := func(t *testing.T, id int) {
		t.Helper()
		before := s.group.batches.Load()
		done := make(chan error, 1)
		go func() { done <- insert(id) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("lone write %d is still waiting after 30 s (for the hour-long linger)", id)
		}
		if n := s.group.batches.Load() - before; n != 1 {
			t.Fatalf("write %d ran in %d batches, want 1", id, n)
		}
	}
	t.Run("a lone writer does not wait", func(t *testing.T) {
		for id := range 3 {
			lone(t, id)
		}
	})
	t.Run("after a batch of several, a small batch waits for more", func(t *testing.T) {
		// A batch of four: the first write holds the writer until four more
		// are queued behind it, and those then share the next batch.
		queued := make(chan error, 4)
		err := s.inTx(ctx, func(tx querier) error {
			for id := 101; id <= 104; id++ {
				go func() { queued <- insert(id) }()
			}
			for len(s.group.requests) < 4 {
				time.Sleep(time.Millisecond)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO gc (id, note) VALUES (100, 'row')`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := <-queued; err != nil {
				t.Fatal(err)
			}
		}
		if s.group.avgBatch < lingerFrom {
			t.Fatalf("after a batch of four the average batch is %.3f, under %.2f", s.group.avgBatch, lingerFrom)
		}
		// The next write waits for more (the linger is an hour), and the
		// batch commits once lingerBelow writes have joined it.
		before := s.group.batches.Load()
		results := make(chan error, lingerBelow)
		go func() { results <- insert(300) }()
		time.Sleep(50 * time.Millisecond)
		if s.group.batches.Load() != before {
			t.Fatal("a write after a batch of several committed alone instead of waiting for more")
		}
		for i := 1; i < lingerBelow; i++ {
			go func() { results <- insert(300 + i) }()
		}
		for range lingerBelow {
			if err := <-results; err != nil {
				t.Fatal(err)
			}
		}
		if n := s.group.batches.Load() - before; n != 1 {
			t.Fatalf("%d writes after a batch of several ran in %d batches, want 1", lingerBelow, n)
		}
	})
	t.Run("a pause forgets the concurrency", func(t *testing.T) {
		if s.group.avgBatch < lingerFrom {
			t.Fatalf("the average batch is %.3f after the batches above; the test does not reach the pause", s.group.avgBatch)
		}
		time.Sleep(5 * lingerIdle)
		lone(t, 400)
	})
}
