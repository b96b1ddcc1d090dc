// Package testdsn makes fresh, empty databases for tests and benchmarks. It
// imports nothing of the store, so the store's own (internal) benchmarks can
// use it as well as the paymentstest package.
package testdsn

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// DSN returns a fresh, empty database for engine: a SQLite file in a temp
// directory, or a new PostgreSQL schema (dropped at cleanup) selected through
// search_path, so tests can run in parallel on one server.
func DSN(tb testing.TB, engine string) string {
	tb.Helper()
	if engine == "sqlite" {
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
