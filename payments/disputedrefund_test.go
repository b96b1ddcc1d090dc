package payments_test

// Refunds of disputed payins (docs/decisions.md, "Refunds of disputed
// payins"): ivrpay's own refusal holds when the chargeback is recorded
// between the request's read of the payin and its reservation, and the
// sandbox processor refuses a refund of a payment it disputes before ivrpay
// has heard of the dispute.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// disputeMeanwhile is the store as a refund request meets it when a
// dispute event is applied after the request read the payin and before it
// reserves the refund. It counts the reservations refused as changed.
type disputeMeanwhile struct {
	payments.Store
	dispute func()
	changed atomic.Int32
}

func (s *disputeMeanwhile) RecordVoidOrRefund(ctx context.Context, r ivrpay.VoidOrRefundRecord) (*ivrpay.Refund, error) {
	if s.dispute != nil {
		s.dispute()
		s.dispute = nil
	}
	rf, err := s.Store.RecordVoidOrRefund(ctx, r)
	if errors.Is(err, ivrpay.ErrStateChanged) {
		s.changed.Add(1)
	}
	return rf, err
}

func disputeOf(p *ivrpay.Payin, status string) ivrpay.ProcessorEvent {
	return ivrpay.ProcessorEvent{Account: p.Processor.Account, Kind: p.Processor.Kind, ID: fmt.Sprint("evt_du_", eventSeq.Add(1)),
		Type: "test.dispute", Effect: ivrpay.EffectDispute, Reference: p.ID,
		Dispute: &ivrpay.DisputeDetails{Reference: fmt.Sprint("du_", eventSeq.Add(1)), Status: status}}
}

// TestChargebackBetweenReadAndReservation: the reservation itself refuses
// a refund once a chargeback that refuses refunds is recorded, so a request
// that read the payin before is refused as if it had seen it: a 409 naming
// the chargeback, no processor call, no refund and no idempotency row. A
// chargeback that allows refunds (an inquiry) does not stop it.
func TestChargebackBetweenReadAndReservation(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		for _, tc := range []struct {
			status  string
			refused bool
		}{
			{ivrpay.ChargebackStatusDisputeActionRequired, true},
			{ivrpay.ChargebackStatusLost, true},
			{ivrpay.ChargebackStatusInquiryActionRequired, false},
		} {
			t.Run(tc.status, func(t *testing.T) {
				p := e.settled(2000)
				store := &disputeMeanwhile{Store: e.store}
				store.dispute = func() { e.receive(disputeOf(p, tc.status)) }
				late := e.opts.PaymentsOn(store)
				calls := e.router.sandbox.Calls()
				key := fmt.Sprint("dm-", e.txn.Add(1))
				res, err := late.VoidOrRefund(e.adminCtx, p.ID, ivrpay.VoidOrRefund{IdempotencyKey: key,
					Reason: ivrpay.RefundReasonRequestedByCustomer, Amount: json.Number("700")})
				requests := paymentstest.Count(t, e.store.DB(), `SELECT COUNT(*) FROM void_or_refund_requests WHERE payin_id = $1`, p.ID)
				refunds := paymentstest.Count(t, e.store.DB(), `SELECT COUNT(*) FROM refunds WHERE payin_id = $1`, p.ID)
				if !tc.refused {
					if err != nil || res.RefundStatus != ivrpay.RefundStatusProcessing || refunds != 1 || requests != 1 {
						t.Fatalf("refund after an inquiry opened: %+v, %v; %d refunds, %d requests", res, err, refunds, requests)
					}
					return
				}
				if store.changed.Load() != 1 {
					t.Fatalf("the reservation did not refuse a refund of a payin whose %s chargeback it could see: %+v, %v", tc.status, res, err)
				}
				cbs := e.payin(p.ID).Chargebacks
				if ivrpay.ErrorCode(err) != ivrpay.ECONFLICT || len(cbs) != 1 || !strings.Contains(ivrpay.ErrorMessage(err), cbs[0].ID) {
					t.Fatalf("refund after chargeback %v was recorded: %+v, %v; want a conflict naming it", cbs, res, err)
				}
				if got := e.router.sandbox.Calls(); got != calls {
					t.Fatalf("the processor was asked %d times", got-calls)
				}
				// Nothing reserved; the refundable amount is 0 because of the chargeback.
				if got := e.payin(p.ID); refunds != 0 || requests != 0 || got.RefundedAmount != 0 || got.RefundableAmount != 0 ||
					got.NonRefundableReasonCode != ivrpay.NonRefundableHasChargebacks {
					t.Fatalf("the refused refund left %d refunds, %d idempotency rows, refunded %d, refundable %d (%s)",
						refunds, requests, got.RefundedAmount, got.RefundableAmount, got.NonRefundableReasonCode)
				}
			})
		}
	})
}

// TestSandboxRefusesRefundOfItsDispute: a payin of 51.30 that settled but
// whose dispute event has not been applied yet is refunded by ivrpay, and
// the sandbox processor refuses it as disputed (the refund FAILED, its
// amount refundable again); once the dispute's event is applied, ivrpay
// refuses the refund itself, without asking the processor.
func TestSandboxRefusesRefundOfItsDispute(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		p := e.charge(e.merchantID, sandbox.ChargebackAmount, ivrpay.ProcessingModeAuthorizeAndCapture)
		// Settled by the capture's event alone: the sandbox pass that would
		// also open the dispute has not run.
		if ev := e.receive(paymentEvent(p, ivrpay.EffectPaymentCaptured)); ev.Status != ivrpay.ProcessorEventApplied {
			t.Fatalf("capture event: %s %q", ev.Status, ev.Note)
		}
		if p = e.payin(p.ID); p.Status != ivrpay.PayinStatusSucceeded || len(p.Chargebacks) != 0 {
			t.Fatalf("payin %s with chargebacks %v, want SUCCEEDED without any yet", p.Status, p.Chargebacks)
		}
		rf := e.refund(p, 1000)
		if rf.Status != ivrpay.RefundStatusFailed || rf.RefusalCode != ivrpay.RefusalProcessingError ||
			rf.RefusalDesc != "Processing error (sandbox charge_disputed)" {
			t.Fatalf("refund of a payment the sandbox disputes: %+v, want FAILED as charge_disputed", rf)
		}
		if got := e.payin(p.ID).RefundableAmount; got != sandbox.ChargebackAmount {
			t.Fatalf("refundable %d after the refused refund, want all of it", got)
		}

		// The sandbox pass opens the dispute; now ivrpay knows.
		if _, err := e.pay.ConfirmSandboxDue(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if cbs := e.payin(p.ID).Chargebacks; len(cbs) != 1 || cbs[0].Status != ivrpay.ChargebackStatusDisputeActionRequired {
			t.Fatalf("chargebacks after the sandbox pass: %v", cbs)
		}
		calls := e.router.sandbox.Calls()
		_, err := e.pay.VoidOrRefund(e.adminCtx, p.ID, ivrpay.VoidOrRefund{IdempotencyKey: fmt.Sprint("r-", e.txn.Add(1)),
			Reason: ivrpay.RefundReasonRequestedByCustomer})
		if ivrpay.ErrorCode(err) != ivrpay.ECONFLICT || !strings.Contains(ivrpay.ErrorMessage(err), ivrpay.ChargebackStatusDisputeActionRequired) {
			t.Fatalf("refund once the dispute is known: %v, want a conflict naming it", err)
		}
		if got := e.router.sandbox.Calls(); got != calls {
			t.Fatalf("the processor was asked %d times", got-calls)
		}
	})
}
