package payments_test

import (
	"reflect"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestConnectorTransactionPerProvider: a transaction_id is unique per
// platform and provider (SPEC §5.6). The same id sent by Twilio, Telnyx and
// SignalWire is three transactions, each with its payin and answer; within
// one provider it stays one transaction (replayed, or DUPLICATE_TRANSACTION
// for another request).
func TestConnectorTransactionPerProvider(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		const txID = "CA-shared-by-providers"
		first := map[ivrpay.IVRProvider]ivrpay.IVRResult{}
		for _, provider := range ivrpay.IVRProviders {
			cfg := b.PayinConfig(t, 1000)
			res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.FromProvider(provider, paymentstest.ChargeReq(cfg.ID, txID, paymentstest.VisaOK, 1000)))
			paymentstest.MustSucceed(t, res)
			first[provider] = res
			p, err := b.Store.LoadPayin(paymentstest.BoundedContext(t), res.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.IVR == nil || p.IVR.Provider != provider || p.IVR.TransactionID != txID {
				t.Fatalf("%s payin ivr = %+v, want provider %s and transaction %s", provider, p.IVR, provider, txID)
			}
		}
		if n := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins`); n != len(ivrpay.IVRProviders) {
			t.Fatalf("%d payins, want one per provider", n)
		}
		// Stored under one key per provider: the id qualified by its provider.
		for _, provider := range ivrpay.IVRProviders {
			key := sqlstore.ConnectorTransactionID(ivrpay.ConnectorTransactionKey{PlatformID: b.Platform.ID, Provider: provider, TransactionID: txID})
			if n := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM connector_transactions WHERE platform_id = $1 AND transaction_id = $2`, b.Platform.ID, key); n != 1 {
				t.Fatalf("%d connector transactions %q, want 1", n, key)
			}
		}
		for _, provider := range ivrpay.IVRProviders {
			t.Run(string(provider), func(t *testing.T) {
				// The replay is the provider's own transaction, whatever the others did.
				p, err := b.Store.LoadPayin(paymentstest.BoundedContext(t), first[provider].ID)
				if err != nil {
					t.Fatal(err)
				}
				again := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.FromProvider(provider, paymentstest.ChargeReq(p.PayinConfigID, txID, paymentstest.VisaOK, 1000)))
				if !reflect.DeepEqual(again, first[provider]) {
					t.Fatalf("replay answered %+v, first answer %+v", again, first[provider])
				}
				other := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.FromProvider(provider, paymentstest.ChargeReq(b.PayinConfig(t, 1000).ID, txID, paymentstest.VisaOK, 1000)))
				if other.ErrorCode != ivrpay.ConnDuplicateTransaction {
					t.Fatalf("another request under the same transaction_id answered %+v, want %s", other, ivrpay.ConnDuplicateTransaction)
				}
			})
		}
		if n := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins`); n != len(ivrpay.IVRProviders) {
			t.Fatalf("%d payins after the replays, want one per provider", n)
		}
	})
}
