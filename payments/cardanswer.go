package payments

import (
	"context"
	"time"

	"github.com/ivrpay/ivrpay"
)

// The card-answer pass's schedule (docs/decisions.md, "The card network's
// answer of an outcome resolved late").
const (
	// cardAnswerBatch bounds how many payins one pass looks up.
	cardAnswerBatch = 50
	// maxCardAnswerBackoff bounds the wait between two look-ups of a payin
	// whose look-up failed.
	maxCardAnswerBackoff = time.Hour
	// CardAnswerGiveUpAfter is how long after a payin was marked its failed
	// look-ups are tried again; then the mark is cleared and the fields stay
	// as the event left them.
	CardAnswerGiveUpAfter = 24 * time.Hour
)

// cardAnswerDue reports whether an event's approval res of p lacks the card
// network's answer (auth code or network transaction id) that p's processor
// can be asked for (ivrpay.StatusLookup: Stripe, not Adyen), so that the
// payin is marked for FillCardAnswersDue in the resolution's own write. It
// reads the account (a cached adapter), never calls the processor: an
// event's application stays a few database writes.
func (s *Service) cardAnswerDue(ctx context.Context, p *ivrpay.Payin, res ivrpay.ProcessorResult) bool {
	if !res.Approved || (res.AuthCode != "" && res.NetworkTransactionID != "") {
		return false
	}
	looker, err := s.statusLookup(ctx, p)
	return err == nil && looker != nil
}

// FillCardAnswersDue is the card-answer pass, which every serve process
// runs beside the look-up fallback: each payin an event approved without
// the card network's answer (marked when it was resolved) is leased by this
// process alone, its payment is looked up at its processor (a GET: Stripe's
// PaymentIntent with latest_charge expanded), and the answer fills the
// payin's empty auth code, AVS and CVC results and network transaction id,
// and the empty network transaction id of the card stored with it, which
// its later merchant-initiated charges cite. Nothing else of the payin
// moves. A look-up that fails is tried again after a back-off (a quarter of
// the time since the payin was marked, between the lease and an hour), and
// after CardAnswerGiveUpAfter the mark is cleared with a warning. It
// returns how many payins it filled.
func (s *Service) FillCardAnswersDue(ctx context.Context) (n int, err error) {
	ctx = context.WithoutCancel(ctx)
	lease := 2*s.opts.ProcessorTimeout + time.Second
	due, err := s.store.ClaimDueCardAnswers(ctx, lease, cardAnswerBatch)
	for _, d := range due {
		filled, lerr := s.fillCardAnswer(ctx, d.Payin)
		if lerr == nil {
			if filled {
				n++
			}
			continue
		}
		log := s.opts.Logger.With("payin_id", d.Payin.ID, "error", lerr)
		marked := s.now().Sub(d.Since)
		if marked >= CardAnswerGiveUpAfter {
			log.Warn("the card network's answer of a payin resolved late could not be looked up; given up, its auth code, AVS and CVC results and network transaction id stay as the event left them",
				"marked_for", marked.String())
			if _, err := s.store.FillPayinCardAnswer(ctx, ivrpay.PayinCardAnswer{PayinID: d.Payin.ID}); err != nil {
				log.Error("clearing a payin's card-answer mark failed; it is tried again after its lease", "record_error", err)
			}
			continue
		}
		wait := backOff(marked, lease, maxCardAnswerBackoff)
		log.Warn("card answer look-up failed; it is tried again later", "retry_in", wait.String())
		if err := s.store.PostponeCardAnswer(ctx, d.Payin.ID, d.Claim, s.now().Add(wait)); err != nil {
			log.Error("postponing a payin's card-answer look-up failed; it is tried again after its lease", "record_error", err)
		}
	}
	return n, err
}

// fillCardAnswer looks p's payment up and fills its card answer; an error
// is a look-up (or a write) that may succeed later.
func (s *Service) fillCardAnswer(ctx context.Context, p *ivrpay.Payin) (bool, error) {
	looker, err := s.statusLookup(ctx, p)
	if err != nil {
		return false, err
	}
	a := ivrpay.PayinCardAnswer{PayinID: p.ID}
	if looker != nil {
		callCtx, cancel := context.WithTimeout(ctx, s.opts.ProcessorTimeout)
		e, err := looker.LookupPayment(callCtx, lookupOperation(p))
		cancel()
		if err != nil {
			return false, err
		}
		a.AuthCode, a.AVSResultCode, a.CVCResultCode, a.NetworkTransactionID = e.AuthCode, e.AVSResultCode, e.CVCResultCode, e.NetworkTransactionID
	}
	if a.AuthCode == "" && a.NetworkTransactionID == "" {
		// Asked again it would answer the same: the mark is cleared.
		s.opts.Logger.Info("the processor's look-up of a payin resolved late gave no card network answer", "payin_id", p.ID)
	}
	// The card stored with the payin gets its first network transaction id;
	// a stored card charged again keeps the one of its first payment.
	if p.Source != ivrpay.PayinSourceAPIStoredPaymentMethod {
		a.PaymentMethodID = string(p.PaymentMethodID)
	}
	return s.store.FillPayinCardAnswer(ctx, a)
}
