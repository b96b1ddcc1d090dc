package payments_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// lookedUpAnswer is the card network's answer the look-ups below find.
var lookedUpAnswer = ivrpay.ProcessorEvent{AuthCode: "L00KUP", AVSResultCode: "Y", CVCResultCode: "M", NetworkTransactionID: "401234567890123"}

// approvedByEvent resolves a fresh unknown outcome with an approval event
// that carries auth code authCode and no network transaction id.
func approvedByEvent(e *inboxEnv, authCode string) *ivrpay.Payin {
	e.t.Helper()
	p := unknownPayin(e)
	ev := paymentEvent(p, ivrpay.EffectPaymentCaptured)
	ev.AuthCode = authCode
	e.receive(ev)
	if p = e.payin(p.ID); p.Status != ivrpay.PayinStatusSucceeded || p.Processor.Outcome != ivrpay.ProcessorOutcomeApproved {
		e.t.Fatalf("payin is %s (%s) after the event, want SUCCEEDED, approved", p.Status, p.Processor.Outcome)
	}
	return p
}

// cardAnswerMarked reads whether the payin waits for the card-answer pass.
func (e *inboxEnv) cardAnswerMarked(id string) bool {
	e.t.Helper()
	var marked bool
	if err := e.store.DB().QueryRow(`SELECT card_answer_due_at IS NOT NULL FROM payins WHERE id = $1`, id).Scan(&marked); err != nil {
		e.t.Fatal(err)
	}
	return marked
}

// storedNTI is the network transaction id of the card stored with p.
func (e *inboxEnv) storedNTI(p *ivrpay.Payin) string {
	e.t.Helper()
	_, nti, err := e.store.LoadPaymentMethodCard(context.Background(), string(p.PaymentMethodID))
	if err != nil {
		e.t.Fatal(err)
	}
	return nti
}

// TestCardAnswerPass: a payin an event approved without the card network's
// answer is marked when its processor has a look-up; the pass asks it,
// backs off from a failed look-up, fills the payin's empty fields and its
// stored card's network transaction id (status, updated_at and webhooks
// untouched), and clears the mark; after CardAnswerGiveUpAfter of failures
// it gives up. A processor without a look-up (Adyen) marks nothing.
func TestCardAnswerPass(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		looker := &lookingProcessor{Processor: sandbox.New()}
		pass := func(want int) {
			t.Helper()
			if n, err := e.pay.FillCardAnswersDue(ctx); err != nil || n != want {
				t.Fatalf("card-answer pass filled %d (%v), want %d", n, err, want)
			}
		}

		t.Run("a processor without a look-up marks nothing", func(t *testing.T) {
			e.t, e.router.lookup = t, nil
			p := approvedByEvent(e, "")
			if e.cardAnswerMarked(p.ID) {
				t.Fatal("a payin of a processor without a look-up is marked")
			}
			pass(0)
		})

		e.router.lookup = looker
		t.Run("filled after a failed look-up, nothing else moves", func(t *testing.T) {
			e.t = t
			p := approvedByEvent(e, "")
			if !e.cardAnswerMarked(p.ID) || p.AuthCode != "" || p.Processor.NetworkTransactionID != "" || e.storedNTI(p) != "" {
				t.Fatalf("after the event: marked %v, auth code %q, NTI %q, card NTI %q", e.cardAnswerMarked(p.ID), p.AuthCode,
					p.Processor.NetworkTransactionID, e.storedNTI(p))
			}
			hooks := e.webhooks(p.ID)
			looker.answerCard(ivrpay.ProcessorEvent{}, errors.New("stripe: look up payment intent: HTTP 503"))
			calls := looker.count()
			pass(0)
			pass(0) // backed off
			if looker.count() != calls+1 || !e.cardAnswerMarked(p.ID) {
				t.Fatalf("%d look-ups after a failure and a pass within its back-off (marked %v), want 1", looker.count()-calls, e.cardAnswerMarked(p.ID))
			}
			e.clock.advance(time.Minute)
			looker.answerCard(lookedUpAnswer, nil)
			pass(1)
			pass(0)
			got := e.payin(p.ID)
			if string(got.AuthCode) != lookedUpAnswer.AuthCode || got.AVSResultCode != "Y" || got.CVCResultCode != "M" ||
				string(got.Processor.NetworkTransactionID) != lookedUpAnswer.NetworkTransactionID || e.storedNTI(got) != lookedUpAnswer.NetworkTransactionID {
				t.Fatalf("after the look-up: auth code %q, AVS %q, CVC %q, NTI %q, card NTI %q; want %+v", got.AuthCode, got.AVSResultCode,
					got.CVCResultCode, got.Processor.NetworkTransactionID, e.storedNTI(got), lookedUpAnswer)
			}
			if got.Status != p.Status || !got.UpdatedAt.Equal(p.UpdatedAt) || got.Processor.Outcome != p.Processor.Outcome || e.cardAnswerMarked(p.ID) {
				t.Fatalf("the fill moved the payin: %s/%s/%v -> %s/%s/%v (marked %v)", p.Status, p.Processor.Outcome, p.UpdatedAt,
					got.Status, got.Processor.Outcome, got.UpdatedAt, e.cardAnswerMarked(p.ID))
			}
			if after := e.webhooks(p.ID); !slices.Equal(after, hooks) {
				t.Fatalf("webhooks %v after the fill, want %v (SPEC §7 has no event for it)", after, hooks)
			}
		})

		t.Run("an answer the event gave stands", func(t *testing.T) {
			e.t = t
			p := approvedByEvent(e, "EVT123") // an auth code but no network transaction id
			if !e.cardAnswerMarked(p.ID) {
				t.Fatal("an approval without a network transaction id is not marked")
			}
			looker.answerCard(lookedUpAnswer, nil)
			pass(1)
			got := e.payin(p.ID)
			if got.AuthCode != "EVT123" || string(got.Processor.NetworkTransactionID) != lookedUpAnswer.NetworkTransactionID {
				t.Fatalf("auth code %q, NTI %q; want the event's EVT123 and the look-up's NTI", got.AuthCode, got.Processor.NetworkTransactionID)
			}
		})

		t.Run("given up after a day of failures", func(t *testing.T) {
			e.t = t
			p := approvedByEvent(e, "")
			looker.answerCard(ivrpay.ProcessorEvent{}, errors.New("stripe: look up payment intent: HTTP 503"))
			for range 3 {
				pass(0)
				e.clock.advance(payments.CardAnswerGiveUpAfter / 2)
			}
			if e.cardAnswerMarked(p.ID) {
				t.Fatal("still marked after a day of failed look-ups")
			}
			calls := looker.count()
			e.clock.advance(time.Hour)
			pass(0)
			if looker.count() != calls {
				t.Fatal("a payin given up on was looked up again")
			}
			if got := e.payin(p.ID); got.AuthCode != "" || got.Status != ivrpay.PayinStatusSucceeded {
				t.Fatalf("given up: auth code %q, status %s", got.AuthCode, got.Status)
			}
		})
	})
}

