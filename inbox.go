package ivrpay

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrEventDone is returned by a Store when the event it is asked to apply
// is no longer PENDING: another process applied it first. Nothing was written.
var ErrEventDone = errors.New("processor event already applied")

// Statuses of a processor event in the inbox (SPEC §4.2).
const (
	// ProcessorEventPending: stored and acknowledged, not applied yet (or
	// waiting to be applied again: its object is unknown so far, or its own
	// answer is still on its way).
	ProcessorEventPending = "PENDING"
	// ProcessorEventApplied: applied; it changed its payin or refund.
	ProcessorEventApplied = "APPLIED"
	// ProcessorEventNoChange: applied; it changed nothing (a confirmation of
	// what ivrpay records, or older news than the object's state).
	ProcessorEventNoChange = "NO_CHANGE"
	// ProcessorEventIgnored: an event ivrpay does not act on (EffectNone).
	ProcessorEventIgnored = "IGNORED"
	// ProcessorEventUnmatched: no payin or refund of ivrpay's matched it
	// while it was retried; kept for the operator
	// (ivrpay admin events list --unmatched).
	ProcessorEventUnmatched = "UNMATCHED"
	// ProcessorEventFailed: applying it returned an error at every attempt
	// until the bound (payments.MaxEventFailures); it changed nothing and
	// is kept, with its last error as its note, for the operator to fix
	// and retry (ivrpay admin events list --failed, events retry).
	ProcessorEventFailed = "FAILED"
)

// InboxEvent is a processor event as the inbox keeps it.
type InboxEvent struct {
	ProcessorEvent
	Status string
	// ObjectID is the payin, refund or chargeback the event was matched to.
	ObjectID string
	// Note says why the event waits, is unmatched or changed nothing, or
	// the error its last attempt failed with.
	Note     string
	Attempts int
	// Failures counts the attempts that failed with an error (since the
	// last operator retry).
	Failures   int
	ReceivedAt time.Time
	// Claim is the end of the lease under which the caller holds the event
	// (its next_attempt_at as the claim wrote it): the caller's bookkeeping
	// (ProcessorEventDone, ProcessorEventRetry) is conditional on it, so a
	// caller whose lease another process took over writes nothing.
	Claim time.Time
}

// ProcessorEventListing is one event as `ivrpay admin events list` prints
// it. Events carry no card data and no secret (ProcessorEvent).
type ProcessorEventListing struct {
	Account          string          `json:"account"`
	Kind             string          `json:"kind"`
	EventID          string          `json:"event_id"`
	Type             string          `json:"type"`
	Effect           EventEffect     `json:"effect"`
	Status           string          `json:"status"`
	ObjectID         OptString       `json:"object_id"`
	Reference        OptString       `json:"reference"`
	PaymentReference OptString       `json:"payment_reference"`
	RefundReference  OptString       `json:"refund_reference"`
	Amount           int64           `json:"amount"`
	Currency         OptString       `json:"currency"`
	RefusalCode      OptString       `json:"refusal_code"`
	Dispute          json.RawMessage `json:"dispute,omitempty"`
	Note             OptString       `json:"note"`
	Attempts         int             `json:"attempts"`
	Failures         int             `json:"failures"`
	OccurredAt       *time.Time      `json:"occurred_at"`
	ReceivedAt       time.Time       `json:"received_at"`
	AppliedAt        *time.Time      `json:"applied_at"`
}

// ProcessorEventFilter selects events for `ivrpay admin events list`.
type ProcessorEventFilter struct {
	// Status, when set, lists only events of that status (UNMATCHED for
	// --unmatched, FAILED for --failed).
	Status string
	Limit  int
}

// StaleObject is a payin or refund of a real processor account still
// PROCESSING long after the processor should have confirmed it: no event
// came, and its processor has no status look-up (Adyen), or every look-up
// still found it pending (ivrpay admin events list --stale).
type StaleObject struct {
	Object    string    `json:"object"` // "payin" or "refund"
	ID        string    `json:"id"`
	PayinID   string    `json:"payin_id"`
	Account   string    `json:"account"`
	Kind      string    `json:"kind"`
	Reference OptString `json:"reference"`
	Status    string    `json:"status"`
	Amount    int64     `json:"amount"`
	Since     time.Time `json:"processing_since"`
}

// StaleAfter is how long a real account's payin or refund may stay
// PROCESSING before it is listed as stale (SPEC §4.2: Adyen's 24 h).
const StaleAfter = 24 * time.Hour

// PayinEventChange is what applying an event does to a payin, written in
// one transaction with the event marked APPLIED, so that the change and
// its webhook happen exactly once.
type PayinEventChange struct {
	Account, EventID string
	PayinID          string
	// From is the status the decision was made on: the write is
	// conditional on it (ErrStateChanged when the payin moved meanwhile).
	From, To string
	// CapturedAmount, when not 0, is the captured amount (a capture
	// confirmed on an AUTHORIZED payin).
	CapturedAmount int64
	// RefusalCode and RefusalDesc of a payin that moves to FAILED.
	RefusalCode, RefusalDesc string
	At                       time.Time
}

