package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/ivrpay/ivrpay"
)

// AuthCached returns what the authentication cache holds, by cache key, with
// each key's platform, for tests that check what it keeps.
func (s *Store) AuthCached() map[string]ivrpay.APIKey {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	out := map[string]ivrpay.APIKey{}
	for hash, e := range s.auth.entries {
		k, p := e.value.key, e.value.platform
		k.Platform = &p
		out[hash] = k
	}
	return out
}

// MigrateDownTo undoes every migration above version on the database at
// dsn, as `goose down-to` does, so that a test can check a migration's Down
// and its Up on data written by the code of the time.
func MigrateDownTo(ctx context.Context, dsn string, version int64) error {
	driver, dialect := "sqlite", goose.DialectSQLite3
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		driver, dialect = "pgx", goose.DialectPostgres
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	provider, err := goose.NewProvider(dialect, db, mustSub(migrations, "migrations"))
	if err != nil {
		return err
	}
	_, err = provider.DownTo(ctx, version)
	return err
}

// errBatchmate is the failure of RunInAFailingBatch's second write.
var errBatchmate = errors.New("the batchmate fails")

// RunInAFailingBatch runs write, which must make one group-committed write,
// in one batch with a write queued after it that fails, so that the batch
// runs again with savepoints and write's closure runs twice (SQLite). It
// returns the failing write's error.
func (s *Store) RunInAFailingBatch(write func()) error {
	ctx := context.Background()
	release, held := make(chan struct{}), make(chan error, 1)
	before := s.group.batches.Load()
	go func() { held <- s.inTx(ctx, func(querier) error { <-release; return nil }) }()
	for s.group.batches.Load() == before { // the loop is held: the two writes queue behind it, in order
		time.Sleep(time.Millisecond)
	}
	written := make(chan struct{})
	go func() { write(); close(written) }()
	for len(s.group.requests) < 1 {
		time.Sleep(time.Millisecond)
	}
	failed := make(chan error, 1)
	go func() { failed <- s.inTx(ctx, func(querier) error { return errBatchmate }) }()
	for len(s.group.requests) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-written
	if err := <-held; err != nil {
		return err
	}
	return <-failed
}
