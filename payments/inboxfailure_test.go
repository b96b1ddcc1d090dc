package payments_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// refusal is the database's message when it refuses a payin's update
// (refuseUpdates).
const refusal = "payin row refused by the test"

// refuseUpdates makes the database refuse every update of payin id, as a
// trigger or a constraint of a real deployment could: applying an event to
// the payin fails with the database's own error. lift drops the refusal.
func (e *inboxEnv) refuseUpdates(id string) (lift func()) {
	e.t.Helper()
	refuse := []string{`CREATE TRIGGER refuse_payin BEFORE UPDATE ON payins WHEN OLD.id = '` + id + `'
		BEGIN SELECT RAISE(ABORT, '` + refusal + `'); END`}
	undo := []string{`DROP TRIGGER refuse_payin`}
	if e.engine == sqlstore.EnginePostgres {
		refuse = []string{`CREATE FUNCTION refuse_payin() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '` + refusal + `'; END $$`,
			`CREATE TRIGGER refuse_payin BEFORE UPDATE ON payins FOR EACH ROW WHEN (OLD.id = '` + id + `') EXECUTE FUNCTION refuse_payin()`}
		undo = []string{`DROP TRIGGER refuse_payin ON payins`, `DROP FUNCTION refuse_payin()`}
	}
	exec := func(stmts []string) {
		for _, q := range stmts {
			if _, err := e.store.DB().Exec(q); err != nil {
				e.t.Fatalf("%s: %v", q, err)
			}
		}
	}
	exec(refuse)
	return func() { exec(undo) }
}

