// Package sqlstoretest opens real databases for tests: SQLite always, and
// PostgreSQL when IVRPAY_TEST_POSTGRES holds a URL (CI sets it; under CI=true
// a missing PostgreSQL fails the test instead of skipping it).
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// Engines returns the engines to run a store test on.
func Engines(tb testing.TB) []string {
	tb.Helper()
	engines := []string{sqlstore.EngineSQLite}
	if os.Getenv("IVRPAY_TEST_POSTGRES") != "" {
		engines = append(engines, sqlstore.EnginePostgres)
	} else if os.Getenv("CI") == "true" {
		tb.Fatal("CI=true but IVRPAY_TEST_POSTGRES is not set: the store suite must also run on PostgreSQL in CI")
	}
	return engines
}

// DSN returns a fresh, empty database for engine: a SQLite file in a temp
// directory, or a new PostgreSQL schema (dropped at cleanup) selected through
// search_path, so tests can run in parallel on one server.
func DSN(tb testing.TB, engine string) string {
	tb.Helper()
	if engine == sqlstore.EngineSQLite {
		return filepath.Join(tb.TempDir(), "ivrpay.db")
	}
	base := os.Getenv("IVRPAY_TEST_POSTGRES")
	if base == "" {
		tb.Skip("IVRPAY_TEST_POSTGRES not set")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Options are the store options tests use: sandbox mode, a fresh vault key
// and the sandbox processor.
func Options(tb testing.TB) sqlstore.Options {
	tb.Helper()
	key, err := vault.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	v, err := vault.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	return sqlstore.Options{Mode: ivrpay.ModeSandbox, Vault: v, Processor: sandbox.New()}
}

// Open opens a fresh store on engine with opts and closes it at cleanup.
func Open(tb testing.TB, engine string, opts sqlstore.Options) *sqlstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, DSN(tb, engine), opts)
	if err != nil {
		tb.Fatalf("open %s store: %v", engine, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
