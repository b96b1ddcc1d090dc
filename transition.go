package ivrpay

// EventAction is what applying a processor event does to the payin or
// refund it is about (SPEC §4.2).
type EventAction string

// The actions of the transition table.
const (
	// ActionMove: the object moves to Transition.To, and its webhook
	// (payin.succeeded, refund.failed, …) is emitted with the change.
	ActionMove EventAction = "MOVE"
	// ActionNone: the event changes nothing. It confirms what ivrpay
	// already records, or it is older than the object's state (events
	// arrive out of order), so applying it would move the object backwards.
	ActionNone EventAction = "NONE"
	// ActionWait: the event cannot apply yet, because the object's own
	// answer is still on its way (a payin being charged, a void in flight);
	// it is applied again later, on the state the answer leaves.
	ActionWait EventAction = "WAIT"
	// ActionResolveApproved and ActionResolveDeclined: the event resolves a
	// payin whose processor outcome is unknown, as the reconciler would
	// (approved: PROCESSING or AUTHORIZED with its events; declined: FAILED,
	// its config free again). The event is then decided again on the
	// resolved payin, so one event can resolve and settle.
	ActionResolveApproved EventAction = "RESOLVE_APPROVED"
	ActionResolveDeclined EventAction = "RESOLVE_DECLINED"
)

// Transition is one cell of the transition table: the action, and for
// ActionMove the status the object moves to.
type Transition struct {
	Action EventAction
	To     string
}

// PayinEventState is what the transition table reads of a payin.
type PayinEventState struct {
	Status string
	// OutcomeUnknown: the payin is CREATED and its processor's answer was
	// lost (processor.outcome UNKNOWN). A CREATED payin without it is still
	// being charged: its answer is on its way.
	OutcomeUnknown bool
	// VoidPending: ivrpay asked the processor to void the payin and has not
	// recorded the answer yet. Until it does, only the void's own outcome
	// applies: settlement and capture events wait (SPEC §4.2).
	VoidPending bool
}

// payinCreatedUnknown is the table's name of a CREATED payin whose outcome is unknown.
const payinCreatedUnknown = PayinStatusCreated + "/UNKNOWN"

func moveTo(status string) Transition { return Transition{Action: ActionMove, To: status} }

var (
	noChange        = Transition{Action: ActionNone}
	waitForAnswer   = Transition{Action: ActionWait}
	resolveApproved = Transition{Action: ActionResolveApproved}
	resolveDeclined = Transition{Action: ActionResolveDeclined}
)

// payinTransitions is the transition table of payins: for each state and
// effect, what the event does. A state or effect missing from it changes
// nothing. Statuses only move forward: CREATED → PROCESSING/AUTHORIZED →
// SUCCEEDED, or to FAILED/CANCELED, which are final. The one move out of
// SUCCEEDED is a capture the processor reports failed after confirming it
// (Adyen's CAPTURE_FAILED comes after CAPTURE): no money was taken, so the
// payin is FAILED (docs/decisions.md, issue 24).
var payinTransitions = map[string]map[EventEffect]Transition{
	// The charge's own answer is on its way; the event applies to what it records.
	PayinStatusCreated: {
		EffectPaymentAuthorized: waitForAnswer, EffectPaymentCaptured: waitForAnswer, EffectPaymentCaptureFailed: waitForAnswer,
		EffectPaymentFailed: waitForAnswer, EffectPaymentCanceled: waitForAnswer,
	},
	payinCreatedUnknown: {
		EffectPaymentAuthorized: resolveApproved, EffectPaymentCaptured: resolveApproved,
		EffectPaymentCaptureFailed: resolveDeclined, EffectPaymentFailed: resolveDeclined, EffectPaymentCanceled: resolveDeclined,
	},
	PayinStatusProcessing: {
		EffectPaymentAuthorized:    noChange, // the authorization behind a capture: older news
		EffectPaymentCaptured:      moveTo(PayinStatusSucceeded),
		EffectPaymentCaptureFailed: moveTo(PayinStatusFailed),
		EffectPaymentFailed:        noChange, // a synchronous approval is not undone by a stale failure
		EffectPaymentCanceled:      moveTo(PayinStatusCanceled),
	},
	PayinStatusAuthorized: {
		EffectPaymentAuthorized:    noChange, // AUTHORIZED confirmed
		EffectPaymentCaptured:      moveTo(PayinStatusSucceeded),
		EffectPaymentCaptureFailed: noChange, // the authorization stands and can be captured again
		EffectPaymentFailed:        noChange,
		EffectPaymentCanceled:      moveTo(PayinStatusCanceled),
	},
	PayinStatusSucceeded: {
		EffectPaymentCaptureFailed: moveTo(PayinStatusFailed),
	},
	// FAILED and CANCELED are final: every event is older news.
}

// PayinTransitionFor is the transition table's answer for a payin in state s
// receiving a payment event of effect e.
func PayinTransitionFor(s PayinEventState, e EventEffect) Transition {
	key := s.Status
	if s.Status == PayinStatusCreated && s.OutcomeUnknown {
		key = payinCreatedUnknown
	}
	t, ok := payinTransitions[key][e]
	if !ok {
		return noChange
	}
	if s.VoidPending && e != EffectPaymentCanceled && t.Action != ActionNone {
		return waitForAnswer
	}
	return t
}

// refundTransitions is the transition table of refunds. A refund the
// processor reports failed is FAILED even after it SUCCEEDED (a bank can
// return a refund days later; the issue says so of Stripe's refund.failed):
// its amount is refundable again. FAILED is final, so whichever order the
// two events arrive in, the refund ends FAILED.
var refundTransitions = map[string]map[EventEffect]Transition{
	RefundStatusProcessing: {EffectRefundSucceeded: moveTo(RefundStatusSucceeded), EffectRefundFailed: moveTo(RefundStatusFailed)},
	RefundStatusSucceeded:  {EffectRefundFailed: moveTo(RefundStatusFailed)},
}

// RefundTransitionFor is the transition table's answer for a refund of
// status receiving a refund event of effect e.
func RefundTransitionFor(status string, e EventEffect) Transition {
	if t, ok := refundTransitions[status][e]; ok {
		return t
	}
	return noChange
}

// IsRefundEffect reports whether e is about a refund (else about the payment).
func (e EventEffect) IsRefundEffect() bool {
	return e == EffectRefundSucceeded || e == EffectRefundFailed
}

// IsPaymentEffect reports whether e moves a payin.
func (e EventEffect) IsPaymentEffect() bool {
	switch e {
	case EffectPaymentAuthorized, EffectPaymentCaptured, EffectPaymentCaptureFailed, EffectPaymentFailed, EffectPaymentCanceled:
		return true
	}
	return false
}
