package sqlstore

import (
	"context"
	"database/sql"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/ivrpay/ivrpay/sqlstore/testdsn"
)

// TestMigrationsOutOfOrder: a database that a build without migration 00025
// (but with later ones) migrated opens, and 00025 is applied: branches land
// out of order, and a store must not refuse a database for it.
func TestMigrationsOutOfOrder(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := testdsn.DSN(t, engine)
			driver, dialect := "sqlite", goose.DialectSQLite3
			if engine == EnginePostgres {
				driver, dialect = "pgx", goose.DialectPostgres
			}
			all := mustSub(migrations, "migrations")
			without := fstest.MapFS{}
			if err := fs.WalkDir(all, ".", func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || strings.HasPrefix(path, "00025_") {
					return err
				}
				data, err := fs.ReadFile(all, path)
				without[path] = &fstest.MapFile{Data: data}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			provider, err := goose.NewProvider(dialect, db, without)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := provider.Up(ctx); err != nil {
				t.Fatalf("migrating without 00025: %v", err)
			}
			db.Close()

			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				t.Fatalf("a database migrated past 00025 without it does not open: %v", err)
			}
			defer s.Close()
			var n int
			if err := s.wdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM payins WHERE `+NoOperationInFlight).Scan(&n); err != nil {
				t.Fatalf("00025 was not applied: %v", err)
			}
		})
	}
}
