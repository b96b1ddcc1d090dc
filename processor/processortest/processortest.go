// Package processortest is the contract every ivrpay.Processor adapter passes:
// one table of scenarios, run against the sandbox processor and against each
// adapter's test double. A new acquirer's adapter is done when Run passes.
//
// The scenarios are steered by amount, the way Twilio's TEST mode can steer
// them (it only forwards its own test cards). A test double of a real
// processor answers these amounts as that processor answers the matching
// documented test triggers:
//
//	5101 cents  refused, DECLINED
//	5102 cents  refused, INSUFFICIENT_FUNDS
//	5103 cents  refused, DO_NOT_HONOR
//	5121 cents  the charge goes through, every answer is lost (an error); Resolve finds it approved,
//	            or reverses it and reports PROCESSING_ERROR when the processor cannot be asked
//	5122 cents  503 (an error) and no charge; Resolve reports it refused with PROCESSING_ERROR
//
// Any other amount is approved.
package processortest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// Trigger amounts, in cents, that every test double answers alike.
const (
	AmountDeclined          = 5101
	AmountInsufficientFunds = 5102
	AmountDoNotHonor        = 5103
	AmountLostAnswers       = 5121
	AmountUnavailable       = 5122
)

// TestCard is an approved card of every processor's test mode.
func TestCard() ivrpay.CardDetails {
	return ivrpay.CardDetails{PAN: "4111111111111111", CVV: "123", ExpMonth: 12, ExpYear: 2030, PostalCode: "94111", Brand: "VISA"}
}

// Payment returns an Authorize request for amount under key.
func Payment(key string, amount int64, capture bool) ivrpay.CardPayment {
	return ivrpay.CardPayment{IdempotencyKey: key, Reference: key, Amount: amount, Currency: "USD", Capture: capture, Card: TestCard()}
}

