package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// TestRealAccountSettlesByProcessorEvents runs the built binary with a
// Stripe account at the replaying fake (over TLS) whose events secret was
// set with `admin processor add --events-secret-file`: a charge stays
// PROCESSING past --sandbox-settle-after until a signed
// payment_intent.succeeded reaches POST /vendor/stripe/events/{name}, and
// then SUCCEEDED; a refund fails by a signed refund.failed and its amount
// is refundable again; a signed charge.dispute.created opens a chargeback
// and charge.dispute.closed (lost) ends it, the payin staying SUCCEEDED. A
// delivery with a bad signature changes nothing, and a repeated or late one
// nothing more.
//
// In production (`serve --mode production`) webhooks go to public
// addresses only, so the platform's webhooks are checked in the same story
// on a sandbox deployment routed to the same kind of account (a real
// account's payins settle by events there too): each step reaches the
// platform as a webhook whose Standard Webhooks signature verifies.
func TestRealAccountSettlesByProcessorEvents(t *testing.T) {
	t.Parallel()
	bin := buildIvrpay(t)
	for _, mode := range []ivrpay.Mode{ivrpay.ModeProduction, ivrpay.ModeSandbox} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			settlesByProcessorEvents(t, bin, mode)
		})
	}
}

func settlesByProcessorEvents(t *testing.T, bin string, mode ivrpay.Mode) {
	fake := stripetest.NewTLSFake(t)
	dir := t.TempDir()
	inst := freshInstallation(t, bin)
	paymentstest.WriteVaultKey(t, inst.vaultKey)
	const whsec = "whsec_IvrpayEndToEndEventsSecret42"
	apiKey := "sk_test_51IvrpayEventsEndToEnd"
	if mode == ivrpay.ModeProduction {
		apiKey = "sk_live_51IvrpayEventsEndToEnd"
	}
	secretFile, eventsFile := filepath.Join(dir, "stripe.key"), filepath.Join(dir, "stripe-events.key")
	for f, s := range map[string]string{secretFile: apiKey, eventsFile: whsec + "\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	admin := func(args ...string) map[string]any {
		t.Helper()
		code, stdout, stderr := inst.admin(t, string(mode), args...)
		if code != 0 {
			t.Fatalf("admin %v: exit %d\n%s", args, code, stderr)
		}
		var out map[string]any
		json.Unmarshal([]byte(stdout), &out)
		return out
	}
	admin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", fake.URL,
		"--events-secret-file", eventsFile)
	p := admin("platform", "create", "--name", "Acme", "--enable-ivr")
	platformID, adminKey := p["platform_id"].(string), p["api_key"].(string)
	admin("platform", "set-processor", platformID, "stripe-main")

	flags := []string{"--mode", string(mode), "--sandbox-settle-after", "200ms"}
	if mode == ivrpay.ModeProduction {
		flags = append(flags, "--base-url", "https://pay.example.com", "--behind-proxy")
	}
	srv := &whServer{inst.serve(t, nil, flags...)}
	merchant := srv.api(t, "POST", "/v1/merchants", adminKey, map[string]any{"name": "Corner Bakery"})["merchant_id"].(string)
	if mode == ivrpay.ModeProduction {
		admin("merchant", "activate", merchant)
	}
	var rcv *whReceiver
	if mode == ivrpay.ModeSandbox {
		rcv = whNewReceiver(t)
		ep := srv.api(t, "POST", "/v1/webhook_endpoints", adminKey, map[string]any{"url": rcv.URL + "/hooks"})
		rcv.setSecret(ep["secret"].(string))
	}
	ivrKey := srv.api(t, "POST", "/v1/api_keys", adminKey, ivrKeyRequest(platformID))["api_key"].(string)
	cfg := srv.api(t, "POST", "/v1/payin_configs", adminKey, map[string]any{"merchant_id": merchant, "idempotency_key": "order-1",
		"amount": 2000, "currency_code": "USD"})["payin_config_id"].(string)
	answer := srv.connector(t, ivrKey, chargeBody(cfg, "CA-events-1", "20.00"))
	if answer.ChargeID == nil {
		t.Fatalf("charge through the Stripe account: %+v\n%s", answer, srv.logTail())
	}
	payinID := *answer.ChargeID
	payin := func() map[string]any { return srv.api(t, "GET", "/v1/payins/"+payinID, adminKey, nil) }
	pi := payin()["processor"].(map[string]any)["reference"].(string)

	// No timer settles a real account's payin.
	time.Sleep(time.Second)
	if got := payin()["status"]; got != ivrpay.PayinStatusProcessing {
		t.Fatalf("a Stripe payin is %v five settle delays after its charge, before any event; want PROCESSING", got)
	}

	deliver := func(payload []byte, secret string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.baseURL+"/vendor/stripe/events/stripe-main", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Stripe-Signature", stripetest.Sign(payload, time.Now(), secret))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	succeeded := stripetest.Event("evt_1EndToEndSucceeded", "payment_intent.succeeded", map[string]any{"id": pi, "object": "payment_intent",
		"amount": 2000, "amount_received": 2000, "amount_capturable": 0, "currency": "usd", "status": "succeeded",
		"metadata": map[string]any{"ivrpay_reference": payinID}})
	if status, body := deliver(succeeded, "whsec_NotTheAccountsSecret"); status != 400 {
		t.Fatalf("a delivery signed with another secret: HTTP %d %s, want 400", status, body)
	}
	if got := payin()["status"]; got != ivrpay.PayinStatusProcessing {
		t.Fatalf("after a badly signed event the payin is %v", got)
	}
	if status, body := deliver(succeeded, whsec); status != 200 {
		t.Fatalf("payment_intent.succeeded: HTTP %d %s\n%s", status, body, srv.logTail())
	}
	srv.waitFor(t, "the payin to be SUCCEEDED by payment_intent.succeeded", func() bool { return payin()["status"] == ivrpay.PayinStatusSucceeded })

	refund := srv.api(t, "POST", "/v1/payins/"+payinID+"/void_or_refund", adminKey, map[string]any{"idempotency_key": "refund-1",
		"reason": "REQUESTED_BY_CUSTOMER", "amount": 500})
	refundID := refund["refund_id"].(string)
	if refund["refund_status"] != ivrpay.RefundStatusProcessing || payin()["refundable_amount"] != float64(1500) {
		t.Fatalf("refund %v; payin refundable %v; want PROCESSING and 1500", refund, payin()["refundable_amount"])
	}
	ids := fake.RefundIDs()
	if len(ids) != 1 {
		t.Fatalf("Stripe made %d refunds, want 1", len(ids))
	}
	failed := stripetest.Event("evt_1EndToEndRefundFailed", "refund.failed", map[string]any{"id": ids[0], "object": "refund", "amount": 500,
		"currency": "usd", "status": "failed", "failure_reason": "expired_or_canceled_card", "payment_intent": pi,
		"metadata": map[string]any{"ivrpay_payin": payinID}})
	for i := range 2 { // the second is Stripe delivering it again
		if status, body := deliver(failed, whsec); status != 200 {
			t.Fatalf("refund.failed (delivery %d): HTTP %d %s\n%s", i+1, status, body, srv.logTail())
		}
	}
	srv.waitFor(t, "the refund to be FAILED by refund.failed", func() bool {
		return srv.api(t, "GET", "/v1/refunds/"+refundID, adminKey, nil)["status"] == ivrpay.RefundStatusFailed
	})
	if got := payin(); got["refundable_amount"] != float64(2000) || got["status"] != ivrpay.PayinStatusSucceeded {
		t.Fatalf("after the failed refund the payin is %v with %v refundable; want SUCCEEDED and 2000 again", got["status"], got["refundable_amount"])
	}

	// The cardholder disputes the payment: charge.dispute.created opens a
	// chargeback, charge.dispute.closed (lost) ends it; the payin stays
	// SUCCEEDED. Stripe names the payment by its pi_ only.
	dueBy := time.Now().Add(10 * 24 * time.Hour).Unix()
	disputeEvent := func(id, typ, status string) []byte {
		return stripetest.Event(id, typ, map[string]any{"id": "du_1EndToEnd", "object": "dispute", "amount": 2000, "currency": "usd",
			"status": status, "reason": "fraudulent", "payment_intent": pi, "charge": "ch_1EndToEnd",
			"evidence_details": map[string]any{"due_by": dueBy}})
	}
	chargeback := func() map[string]any {
		l := srv.api(t, "GET", "/v1/chargebacks?payin_id="+payinID, adminKey, nil)
		if results, _ := l["results"].([]any); len(results) == 1 {
			return results[0].(map[string]any)
		}
		return nil
	}
	if status, body := deliver(disputeEvent("evt_1EndToEndDisputeCreated", "charge.dispute.created", "needs_response"), whsec); status != 200 {
		t.Fatalf("charge.dispute.created: HTTP %d %s\n%s", status, body, srv.logTail())
	}
	srv.waitFor(t, "a chargeback DISPUTE_ACTION_REQUIRED by charge.dispute.created", func() bool {
		c := chargeback()
		return c != nil && c["status"] == ivrpay.ChargebackStatusDisputeActionRequired
	})
	cb := chargeback()
	proc, _ := cb["processor"].(map[string]any)
	if proc["reference"] != "du_1EndToEnd" || proc["dashboard_url"] == nil || cb["respond_by"] != time.Unix(dueBy, 0).UTC().Format(time.RFC3339) ||
		cb["amount"] != float64(2000) || cb["reason_code"] != "fraudulent" {
		t.Fatalf("chargeback %v", cb)
	}
	if status, body := deliver(disputeEvent("evt_1EndToEndDisputeClosed", "charge.dispute.closed", "lost"), whsec); status != 200 {
		t.Fatalf("charge.dispute.closed: HTTP %d %s\n%s", status, body, srv.logTail())
	}
	srv.waitFor(t, "the chargeback LOST by charge.dispute.closed", func() bool { return chargeback()["status"] == ivrpay.ChargebackStatusLost })
	// A late charge.dispute.updated (under review) changes nothing.
	if status, _ := deliver(disputeEvent("evt_1EndToEndDisputeLate", "charge.dispute.updated", "under_review"), whsec); status != 200 {
		t.Fatalf("a late charge.dispute.updated: HTTP %d", status)
	}
	if got := payin(); got["status"] != ivrpay.PayinStatusSucceeded || chargeback()["status"] != ivrpay.ChargebackStatusLost {
		t.Fatalf("after the lost dispute the payin is %v, its chargeback %v; want SUCCEEDED and LOST", got["status"], chargeback())
	}

	if rcv == nil {
		return
	}
	// Each step reached the platform as a signed webhook (the receiver
	// verifies the signature and refuses a bad one).
	want := []string{"payin.processing", "payin.succeeded", "refund.processing", "refund.failed", "chargeback.dispute_action_required", "chargeback.lost"}
	srv.waitFor(t, "the webhooks of every step", func() bool {
		types := map[string]bool{}
		for _, bodies := range rcv.ids() {
			var e struct {
				Type string `json:"event_type"`
			}
			json.Unmarshal([]byte(bodies[0]), &e)
			types[e.Type] = true
		}
		for _, w := range want {
			if !types[w] {
				return false
			}
		}
		return true
	})
	if bad := rcv.refused(); len(bad) > 0 {
		t.Fatalf("webhooks with bad signatures: %v", bad)
	}
	chargebackEvents := 0
	for _, bodies := range rcv.ids() {
		if strings.Contains(bodies[0], "refund.failed") && !strings.Contains(bodies[0], refundID) {
			t.Fatalf("refund.failed names another refund: %s", bodies[0])
		}
		if strings.Contains(bodies[0], `"event_type":"chargeback.`) {
			chargebackEvents++
			if !strings.Contains(bodies[0], cb["chargeback_id"].(string)) {
				t.Fatalf("a chargeback webhook names another chargeback: %s", bodies[0])
			}
		}
	}
	if chargebackEvents != 2 {
		t.Fatalf("%d chargeback webhooks, want 2 (opened, lost; the late event sends none)", chargebackEvents)
	}
	t.Logf("%d signed webhooks received", len(rcv.ids()))
}
