package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.ProcessorEventReceiver = (*Service)(nil)

// The inbox's schedule (docs/processors.md, docs/decisions.md).
const (
	// eventHold is how long a process holds an event it received or
	// claimed before another may take it over: applying one is a few
	// database writes, far less.
	eventHold = 30 * time.Second
	// eventRetryFirst and eventRetryMax bound the back-off of an event
	// whose object is unknown (yet) or whose object's own answer is on its
	// way: 5 s, doubling, at most 5 min between attempts.
	eventRetryFirst = 5 * time.Second
	eventRetryMax   = 5 * time.Minute
	// UnmatchedAfter is how long an event for an object ivrpay does not
	// know is retried before it is kept as UNMATCHED: enough for the
	// answer of the request that made the object to be recorded, and for
	// the reconciler to resolve an unknown outcome.
	UnmatchedAfter = time.Hour
	// MaxEventFailures is how many attempts whose application returned an
	// error an event gets before it is kept as FAILED for an operator: at
	// the back-off above, some 20 minutes from the first, longer than a
	// transient error lasts (a deadlock, a failover, a busy database); an
	// error that outlasts them is a bug or a row the code cannot handle,
	// which no further attempt fixes.
	MaxEventFailures = 10
	// maxEventNote bounds the error kept as an event's note.
	maxEventNote = 1000
	// eventBatch bounds how many due events one pass claims.
	eventBatch = 100
)

// ReceiveProcessorEvent takes a verified event (SPEC §4.2): it stores it
// durably, once per account and event id, then applies it. A duplicate is
// acknowledged and not applied again. The event is applied by this call
// when it can be; otherwise (its object unknown so far, its object's own
// answer on its way, this process gone) by ApplyDueProcessorEvents, which
// every serve process runs. A nil error means the event is stored: safe to
// acknowledge. Applying is exactly once across processes: the event is
// marked applied in the transaction that makes its change.
func (s *Service) ReceiveProcessorEvent(ctx context.Context, e ivrpay.ProcessorEvent) error {
	if err := ivrpay.CheckProcessorEvent(e); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if s.opts.HoldProcessorEvents {
		// Stored, due at once, and never applied by this process.
		_, err := s.store.InsertProcessorEvent(ctx, e, s.now(), 0)
		return err
	}
	at := s.now()
	inserted, err := s.store.InsertProcessorEvent(ctx, e, at, eventHold)
	if err != nil || !inserted {
		return err
	}
	s.apply(ctx, ivrpay.InboxEvent{ProcessorEvent: e, Status: ivrpay.ProcessorEventPending, ReceivedAt: at, Claim: at.Add(eventHold)})
	return nil
}

// ApplyDueProcessorEvents applies the stored events that are due: new ones
// whose receiver died before applying them, and those waiting for their
// object. Each is claimed by this process alone first. It returns how many
// it claimed.
func (s *Service) ApplyDueProcessorEvents(ctx context.Context) (int, error) {
	if s.opts.HoldProcessorEvents {
		return 0, nil
	}
	ctx = context.WithoutCancel(ctx)
	due, err := s.store.ClaimProcessorEvents(ctx, s.now(), eventHold, eventBatch)
	for _, ev := range due {
		s.apply(ctx, ev)
	}
	return len(due), err
}

