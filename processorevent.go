package ivrpay

import (
	"context"
	"time"
)

// ProcessorEvent is one verified event from a processor account (Stripe,
// Adyen) or from the built-in sandbox processor, normalized so that one domain
// transition table applies all of them (SPEC §4.2). It carries no card data:
// adapters copy only the fields named here out of the processor's body.
type ProcessorEvent struct {
	// Account is the processor account's NAME (SPEC §4.1); SandboxAccount
	// for the built-in sandbox processor.
	Account string
	// Kind is the adapter ("stripe", "adyen", "sandbox").
	Kind string
	// ID is unique per account and event: Stripe's evt_ id; Adyen's
	// pspReference:eventCode:success. The inbox dedupes on (Account, ID).
	ID string
	// Type is the processor's own name for the event
	// ("payment_intent.succeeded", "CAPTURE"), kept for operators.
	Type string
	// Effect is what the event means to ivrpay.
	Effect EventEffect
	// PaymentReference is the processor's reference of the payment the event
	// is about (Stripe pi_…, Adyen the payment's pspReference).
	PaymentReference string
	// Reference is ivrpay's own id of the object when the processor echoes it
	// (Stripe metadata, Adyen merchantReference): a payin or refund id.
	Reference string
	// RefundReference is the processor's reference of the refund (Stripe
	// re_…, Adyen the refund's pspReference) for refund effects.
	RefundReference string
	// Amount and Currency as the processor states them (cents), when it does.
	Amount   int64
	Currency string
	// RefusalCode (normalized) and RefusalDesc for failure effects.
	RefusalCode string
	RefusalDesc string
	// AuthCode, AVSResultCode, CVCResultCode and NetworkTransactionID are
	// the card network's answer as the event states it, mapped as the
	// adapter maps its synchronous answer (ProcessorResult's fields); each
	// is empty when the event does not carry it. They reach the payin when
	// the event resolves its unknown outcome.
	AuthCode             string
	AVSResultCode        string
	CVCResultCode        string
	NetworkTransactionID string
	// Dispute is set for EffectDispute.
	Dispute *DisputeDetails
	// OccurredAt is when the processor says the event happened.
	OccurredAt time.Time
}

// SandboxAccount names the built-in sandbox processor in events.
const SandboxAccount = "sandbox"

// EventEffect is what a processor event means, independent of the processor.
type EventEffect string

// The effects of processor events (SPEC §4.2).
const (
	// EffectPaymentAuthorized: the payment is authorized (an unknown outcome
	// resolved as approved; AUTHORIZED confirmed).
	EffectPaymentAuthorized EventEffect = "PAYMENT_AUTHORIZED"
	// EffectPaymentCaptured: the capture is confirmed; the payin SUCCEEDED.
	EffectPaymentCaptured EventEffect = "PAYMENT_CAPTURED"
	// EffectPaymentCaptureFailed: a capture the processor accepted failed.
	EffectPaymentCaptureFailed EventEffect = "PAYMENT_CAPTURE_FAILED"
	// EffectPaymentFailed: the payment was refused (an unknown outcome becomes FAILED).
	EffectPaymentFailed EventEffect = "PAYMENT_FAILED"
	// EffectPaymentCanceled: a void (cancel) is confirmed.
	EffectPaymentCanceled EventEffect = "PAYMENT_CANCELED"
	// EffectRefundSucceeded / EffectRefundFailed: a refund's outcome. A failed
	// refund's amount becomes refundable again.
	EffectRefundSucceeded EventEffect = "REFUND_SUCCEEDED"
	EffectRefundFailed    EventEffect = "REFUND_FAILED"
	// EffectDispute: a chargeback opened or changed (SPEC §4.3); Dispute is set.
	EffectDispute EventEffect = "DISPUTE"
	// EffectNone: a verified event ivrpay does not act on. It is acknowledged
	// and recorded, never applied.
	EffectNone EventEffect = "NONE"
)

// DisputeDetails is a chargeback as one processor event states it.
type DisputeDetails struct {
	// Reference is the processor's id of the dispute (Stripe du_…, Adyen the
	// dispute's pspReference); one chargeback per (account, Reference).
	Reference string
	// Status is a ChargebackStatus, already mapped (SPEC §4.3).
	Status     string
	Amount     int64
	Currency   string
	ReasonCode string
	ReasonDesc string
	// RespondBy is the deadline for evidence, when the processor gives one.
	RespondBy *time.Time
	// DashboardURL is where the merchant answers, when the processor gives one.
	DashboardURL string
}

// Chargeback statuses (Rainforest's; SPEC §4.3).
const (
	ChargebackStatusInquiryActionRequired = "INQUIRY_ACTION_REQUIRED"
	ChargebackStatusInquiryProcessing     = "INQUIRY_PROCESSING"
	ChargebackStatusDisputeActionRequired = "DISPUTE_ACTION_REQUIRED"
	ChargebackStatusChargebackProcessing  = "CHARGEBACK_PROCESSING"
	ChargebackStatusProvisionalWin        = "PROVISIONAL_WIN"
	ChargebackStatusWon                   = "WON"
	ChargebackStatusLost                  = "LOST"
)

// ChargebackStatuses lists every chargeback status (for filter validation).
var ChargebackStatuses = []string{ChargebackStatusInquiryActionRequired, ChargebackStatusInquiryProcessing,
	ChargebackStatusDisputeActionRequired, ChargebackStatusChargebackProcessing, ChargebackStatusProvisionalWin,
	ChargebackStatusWon, ChargebackStatusLost}

// ProcessorEventReceiver takes a verified event: it stores it durably
// (deduped on Account and ID) before returning, and applies it exactly once,
// across every process sharing the database. A nil error means the event is
// safe to acknowledge to the processor.
type ProcessorEventReceiver interface {
	ReceiveProcessorEvent(ctx context.Context, e ProcessorEvent) error
}
