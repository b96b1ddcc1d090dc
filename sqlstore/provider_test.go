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
		dsn, opts, open := reopenable(t, engine)
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

// TestMigrationQualifiedTransactionKey: migration 00029 qualifies the
// transaction_id of every connector transaction written under 00028's
// schema (provider column, three-column key) with its provider, and each
// still answers its replay; a new request under a migrated id is that
// provider's DUPLICATE_TRANSACTION, and another provider's request under it
// a charge of its own. Its Down splits the keys back into provider and id,
// colons in the id included.
func TestMigrationQualifiedTransactionKey(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		ctx := boundedContext(t)
		dsn, opts, open := reopenable(t, engine)
		s := open()
		b := setupOn(t, s, engine, opts)
		const txID = "CALL:7" // capitals and a colon, as a provider's prefix has
		requests := map[ivrpay.IVRProvider]ivrpay.IVRRequest{}
		first := map[ivrpay.IVRProvider]ivrpay.IVRResult{}
		for _, provider := range []ivrpay.IVRProvider{ivrpay.ProviderTwilio, ivrpay.ProviderTelnyx} {
			requests[provider] = on(provider, chargeReq(b.payinConfig(t, 1000).ID, txID, visaOK, 1000))
			first[provider] = process(t, b.pay, b.ivrCtx, requests[provider])
			mustSucceed(t, first[provider])
		}
		s.Close()

		if err := sqlstore.MigrateDownTo(ctx, dsn, 28); err != nil {
			t.Fatalf("migrate down: %v", err)
		}
		raw := rawDB(t, engine, dsn)
		for provider := range requests {
			if n := count(t, raw, `SELECT COUNT(*) FROM connector_transactions WHERE platform_id = $1 AND provider = $2 AND transaction_id = $3 AND status = 'DONE'`,
				b.platform.ID, string(provider), txID); n != 1 {
				t.Fatalf("under 00028's schema %d DONE transactions (%s, %s), want 1", n, provider, txID)
			}
		}
		if n := count(t, raw, `SELECT COUNT(*) FROM connector_transactions`); n != len(requests) {
			t.Fatalf("under 00028's schema %d connector transactions, want %d", n, len(requests))
		}
		raw.Close()

		s = open()
		defer s.Close()
		b.s, b.pay = s, opts.Payments(s)
		raw = rawDB(t, engine, dsn)
		defer raw.Close()
		for provider, req := range requests {
			t.Run(string(provider), func(t *testing.T) {
				key := ivrpay.ConnectorTransactionKey{PlatformID: b.platform.ID, Provider: provider, TransactionID: txID}
				qualified := sqlstore.ConnectorTransactionID(key)
				if qualified != string(provider)+":"+txID {
					t.Fatalf("qualified key %q", qualified)
				}
				if n := count(t, raw, `SELECT COUNT(*) FROM connector_transactions WHERE platform_id = $1 AND transaction_id = $2 AND status = 'DONE'`,
					b.platform.ID, qualified); n != 1 {
					t.Fatalf("after 00029 %d DONE transactions %q, want 1", n, qualified)
				}
				if again := process(t, b.pay, b.ivrCtx, req); !reflect.DeepEqual(again, first[provider]) {
					t.Fatalf("a retry after the migration answered %+v, the first answer %+v", again, first[provider])
				}
				other := process(t, b.pay, b.ivrCtx, on(provider, chargeReq(b.payinConfig(t, 1000).ID, txID, visaOK, 1000)))
				if other.ErrorCode != ivrpay.ConnDuplicateTransaction {
					t.Fatalf("another request under the migrated id answered %+v, want %s", other, ivrpay.ConnDuplicateTransaction)
				}
			})
		}
		if _, err := raw.Exec(`SELECT provider FROM connector_transactions`); err == nil {
			t.Fatal("after 00029 connector_transactions still has a provider column")
		}
		mustSucceed(t, process(t, b.pay, b.ivrCtx, on(ivrpay.ProviderSignalWire, chargeReq(b.payinConfig(t, 1000).ID, txID, visaOK, 1000))))
	})
}

// reopenable returns a fresh database on engine, the test options and a
// function that opens the store on it (applying the migrations it lacks),
// for tests that migrate the database down and up again between openings.
func reopenable(t *testing.T, engine string) (dsn string, opts paymentstest.Config, open func() *sqlstore.Store) {
	t.Helper()
	dsn, opts = paymentstest.DSN(t, engine), paymentstest.Options(t)
	return dsn, opts, func() *sqlstore.Store {
		t.Helper()
		s, err := sqlstore.Open(boundedContext(t), dsn, opts.StoreOptions())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
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