// apply applies one claimed event. An attempt that fails with an error is
// tried again after the inbox's back-off, the error kept as the event's
// note, and the MaxEventFailures-th keeps the event as FAILED: a poison
// event is listed for an operator (ivrpay admin events list --failed), not
// tried at every lease for ever. The bookkeeping is under the claim, so a
// process whose lease was taken over records nothing.
func (s *Service) apply(ctx context.Context, ev ivrpay.InboxEvent) {
	applyErr := s.applyEvent(ctx, ev)
	if applyErr == nil {
		return
	}
	note := "applying failed: " + applyErr.Error()
	if len(note) > maxEventNote {
		note = strings.ToValidUTF8(note[:maxEventNote], "")
	}
	log := s.opts.Logger.With("account", ev.Account, "event_id", ev.ID, "type", ev.Type, "failures", ev.Failures+1, "error", applyErr)
	var err error
	if ev.Failures+1 >= MaxEventFailures {
		log.Error("applying a processor event failed again; kept as FAILED for an operator (ivrpay admin events list --failed)")
		err = s.finishEvent(ctx, ev, ivrpay.ProcessorEventFailed, ev.ObjectID, note)
	} else {
		next := s.nextAttempt(ev, false)
		log.Error("applying a processor event failed; it is tried again later", "retry_at", next)
		err = s.store.PostponeProcessorEvent(ctx, ivrpay.ProcessorEventRetry{Account: ev.Account, EventID: ev.ID, Claim: ev.Claim,
			ObjectID: ev.ObjectID, Note: note, Next: next, Failed: true})
	}
	if err != nil {
		log.Error("recording a processor event's failure failed; it is tried again after its lease", "record_error", err)
	}
}

// applyEvent applies one claimed event by its effect.
func (s *Service) applyEvent(ctx context.Context, ev ivrpay.InboxEvent) error {
	switch {
	case ev.Effect.IsPaymentEffect():
		return s.applyPaymentEvent(ctx, ev)
	case ev.Effect.IsRefundEffect():
		return s.applyRefundEvent(ctx, ev)
	case ev.Effect == ivrpay.EffectDispute:
		return s.applyDisputeEvent(ctx, ev)
	}
	return s.finishEvent(ctx, ev, ivrpay.ProcessorEventIgnored, "", "ivrpay does not act on "+ev.Type)
}

// applyDisputeEvent creates or advances the chargeback of the event's payin
// (SPEC §4.3) as the chargeback transition table allows; the payin itself
// does not move. An event for a payin ivrpay does not know (yet) waits like
// any other; one whose dispute an adapter could not map is ignored.
func (s *Service) applyDisputeEvent(ctx context.Context, ev ivrpay.InboxEvent) error {
	if err := ivrpay.CheckDispute(ev.Dispute); err != nil {
		return s.finishEvent(ctx, ev, ivrpay.ProcessorEventIgnored, "", err.Error())
	}
	p, err := s.store.FindEventPayin(ctx, ev.Account, ev.Reference, ev.PaymentReference)
	if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
		return s.unmatched(ctx, ev, fmt.Sprintf("no payin of account %s matches dispute %s (reference %q, payment reference %q)",
			ev.Account, ev.Dispute.Reference, ev.Reference, ev.PaymentReference))
	} else if err != nil {
		return err
	}
	_, _, err = s.store.ApplyDisputeEvent(ctx, ivrpay.DisputeChange{Account: ev.Account, Kind: ev.Kind, EventID: ev.ID, Payin: p,
		Dispute: *ev.Dispute, At: s.now()})
	if errors.Is(err, ivrpay.ErrEventDone) {
		return nil // another process applied it
	}
	return err
}

// maxDecisions bounds how often one event is decided again on an object
// that keeps changing under it (each change is another writer's, so this
// is never reached in practice).
const maxDecisions = 10

