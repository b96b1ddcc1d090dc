package main

import (
	"path/filepath"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore/sqlstoretest"
)

// TestUnknownOutcomeSurvivesSIGKILL runs the built binary: a charge whose
// every processor answer is lost (the sandbox's 5121 cents) is answered
// PAYMENT_PENDING, the server is killed with SIGKILL while the outcome is
// unknown, and the restarted server's reconciler finds the charge: the payin
// is approved, never failed, and a late retry of the transaction gets it.
func TestUnknownOutcomeSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary, and waits for a 6 s processor timeout")
	}
	t.Parallel()
	bin := buildIvrpay(t)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db, vaultKey := sqlstoretest.DSN(t, engine), filepath.Join(t.TempDir(), "vault.key")
			srv := whStart(t, bin, db, vaultKey, "--reconcile-after", "1s")
			admin, ivrKey, merchant := srv.bootstrap(t, "admin api_key"), srv.bootstrap(t, "ivr api_key"), srv.bootstrap(t, "merchant_id")
			cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": "lost-1",
				"amount": sandbox.LostAnswersAmount, "currency_code": "USD"})["payin_config_id"].(string)
			body := chargeBody(cfg, "CA-lost-answers", ivrpay.FormatDollars(sandbox.LostAnswersAmount))
			first := srv.connector(t, ivrKey, body)
			payinID := first.Parameters["payin_id"]
			if first.ErrorCode == nil || *first.ErrorCode != ivrpay.ConnPaymentPending || payinID == "" {
				t.Fatalf("answer while the outcome is unknown: %+v", first)
			}
			srv.kill()

			srv = whStart(t, bin, db, vaultKey, "--reconcile-after", "1s")
			var p map[string]any
			srv.waitFor(t, "the restarted server to resolve the payin", func() bool {
				p = srv.api(t, "GET", "/v1/payins/"+payinID, admin, nil)
				return p["status"] != ivrpay.PayinStatusCreated
			})
			if p["status"] == ivrpay.PayinStatusFailed || p["processor"].(map[string]any)["outcome"] != ivrpay.ProcessorOutcomeApproved {
				t.Fatalf("resolved payin: status %v, processor %v", p["status"], p["processor"])
			}
			late := srv.connector(t, ivrKey, body)
			if late.ChargeID == nil || *late.ChargeID != payinID {
				t.Fatalf("a late retry answered %+v, want charge %s", late, payinID)
			}
		})
	}
}
