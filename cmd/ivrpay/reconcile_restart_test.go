package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// startReconciling starts a server of inst with a 1 s --reconcile-after, and
// returns it with a function that starts it again.
func startReconciling(t *testing.T, inst installation) (*whServer, func() *whServer) {
	t.Helper()
	start := func() *whServer { return whStart(t, inst, "--reconcile-after", "1s") }
	return start(), start
}

// TestUnknownOutcomeSurvivesSIGKILL runs the built binary: a charge whose
// every processor answer is lost (the sandbox's 5121 cents) is answered
// PAYMENT_PENDING, the server is killed with SIGKILL while the outcome is
// unknown, and the restarted server's reconciler finds the charge: the payin
// is approved, never failed, and a late retry of the transaction gets it.
func TestUnknownOutcomeSurvivesSIGKILL(t *testing.T) {
	binaryTestOnEachEngine(t, "builds and runs the binary, and waits for a 6 s processor timeout", func(t *testing.T, inst installation) {
		srv, restart := startReconciling(t, inst)
		admin, ivrKey, merchant := srv.sandboxKeys(t)
		cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": "lost-1",
			"amount": sandbox.LostAnswersAmount, "currency_code": "USD"})["payin_config_id"].(string)
		body := chargeBody(cfg, "CA-lost-answers", ivrpay.FormatDollars(sandbox.LostAnswersAmount))
		first := srv.connector(t, ivrKey, body)
		payinID := first.Parameters["payin_id"]
		if first.ErrorCode == nil || *first.ErrorCode != ivrpay.ConnPaymentPending || payinID == "" {
			t.Fatalf("answer while the outcome is unknown: %+v", first)
		}
		srv.kill()

		srv = restart()
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

// TestLostOperationsSurviveSIGKILL runs the built binary: a capture and a
// void whose answers are lost (the sandbox's 51.20 times out on the first
// call of each, and the operation is done) are answered with the payin as it
// stands (AUTHORIZED; PROCESSING), the server is killed with SIGKILL, and
// the restarted server's reconciler sends both again under their keys
// (its sandbox times out once more, then answers): the payin is captured,
// the other CANCELED, never settled. The connector charges themselves time
// out first and are found by the Resolve asked in the same exchange.
func TestLostOperationsSurviveSIGKILL(t *testing.T) {
	binaryTestOnEachEngine(t, "builds and runs the binary, and waits for several 6 s processor timeouts", func(t *testing.T, inst installation) {
		srv, restart := startReconciling(t, inst)
		admin, ivrKey, merchant := srv.sandboxKeys(t)
		charge := func(name, mode string) string {
			t.Helper()
			cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": name,
				"amount": sandbox.TimeoutFirstAmount, "currency_code": "USD", "processing_mode": mode})["payin_config_id"].(string)
			a := srv.connector(t, ivrKey, chargeBody(cfg, "CA-"+name, ivrpay.FormatDollars(sandbox.TimeoutFirstAmount)))
			if a.ChargeID == nil {
				t.Fatalf("charge %s: %+v, want it found by the Resolve asked in the exchange", name, a)
			}
			return *a.ChargeID
		}
		// The void is sent as soon as its payin is PROCESSING, long before
		// --sandbox-settle-after (1 s) would settle it.
		voided := charge("void-lost", ivrpay.ProcessingModeAuthorizeAndCapture)
		v := srv.api(t, "POST", "/v1/payins/"+voided+"/void_or_refund", admin, map[string]any{"idempotency_key": "void-lost",
			"reason": "REQUESTED_BY_CUSTOMER"})
		if v["type"] != ivrpay.VoidOrRefundTypeVoid || v["payin_status"] != ivrpay.PayinStatusProcessing {
			t.Fatalf("void whose answer was lost answered %v", v)
		}
		captured := charge("capture-lost", ivrpay.ProcessingModeAuthorize)
		if p := srv.api(t, "POST", "/v1/payins/"+captured+"/capture", admin, map[string]any{}); p["status"] != ivrpay.PayinStatusAuthorized {
			t.Fatalf("capture whose answer was lost answered %v, want the payin still AUTHORIZED", p["status"])
		}
		srv.kill()

		srv = restart()
		var c, p map[string]any
		srv.waitFor(t, "the restarted server to send the capture and the void again", func() bool {
			c, p = srv.api(t, "GET", "/v1/payins/"+captured, admin, nil), srv.api(t, "GET", "/v1/payins/"+voided, admin, nil)
			return c["status"] != ivrpay.PayinStatusAuthorized && p["status"] == ivrpay.PayinStatusCanceled
		})
		if c["status"] == ivrpay.PayinStatusFailed || c["captured_amount"] != float64(sandbox.TimeoutFirstAmount) {
			t.Fatalf("captured payin after the restart: status %v, captured %v", c["status"], c["captured_amount"])
		}
		if refunds, _ := p["refunds"].([]any); len(refunds) != 0 {
			t.Fatalf("the voided payin has refunds: %v", refunds)
		}
		if again := srv.api(t, "POST", "/v1/payins/"+voided+"/void_or_refund", admin, map[string]any{"idempotency_key": "void-lost",
			"reason": "REQUESTED_BY_CUSTOMER"}); again["payin_status"] != ivrpay.PayinStatusCanceled {
			t.Fatalf("the void's replay after its outcome: %v", again)
		}
	})
}

// TestSandboxProcessorLatency: --sandbox-processor-latency slows every
// answer of the sandbox processor; one longer than the 6 s a processor call
// gets makes the charge's outcome unknown (PAYMENT_PENDING). Production
// refuses the flag.
func TestSandboxProcessorLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 6 s processor timeout")
	}
	t.Parallel()
	srv := &whServer{serveInProcess(t, "--sandbox-processor-latency", "1m")}
	admin, ivrKey, merchant := srv.sandboxKeys(t)
	cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": "slow-1",
		"amount": 1000, "currency_code": "USD"})["payin_config_id"].(string)
	a := srv.connector(t, ivrKey, chargeBody(cfg, "CA-slow-processor", "10.00"))
	if a.ErrorCode == nil || *a.ErrorCode != ivrpay.ConnPaymentPending {
		t.Fatalf("a charge to a processor slower than the call deadline answered %+v, want PAYMENT_PENDING", a)
	}
	var stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--mode", "production", "--sandbox-processor-latency", "300ms"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "sandbox setting") {
		t.Fatalf("production with --sandbox-processor-latency: exit %d, %q", code, stderr.String())
	}
}