// event reads an event of the inbox.
func (e *inboxEnv) event(account, id string) ivrpay.InboxEvent {
	e.t.Helper()
	ev, err := e.store.FindProcessorEvent(context.Background(), account, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// TestProcessorEventFailures: on both engines, an event whose application
// fails with an error (the database refuses its payin's update) is tried
// again with the inbox's back-off, its error kept as its note; its failures
// are counted apart from the attempts spent waiting for its object, and an
// error that goes away lets it apply. One that fails MaxEventFailures times
// is kept as FAILED, changed nothing, is claimed no more and is listed;
// once the cause is fixed, an operator's retry applies it, once.
func TestProcessorEventFailures(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()

		// An event that waited for its payin, then failed, then applied.
		q := processingPayin(e)
		early := paymentEvent(q, ivrpay.EffectPaymentCaptured)
		early.Reference, early.PaymentReference = "", "pi_recorded_later"
		if got := e.receive(early); got.Status != ivrpay.ProcessorEventPending || got.Attempts != 1 || got.Failures != 0 {
			t.Fatalf("an event for an unknown payment: %s after %d attempts, %d failures; want PENDING, 1, 0", got.Status, got.Attempts, got.Failures)
		}
		if _, err := e.store.DB().Exec(`UPDATE payins SET processor_reference = 'pi_recorded_later' WHERE id = $1`, q.ID); err != nil {
			t.Fatal(err)
		}
		lift := e.refuseUpdates(q.ID)
		e.clock.advance(6 * time.Second)
		if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 1 {
			t.Fatalf("worker pass: %d events, %v; want the waiting one", n, err)
		}
		if got := e.event(early.Account, early.ID); got.Status != ivrpay.ProcessorEventPending || got.Attempts != 2 || got.Failures != 1 ||
			!strings.Contains(got.Note, refusal) {
			t.Fatalf("the event whose payin refused its change: %s, %d attempts, %d failures, note %q; want PENDING, 2, 1, the database's error",
				got.Status, got.Attempts, got.Failures, got.Note)
		}
		lift()
		e.clock.advance(5 * time.Minute)
		if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 1 {
			t.Fatalf("worker pass: %d events, %v; want the failed one", n, err)
		}
		if got := e.event(early.Account, early.ID); got.Status != ivrpay.ProcessorEventApplied || e.payin(q.ID).Status != ivrpay.PayinStatusSucceeded {
			t.Fatalf("once the payin took changes again the event is %s and the payin %s; want APPLIED and SUCCEEDED", got.Status, e.payin(q.ID).Status)
		}

		// A poison event: it fails at every attempt, with the back-off.
		p := processingPayin(e)
		lift = e.refuseUpdates(p.ID)
		ev := paymentEvent(p, ivrpay.EffectPaymentCaptured)
		stored := e.receive(ev)
		var waits []time.Duration
		for stored.Status == ivrpay.ProcessorEventPending {
			if stored.Failures != len(waits)+1 || !strings.Contains(stored.Note, refusal) {
				t.Fatalf("after %d attempts: %d failures, note %q; want %d and the database's error", stored.Attempts, stored.Failures, stored.Note, len(waits)+1)
			}
			if len(waits) == payments.MaxEventFailures {
				t.Fatalf("still PENDING after %d failures", stored.Failures)
			}
			waits = append(waits, e.untilClaimed())
			stored = e.event(ev.Account, ev.ID)
		}
		if want := backOff[:payments.MaxEventFailures-1]; !slices.Equal(waits, want) {
			t.Fatalf("waits between failed attempts %v, want %v", waits, want)
		}
		if stored.Status != ivrpay.ProcessorEventFailed || stored.Attempts != payments.MaxEventFailures || stored.Failures != payments.MaxEventFailures ||
			!strings.Contains(stored.Note, refusal) {
			t.Fatalf("the poison event is %s after %d attempts, %d failures, note %q; want FAILED after %d, with the database's error",
				stored.Status, stored.Attempts, stored.Failures, stored.Note, payments.MaxEventFailures)
		}
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusProcessing || countOf(e.webhooks(p.ID), "payin.succeeded") != 0 {
			t.Fatalf("the failed event left payin %s %s with webhooks %v; want PROCESSING, no payin.succeeded", p.ID, got.Status, e.webhooks(p.ID))
		}
		e.clock.advance(24 * time.Hour)
		if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 0 {
			t.Fatalf("a day later the worker claimed %d events (%v); a FAILED event is not claimed", n, err)
		}
		failed, err := e.store.ListProcessorEvents(ctx, ivrpay.ProcessorEventFilter{Status: ivrpay.ProcessorEventFailed})
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 1 || failed[0].EventID != ev.ID || !strings.Contains(string(failed[0].Note), refusal) ||
			failed[0].Attempts != payments.MaxEventFailures || failed[0].AppliedAt != nil {
			t.Fatalf("FAILED events listed %+v; want %s with its error, %d attempts, not applied", failed, ev.ID, payments.MaxEventFailures)
		}

		// Fixed, then retried by an operator: applied once.
		lift()
		retried, err := e.store.RetryProcessorEvent(ctx, ev.Account, ev.ID, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if retried.Status != ivrpay.ProcessorEventPending || retried.Failures != 0 {
			t.Fatalf("retried event %s with %d failures; want PENDING, 0", retried.Status, retried.Failures)
		}
		if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 1 {
			t.Fatalf("worker pass after the retry: %d events, %v; want the retried one", n, err)
		}
		if got := e.event(ev.Account, ev.ID); got.Status != ivrpay.ProcessorEventApplied || got.Note != "" {
			t.Fatalf("the retried event is %s (note %q); want APPLIED", got.Status, got.Note)
		}
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusSucceeded || countOf(e.webhooks(p.ID), "payin.succeeded") != 1 {
			t.Fatalf("payin %s with webhooks %v after the retry; want SUCCEEDED with one payin.succeeded", got.Status, e.webhooks(p.ID))
		}
		audit, err := e.store.ListAudit(ctx, ivrpay.AuditFilter{Action: "processor_event.retry"})
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Target != ev.ID || audit[0].Detail != "account="+ev.Account {
			t.Fatalf("audit of the retry %+v; want one row for %s", audit, ev.ID)
		}

		for _, tc := range []struct {
			name, account, id, code string
		}{
			{"an applied event", ev.Account, ev.ID, ivrpay.ECONFLICT},
			{"an unknown event", ev.Account, "evt_nowhere", ivrpay.ENOTFOUND},
			{"another account's event id", "adyen-elsewhere", ev.ID, ivrpay.ENOTFOUND},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.store.RetryProcessorEvent(ctx, tc.account, tc.id, e.clock.Now())
				if ivrpay.ErrorCode(err) != tc.code || !strings.Contains(ivrpay.ErrorMessage(err), tc.id) {
					t.Fatalf("retry: %v; want %s naming the event", err, tc.code)
				}
			})
		}
	})
}