// applyPaymentEvent moves the event's payin as the transition table says.
func (s *Service) applyPaymentEvent(ctx context.Context, ev ivrpay.InboxEvent) error {
	p, err := s.store.FindEventPayin(ctx, ev.Account, ev.Reference, ev.PaymentReference)
	if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
		return s.unmatched(ctx, ev, fmt.Sprintf("no payin of account %s matches (reference %q, payment reference %q)", ev.Account, ev.Reference, ev.PaymentReference))
	} else if err != nil {
		return err
	}
	resolved := false
	for range maxDecisions {
		state := ivrpay.PayinEventState{Status: p.Status,
			OutcomeUnknown: p.Processor != nil && p.Processor.Outcome == ivrpay.ProcessorOutcomeUnknown,
			VoidPending:    p.Operation != nil && p.Operation.Kind == ivrpay.PayinOperationVoid}
		t := ivrpay.PayinTransitionFor(state, ev.Effect)
		switch t.Action {
		case ivrpay.ActionNone:
			if resolved {
				// The resolution was its change, recorded once by the
				// payin's own conditional write (RecordPayinOutcome).
				return s.finishEvent(ctx, ev, ivrpay.ProcessorEventApplied, p.ID, "resolved the payin's unknown outcome: "+p.Status)
			}
			return s.finishEvent(ctx, ev, ivrpay.ProcessorEventNoChange, p.ID, "payin is "+p.Status)
		case ivrpay.ActionWait:
			if state.VoidPending {
				return s.retryEvent(ctx, ev, p.ID, "waiting for the outcome of the payin's void", false)
			}
			return s.retryEvent(ctx, ev, p.ID, "waiting for the payin's own answer (it is "+p.Status+")", false)
		case ivrpay.ActionResolveApproved, ivrpay.ActionResolveDeclined:
			if resolved, err = s.resolve(ctx, p, s.eventResult(ev, t.Action == ivrpay.ActionResolveApproved)); err != nil {
				return err
			}
		case ivrpay.ActionMove:
			c := ivrpay.PayinEventChange{Account: ev.Account, EventID: ev.ID, PayinID: p.ID, From: p.Status, To: t.To, At: s.now()}
			if t.To == ivrpay.PayinStatusSucceeded && p.Status == ivrpay.PayinStatusAuthorized {
				c.CapturedAmount = p.AuthorizedAmount
				if ev.Amount > 0 && ev.Amount < p.AuthorizedAmount {
					c.CapturedAmount = ev.Amount
				}
			}
			if t.To == ivrpay.PayinStatusFailed {
				c.RefusalCode, c.RefusalDesc = s.eventRefusal(ev)
			}
			_, err := s.store.ApplyPayinEventChange(ctx, c)
			if errors.Is(err, ivrpay.ErrEventDone) {
				return nil // another process applied it
			}
			if !errors.Is(err, ivrpay.ErrStateChanged) {
				return err
			}
		}
		// The payin changed (resolved here, or by another writer): decide again.
		if p, err = s.store.LoadPayin(ctx, p.ID); err != nil {
			return err
		}
	}
	return fmt.Errorf("payin %s kept changing while event %s was applied", p.ID, ev.ID)
}

// applyRefundEvent moves the event's refund as the transition table says.
func (s *Service) applyRefundEvent(ctx context.Context, ev ivrpay.InboxEvent) error {
	r, err := s.store.FindEventRefund(ctx, ev.Account, ev.Reference, ev.RefundReference)
	if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
		return s.unmatched(ctx, ev, fmt.Sprintf("no refund of account %s matches (reference %q, refund reference %q)", ev.Account, ev.Reference, ev.RefundReference))
	} else if err != nil {
		return err
	}
	for range maxDecisions {
		t := ivrpay.RefundTransitionFor(r.Status, ev.Effect)
		if t.Action != ivrpay.ActionMove {
			return s.finishEvent(ctx, ev, ivrpay.ProcessorEventNoChange, r.ID, "refund is "+r.Status)
		}
		c := ivrpay.RefundEventChange{Account: ev.Account, EventID: ev.ID, RefundID: r.ID, From: r.Status, To: t.To,
			ProcessorReference: ev.RefundReference, At: s.now()}
		if t.To == ivrpay.RefundStatusFailed {
			c.RefusalCode, c.RefusalDesc = s.eventRefusal(ev)
		}
		err := s.store.ApplyRefundEventChange(ctx, c)
		if errors.Is(err, ivrpay.ErrEventDone) {
			return nil
		}
		if !errors.Is(err, ivrpay.ErrStateChanged) {
			return err
		}
		if r, err = s.store.FindEventRefund(ctx, ev.Account, r.ID, ""); err != nil {
			return err
		}
	}
	return fmt.Errorf("refund %s kept changing while event %s was applied", r.ID, ev.ID)
}

