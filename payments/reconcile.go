package payments

import (
	"context"
	"errors"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// reconcileBatch bounds how many unresolved payins one pass leases.
const reconcileBatch = 50

// ReconcileDue resolves the payins whose processor outcome is unknown: each
// CREATED payin unchanged for ReconcileAfter (and at least two processor
// calls' time: a live attempt, whose connector charge may ask once more in
// the call, is never overtaken) is leased by this
// process alone, and its processor asked what the payment did under the
// payin's idempotency key. An approved payment is recorded with its events;
// one that moved no money (or was reversed) fails with PROCESSING_ERROR and
// frees its config. Several processes may reconcile one database: the lease
// is a conditional write. Refunds, captures and voids whose answer was
// lost (or whose process died before it arrived) are sent again under their
// idempotency key until the processor answers for certain. It returns how
// many payins, refunds and operations it resolved.
func (s *Service) ReconcileDue(ctx context.Context) (n int, err error) {
	lease := 2*s.opts.ProcessorTimeout + time.Second
	wait := max(s.opts.ReconcileAfter, lease)
	payins, err := s.store.ClaimUnresolvedPayins(context.WithoutCancel(ctx), s.now().Add(-wait), lease, reconcileBatch)
	if err != nil {
		return 0, err
	}
	for _, p := range payins {
		resolved, err := s.resolve(ctx, p, nil)
		if err != nil {
			retry := s.postpone(ctx, "payins", p.ID, s.now().Sub(p.UpdatedAt), lease)
			s.opts.Logger.Warn("reconciler could not resolve a payin yet; it tries again later", "payin_id", p.ID, "retry_in", retry.String(), "error", err)
			continue
		}
		if resolved {
			n++
		}
	}
	refunds, err := s.store.ClaimUnresolvedRefunds(context.WithoutCancel(ctx), s.now().Add(-wait), lease, reconcileBatch)
	if err != nil {
		return n, err
	}
	for _, u := range refunds {
		proc, err := s.router.Account(ctx, u.Payin.Processor.Account)
		if err == nil {
			_, err = s.sendRefund(ctx, proc, u.Payin, u.Refund.ID, u.ProcessorIdempotencyKey, u.Refund.Amount)
			if err == nil {
				n++
			}
		}
		if err != nil {
			retry := s.postpone(ctx, "refunds", u.Refund.ID, s.now().Sub(u.Refund.CreatedAt), lease)
			s.opts.Logger.Warn("reconciler could not resolve a refund yet; it tries again later", "refund_id", u.Refund.ID, "retry_in", retry.String(), "error", err)
		}
	}
	ops, err := s.store.ClaimPayinOperations(context.WithoutCancel(ctx), s.now().Add(-wait), lease, reconcileBatch)
	if err != nil {
		return n, err
	}
	for _, p := range ops {
		proc, err := s.router.Account(ctx, p.Processor.Account)
		if err == nil {
			var outcome string
			if _, outcome, _, err = s.sendOperation(ctx, proc, p, *p.Operation, true); err == nil && outcome == ivrpay.ProcessorOutcomeUnknown {
				err = errors.New("no answer from the processor")
			}
		}
		if err != nil {
			retry := s.postpone(ctx, "payins", p.ID, s.now().Sub(p.UpdatedAt), lease)
			s.opts.Logger.Warn("reconciler could not resolve a payin operation yet; it tries again later", "payin_id", p.ID,
				"operation", p.Operation.Kind, "retry_in", retry.String(), "error", err)
			continue
		}
		n++
	}
	return n, nil
}

// maxReconcileBackoff bounds the wait between two questions about an
// outcome the reconciler could not resolve.
const maxReconcileBackoff = 10 * time.Minute

// postpone backs off from an outcome the reconciler could not resolve: it
// asks again after a quarter of the time the outcome has been unknown (at
// least the lease it holds, at most maxReconcileBackoff), so that an
// account that cannot be reached is asked, and warned about, ever more
// rarely. It returns the wait.
func (s *Service) postpone(ctx context.Context, table, id string, unknownFor, lease time.Duration) time.Duration {
	return s.postponeUpTo(ctx, table, id, unknownFor, lease, maxReconcileBackoff)
}

// postponeUpTo is postpone with another bound than maxReconcileBackoff.
func (s *Service) postponeUpTo(ctx context.Context, table, id string, unknownFor, lease, most time.Duration) time.Duration {
	wait := backOff(unknownFor, lease, most)
	if err := s.store.PostponeReconcile(context.WithoutCancel(ctx), table, id, s.now().Add(wait)); err != nil {
		s.opts.Logger.Error("reconciler could not postpone its next question", "id", id, "error", err)
		return lease
	}
	return wait
}

// backOff is the wait before a worker asks again about something it has
// waited on for waited: a quarter of that, at least the lease it holds, at
// most most.
func backOff(waited, lease, most time.Duration) time.Duration {
	return min(max(waited/4, lease), most)
}

// resolve records the outcome of a payin whose processor outcome is
// unknown: the answer given (a processor event's word), or else the
// processor's answer to Resolve. It reports whether it recorded one; a
// payin another attempt recorded first keeps that record.
func (s *Service) resolve(ctx context.Context, p *ivrpay.Payin, given *ivrpay.ProcessorResult) (bool, error) {
	cfg, err := s.store.LoadPayinConfig(ctx, p.PayinConfigID)
	if err != nil {
		return false, err
	}
	entry := ivrpay.CardEntry{PostalCode: p.BillingContact.PostalCodeOrEmpty()}
	if p.Card != nil {
		entry.Brand, entry.Expiry = card.Brand(p.Card.Brand), card.Expiry{Month: p.Card.ExpMonth, Year: p.Card.ExpYear}
	}
	var stored *ivrpay.PaymentMethod
	var nti string
	if p.PaymentMethodID != "" {
		// The card was stored when the outcome became unknown (or it is the
		// stored card charged); a payin whose attempt died before that is
		// resolved without the card number.
		ciphertext, storedNTI, err := s.store.LoadPaymentMethodCard(ctx, string(p.PaymentMethodID))
		if err != nil {
			return false, err
		}
		if entry.PAN, err = s.vault.Decrypt(ciphertext); err != nil {
			return false, err
		}
		if p.Source == ivrpay.PayinSourceAPIStoredPaymentMethod {
			if stored, err = s.store.LoadPaymentMethod(ctx, string(p.PaymentMethodID)); err != nil {
				return false, err
			}
			nti = storedNTI
		}
	}
	pay := ivrpay.CardPayment{IdempotencyKey: p.ID, Reference: p.ID, Amount: p.Amount, Currency: p.CurrencyCode,
		Capture: cfg.ProcessingMode != ivrpay.ProcessingModeAuthorize, Card: entry.Details(), AccountRef: p.Processor.AccountRef()}
	if stored != nil {
		pay.Stored = &ivrpay.StoredCredential{NetworkTransactionID: nti}
	}
	var res ivrpay.ProcessorResult
	if given != nil {
		res = *given
	} else {
		proc, err := s.router.Account(ctx, p.Processor.Account)
		if err != nil {
			return false, err
		}
		if res, err = s.call(ctx, func(ctx context.Context) (ivrpay.ProcessorResult, error) { return proc.Resolve(ctx, pay) }); err != nil {
			return false, err
		}
	}
	res = resolvedResult(res)
	a := chargeAttempt{cfg: cfg, entry: entry, source: p.Source, stored: stored,
		account: ivrpay.ProcessorAccountRef{Name: p.Processor.Account, Kind: p.Processor.Kind, AccountRef: p.Processor.AccountRef()}}
	if given != nil {
		a.cardAnswerDue = s.cardAnswerDue(ctx, p, res)
	}
	if p.IVR != nil {
		a.ivrProvider, a.ivrTxID = p.IVR.Provider, p.IVR.TransactionID
		if a.answer, err = s.ivrAnswer(ctx, p, entry); err != nil {
			return false, err
		}
	}
	if _, err := s.recordOutcome(ctx, p, a, res); err != nil {
		return false, err
	}
	return true, nil
}

// resolvedResult is Resolve's answer as a charge's outcome: a payment it
// found no trace of failed with PROCESSING_ERROR when it names no reason.
func resolvedResult(res ivrpay.ProcessorResult) ivrpay.ProcessorResult {
	if !res.Approved && res.RefusalCode == "" {
		res.RefusalCode = ivrpay.RefusalProcessingError
	}
	return res
}

// ivrAnswer is the connector answer a reconciled IVR payin leaves for a
// late retry of its transaction.
func (s *Service) ivrAnswer(ctx context.Context, p *ivrpay.Payin, entry ivrpay.CardEntry) (func(*ivrpay.Payin) *ivrpay.ConnectorAnswer, error) {
	platform, err := s.store.FindPlatform(ctx, p.PlatformID)
	if err != nil {
		return nil, err
	}
	return func(final *ivrpay.Payin) *ivrpay.ConnectorAnswer {
		r := ivrChargeResult(platform.MinAPIVersion, final, entry)
		if p.Card != nil {
			r.Parameters["card_last_4"] = p.Card.Last4
		}
		key := ivrpay.ConnectorTransactionKey{PlatformID: p.PlatformID, Provider: p.IVR.Provider, TransactionID: p.IVR.TransactionID}
		return &ivrpay.ConnectorAnswer{ConnectorTransactionKey: key, Result: r}
	}, nil
}

// RunReconciler runs ReconcileDue every poll until ctx is done. Errors are
// logged and the next pass tries again.
func (s *Service) RunReconciler(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := s.ReconcileDue(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("reconciler pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
