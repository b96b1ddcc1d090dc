// Package paymentstest opens real databases for tests: SQLite always, and
// PostgreSQL when IVRPAY_TEST_POSTGRES holds a URL (CI sets it; under CI=true
// a missing PostgreSQL fails the test instead of skipping it).
package paymentstest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
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

// Config is what a test deployment is made of: the store's settings and the
// payments service's (the same mode, clock and logger), a vault key and a processor.
type Config struct {
	Mode      ivrpay.Mode
	Clock     ivrpay.Clock
	Logger    *slog.Logger
	Vault     ivrpay.Vault
	Processor ivrpay.Processor
	// Router, when set, routes payments instead of sending them all to
	// Processor as the built-in sandbox account.
	Router payments.Router
	// ConnectorLease and ProcessorTimeout, when set, replace the service's defaults.
	ConnectorLease   time.Duration
	ProcessorTimeout time.Duration
	ReconcileAfter   time.Duration
	// ProcessorCheckAfter, when set, replaces the look-up fallback's delay.
	ProcessorCheckAfter time.Duration
	// RiskMetrics, when set, counts the risk rules' work.
	RiskMetrics payments.RiskMetrics
}

// Options returns the configuration tests use: sandbox mode, a fresh vault
// key and the sandbox processor.
func Options(tb testing.TB) Config {
	tb.Helper()
	return Config{Mode: ivrpay.ModeSandbox, Vault: NewVault(tb), Processor: sandbox.New()}
}

// NewVault returns a vault with a fresh key.
func NewVault(tb testing.TB) *vault.Vault {
	tb.Helper()
	key, err := vault.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	v, err := vault.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// WriteVaultKey writes a fresh vault key to the key file path (recording no
// mode, as a key made by hand) and returns the key.
func WriteVaultKey(tb testing.TB, path string) []byte {
	tb.Helper()
	key, err := vault.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	if err := vault.WriteKeyFile(path, key); err != nil {
		tb.Fatal(err)
	}
	return key
}

// StoreOptions are the store's part of c.
func (c Config) StoreOptions() sqlstore.Options {
	return sqlstore.Options{Mode: c.Mode, Clock: c.Clock, Logger: c.Logger}
}

// Payments returns the payments service of c over store, routing every
// payment with c.Router, or else to c's processor as the built-in sandbox
// account.
func (c Config) Payments(store *sqlstore.Store) *payments.Service { return c.PaymentsOn(store) }

// PaymentsOn is Payments on any payments.Store (a test's wrapper of one).
func (c Config) PaymentsOn(store payments.Store) *payments.Service {
	var router payments.Router = payments.SandboxRouter{Processor: c.Processor}
	if c.Router != nil {
		router = c.Router
	}
	return payments.New(store, c.Vault, router, payments.Options{Mode: c.Mode, Clock: c.Clock,
		Logger: c.Logger, ConnectorLease: c.ConnectorLease, ProcessorTimeout: c.ProcessorTimeout, ReconcileAfter: c.ReconcileAfter,
		RiskMetrics: c.RiskMetrics, ProcessorCheckAfter: c.ProcessorCheckAfter, SandboxConfirmations: sandbox.Confirmations,
		SandboxDisputes: sandbox.DisputeEvents})
}

// Settle has the built-in sandbox processor confirm, at once, every payin
// and refund of its account that is PROCESSING (serve's sandbox pass with
// no --sandbox-settle-after delay): its events go through the inbox like a
// real processor's. It returns how many events it sent.
func Settle(tb testing.TB, store payments.Store) int {
	tb.Helper()
	n, err := Options(tb).PaymentsOn(store).ConfirmSandboxDue(context.Background(), 0)
	if err != nil {
		tb.Fatalf("sandbox confirmations: %v", err)
	}
	return n
}

// Receive has the payments service receive e as a processor's events
// endpoint does (stored in the inbox, then applied), and returns the event
// as the inbox keeps it: its status, and the object it was applied to.
func Receive(tb testing.TB, store *sqlstore.Store, e ivrpay.ProcessorEvent) ivrpay.InboxEvent {
	tb.Helper()
	ctx := context.Background()
	if err := Options(tb).Payments(store).ReceiveProcessorEvent(ctx, e); err != nil {
		tb.Fatalf("ReceiveProcessorEvent(%s): %v", e.ID, err)
	}
	stored, err := store.FindProcessorEvent(ctx, e.Account, e.ID)
	if err != nil {
		tb.Fatalf("FindProcessorEvent(%s): %v", e.ID, err)
	}
	return stored
}

// Open opens a fresh store on engine with c's settings and closes it at cleanup.
func Open(tb testing.TB, engine string, c Config) *sqlstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, DSN(tb, engine), c.StoreOptions())
	if err != nil {
		tb.Fatalf("open %s store: %v", engine, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
