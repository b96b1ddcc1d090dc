package sandbox_test

import (
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// TestDisputeEvents: 5130 opens a dispute that is lost, 5131 an inquiry
// that is won; each step once, with an id fixed by the payin and status.
func TestDisputeEvents(t *testing.T) {
	settled := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	due := func(amount int64, status string) ivrpay.SandboxDisputeDue {
		return ivrpay.SandboxDisputeDue{PayinID: "sbx_pyi_1", PayinAmount: amount, CapturedAmount: amount, PayinReference: "sbxproc_ch_1",
			Currency: "USD", ChargebackStatus: status, Since: settled}
	}
	// An authorization of 51.30 captured in part: the trigger is the
	// authorized amount, the dispute claims what was captured.
	partial := due(sandbox.ChargebackAmount, "")
	partial.CapturedAmount = 5000
	for _, tc := range []struct {
		name      string
		d         ivrpay.SandboxDisputeDue
		status    string // "" when no event is due
		respondBy bool
	}{
		{"5130 settled", due(sandbox.ChargebackAmount, ""), ivrpay.ChargebackStatusDisputeActionRequired, true},
		{"5130 disputed", due(sandbox.ChargebackAmount, ivrpay.ChargebackStatusDisputeActionRequired), ivrpay.ChargebackStatusLost, false},
		{"5130 lost", due(sandbox.ChargebackAmount, ivrpay.ChargebackStatusLost), "", false},
		{"5130 moved by another event", due(sandbox.ChargebackAmount, ivrpay.ChargebackStatusChargebackProcessing), "", false},
		{"5131 settled", due(sandbox.InquiryAmount, ""), ivrpay.ChargebackStatusInquiryActionRequired, true},
		{"5131 inquiry", due(sandbox.InquiryAmount, ivrpay.ChargebackStatusInquiryActionRequired), ivrpay.ChargebackStatusWon, false},
		{"5131 won", due(sandbox.InquiryAmount, ivrpay.ChargebackStatusWon), "", false},
		{"5130 captured in part", partial, ivrpay.ChargebackStatusDisputeActionRequired, true},
		{"another amount", due(5100, ""), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := sandbox.DisputeEvents(tc.d)
			if tc.status == "" {
				if len(evs) != 0 {
					t.Fatalf("events %+v, want none", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			e := evs[0]
			if err := ivrpay.CheckDispute(e.Dispute); err != nil {
				t.Fatal(err)
			}
			if e.Account != ivrpay.SandboxAccount || e.Kind != sandbox.Kind || e.Effect != ivrpay.EffectDispute || e.Reference != "sbx_pyi_1" ||
				e.PaymentReference != "sbxproc_ch_1" || e.Dispute.Status != tc.status || e.Dispute.Amount != tc.d.CapturedAmount || e.Amount != tc.d.CapturedAmount ||
				e.ID != e.Dispute.Reference+":"+tc.status || e.Type == "" {
				t.Fatalf("event %+v, dispute %+v", e, e.Dispute)
			}
			if got := e.Dispute.RespondBy != nil; got != tc.respondBy {
				t.Fatalf("respond_by %v, want one: %v", e.Dispute.RespondBy, tc.respondBy)
			}
			if tc.respondBy && !e.Dispute.RespondBy.Equal(settled.Add(sandbox.DisputeRespondWithin)) {
				t.Fatalf("respond_by %v", e.Dispute.RespondBy)
			}
			// The same payin's dispute keeps one reference; another payin's differs.
			other := tc.d
			other.PayinID = "sbx_pyi_2"
			if again := sandbox.DisputeEvents(tc.d)[0]; again.ID != e.ID {
				t.Fatalf("ids differ between sends: %s, %s", again.ID, e.ID)
			}
			if o := sandbox.DisputeEvents(other)[0]; o.Dispute.Reference == e.Dispute.Reference {
				t.Fatal("two payins' disputes share a reference")
			}
		})
	}
}

// TestRefundOfDisputedPayment: the sandbox refuses any refund of a payment
// it disputes (51.30), as Stripe's charge_disputed, and refunds the others,
// the inquiry's (51.31) included: an inquiry moved no money.
func TestRefundOfDisputedPayment(t *testing.T) {
	for _, tc := range []struct {
		name            string
		payment, refund int64
		refused         bool
	}{
		{"full refund of a disputed payment", sandbox.ChargebackAmount, sandbox.ChargebackAmount, true},
		{"partial refund of a disputed payment", sandbox.ChargebackAmount, 100, true},
		{"refund of an inquired payment", sandbox.InquiryAmount, sandbox.InquiryAmount, false},
		{"refund of 51.30 of another payment", 9000, sandbox.ChargebackAmount, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sandbox.New()
			res, err := p.Refund(t.Context(), ivrpay.PaymentOperation{IdempotencyKey: "vor_1", Reference: "sbxproc_ch_1", PayinID: "sbx_pyi_1",
				Amount: tc.refund, Currency: "USD", PaymentAmount: tc.payment})
			if err != nil {
				t.Fatal(err)
			}
			if res.Approved == tc.refused {
				t.Fatalf("refund of %d of a payment of %d: %+v, want refused %v", tc.refund, tc.payment, res, tc.refused)
			}
			if tc.refused && (res.RefusalCode != ivrpay.RefusalProcessingError || res.ProcessorCode != "sandbox charge_disputed") {
				t.Fatalf("refusal %+v, want PROCESSING_ERROR with the processor's code sandbox charge_disputed", res)
			}
			if p.Calls() != 1 {
				t.Fatalf("%d calls counted, want 1", p.Calls())
			}
		})
	}
}
