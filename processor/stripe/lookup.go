package stripe

import (
	"context"
	"fmt"
	"strings"

	"github.com/ivrpay/ivrpay"
	stripeapi "github.com/stripe/stripe-go/v84"
)

var _ ivrpay.StatusLookup = (*Processor)(nil)

// LookupPayment retrieves the PaymentIntent op.Reference and reports its
// status as the event that would say so: succeeded is PAYMENT_CAPTURED,
// requires_capture PAYMENT_AUTHORIZED, canceled PAYMENT_CANCELED,
// requires_payment_method (refused) PAYMENT_FAILED with its card's refusal;
// processing, and a state that waits for the customer, are EffectNone.
// The intent's latest charge is expanded, so that the answer carries the
// card network's answer (auth code, AVS and CVC results, network
// transaction id) as the synchronous answer does: the card-answer pass
// fills a payin resolved by an event that named its charge by id only.
func (p *Processor) LookupPayment(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorEvent, error) {
	s := p.scrubber(ivrpay.CardDetails{})
	rp := &stripeapi.PaymentIntentRetrieveParams{Params: params(ctx, "", op.AccountRef)}
	rp.AddExpand("latest_charge")
	pi, err := p.client.V1PaymentIntents.Retrieve(ctx, op.Reference, rp)
	if err != nil {
		return ivrpay.ProcessorEvent{}, fmt.Errorf("stripe: look up payment intent %s: %s", op.Reference, s.describe(err))
	}
	e := ivrpay.ProcessorEvent{Type: "payment_intent." + string(pi.Status), PaymentReference: pi.ID, Amount: pi.Amount,
		Currency: strings.ToUpper(string(pi.Currency)), Effect: ivrpay.EffectNone}
	eventChargeAnswer(&e, pi.LatestCharge)
	switch pi.Status {
	case stripeapi.PaymentIntentStatusSucceeded:
		e.Effect, e.Amount = ivrpay.EffectPaymentCaptured, pi.AmountReceived
	case stripeapi.PaymentIntentStatusRequiresCapture:
		e.Effect, e.Amount = ivrpay.EffectPaymentAuthorized, pi.AmountCapturable
	case stripeapi.PaymentIntentStatusCanceled:
		e.Effect = ivrpay.EffectPaymentCanceled
	case stripeapi.PaymentIntentStatusRequiresPaymentMethod:
		e.Effect, e.RefusalCode = ivrpay.EffectPaymentFailed, ivrpay.RefusalProcessingError
		if le := pi.LastPaymentError; le != nil && le.Type == stripeapi.ErrorTypeCard {
			r := s.cardRefusal(le)
			e.RefusalCode, e.RefusalDesc = r.RefusalCode, r.RefusalDesc
		}
	}
	return e, nil
}

// LookupRefund retrieves the Refund refundReference and reports it:
// succeeded is REFUND_SUCCEEDED, failed and canceled REFUND_FAILED (with
// Stripe's failure reason for the operator), pending and requires_action
// EffectNone.
func (p *Processor) LookupRefund(ctx context.Context, op ivrpay.PaymentOperation, refundReference string) (ivrpay.ProcessorEvent, error) {
	s := p.scrubber(ivrpay.CardDetails{})
	re, err := p.client.V1Refunds.Retrieve(ctx, refundReference, &stripeapi.RefundRetrieveParams{Params: params(ctx, "", op.AccountRef)})
	if err != nil {
		return ivrpay.ProcessorEvent{}, fmt.Errorf("stripe: look up refund %s: %s", refundReference, s.describe(err))
	}
	e := ivrpay.ProcessorEvent{Type: "refund." + string(re.Status), PaymentReference: op.Reference, RefundReference: re.ID,
		Amount: re.Amount, Currency: strings.ToUpper(string(re.Currency)), Effect: ivrpay.EffectNone}
	switch re.Status {
	case stripeapi.RefundStatusSucceeded:
		e.Effect = ivrpay.EffectRefundSucceeded
	case stripeapi.RefundStatusFailed, stripeapi.RefundStatusCanceled:
		e.Effect, e.RefusalCode = ivrpay.EffectRefundFailed, ivrpay.RefusalProcessingError
		e.RefusalDesc = s.clean(fmt.Sprintf("stripe refund %s %s (%s)", re.ID, re.Status, re.FailureReason))
	}
	return e, nil
}