// TestCardAnswerFillRace: two processes that claim and fill the same
// marked payin at once: exactly one claims it, exactly one fill writes,
// and the payin holds one answer whole (nothing of the loser's).
func TestCardAnswerFillRace(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		e.router.lookup = &lookingProcessor{Processor: sandbox.New()}
		p := approvedByEvent(e, "")
		stores := []payments.Store{e.store}
		other, _ := e.open()
		stores = append(stores, other)

		var wg sync.WaitGroup
		claimed := make([]int, 2)
		for i, s := range stores {
			wg.Go(func() {
				due, err := s.ClaimDueCardAnswers(ctx, time.Minute, 10)
				if err != nil {
					t.Error(err)
				}
				claimed[i] = len(due)
			})
		}
		wg.Wait()
		if claimed[0]+claimed[1] != 1 {
			t.Fatalf("claimed %v: want the payin leased by exactly one process", claimed)
		}

		answers := []ivrpay.PayinCardAnswer{
			{PayinID: p.ID, PaymentMethodID: string(p.PaymentMethodID), AuthCode: "AAAAAA", AVSResultCode: "Y", CVCResultCode: "M", NetworkTransactionID: "111111111111111"},
			{PayinID: p.ID, PaymentMethodID: string(p.PaymentMethodID), AuthCode: "BBBBBB", AVSResultCode: "N", CVCResultCode: "N", NetworkTransactionID: "222222222222222"},
		}
		filled := make([]bool, 2)
		for i, s := range stores {
			wg.Go(func() {
				var err error
				if filled[i], err = s.FillPayinCardAnswer(ctx, answers[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if filled[0] == filled[1] {
			t.Fatalf("fills %v: want exactly one", filled)
		}
		won := answers[0]
		if filled[1] {
			won = answers[1]
		}
		got := e.payin(p.ID)
		if string(got.AuthCode) != won.AuthCode || string(got.AVSResultCode) != won.AVSResultCode || string(got.CVCResultCode) != won.CVCResultCode ||
			string(got.Processor.NetworkTransactionID) != won.NetworkTransactionID || e.storedNTI(got) != won.NetworkTransactionID {
			t.Fatalf("payin %q/%q/%q/%q, card NTI %q; want the winner's %+v whole", got.AuthCode, got.AVSResultCode, got.CVCResultCode,
				got.Processor.NetworkTransactionID, e.storedNTI(got), won)
		}
		if e.cardAnswerMarked(p.ID) {
			t.Fatal("still marked after the fill")
		}
	})
}
