package payments

import (
	"context"
	"time"

	"github.com/ivrpay/ivrpay"
)

// sandboxBatch bounds how many payins and refunds one sandbox pass confirms.
const sandboxBatch = 100

// ConfirmSandboxDue is the built-in sandbox processor's side of settlement
// (SPEC §4.2): each of its payins and refunds PROCESSING for settleAfter
// (serve --sandbox-settle-after) gets the events the sandbox sends
// (Options.SandboxConfirmations: the capture confirmed, the refund
// succeeded or failed), received through ReceiveProcessorEvent like any
// processor's, so the sandbox runs the production path. No timer settles a
// real account's payins or refunds. Then the dispute triggers
// (Options.SandboxDisputes): a settled payin of 5130 or 5131 cents is
// disputed at once, and its dispute ends once it has awaited the merchant
// for settleAfter. The events' ids are fixed per object and step, so
// several processes confirming at once store each once and apply it once.
// It returns how many events it sent.
func (s *Service) ConfirmSandboxDue(ctx context.Context, settleAfter time.Duration) (n int, err error) {
	if s.opts.SandboxConfirmations == nil {
		return 0, nil
	}
	ctx = context.WithoutCancel(ctx)
	cutoff := s.now().Add(-settleAfter)
	due, err := s.store.DueSandboxConfirmations(ctx, cutoff, sandboxBatch)
	if err != nil {
		return 0, err
	}
	for _, d := range due {
		if err := s.receiveAll(ctx, s.opts.SandboxConfirmations(d), &n); err != nil {
			return n, err
		}
	}
	if s.opts.SandboxDisputes == nil {
		return n, nil
	}
	disputes, err := s.store.DueSandboxDisputes(ctx, cutoff, sandboxBatch)
	if err != nil {
		return n, err
	}
	for _, d := range disputes {
		if err := s.receiveAll(ctx, s.opts.SandboxDisputes(d), &n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// receiveAll receives the sandbox's events in order, counting them in n.
func (s *Service) receiveAll(ctx context.Context, events []ivrpay.ProcessorEvent, n *int) error {
	for _, e := range events {
		if err := s.ReceiveProcessorEvent(ctx, e); err != nil {
			return err
		}
		*n++
	}
	return nil
}

// lookupBatch bounds how many payins (and as many refunds) one look-up pass asks about.
const lookupBatch = 50

// maxLookupBackoff bounds the wait between two look-ups of a payin or
// refund that stays PROCESSING at its processor.
const maxLookupBackoff = time.Hour

// LookUpProcessingDue is the fallback for events that do not come (SPEC
// §4.2): each payin and refund of a real account PROCESSING for
// ProcessorCheckAfter is leased by this process alone and looked up at its
// processor (ivrpay.StatusLookup), and the answer is received as an event
// whose id is fixed per object and answer ("lookup:<id>:<effect>"), so it
// goes through the same transition table and is applied once. What is
// still pending, or cannot be asked (Adyen), is asked again after a
// back-off: a quarter of the time it has been PROCESSING, between the
// lease and maxLookupBackoff. It returns how many it looked up.
func (s *Service) LookUpProcessingDue(ctx context.Context) (n int, err error) {
	ctx = context.WithoutCancel(ctx)
	lease := 2*s.opts.ProcessorTimeout + time.Second
	due, err := s.store.ClaimDueLookups(ctx, s.now().Add(-s.opts.ProcessorCheckAfter), lease, lookupBatch)
	for _, l := range due {
		table, id, since := "payins", l.Payin.ID, l.Payin.UpdatedAt
		if l.Refund != nil {
			table, id, since = "refunds", l.Refund.ID, l.Refund.CreatedAt
		}
		looked, lerr := s.lookUp(ctx, l, id)
		if lerr != nil {
			s.opts.Logger.Warn("processor look-up failed; it is tried again later", "object_id", id, "error", lerr)
		}
		if looked {
			n++
		}
		// Whatever the answer, the object is leased until its next turn;
		// one that moved is no longer PROCESSING and never comes back.
		s.postponeUpTo(ctx, table, id, s.now().Sub(since), lease, maxLookupBackoff)
	}
	return n, err
}

// lookUp asks the processor of l where it stands and receives the answer.
// It reports whether the processor could be asked.
func (s *Service) lookUp(ctx context.Context, l ivrpay.DueLookup, id string) (bool, error) {
	p := l.Payin
	looker, err := s.statusLookup(ctx, p)
	if err != nil || looker == nil {
		return false, err // without a look-up it waits for its processor's notification; after ivrpay.StaleAfter it is listed as stale
	}
	op := lookupOperation(p)
	var e ivrpay.ProcessorEvent
	callCtx, cancel := context.WithTimeout(ctx, s.opts.ProcessorTimeout)
	defer cancel()
	if l.Refund != nil {
		e, err = looker.LookupRefund(callCtx, op, l.RefundReference)
	} else {
		e, err = looker.LookupPayment(callCtx, op)
	}
	if err != nil || e.Effect == ivrpay.EffectNone || e.Effect == "" {
		return err == nil, err
	}
	e.Account, e.Kind, e.Reference = p.Processor.Account, p.Processor.Kind, id
	e.ID = "lookup:" + id + ":" + string(e.Effect)
	if e.Type == "" {
		e.Type = "lookup"
	}
	return true, s.ReceiveProcessorEvent(ctx, e)
}

// statusLookup is the look-up of the payin's processor account, nil when
// its processor cannot be asked (ivrpay.StatusLookup: Adyen).
func (s *Service) statusLookup(ctx context.Context, p *ivrpay.Payin) (ivrpay.StatusLookup, error) {
	proc, err := s.router.Account(ctx, p.Processor.Account)
	if err != nil {
		return nil, err
	}
	looker, _ := proc.(ivrpay.StatusLookup)
	return looker, nil
}

// lookupOperation names the payin's payment to its processor's look-up.
func lookupOperation(p *ivrpay.Payin) ivrpay.PaymentOperation {
	return ivrpay.PaymentOperation{Reference: string(p.Processor.Reference), PayinID: p.ID, Amount: p.Amount, Currency: p.CurrencyCode,
		AccountRef: p.Processor.AccountRef()}
}
