package sandbox

import (
	"strings"

	"github.com/ivrpay/ivrpay"
)

// RefundFailsAmount, in cents: a refund of this amount, or any refund of a
// payin of this amount, is accepted, then FAILED by the sandbox's event
// (refusal PROCESSING_ERROR) once the settle delay has passed, as a bank
// returning a refund days later; its amount is refundable again.
const RefundFailsAmount = 5140

// Confirmations are the events the sandbox processor sends about a payin
// or refund once it has been PROCESSING for the settle delay (serve
// --sandbox-settle-after): the capture confirmed, the refund succeeded,
// or failed (RefundFailsAmount). ivrpay receives them like any
// processor's events (SPEC §4.2). Each event's id is fixed by its object
// and effect, so the same confirmation sent twice (by two processes) is
// one event.
func Confirmations(d ivrpay.SandboxDue) []ivrpay.ProcessorEvent {
	e := ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: Kind, PaymentReference: d.PayinReference,
		Currency: d.Currency, OccurredAt: d.ProcessingSince}
	switch {
	case d.RefundID != "":
		e.Reference, e.RefundReference, e.Amount = d.RefundID, d.RefundReference, d.RefundAmount
		e.Effect = ivrpay.EffectRefundSucceeded
		if d.RefundAmount == RefundFailsAmount || d.PayinAmount == RefundFailsAmount {
			e.Effect, e.RefusalCode = ivrpay.EffectRefundFailed, ivrpay.RefusalProcessingError
		}
	default:
		e.Reference, e.Amount, e.Effect = d.PayinID, d.CapturedAmount, ivrpay.EffectPaymentCaptured
	}
	e.ID = e.Reference + ":" + string(e.Effect)
	e.Type = "sandbox." + strings.ToLower(string(e.Effect))
	return []ivrpay.ProcessorEvent{e}
}
