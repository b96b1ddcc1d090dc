package stripe

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

const (
	testEventsSecret    = "whsec_ivrpayEventsSecretForTests0123"
	testOldEventsSecret = "whsec_ivrpayThePreviousSecret456789"
)

// intentObject is a PaymentIntent as Stripe's events carry it, with the
// card details Stripe includes (brand, last 4, fingerprint) that ivrpay
// must not copy.
func intentObject(status string, extra map[string]any) map[string]any {
	pi := map[string]any{
		"id": "pi_3EventTest", "object": "payment_intent", "amount": 1500, "amount_capturable": 0, "amount_received": 0,
		"currency": "usd", "status": status, "capture_method": "automatic", "livemode": false,
		"metadata":       map[string]any{MetadataReference: "pyn_eventtest"},
		"payment_method": "pm_1EventTest", "latest_charge": "ch_3EventTest",
		"payment_method_types": []string{"card"},
	}
	for k, v := range extra {
		pi[k] = v
	}
	return pi
}

func refundObject(status string, extra map[string]any) map[string]any {
	re := map[string]any{"id": "re_3EventTest", "object": "refund", "amount": 500, "currency": "usd", "status": status,
		"payment_intent": "pi_3EventTest", "charge": "ch_3EventTest", "metadata": map[string]any{MetadataPayin: "pyn_eventtest"}}
	for k, v := range extra {
		re[k] = v
	}
	return re
}

func disputeObject(status string) map[string]any {
	return map[string]any{"id": "du_1EventTest", "object": "dispute", "amount": 1500, "currency": "usd", "status": status,
		"reason": "product_not_received", "charge": "ch_3EventTest", "payment_intent": "pi_3EventTest", "livemode": false,
		"is_charge_refundable": false, "evidence_details": map[string]any{"due_by": 1767225600, "has_evidence": false,
			"past_due": false, "submission_count": 0}}
}

// cardOnError is what Stripe puts in last_payment_error.payment_method.
var cardOnError = map[string]any{"id": "pm_1EventTest", "object": "payment_method", "type": "card",
	"card": map[string]any{"brand": "visa", "last4": "9995", "exp_month": 8, "exp_year": 2039, "fingerprint": "FpCardFingerprint1"}}

