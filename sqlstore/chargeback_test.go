package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// TestDisputeAppliedOnceAcrossProcesses: two payments services on two
// stores of one database (two server processes) receive many events about
// one dispute at once, each with its own event id and in any order: one
// chargeback, and exactly one webhook per status it reached. The database
// decides, not a process.
func TestDisputeAppliedOnceAcrossProcesses(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		dsn := paymentstest.DSN(t, engine)
		opts := paymentstest.Options(t)
		s := openDSN(t, dsn, opts)
		other := openDSN(t, dsn, opts)
		b := setupOn(t, s, engine, opts)
		pays := []*payments.Service{opts.Payments(s), opts.Payments(other)}
		res := process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 1000).ID, newKey("CA"), visaOK, 1000))
		mustSucceed(t, res)
		payinID := res.ID

		const perStatus = 8
		statuses := []string{ivrpay.ChargebackStatusInquiryActionRequired, ivrpay.ChargebackStatusDisputeActionRequired,
			ivrpay.ChargebackStatusChargebackProcessing, ivrpay.ChargebackStatusLost}
		var wg sync.WaitGroup
		errs := make(chan error, perStatus*len(statuses))
		for i := range perStatus * len(statuses) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pay := pays[i%2]
				errs <- pay.ReceiveProcessorEvent(boundedContext(t), ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: "sandbox",
					ID: fmt.Sprintf("evt_race_%d", i), Type: "test.dispute", Effect: ivrpay.EffectDispute, Reference: payinID,
					Dispute: &ivrpay.DisputeDetails{Reference: "du_race", Status: statuses[i%len(statuses)], Amount: 1000, Currency: "USD"}})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("ReceiveProcessorEvent: %v", err)
			}
		}
		if n := count(t, s.DB(), `SELECT COUNT(*) FROM chargebacks WHERE payin_id = $1`, payinID); n != 1 {
			t.Fatalf("%d chargebacks for one dispute, want 1", n)
		}
		// Whatever the order, LOST is where it ends, and no status is announced twice.
		l, err := s.ListChargebacks(b.adminCtx, ivrpay.ChargebackFilter{PayinID: payinID})
		if err != nil || len(l.Results) != 1 || l.Results[0].Status != ivrpay.ChargebackStatusLost {
			t.Fatalf("chargebacks of the payin: %+v, %v", l, err)
		}
		cb := l.Results[0]
		rows, err := s.DB().Query(`SELECT type, COUNT(*) FROM events WHERE object_id = $1 GROUP BY type`, cb.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		events := map[string]int{}
		for rows.Next() {
			var typ string
			var n int
			if err := rows.Scan(&typ, &n); err != nil {
				t.Fatal(err)
			}
			events[typ] = n
		}
		if events[ivrpay.ChargebackEventType(ivrpay.ChargebackStatusLost)] != 1 {
			t.Fatalf("events = %v, want chargeback.lost once", events)
		}
		for typ, n := range events {
			if n != 1 {
				t.Errorf("%s emitted %d times, want once per change", typ, n)
			}
		}
	})
}

// TestDueSandboxDisputes: the sandbox's dispute triggers are due at
// settlement, then again once the dispute has awaited the merchant past
// the cutoff, and never once it ended; other amounts never are.
func TestDueSandboxDisputes(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		ctx := boundedContext(t)
		charge := func(cents int64) string {
			res := process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, cents).ID, newKey("CA"), visaOK, cents))
			mustSucceed(t, res)
			return res.ID
		}
		lost, won, plain := charge(sandbox.ChargebackAmount), charge(sandbox.InquiryAmount), charge(1000)
		due := func(cutoff time.Time) map[string]ivrpay.SandboxDisputeDue {
			t.Helper()
			l, err := b.s.DueSandboxDisputes(ctx, cutoff, 100)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]ivrpay.SandboxDisputeDue{}
			for _, d := range l {
				out[d.PayinID] = d
			}
			return out
		}
		if d := due(time.Now().Add(time.Hour)); len(d) != 0 {
			t.Fatalf("due before settlement: %v", d)
		}
		settleOnly(t, b)
		d := due(time.Now().Add(-time.Hour))
		if len(d) != 2 || d[lost].ChargebackStatus != "" || d[won].PayinAmount != sandbox.InquiryAmount || d[won].CapturedAmount != sandbox.InquiryAmount || d[lost].Since.IsZero() || d[lost].Currency != "USD" {
			t.Fatalf("due after settlement: %+v (plain payin %s)", d, plain)
		}
		apply := func(d ivrpay.SandboxDisputeDue) {
			t.Helper()
			for _, e := range sandbox.DisputeEvents(d) {
				if ev := paymentstest.Receive(t, b.s, e); ev.Status != ivrpay.ProcessorEventApplied {
					t.Fatalf("sandbox dispute event %s: %s %q", e.ID, ev.Status, ev.Note)
				}
			}
		}
		apply(d[lost])
		apply(d[won])
		if d := due(time.Now().Add(-time.Hour)); len(d) != 0 {
			t.Fatalf("due before the dispute waited: %v", d)
		}
		d = due(time.Now().Add(time.Second))
		if d[lost].ChargebackStatus != ivrpay.ChargebackStatusDisputeActionRequired || d[won].ChargebackStatus != ivrpay.ChargebackStatusInquiryActionRequired {
			t.Fatalf("due once the disputes waited: %+v", d)
		}
		apply(d[lost])
		apply(d[won])
		if d := due(time.Now().Add(time.Hour)); len(d) != 0 {
			t.Fatalf("due after the disputes ended: %v", d)
		}
		for id, want := range map[string]string{lost: ivrpay.ChargebackStatusLost, won: ivrpay.ChargebackStatusWon} {
			l, err := b.s.ListChargebacks(b.adminCtx, ivrpay.ChargebackFilter{PayinID: id})
			if err != nil || len(l.Results) != 1 || l.Results[0].Status != want {
				t.Fatalf("chargebacks of %s: %+v, %v; want one %s", id, l, err, want)
			}
		}
	})
}

// settleOnly has the sandbox processor confirm its PROCESSING payins now,
// without its dispute triggers (a pass of an older sandbox).
func settleOnly(t *testing.T, b *bundle) {
	t.Helper()
	pay := payments.New(b.s, b.opts.Vault, payments.SandboxRouter{Processor: b.opts.Processor},
		payments.Options{SandboxConfirmations: sandbox.Confirmations})
	if n, err := pay.ConfirmSandboxDue(boundedContext(t), 0); err != nil || n == 0 {
		t.Fatalf("sandbox confirmations: %d, %v", n, err)
	}
}
