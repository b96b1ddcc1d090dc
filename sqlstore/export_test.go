package sqlstore

import (
	"context"
	"database/sql"
	"strings"

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