// TestStripeEvents: every event kind of SPEC §4.2, signed by stripe-go's
// test helper, becomes the normalized event its type and object say.
func TestStripeEvents(t *testing.T) {
	t.Parallel()
	due := time.Unix(1767225600, 0).UTC()
	for _, tc := range []struct {
		name, typ string
		object    map[string]any
		want      ivrpay.ProcessorEvent
	}{
		{"payment_intent.succeeded", "payment_intent.succeeded", intentObject("succeeded", map[string]any{"amount_received": 1500}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCaptured, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Amount: 1500, Currency: "USD"}},
		{"payment_intent.amount_capturable_updated", "payment_intent.amount_capturable_updated",
			intentObject("requires_capture", map[string]any{"amount_capturable": 1500, "capture_method": "manual"}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentAuthorized, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Amount: 1500, Currency: "USD"}},
		{"amount_capturable_updated to nothing", "payment_intent.amount_capturable_updated", intentObject("succeeded", nil),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Currency: "USD"}},
		{"payment_intent.payment_failed", "payment_intent.payment_failed", intentObject("requires_payment_method", map[string]any{
			"last_payment_error": map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
				"message": "Your card has insufficient funds.", "payment_method": cardOnError}}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentFailed, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalInsufficientFunds, RefusalDesc: "stripe card_declined/insufficient_funds"}},
		{"payment_failed without a card error", "payment_intent.payment_failed", intentObject("requires_payment_method", map[string]any{
			"last_payment_error": map[string]any{"type": "api_error", "message": "An error occurred."}}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentFailed, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "stripe api_error"}},
		{"payment_intent.canceled", "payment_intent.canceled", intentObject("canceled", map[string]any{"cancellation_reason": "requested_by_customer"}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCanceled, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Amount: 1500, Currency: "USD"}},
		{"payment_intent.processing", "payment_intent.processing", intentObject("processing", nil),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "pi_3EventTest", Reference: "pyn_eventtest", Currency: "USD"}},
		{"refund.updated succeeded", "refund.updated", refundObject("succeeded", nil),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundSucceeded, PaymentReference: "pi_3EventTest", RefundReference: "re_3EventTest", Reference: "pyn_eventtest", Amount: 500, Currency: "USD"}},
		{"refund.updated pending", "refund.updated", refundObject("pending", nil),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "pi_3EventTest", RefundReference: "re_3EventTest", Reference: "pyn_eventtest", Amount: 500, Currency: "USD"}},
		{"refund.failed", "refund.failed", refundObject("failed", map[string]any{"failure_reason": "expired_or_canceled_card"}),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundFailed, PaymentReference: "pi_3EventTest", RefundReference: "re_3EventTest", Reference: "pyn_eventtest", Amount: 500, Currency: "USD",
				RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "stripe refund failed (expired_or_canceled_card)"}},
		{"refund.updated canceled", "refund.updated", refundObject("canceled", nil),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundFailed, PaymentReference: "pi_3EventTest", RefundReference: "re_3EventTest", Reference: "pyn_eventtest", Amount: 500, Currency: "USD",
				RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "stripe refund canceled"}},
		{"charge.refunded without its refunds", "charge.refunded", map[string]any{"id": "ch_3EventTest", "object": "charge", "amount": 1500,
			"amount_refunded": 500, "currency": "usd", "payment_intent": "pi_3EventTest", "refunded": false},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "pi_3EventTest"}},
		{"unknown event type", "customer.created", map[string]any{"id": "cus_1", "object": "customer"},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone}},
		{"dispute with a status SPEC does not map", "charge.dispute.updated", disputeObject("prevented"),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "pi_3EventTest", Amount: 1500, Currency: "USD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := stripetest.Event("evt_1"+strings.ReplaceAll(tc.name, " ", ""), tc.typ, tc.object)
			got := verifyOne(t, payload)
			want := tc.want
			want.Account, want.Kind, want.ID, want.Type, want.OccurredAt = "stripe-main", Kind, "evt_1"+strings.ReplaceAll(tc.name, " ", ""), tc.typ, got.OccurredAt
			if got.OccurredAt.IsZero() || time.Since(got.OccurredAt) > time.Minute {
				t.Errorf("OccurredAt %v, want the event's created time", got.OccurredAt)
			}
			if gj, wj := processortest.EventJSON(t, got), processortest.EventJSON(t, want); gj != wj {
				t.Fatalf("event\n got %s\nwant %s", gj, wj)
			}
			if b := processortest.EventJSON(t, got); strings.Contains(b, "9995") || strings.Contains(b, "Fingerprint") || strings.Contains(b, "insufficient funds.") {
				t.Fatalf("card data or Stripe's message was copied: %s", b)
			}
		})
	}

	// Every dispute status of SPEC §4.3, through each dispute event type.
	for stripeStatus, want := range DisputeStatuses {
		t.Run("charge.dispute "+stripeStatus, func(t *testing.T) {
			got := verifyOne(t, stripetest.Event("evt_1Dispute"+stripeStatus, "charge.dispute.updated", disputeObject(stripeStatus)))
			d := got.Dispute
			if got.Effect != ivrpay.EffectDispute || d == nil || d.Status != want || d.Reference != "du_1EventTest" || d.Amount != 1500 ||
				d.Currency != "USD" || d.ReasonCode != "product_not_received" || d.ReasonDesc != "product not received" ||
				d.RespondBy == nil || !d.RespondBy.Equal(due) || d.DashboardURL != "https://dashboard.stripe.com/test/payments/pi_3EventTest" ||
				got.PaymentReference != "pi_3EventTest" {
				t.Fatalf("dispute %s: %s", stripeStatus, processortest.EventJSON(t, got))
			}
		})
	}
	if len(DisputeStatuses) != 7 {
		t.Fatalf("SPEC §4.3 maps 7 Stripe dispute statuses, the adapter %d", len(DisputeStatuses))
	}

	t.Run("charge.refunded listing its refunds", func(t *testing.T) {
		ch := map[string]any{"id": "ch_3EventTest", "object": "charge", "amount": 1500, "amount_refunded": 800, "currency": "usd",
			"payment_intent": "pi_3EventTest", "refunds": map[string]any{"object": "list", "has_more": false, "data": []any{
				refundObject("succeeded", map[string]any{"id": "re_2", "amount": 300}),
				refundObject("pending", map[string]any{"id": "re_3"}),
				refundObject("failed", map[string]any{"id": "re_4", "payment_intent": nil}),
			}}}
		events, err := verifySigned(stripetest.Event("evt_1Refunded", "charge.refunded", ch))
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || events[0].ID != "evt_1Refunded:re_2" || events[0].Effect != ivrpay.EffectRefundSucceeded || events[0].Amount != 300 ||
			events[1].ID != "evt_1Refunded:re_4" || events[1].Effect != ivrpay.EffectRefundFailed || events[1].PaymentReference != "pi_3EventTest" {
			t.Fatalf("charge.refunded: %s", processortest.EventJSON(t, events))
		}
	})
}

