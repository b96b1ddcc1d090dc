package sqlstore

import (
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// walCheckpointEvery is how often, on SQLite, a connection of its own copies
// the WAL back into the database file (a PASSIVE checkpoint), when anything
// was written since the last time. A commit that crosses
// walCheckpointPages checkpoints on the writer itself, inside the group
// commit: every write queued behind it waits for the copy and the database
// file's fsync, 20 to 40 ms at 10,000 pages. Here the copy runs beside the
// writer, which goes on committing; it copies the frames no open read still
// needs, and the WAL starts over from its beginning once a checkpoint has
// copied all of it (SQLite does that at the next write). The
// writer's own checkpoint stays as the bound when this one falls behind.
// Measured in an open loop at 894 charges/s after a 40 s burst: p99 32–38 →
// 22–26 ms; every 500 ms gave no gain, its copies being as long as the
// writer's (docs/benchmarks.md).
const walCheckpointEvery = 200 * time.Millisecond

// checkpointer runs the background checkpoints of one SQLite store.
type checkpointer struct {
	db *sql.DB
	// written reports the store's write transactions so far: an idle store
	// is not checkpointed again.
	written func() int64
	logger  *slog.Logger
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// startCheckpointer checkpoints db every interval until close. db is a pool
// of one connection that nothing else uses.
func startCheckpointer(db *sql.DB, interval time.Duration, written func() int64, logger *slog.Logger) *checkpointer {
	c := &checkpointer{db: db, written: written, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(interval)
	return c
}

func (c *checkpointer) loop(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	last, failing := int64(-1), false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		n := c.written()
		if n == last {
			continue
		}
		last = n
		// A failure is logged once, not five times a second; the writer's own
		// checkpoint still bounds the WAL meanwhile.
		switch err := c.checkpoint(); {
		case err != nil && !failing:
			c.logger.Warn("background WAL checkpoint failed; the writer checkpoints by itself until it works again", "error", err)
			failing = true
		case err == nil && failing:
			c.logger.Info("background WAL checkpoint works again")
			failing = false
		}
	}
}

// checkpoint copies what it can of the WAL into the database file without
// waiting for the writer or the readers. SQLite answers busy when another
// connection held the checkpoint (the writer's own, another process's):
// nothing is lost, the next tick tries again.
func (c *checkpointer) checkpoint() error {
	var busy, walFrames, copied int64
	return c.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &walFrames, &copied)
}

// close stops the loop after the checkpoint it is running.
func (c *checkpointer) close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