// RefundEventChange is what applying an event does to a refund, written in
// one transaction with the event marked APPLIED.
type RefundEventChange struct {
	Account, EventID string
	RefundID         string
	From, To         string
	// RefusalCode and RefusalDesc (normalized) of a refund that moves to
	// FAILED; its amount is refundable again (RefundFailure).
	RefusalCode, RefusalDesc string
	// ProcessorReference is the processor's id of the refund, recorded when
	// ivrpay had none (a refund whose answer was lost).
	ProcessorReference string
	At                 time.Time
}

// ProcessorEventDone records an event that changed nothing (NO_CHANGE,
// IGNORED), that no object matched (UNMATCHED) or whose application kept
// failing (FAILED).
type ProcessorEventDone struct {
	Account, EventID string
	// Claim is InboxEvent.Claim of the caller's claim.
	Claim          time.Time
	Status         string
	ObjectID, Note string
	At             time.Time
}

// ProcessorEventRetry keeps a claimed event PENDING for another attempt at
// Next, counting this one, with why it waits.
type ProcessorEventRetry struct {
	Account, EventID string
	// Claim is InboxEvent.Claim of the caller's claim.
	Claim          time.Time
	ObjectID, Note string
	Next           time.Time
	// Failed: this attempt returned an error (counted in Failures).
	Failed bool
}

// SandboxDue is a payin or refund of the built-in sandbox processor that
// has been PROCESSING for --sandbox-settle-after: the sandbox emits its
// confirmation (processor/sandbox.Confirmations).
type SandboxDue struct {
	PayinID         string
	PayinAmount     int64
	PayinReference  string
	CapturedAmount  int64
	Currency        string
	RefundID        string // empty for a payin
	RefundAmount    int64
	RefundReference string
	ProcessingSince time.Time
}

// DueLookup is a payin or refund of a real account that has been
// PROCESSING for --processor-check-after: its processor is asked where it
// stands (StatusLookup).
type DueLookup struct {
	Payin *Payin
	// Refund is set when the look-up is about one of the payin's refunds,
	// with the processor's id of it.
	Refund          *Refund
	RefundReference string
}

// DueCardAnswer is a payin whose unknown outcome an event approved without
// the card network's answer (auth code, network transaction id), leased by
// the card-answer pass so that its processor is asked for it (StatusLookup).
type DueCardAnswer struct {
	Payin *Payin
	// Since is when the payin was marked; Claim is the end of the pass's
	// lease, which PostponeCardAnswer must name.
	Since, Claim time.Time
}

// PayinCardAnswer is the card network's answer a look-up found for a
// payin: each field fills the payin's only where it is empty, and
// NetworkTransactionID the empty one of PaymentMethodID's card (empty: no
// card to fill). An empty answer fills nothing and only clears the mark.
type PayinCardAnswer struct {
	PayinID              string
	PaymentMethodID      string
	AuthCode             string
	AVSResultCode        string
	CVCResultCode        string
	NetworkTransactionID string
}

// maxEventField bounds each text field of a stored event.
const maxEventField = 255

// CheckProcessorEvent refuses an event the inbox cannot key or act on: no
// account or id, an effect ivrpay does not know, or a field too long to
// store. Adapters build events from verified bodies, so a refusal is a bug
// in an adapter, never a processor's fault; the error names the field.
func CheckProcessorEvent(e ProcessorEvent) error {
	for _, f := range []struct{ name, value string }{
		{"account", e.Account}, {"kind", e.Kind}, {"id", e.ID}, {"type", e.Type},
	} {
		if f.value == "" {
			return FieldErrorf(f.name, "a processor event needs its %s", f.name)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"account", e.Account}, {"kind", e.Kind}, {"id", e.ID}, {"type", e.Type}, {"payment_reference", e.PaymentReference},
		{"reference", e.Reference}, {"refund_reference", e.RefundReference}, {"currency", e.Currency},
		{"refusal_code", e.RefusalCode}, {"refusal_desc", e.RefusalDesc}, {"auth_code", e.AuthCode},
		{"avs_result_code", e.AVSResultCode}, {"cvc_result_code", e.CVCResultCode}, {"network_transaction_id", e.NetworkTransactionID},
	} {
		if len(f.value) > maxEventField {
			return FieldErrorf(f.name, "must be at most %d bytes", maxEventField)
		}
	}
	switch e.Effect {
	case EffectPaymentAuthorized, EffectPaymentCaptured, EffectPaymentCaptureFailed, EffectPaymentFailed, EffectPaymentCanceled,
		EffectRefundSucceeded, EffectRefundFailed, EffectNone:
	case EffectDispute:
		if e.Dispute == nil {
			return FieldErrorf("dispute", "a dispute event needs its dispute details")
		}
	default:
		return FieldErrorf("effect", "unknown effect %q", e.Effect)
	}
	if e.Amount < 0 {
		return FieldErrorf("amount", "must not be negative")
	}
	return nil
}