// verifySigned verifies payload signed now with the events secret.
func verifySigned(payload []byte) ([]ivrpay.ProcessorEvent, error) {
	return VerifyEvent("stripe-main", payload, stripetest.Sign(payload, time.Now(), testEventsSecret), []string{testEventsSecret})
}

func verifyOne(t *testing.T, payload []byte) ivrpay.ProcessorEvent {
	t.Helper()
	events, err := verifySigned(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	return events[0]
}

// TestStripeEventSignatures: only a signature made with one of the
// account's secrets, within five minutes, verifies; any of several v1
// signatures may match (a secret rolling at Stripe), and the previous
// secret still kept verifies too. A signed body that is not an event is
// refused, but not as a signature failure.
func TestStripeEventSignatures(t *testing.T) {
	t.Parallel()
	payload := stripetest.Event("evt_1Signed", "payment_intent.succeeded", intentObject("succeeded", map[string]any{"amount_received": 1500}))
	now := time.Now()
	for _, tc := range []struct {
		name    string
		header  string
		secrets []string
		payload []byte
		ok      bool
		sigErr  bool
	}{
		{"signed with the secret", stripetest.Sign(payload, now, testEventsSecret), []string{testEventsSecret}, payload, true, false},
		{"two v1 while Stripe rolls the secret", stripetest.Sign(payload, now, testOldEventsSecret, testEventsSecret), []string{testEventsSecret}, payload, true, false},
		{"two v1, the old secret still stored", stripetest.Sign(payload, now, testOldEventsSecret, testEventsSecret), []string{testOldEventsSecret}, payload, true, false},
		{"the previous secret kept by ivrpay", stripetest.Sign(payload, now, testOldEventsSecret), []string{testEventsSecret, testOldEventsSecret}, payload, true, false},
		{"another secret", stripetest.Sign(payload, now, "whsec_somebodyElse"), []string{testEventsSecret}, payload, false, true},
		{"no signature", "", []string{testEventsSecret}, payload, false, true},
		{"a malformed header", "v1=abc", []string{testEventsSecret}, payload, false, true},
		{"signed over 300 s ago", stripetest.Sign(payload, now.Add(-EventTolerance-5*time.Second), testEventsSecret), []string{testEventsSecret}, payload, false, true},
		{"the body changed", stripetest.Sign(payload, now, testEventsSecret), []string{testEventsSecret},
			[]byte(strings.Replace(string(payload), `"amount_received":1500`, `"amount_received":1`, 1)), false, true},
		{"signed, but not an event", stripetest.Sign([]byte(`{"object":"v2.core.event"}`), now, testEventsSecret), []string{testEventsSecret},
			[]byte(`{"object":"v2.core.event"}`), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := VerifyEvent("stripe-main", tc.payload, tc.header, tc.secrets)
			if tc.ok {
				if err != nil || len(events) != 1 || events[0].Effect != ivrpay.EffectPaymentCaptured {
					t.Fatalf("VerifyEvent: %v, %v; want the captured event", events, err)
				}
				return
			}
			if err == nil || events != nil {
				t.Fatalf("VerifyEvent accepted it: %v", events)
			}
			if got := errors.Is(err, ivrpay.ErrEventSignature); got != tc.sigErr {
				t.Fatalf("error %q: a signature failure = %v, want %v", err, got, tc.sigErr)
			}
			for _, s := range append(tc.secrets, testOldEventsSecret) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestCheckEventsSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{testEventsSecret, true},
		{"whsec_" + strings.Repeat("0a", 32), true}, // the Stripe CLI's
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/=", true},
		{"sk_test_4eC39HqLyjWDarjtT1zdp7dc", false},
		{"whsec_", false},
		{"whsec_abc\nwhsec_def", false},
		{"whsec_abc def", false},
		{"", false},
	} {
		t.Run(tc.secret, func(t *testing.T) {
			err := CheckEventsSecret(tc.secret)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckEventsSecret: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && len(tc.secret) > len("whsec_") && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

// chargeObject is a Charge as a PaymentIntent of an API version before
// 2022-11-15 lists it in charges.data (and as an expanded latest_charge
// reads), with the card details ivrpay must not copy.
func chargeObject(id, status, cvc, postal, authCode, nti string) map[string]any {
	return map[string]any{"id": id, "object": "charge", "amount": 1500, "amount_captured": 1500, "captured": status == "succeeded",
		"currency": "usd", "paid": status == "succeeded", "payment_intent": "pi_3EventTest", "payment_method": "pm_1EventTest", "status": status,
		"outcome": map[string]any{"network_status": "approved_by_network", "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"},
		"refunds": map[string]any{"object": "list", "data": []any{}, "has_more": false, "total_count": 0, "url": "/v1/charges/" + id + "/refunds"},
		"payment_method_details": map[string]any{"type": "card", "card": map[string]any{
			"brand": "visa", "country": "US", "exp_month": 8, "exp_year": 2039, "fingerprint": "FpCardFingerprint1", "funding": "credit",
			"last4": "9995", "network": "visa", "three_d_secure": nil, "wallet": nil, "mandate": nil, "installments": nil,
			"checks":             map[string]any{"address_line1_check": nil, "address_postal_code_check": postal, "cvc_check": cvc},
			"authorization_code": authCode, "network_transaction_id": nti}}}
}

// TestStripeEventsCardAnswer: a PaymentIntent event gives the card
// network's answer (auth code, AVS and CVC checks, network transaction
// id) where it carries the charge: charges.data in API versions before
// 2022-11-15, or latest_charge as an object. The current versions' id alone
// gives nothing, and nothing is made up.
func TestStripeEventsCardAnswer(t *testing.T) {
	t.Parallel()
	const oldVersion = "2020-08-27"
	charges := func(c ...any) map[string]any {
		return map[string]any{"object": "list", "data": c, "has_more": false, "total_count": len(c), "url": "/v1/charges?payment_intent=pi_3EventTest"}
	}
	for _, tc := range []struct {
		name, version, typ string
		object             map[string]any
		want               [4]string // auth code, AVS, CVC, network transaction id
	}{
		{"old version, succeeded", oldVersion, "payment_intent.succeeded", intentObject("succeeded", map[string]any{"amount_received": 1500,
			"latest_charge": nil, "charges": charges(chargeObject("ch_3EventTest", "succeeded", "pass", "pass", "831000", "104557651805572"))}),
			[4]string{"831000", "Y", "M", "104557651805572"}},
		{"old version, authorized with a mismatched postal code", oldVersion, "payment_intent.amount_capturable_updated",
			intentObject("requires_capture", map[string]any{"amount_capturable": 1500, "capture_method": "manual", "latest_charge": nil,
				"charges": charges(chargeObject("ch_3EventTest", "succeeded", "pass", "fail", "T4F9Q2", "586214590330745"))}),
			[4]string{"T4F9Q2", "N", "M", "586214590330745"}},
		{"old version, the newest of two attempts", oldVersion, "payment_intent.succeeded", intentObject("succeeded", map[string]any{
			"amount_received": 1500, "latest_charge": nil, "charges": charges(
				chargeObject("ch_3Second", "succeeded", "unchecked", "unavailable", "655182", "300000000000001"),
				chargeObject("ch_3First", "failed", "fail", "pass", "", ""))}),
			[4]string{"655182", "U", "P", "300000000000001"}},
		{"old version, refused with a CVC mismatch", oldVersion, "payment_intent.payment_failed", intentObject("requires_payment_method", map[string]any{
			"latest_charge": nil, "charges": charges(chargeObject("ch_3EventTest", "failed", "fail", "pass", "", "")),
			"last_payment_error": map[string]any{"type": "card_error", "code": "incorrect_cvc", "message": "Your card's security code is incorrect.",
				"payment_method": cardOnError}}),
			[4]string{"", "Y", "N", ""}},
		{"latest_charge expanded", stripetest.EventAPIVersion, "payment_intent.succeeded", intentObject("succeeded", map[string]any{
			"amount_received": 1500, "latest_charge": chargeObject("ch_3EventTest", "succeeded", "pass", "pass", "831000", "104557651805572")}),
			[4]string{"831000", "Y", "M", "104557651805572"}},
		{"current version: latest_charge is an id", stripetest.EventAPIVersion, "payment_intent.succeeded",
			intentObject("succeeded", map[string]any{"amount_received": 1500}), [4]string{}},
		{"current version pinned to 2022-11-15", "2022-11-15", "payment_intent.amount_capturable_updated",
			intentObject("requires_capture", map[string]any{"amount_capturable": 1500, "capture_method": "manual"}), [4]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := verifyOne(t, stripetest.EventOfVersion(tc.version, "evt_1CardAnswer", tc.typ, tc.object))
			if g := [4]string{got.AuthCode, got.AVSResultCode, got.CVCResultCode, got.NetworkTransactionID}; g != tc.want {
				t.Fatalf("auth code, AVS, CVC, network transaction id %q, want %q", g, tc.want)
			}
			if got.Effect == ivrpay.EffectNone || got.PaymentReference != "pi_3EventTest" || got.Reference != "pyn_eventtest" {
				t.Fatalf("event %s", processortest.EventJSON(t, got))
			}
			if b := processortest.EventJSON(t, got); strings.Contains(b, "9995") || strings.Contains(b, "Fingerprint") || strings.Contains(b, "2039") {
				t.Fatalf("card data was copied: %s", b)
			}
		})
	}
}