// eventResult is the processor's answer an event gives for a payin whose
// outcome was unknown, with the card network's answer as far as the event
// states it (an approval's auth code and network transaction id, the AVS
// and CVC results of either), as the synchronous answer would have given
// it. The match policy (require_cvc_match, require_avs_match) is not
// applied to it, as to no resolved outcome: the money has moved already.
func (s *Service) eventResult(ev ivrpay.InboxEvent, approved bool) *ivrpay.ProcessorResult {
	res := &ivrpay.ProcessorResult{Reference: ev.PaymentReference, AVSResultCode: ev.AVSResultCode, CVCResultCode: ev.CVCResultCode}
	if approved {
		res.Approved, res.AuthorizedAmount = true, ev.Amount
		res.AuthCode, res.NetworkTransactionID = ev.AuthCode, ev.NetworkTransactionID
		return res
	}
	res.RefusalCode, res.RefusalDesc = s.eventRefusal(ev)
	return res
}

// eventRefusal is the refusal_code and refusal_desc a failure event gives:
// its normalized code, PROCESSING_ERROR when it has none, and the
// normalized description; the processor's own text goes to the operator's
// log only (SPEC §9).
func (s *Service) eventRefusal(ev ivrpay.InboxEvent) (code, desc string) {
	code = ev.RefusalCode
	if code == "" {
		code = ivrpay.RefusalProcessingError
	}
	desc = ivrpay.RefusalDescription(code, "")
	if ev.RefusalDesc != "" {
		s.opts.Logger.Info("processor event refusal", "account", ev.Account, "event_id", ev.ID, "refusal_code", code,
			"processor_detail", ev.RefusalDesc)
	}
	return code, desc
}

// unmatched retries an event whose object ivrpay does not know yet; after
// UnmatchedAfter it is kept as UNMATCHED.
func (s *Service) unmatched(ctx context.Context, ev ivrpay.InboxEvent, note string) error {
	if s.now().Sub(ev.ReceivedAt) >= UnmatchedAfter {
		s.opts.Logger.Warn("processor event matches no payin or refund; kept as unmatched", "account", ev.Account, "event_id", ev.ID, "type", ev.Type)
		return s.finishEvent(ctx, ev, ivrpay.ProcessorEventUnmatched, "", note)
	}
	return s.retryEvent(ctx, ev, "", note, true)
}

// retryEvent keeps an event PENDING for another attempt (nextAttempt).
func (s *Service) retryEvent(ctx context.Context, ev ivrpay.InboxEvent, objectID, note string, looking bool) error {
	return s.store.PostponeProcessorEvent(ctx, ivrpay.ProcessorEventRetry{Account: ev.Account, EventID: ev.ID, Claim: ev.Claim,
		ObjectID: objectID, Note: note, Next: s.nextAttempt(ev, looking)})
}

// nextAttempt is when an event is tried again: after a back-off that
// doubles with each attempt (eventRetryFirst to eventRetryMax); an event
// still looking for its object is tried once more at UnmatchedAfter.
func (s *Service) nextAttempt(ev ivrpay.InboxEvent, looking bool) time.Time {
	wait := eventRetryMax
	if ev.Attempts < 10 {
		wait = min(eventRetryFirst<<ev.Attempts, eventRetryMax)
	}
	next := s.now().Add(wait)
	if deadline := ev.ReceivedAt.Add(UnmatchedAfter); looking && next.After(deadline) {
		next = deadline
	}
	return next
}

func (s *Service) finishEvent(ctx context.Context, ev ivrpay.InboxEvent, status, objectID, note string) error {
	return s.store.FinishProcessorEvent(ctx, ivrpay.ProcessorEventDone{Account: ev.Account, EventID: ev.ID, Claim: ev.Claim, Status: status,
		ObjectID: objectID, Note: note, At: s.now()})
}
