package httpapi_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// TestVoidRacingSettlement (issue 23): many concurrent void_or_refund
// requests (typed VOID, or untyped: a void before settlement, a refund
// after) race settlement through the real HTTP server. The processor holds
// every void and refund longer than settlement waits, so settlement runs
// while voids are in flight. For every payin the processor and the ledger
// agree: exactly one cancel or one refund reached the processor, exactly one
// request answered 200 and named what was sent, every other request was a
// 409, and the payin ends CANCELED after a cancel, SUCCEEDED and fully
// refunded after a refund.
func TestVoidRacingSettlement(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		const settleAfter = 300 * time.Millisecond
		rec := &processortest.Recorder{Processor: sandbox.New(), OperationDelay: 2 * settleAfter}
		e := lcSetup(t, engine, settleAfter, func(c *paymentstest.Config) { c.Processor = rec })

		const payins, requests = 9, 8
		type answer struct {
			status  int
			kind    string
			message string
		}
		ids := make([]string, payins)
		answers := make([][]answer, payins)
		var wg sync.WaitGroup
		for i := range payins {
			id := e.approvedPayin(1000, nil)
			ids[i], answers[i] = id, make([]answer, requests)
			switch i % 3 {
			case 1: // fired as settlement comes due
				time.Sleep(settleAfter)
			case 2: // fired after settlement
				e.waitPayinStatus(id, ivrpay.PayinStatusSucceeded)
			} // case 0: fired at once, long before settlement is due
			for j := range requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := map[string]any{"idempotency_key": fmt.Sprintf("race-%d-%d", i, j), "reason": "REQUESTED_BY_CUSTOMER"}
					if j%2 == 0 {
						body["type"] = ivrpay.VoidOrRefundTypeVoid
					}
					r := e.voidOrRefund(id, body)
					a := answer{status: r.status}
					if r.status == 200 {
						a.kind = r.obj(t).str("type")
					} else if len(r.errors) > 0 {
						a.message = r.errors[0].Message
					}
					answers[i][j] = a
				}()
			}
		}
		wg.Wait()

		var canceled, refunded int
		for i := range payins {
			id := ids[i]
			voids, refunds := rec.Calls("void", id), rec.Calls("refund", id)
			if len(voids)+len(refunds) != 1 {
				t.Errorf("payin %s: %d cancels and %d refunds reached the processor, want exactly one of them", id, len(voids), len(refunds))
				continue
			}
			sent := ivrpay.VoidOrRefundTypeVoid
			if len(refunds) == 1 {
				sent = ivrpay.VoidOrRefundTypeRefund
			}
			var ok int
			for j, a := range answers[i] {
				switch {
				case a.status == 200:
					ok++
					if a.kind != sent {
						t.Errorf("payin %s, request %d: answered %s, but the processor was sent a %s", id, j, a.kind, sent)
					}
				case a.status != 409:
					t.Errorf("payin %s, request %d: HTTP %d %s", id, j, a.status, a.message)
				}
			}
			if ok != 1 {
				t.Errorf("payin %s: %d requests answered 200 for the one %s sent: the processor acted for a request answered 409", id, ok, sent)
			}
			var p lcObj
			if sent == ivrpay.VoidOrRefundTypeVoid {
				canceled++
				if p = e.payin(id); p.str("status") != ivrpay.PayinStatusCanceled {
					t.Errorf("payin %s was canceled at the processor but is %s", id, p.str("status"))
				}
			} else {
				refunded++
				if p = e.waitPayinStatus(id, ivrpay.PayinStatusSucceeded); p.num("refundable_amount") != 0 {
					t.Errorf("payin %s was refunded in full at the processor but has %d refundable", id, p.num("refundable_amount"))
				}
			}
		}
		// Both paths were taken: voids that settlement waited for, and refunds.
		if canceled == 0 || refunded == 0 {
			t.Fatalf("%d payins canceled and %d refunded: the race was not run both ways", canceled, refunded)
		}
	})
}