// TestProcessorEventFailureUnderItsClaim: a process whose claim on an event
// expired and was taken over by another records nothing of its attempt
// (neither a failure to retry nor FAILED); the process that holds the claim
// does.
func TestProcessorEventFailureUnderItsClaim(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		store2, _ := e.open()
		holder := payments.New(e.store, e.opts.Vault, e.router, payments.Options{Mode: ivrpay.ModeSandbox, Clock: e.clock, HoldProcessorEvents: true})
		ev := paymentEvent(processingPayin(e), ivrpay.EffectPaymentCaptured)
		if err := holder.ReceiveProcessorEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		first, err := e.store.ClaimProcessorEvents(ctx, e.clock.Now(), 30*time.Second, 10)
		if err != nil || len(first) != 1 {
			t.Fatalf("first claim: %d events, %v", len(first), err)
		}
		e.clock.advance(31 * time.Second)
		second, err := store2.ClaimProcessorEvents(ctx, e.clock.Now(), 30*time.Second, 10)
		if err != nil || len(second) != 1 {
			t.Fatalf("the claim after the first's lease: %d events, %v", len(second), err)
		}
		late := first[0]
		for _, tc := range []struct {
			name   string
			record func() error
		}{
			{"a failure to retry", func() error {
				return e.store.PostponeProcessorEvent(ctx, ivrpay.ProcessorEventRetry{Account: late.Account, EventID: late.ID, Claim: late.Claim,
					Note: "applying failed: the late process's error", Next: e.clock.Now(), Failed: true})
			}},
			{"FAILED", func() error {
				return e.store.FinishProcessorEvent(ctx, ivrpay.ProcessorEventDone{Account: late.Account, EventID: late.ID, Claim: late.Claim,
					Status: ivrpay.ProcessorEventFailed, Note: "applying failed: the late process's error", At: e.clock.Now()})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.record(); err != nil {
					t.Fatal(err)
				}
				if got := e.event(ev.Account, ev.ID); got.Status != ivrpay.ProcessorEventPending || got.Failures != 0 || got.Note != "" || got.Attempts != 0 {
					t.Fatalf("after the late process recorded %s: %s, %d attempts, %d failures, note %q; want it untouched",
						tc.name, got.Status, got.Attempts, got.Failures, got.Note)
				}
				// The second claim's lease still holds: nothing is due.
				if due, err := e.store.ClaimProcessorEvents(ctx, e.clock.Now(), 30*time.Second, 10); err != nil || len(due) != 0 {
					t.Fatalf("claimable under the second claim: %d events, %v", len(due), err)
				}
			})
		}
		held := second[0]
		if err := store2.FinishProcessorEvent(ctx, ivrpay.ProcessorEventDone{Account: held.Account, EventID: held.ID, Claim: held.Claim,
			Status: ivrpay.ProcessorEventFailed, Note: "applying failed: the holder's error", At: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if got := e.event(ev.Account, ev.ID); got.Status != ivrpay.ProcessorEventFailed || got.Failures != 1 || got.Note != "applying failed: the holder's error" {
			t.Fatalf("the holder's FAILED: %s, %d failures, note %q", got.Status, got.Failures, got.Note)
		}
	})
}
