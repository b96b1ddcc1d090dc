package ivrpay_test

import (
	"fmt"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestPayinTransitionFor is the payin transition table, cell by cell: every
// payin state against every payment effect (SPEC §4.2). Out-of-order events
// never move a payin backwards, and a payin whose own answer is on its way
// makes the event wait.
func TestPayinTransitionFor(t *testing.T) {
	const (
		auth      = ivrpay.EffectPaymentAuthorized
		captured  = ivrpay.EffectPaymentCaptured
		capFailed = ivrpay.EffectPaymentCaptureFailed
		failed    = ivrpay.EffectPaymentFailed
		canceled  = ivrpay.EffectPaymentCanceled
	)
	move := func(to string) ivrpay.Transition { return ivrpay.Transition{Action: ivrpay.ActionMove, To: to} }
	none := ivrpay.Transition{Action: ivrpay.ActionNone}
	wait := ivrpay.Transition{Action: ivrpay.ActionWait}
	approve := ivrpay.Transition{Action: ivrpay.ActionResolveApproved}
	decline := ivrpay.Transition{Action: ivrpay.ActionResolveDeclined}
	creating := ivrpay.PayinEventState{Status: ivrpay.PayinStatusCreated}
	unknown := ivrpay.PayinEventState{Status: ivrpay.PayinStatusCreated, OutcomeUnknown: true}
	state := func(status string) ivrpay.PayinEventState { return ivrpay.PayinEventState{Status: status} }
	voiding := func(status string) ivrpay.PayinEventState {
		return ivrpay.PayinEventState{Status: status, VoidPending: true}
	}
	rows := []struct {
		name  string
		state ivrpay.PayinEventState
		want  map[ivrpay.EventEffect]ivrpay.Transition
	}{
		{"CREATED being charged: every event waits for the charge's answer", creating,
			map[ivrpay.EventEffect]ivrpay.Transition{auth: wait, captured: wait, capFailed: wait, failed: wait, canceled: wait}},
		{"CREATED with an unknown outcome: the event resolves it", unknown,
			map[ivrpay.EventEffect]ivrpay.Transition{auth: approve, captured: approve, capFailed: decline, failed: decline, canceled: decline}},
		{"PROCESSING", state(ivrpay.PayinStatusProcessing),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: move(ivrpay.PayinStatusSucceeded),
				capFailed: move(ivrpay.PayinStatusFailed), failed: none, canceled: move(ivrpay.PayinStatusCanceled)}},
		{"AUTHORIZED", state(ivrpay.PayinStatusAuthorized),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: move(ivrpay.PayinStatusSucceeded),
				capFailed: none, failed: none, canceled: move(ivrpay.PayinStatusCanceled)}},
		{"SUCCEEDED: only a failed capture moves it", state(ivrpay.PayinStatusSucceeded),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: none, capFailed: move(ivrpay.PayinStatusFailed), failed: none, canceled: none}},
		{"FAILED is final", state(ivrpay.PayinStatusFailed),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: none, capFailed: none, failed: none, canceled: none}},
		{"CANCELED is final", state(ivrpay.PayinStatusCanceled),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: none, capFailed: none, failed: none, canceled: none}},
		{"PROCESSING with a void in flight: only the void's outcome applies", voiding(ivrpay.PayinStatusProcessing),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: wait, capFailed: wait, failed: none, canceled: move(ivrpay.PayinStatusCanceled)}},
		{"AUTHORIZED with a void in flight", voiding(ivrpay.PayinStatusAuthorized),
			map[ivrpay.EventEffect]ivrpay.Transition{auth: none, captured: wait, capFailed: none, failed: none, canceled: move(ivrpay.PayinStatusCanceled)}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			for _, effect := range []ivrpay.EventEffect{auth, captured, capFailed, failed, canceled} {
				t.Run(string(effect), func(t *testing.T) {
					want, ok := row.want[effect]
					if !ok {
						t.Fatalf("the test's row has no cell for %s", effect)
					}
					if got := ivrpay.PayinTransitionFor(row.state, effect); got != want {
						t.Errorf("PayinTransitionFor(%+v, %s) = %+v, want %+v", row.state, effect, got, want)
					}
				})
			}
		})
	}
	t.Run("effects that are not a payment's change no payin", func(t *testing.T) {
		for _, effect := range []ivrpay.EventEffect{ivrpay.EffectRefundSucceeded, ivrpay.EffectRefundFailed, ivrpay.EffectDispute, ivrpay.EffectNone} {
			for _, s := range []ivrpay.PayinEventState{creating, unknown, state(ivrpay.PayinStatusProcessing), state(ivrpay.PayinStatusSucceeded)} {
				if got := ivrpay.PayinTransitionFor(s, effect); got != none {
					t.Errorf("PayinTransitionFor(%+v, %s) = %+v, want no change", s, effect, got)
				}
			}
		}
	})
}

// TestRefundTransitionFor is the refund transition table: a refund settles
// once, fails even after it succeeded (the bank returned it), and FAILED is
// final, so both orders of the two events end FAILED.
func TestRefundTransitionFor(t *testing.T) {
	rows := []struct {
		status string
		effect ivrpay.EventEffect
		want   ivrpay.Transition
	}{
		{ivrpay.RefundStatusProcessing, ivrpay.EffectRefundSucceeded, ivrpay.Transition{Action: ivrpay.ActionMove, To: ivrpay.RefundStatusSucceeded}},
		{ivrpay.RefundStatusProcessing, ivrpay.EffectRefundFailed, ivrpay.Transition{Action: ivrpay.ActionMove, To: ivrpay.RefundStatusFailed}},
		{ivrpay.RefundStatusSucceeded, ivrpay.EffectRefundSucceeded, ivrpay.Transition{Action: ivrpay.ActionNone}},
		{ivrpay.RefundStatusSucceeded, ivrpay.EffectRefundFailed, ivrpay.Transition{Action: ivrpay.ActionMove, To: ivrpay.RefundStatusFailed}},
		{ivrpay.RefundStatusFailed, ivrpay.EffectRefundSucceeded, ivrpay.Transition{Action: ivrpay.ActionNone}},
		{ivrpay.RefundStatusFailed, ivrpay.EffectRefundFailed, ivrpay.Transition{Action: ivrpay.ActionNone}},
		{ivrpay.RefundStatusProcessing, ivrpay.EffectPaymentCaptured, ivrpay.Transition{Action: ivrpay.ActionNone}},
	}
	for _, row := range rows {
		t.Run(fmt.Sprintf("%s %s", row.status, row.effect), func(t *testing.T) {
			if got := ivrpay.RefundTransitionFor(row.status, row.effect); got != row.want {
				t.Errorf("RefundTransitionFor(%s, %s) = %+v, want %+v", row.status, row.effect, got, row.want)
			}
		})
	}
}
