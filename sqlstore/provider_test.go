package sqlstore_test

import (
	"database/sql"
	"reflect"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestMigrationIVRProviders: migration 00020 keeps what was written before it
// (a Twilio payin and its transaction read back as Twilio's, and a retry is
// still a replay), and its Down leaves what the code before it reads.
func TestMigrationIVRProviders(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		ctx := boundedContext(t)
		dsn := paymentstest.DSN(t, engine)
		opts := paymentstest.Options(t)
		open := func() *sqlstore.Store {
			s, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return s
		}
		s := open()
		b := setupOn(t, s, engine, opts)
		twilioCfg, telnyxCfg := b.payinConfig(t, 1000), b.payinConfig(t, 1000)
		twilioReq := chargeReq(twilioCfg.ID, "CA-before", visaOK, 1000)
		twilioRes := process(t, b.pay, b.ivrCtx, twilioReq)
		mustSucceed(t, twilioRes)
		mustSucceed(t, process(t, b.pay, b.ivrCtx, on(ivrpay.ProviderTelnyx, chargeReq(telnyxCfg.ID, "CA-telnyx", visaOK, 1000))))
		s.Close()

		if err := sqlstore.MigrateDownTo(ctx, dsn, 19); err != nil {
			t.Fatalf("migrate down: %v", err)
		}
		raw := rawDB(t, engine, dsn)
		var txID string
		if err := raw.QueryRow(`SELECT ivr_transaction_id FROM payins WHERE id = $1`, twilioRes.ID).Scan(&txID); err != nil || txID != "CA-before" {
			t.Fatalf("after Down the Twilio payin's ivr_transaction_id = %q (%v), want CA-before", txID, err)
		}
		if n := count(t, raw, `SELECT COUNT(*) FROM connector_transactions WHERE transaction_id = 'CA-before'`); n != 1 {
			t.Fatalf("after Down %d connector transactions CA-before, want 1", n)
		}
		if _, err := raw.Exec(`SELECT provider FROM connector_transactions`); err == nil {
			t.Fatal("after Down connector_transactions still has a provider column")
		}
		raw.Close()

		s = open()
		defer s.Close()
		b.s, b.pay = s, opts.Payments(s)
		p, err := s.LoadPayin(ctx, twilioRes.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.IVR == nil || *p.IVR != (ivrpay.IVRInfo{Provider: ivrpay.ProviderTwilio, TransactionID: "CA-before"}) {
			t.Fatalf("after Up the payin's ivr = %+v, want TWILIO CA-before", p.IVR)
		}
		if again := process(t, b.pay, b.ivrCtx, twilioReq); !reflect.DeepEqual(again, twilioRes) {
			t.Fatalf("a retry after the migration answered %+v, the first answer %+v", again, twilioRes)
		}
		// The same id from Telnyx is its own transaction now.
		mustSucceed(t, process(t, b.pay, b.ivrCtx, on(ivrpay.ProviderTelnyx, chargeReq(b.payinConfig(t, 1000).ID, "CA-before", visaOK, 1000))))
	})
}

// rawDB opens the database at dsn without the store.
func rawDB(t *testing.T, engine, dsn string) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if engine == sqlstore.EnginePostgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
