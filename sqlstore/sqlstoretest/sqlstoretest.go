// Package sqlstoretest opens real databases for tests: SQLite always, and
// PostgreSQL when IVRPAY_TEST_POSTGRES holds a URL (CI sets it; under CI=true
// a missing PostgreSQL fails the test instead of skipping it).
package sqlstoretest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/sqlstore/testdsn"
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
// directory, or a new PostgreSQL schema dropped at cleanup.
func DSN(tb testing.TB, engine string) string {
	tb.Helper()
	return testdsn.DSN(tb, engine)
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
