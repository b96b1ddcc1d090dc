package sqlstore_test

import (
	"database/sql"
	"reflect"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// on returns req as provider sends it.
func on(provider ivrpay.IVRProvider, req ivrpay.IVRRequest) ivrpay.IVRRequest {
	req.Provider = provider
	return req
}

// TestConnectorTransactionPerProvider: a transaction_id is unique per
// platform and provider (SPEC §5.6). The same id sent by Twilio, Telnyx and
// SignalWire is three transactions, each with its payin and answer; within
// one provider it stays one transaction (replayed, or DUPLICATE_TRANSACTION
// for another request).
func TestConnectorTransactionPerProvider(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		const txID = "CA-shared-by-providers"
		first := map[ivrpay.IVRProvider]ivrpay.IVRResult{}
		for _, provider := range ivrpay.IVRProviders {
			cfg := b.payinConfig(t, 1000)
			res := process(t, b.pay, b.ivrCtx, on(provider, chargeReq(cfg.ID, txID, visaOK, 1000)))
			mustSucceed(t, res)
			first[provider] = res
			p, err := b.s.LoadPayin(boundedContext(t), res.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.IVR == nil || p.IVR.Provider != provider || p.IVR.TransactionID != txID {
				t.Fatalf("%s payin ivr = %+v, want provider %s and transaction %s", provider, p.IVR, provider, txID)
			}
		}
		if n := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins`); n != len(ivrpay.IVRProviders) {
			t.Fatalf("%d payins, want one per provider", n)
		}
		for _, provider := range ivrpay.IVRProviders {
			t.Run(string(provider), func(t *testing.T) {
				// The replay is the provider's own transaction, whatever the others did.
				p, err := b.s.LoadPayin(boundedContext(t), first[provider].ID)
				if err != nil {
					t.Fatal(err)
				}
				again := process(t, b.pay, b.ivrCtx, on(provider, chargeReq(p.PayinConfigID, txID, visaOK, 1000)))
				if !reflect.DeepEqual(again, first[provider]) {
					t.Fatalf("replay answered %+v, first answer %+v", again, first[provider])
				}
				other := process(t, b.pay, b.ivrCtx, on(provider, chargeReq(b.payinConfig(t, 1000).ID, txID, visaOK, 1000)))
				if other.ErrorCode != ivrpay.ConnDuplicateTransaction {
					t.Fatalf("another request under the same transaction_id answered %+v, want %s", other, ivrpay.ConnDuplicateTransaction)
				}
			})
		}
		if n := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins`); n != len(ivrpay.IVRProviders) {
			t.Fatalf("%d payins after the replays, want one per provider", n)
		}
	})
}

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