// EventJSON is v (events an adapter made of a processor's delivery) as
// JSON, for comparing events whole and searching them for what must not
// be copied (card data).
func EventJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Run runs the contract against the processors newProcessor returns (one per
// scenario, so scenarios do not share state unless the processor's backend does).
func Run(t *testing.T, newProcessor func(t *testing.T) ivrpay.Processor) {
	ctx := context.Background()
	// approved(t, what)(call) fails t unless call answered an approval.
	approved := func(t *testing.T, what string) func(ivrpay.ProcessorResult, error) ivrpay.ProcessorResult {
		return func(r ivrpay.ProcessorResult, err error) ivrpay.ProcessorResult {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: unexpected error %v", what, err)
			}
			if !r.Approved || r.RefusalCode != "" {
				t.Fatalf("%s: not approved: %+v", what, r)
			}
			return r
		}
	}
	unknown := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil || !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatalf("%s: error = %v, want one wrapping ivrpay.ErrOutcomeUnknown", what, err)
		}
	}

	t.Run("charge captured at once", func(t *testing.T) {
		p := newProcessor(t)
		r := approved(t, "authorize")(p.Authorize(ctx, Payment("pyi_contract_capture", 1000, true)))
		if r.Reference == "" {
			t.Error("an approved charge has no processor reference")
		}
		if r.NetworkTransactionID == "" {
			t.Error("an approved charge has no network transaction id")
		}
		if r.AVSResultCode == "" || r.CVCResultCode == "" {
			t.Errorf("AVS/CVC results missing: %+v", r)
		}
		if r.AuthorizedAmount != 0 && r.AuthorizedAmount != 1000 {
			t.Errorf("authorized amount %d, want 1000", r.AuthorizedAmount)
		}
	})
	t.Run("same idempotency key, same charge", func(t *testing.T) {
		p := newProcessor(t)
		a := approved(t, "first")(p.Authorize(ctx, Payment("pyi_contract_idem", 1000, true)))
		b := approved(t, "second")(p.Authorize(ctx, Payment("pyi_contract_idem", 1000, true)))
		if a.Reference != b.Reference {
			t.Errorf("a repeat with the same idempotency key made a second payment: %s then %s", a.Reference, b.Reference)
		}
	})
	t.Run("authorize then capture", func(t *testing.T) {
		p := newProcessor(t)
		if !p.Capabilities().ManualCapture {
			t.Skip("the adapter declares no manual capture")
		}
		r := approved(t, "authorize")(p.Authorize(ctx, Payment("pyi_contract_auth", 1500, false)))
		approved(t, "capture")(p.Capture(ctx, ivrpay.PaymentOperation{IdempotencyKey: "cap_pyi_contract_auth", Reference: r.Reference,
			PayinID: "pyi_contract_auth", Amount: 1500, Currency: "USD"}))
	})
	t.Run("authorize then void", func(t *testing.T) {
		p := newProcessor(t)
		if !p.Capabilities().Void {
			t.Skip("the adapter declares no void")
		}
		r := approved(t, "authorize")(p.Authorize(ctx, Payment("pyi_contract_void", 1200, false)))
		approved(t, "void")(p.Void(ctx, ivrpay.PaymentOperation{IdempotencyKey: "void_pyi_contract_void", Reference: r.Reference,
			PayinID: "pyi_contract_void", Amount: 1200, Currency: "USD"}))
	})
	t.Run("two partial refunds", func(t *testing.T) {
		p := newProcessor(t)
		if !p.Capabilities().PartialRefund {
			t.Skip("the adapter declares no partial refund")
		}
		r := approved(t, "charge")(p.Authorize(ctx, Payment("pyi_contract_refund", 1000, true)))
		for i, key := range []string{"rfd_contract_1", "rfd_contract_2"} {
			rr := approved(t, "refund")(p.Refund(ctx, ivrpay.PaymentOperation{IdempotencyKey: key, Reference: r.Reference,
				PayinID: "pyi_contract_refund", Amount: int64(300 + 100*i), Currency: "USD"}))
			if rr.Reference == "" {
				t.Errorf("refund %d has no processor reference", i+1)
			}
		}
	})
	t.Run("verify a card for tokenize", func(t *testing.T) {
		p := newProcessor(t)
		if !p.Capabilities().Verify {
			t.Skip("the adapter declares no verification")
		}
		pay := Payment("mtd_contract_verify", 0, false)
		r := approved(t, "verify")(p.Verify(ctx, pay))
		if r.NetworkTransactionID == "" {
			t.Error("a verification has no network transaction id (a stored card's later charges need it)")
		}
	})
	t.Run("merchant-initiated charge of a stored card", func(t *testing.T) {
		p := newProcessor(t)
		if !p.Capabilities().StoredCharges {
			t.Skip("the adapter declares no stored-card charges")
		}
		first := approved(t, "first payment")(p.Authorize(ctx, Payment("pyi_contract_cit", 1000, true)))
		pay := Payment("pyi_contract_mit", 2500, true)
		pay.Card.CVV = ""
		pay.Stored = &ivrpay.StoredCredential{NetworkTransactionID: first.NetworkTransactionID}
		approved(t, "stored charge")(p.Authorize(ctx, pay))
	})
	for _, tc := range []struct {
		name   string
		amount int64
		code   string
	}{
		{"declined", AmountDeclined, ivrpay.RefusalDeclined},
		{"insufficient funds", AmountInsufficientFunds, ivrpay.RefusalInsufficientFunds},
		{"do not honor", AmountDoNotHonor, ivrpay.RefusalDoNotHonor},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			p := newProcessor(t)
			r, err := p.Authorize(ctx, Payment("pyi_contract_refused_"+tc.code, tc.amount, true))
			if err != nil {
				t.Fatalf("a refusal is a result, not an error: %v", err)
			}
			if r.Approved || r.RefusalCode != tc.code {
				t.Errorf("got approved=%v refusal %q, want %s", r.Approved, r.RefusalCode, tc.code)
			}
			if r.RefusalDesc == "" {
				t.Error("a refusal has no description (the processor's own code and message)")
			}
		})
	}
	t.Run("lost answers, charged: Resolve finds the charge or reverses it", func(t *testing.T) {
		p := newProcessor(t)
		pay := Payment("pyi_contract_lost", AmountLostAnswers, true)
		_, err := p.Authorize(ctx, pay)
		unknown(t, "authorize", err)
		pay.Card.CVV = ""
		r, err := p.Resolve(ctx, pay)
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		// An adapter that can look the charge up reports it; one that cannot
		// (Adyen) reverses it by our reference and says so. Each adapter's own
		// tests check that its double saw the reversal.
		switch {
		case r.Approved && r.Reference == "":
			t.Error("the resolved charge has no processor reference")
		case !r.Approved && r.RefusalCode != ivrpay.RefusalProcessingError:
			t.Errorf("resolve = %+v, want approved, or refused with PROCESSING_ERROR after a reversal", r)
		}
	})
	t.Run("unavailable, not charged: Resolve reports no charge", func(t *testing.T) {
		p := newProcessor(t)
		pay := Payment("pyi_contract_unavailable", AmountUnavailable, true)
		_, err := p.Authorize(ctx, pay)
		unknown(t, "authorize", err)
		pay.Card.CVV = ""
		r, err := p.Resolve(ctx, pay)
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		if r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError {
			t.Errorf("resolve = %+v, want refused with PROCESSING_ERROR", r)
		}
	})
	t.Run("kind and capabilities", func(t *testing.T) {
		p := newProcessor(t)
		if p.Kind() == "" {
			t.Error("Kind is empty")
		}
		c := p.Capabilities()
		if c.PartialCapture && !c.ManualCapture {
			t.Error("partial capture without manual capture")
		}
		if c.PartialRefund && !c.Refund {
			t.Error("partial refund without refund")
		}
	})
}
