package httpapi_test

// A refund's own fields (SPEC §3, issue 27): idempotency_key, metadata,
// refusal_code, refusal_desc and updated_at, in the void_or_refund answer,
// GET /v1/refunds/{id}, the payin's refunds and every refund.* webhook
// (verified as receivers verify them); metadata validated like metadata
// elsewhere and part of the request's identity.

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// refusedRefundAmount is the refund the processor of these tests refuses
// at once, with its own words (which tenants must never see).
const refusedRefundAmount = 701

// refusingRefunds is the sandbox processor, except that it refuses a refund
// of refusedRefundAmount without a refusal code of its own, as Stripe's
// adapter does for a refund that comes back failed.
type refusingRefunds struct{ *sandbox.Processor }

func (p refusingRefunds) Refund(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	if op.Amount == refusedRefundAmount {
		return ivrpay.ProcessorResult{Reference: "re_refused", RefusalDesc: "stripe: refund re_refused for acct_1Operator is failed (expired_or_canceled_card)"}, nil
	}
	return p.Processor.Refund(ctx, op)
}

// refundFields are the keys of a refund object, SPEC §3.
var refundFields = []string{"refund_id", "payin_id", "merchant_id", "amount", "currency_code", "reason", "status",
	"idempotency_key", "metadata", "refusal_code", "refusal_desc", "created_at", "updated_at"}

func TestRefundFields(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, func(c *paymentstest.Config) {
			c.Router = payments.SandboxRouter{Processor: refusingRefunds{sandbox.New()}}
		})
		hooks := b.subscribe(t)
		ctx := context.Background()
		key := b.ivrKey("payin:create")
		payinID := b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 10000, nil)), "amount", "100.00")).wantOK(t, "charge")
		paymentstest.Settle(t, b.store)
		// Voided before the next settlement, while it is PROCESSING.
		voidable := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")

		voidOrRefund := func(body map[string]any) apiResp {
			return b.api("POST", "/v1/payins/"+payinID+"/void_or_refund", b.admin, body)
		}
		getRefund := func(t *testing.T, id string) map[string]any {
			t.Helper()
			r := b.api("GET", "/v1/refunds/"+id, b.admin, nil)
			wantStatus(t, r, 200)
			return r.data(t)
		}
		metadata := map[string]any{"ticket": "T-1042", "agent": map[string]any{"id": 7.0}}
		okBody := map[string]any{"idempotency_key": "refund-ok", "reason": "REQUESTED_BY_CUSTOMER", "amount": 300, "metadata": metadata}

		// A 400 does not use up its key: the same key then makes the refund.
		bad := voidOrRefund(with(okBody, "metadata", "T-1042"))
		want400(t, bad, "metadata")
		answer := voidOrRefund(okBody)
		wantStatus(t, answer, 200)
		ok := answer.data(t)
		okID := wantID(t, ok["refund_id"], "rfd_")

		t.Run("answer", func(t *testing.T) {
			if ok["refund_status"] != ivrpay.RefundStatusProcessing || ok["idempotency_key"] != "refund-ok" ||
				!reflect.DeepEqual(ok["metadata"], metadata) || ok["refusal_code"] != nil || ok["refusal_desc"] != nil {
				t.Fatalf("refund answer %v", ok)
			}
			for _, k := range []string{"refusal_code", "refusal_desc", "updated_at"} {
				if _, present := ok[k]; !present {
					t.Errorf("the answer has no %s key", k)
				}
			}
		})
		t.Run("GET", func(t *testing.T) {
			r := getRefund(t, okID)
			wantRefundObject(t, "GET", r)
			if r["idempotency_key"] != "refund-ok" || !reflect.DeepEqual(r["metadata"], metadata) || r["refusal_code"] != nil ||
				r["refusal_desc"] != nil || r["status"] != ivrpay.RefundStatusProcessing {
				t.Fatalf("GET refund %v", r)
			}
			// The answer said what GET says.
			if r["updated_at"] != ok["updated_at"] {
				t.Fatalf("updated_at: answer %v, GET %v", ok["updated_at"], r["updated_at"])
			}
		})
		t.Run("repeat", func(t *testing.T) {
			// The same request replays the same answer.
			again := voidOrRefund(okBody)
			wantStatus(t, again, 200)
			if string(again.Data) != string(answer.Data) {
				t.Fatalf("repeat answered\n%s\nfirst\n%s", again.Data, answer.Data)
			}
			// Other metadata, or none, is another request under the same key.
			for _, md := range []any{map[string]any{"ticket": "T-1043"}, nil} {
				r := voidOrRefund(with(okBody, "metadata", md))
				wantStatus(t, r, 409)
				if r.err().Field != "idempotency_key" {
					t.Fatalf("metadata %v under the same key: %s", md, r.Raw)
				}
			}
		})
		t.Run("metadata validation", func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				metadata any
				field    string
			}{
				{"a string", "T-1042", "metadata"},
				{"an array", []any{"T-1042"}, "metadata"},
				{"8 KiB", map[string]any{"note": strings.Repeat("x", 8<<10)}, "metadata"},
				{"a card number", map[string]any{"note": "card 4111 1111 1111 1111"}, "metadata.note"},
				{"a NUL character", map[string]any{"note": "a\x00b"}, "metadata.note"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := voidOrRefund(with(okBody, "idempotency_key", "refund-bad", "metadata", tc.metadata))
					want400(t, r, tc.field)
				})
			}
			// None of them used the key or reserved anything.
			r := voidOrRefund(with(okBody, "idempotency_key", "refund-bad", "amount", 200, "metadata", nil))
			wantStatus(t, r, 200)
			if d := r.data(t); d["metadata"] != nil || d["idempotency_key"] != "refund-bad" {
				t.Fatalf("refund after refused requests: %v", d)
			}
			if p := b.payin(payinID); p["refundable_amount"] != float64(10000-300-200) {
				t.Fatalf("refundable amount %v after a refund of 3.00 and one of 2.00", p["refundable_amount"])
			}
		})

		t.Run("void", func(t *testing.T) {
			r := b.api("POST", "/v1/payins/"+voidable+"/void_or_refund", b.admin,
				map[string]any{"idempotency_key": "void-1", "reason": "DUPLICATE", "metadata": map[string]any{"ticket": "T-9"}})
			wantStatus(t, r, 200)
			d := r.data(t)
			p := b.payin(voidable)
			if d["type"] != ivrpay.VoidOrRefundTypeVoid || d["idempotency_key"] != "void-1" || !reflect.DeepEqual(d["metadata"], map[string]any{"ticket": "T-9"}) ||
				d["refusal_code"] != nil || d["refusal_desc"] != nil || d["refund_id"] != nil || d["updated_at"] != p["updated_at"] {
				t.Fatalf("void answer %v (payin updated_at %v)", d, p["updated_at"])
			}
		})

		// A refund the processor refuses: FAILED with a normalized refusal.
		failed := voidOrRefund(with(okBody, "idempotency_key", "refund-refused", "amount", refusedRefundAmount))
		wantStatus(t, failed, 200)
		failedAnswer := failed.data(t)
		failedID := wantID(t, failedAnswer["refund_id"], "rfd_")
		wantRefused := func(t *testing.T, where string, r map[string]any, statusKey string) {
			t.Helper()
			if r[statusKey] != ivrpay.RefundStatusFailed || r["refusal_code"] != ivrpay.RefusalProcessingError || r["refusal_desc"] != "Processing error" {
				t.Fatalf("%s: refused refund %v, want FAILED, PROCESSING_ERROR, \"Processing error\"", where, r)
			}
		}
		t.Run("refused", func(t *testing.T) {
			wantRefused(t, "answer", failedAnswer, "refund_status")
			r := getRefund(t, failedID)
			wantRefundObject(t, "GET", r)
			wantRefused(t, "GET", r, "status")
			if r["updated_at"] != failedAnswer["updated_at"] || r["idempotency_key"] != "refund-refused" {
				t.Fatalf("GET %v, answer %v", r, failedAnswer)
			}
			if strings.Contains(string(b.api("GET", "/v1/refunds/"+failedID, b.admin, nil).Raw), "acct_1Operator") {
				t.Fatal("the processor's own words reached the tenant")
			}
			if p := b.payin(payinID); p["refundable_amount"] != float64(10000-300-200) {
				t.Fatalf("refundable amount %v: the refused refund's amount was not given back", p["refundable_amount"])
			}
			again := voidOrRefund(with(okBody, "idempotency_key", "refund-refused", "amount", refusedRefundAmount))
			wantStatus(t, again, 200)
			if string(again.Data) != string(failed.Data) {
				t.Fatalf("repeat of the refused refund answered\n%s\nfirst\n%s", again.Data, failed.Data)
			}
		})

		// A refund that fails after it settled (what a processor event does,
		// through the store's FailRefund).
		paymentstest.Settle(t, b.store)
		settled := getRefund(t, okID)
		if settled["status"] != ivrpay.RefundStatusSucceeded || !later(t, settled["updated_at"], ok["updated_at"]) {
			t.Fatalf("settled refund %v (answered at %v)", settled, ok["updated_at"])
		}
		t.Run("fails after settlement", func(t *testing.T) {
			at := time.Now().UTC().Add(time.Second)
			f := ivrpay.RefundFailure{RefundID: okID, From: ivrpay.RefundStatusSucceeded, RefusalCode: ivrpay.RefusalDoNotHonor,
				RefusalDesc: ivrpay.RefusalDescription(ivrpay.RefusalDoNotHonor, "refund_declined"), At: at}
			rf, err := b.store.FailRefund(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if rf.Status != ivrpay.RefundStatusFailed || !rf.UpdatedAt.Equal(at.Truncate(time.Microsecond)) {
				t.Fatalf("FailRefund returned %+v", rf)
			}
			r := getRefund(t, okID)
			if r["status"] != ivrpay.RefundStatusFailed || r["refusal_code"] != ivrpay.RefusalDoNotHonor ||
				r["refusal_desc"] != "Do not honor (refund_declined)" || !reflect.DeepEqual(r["metadata"], metadata) {
				t.Fatalf("refund failed after settlement: %v", r)
			}
			if p := b.payin(payinID); p["refundable_amount"] != float64(10000-200) {
				t.Fatalf("refundable amount %v: the failed refund's amount was not given back", p["refundable_amount"])
			}
			if _, err := b.store.FailRefund(ctx, f); !errors.Is(err, ivrpay.ErrStateChanged) {
				t.Fatalf("failing a FAILED refund again: %v, want ErrStateChanged", err)
			}
			// A repeat of the request that made it now shows the refusal.
			again := voidOrRefund(okBody)
			wantStatus(t, again, 200)
			if d := again.data(t); d["refund_status"] != ivrpay.RefundStatusFailed || d["refusal_code"] != ivrpay.RefusalDoNotHonor {
				t.Fatalf("repeat after the failure: %v", d)
			}
		})

		t.Run("the payin's refunds", func(t *testing.T) {
			p := b.payin(payinID)
			refunds, _ := p["refunds"].([]any)
			if len(refunds) != 3 {
				t.Fatalf("payin has refunds %v, want 3", p["refunds"])
			}
			for _, x := range refunds {
				r := x.(map[string]any)
				wantRefundObject(t, "the payin's refunds", r)
				if got := getRefund(t, r["refund_id"].(string)); !reflect.DeepEqual(got, r) {
					t.Errorf("the payin's refund\n%v\nGET\n%v", r, got)
				}
			}
		})

		t.Run("webhooks", func(t *testing.T) {
			for _, tc := range []struct {
				eventType, refundID string
				check               func(t *testing.T, data map[string]any)
			}{
				{ivrpay.EventRefundProcessing, okID, func(t *testing.T, d map[string]any) {
					if d["refusal_code"] != nil || d["updated_at"] != ok["updated_at"] {
						t.Fatalf("refund.processing %v", d)
					}
				}},
				{ivrpay.EventRefundSucceeded, okID, func(t *testing.T, d map[string]any) {
					if d["refusal_code"] != nil || d["updated_at"] != settled["updated_at"] {
						t.Fatalf("refund.succeeded %v", d)
					}
				}},
				{ivrpay.EventRefundFailed, failedID, func(t *testing.T, d map[string]any) { wantRefused(t, "refund.failed", d, "status") }},
				{ivrpay.EventRefundFailed, okID, func(t *testing.T, d map[string]any) {
					if d["refusal_code"] != ivrpay.RefusalDoNotHonor {
						t.Fatalf("refund.failed after settlement %v", d)
					}
				}},
			} {
				t.Run(tc.eventType+" "+tc.refundID, func(t *testing.T) {
					d := waitRefundEvent(t, hooks, tc.eventType, tc.refundID)
					wantRefundObject(t, tc.eventType, d)
					if d["idempotency_key"] == "" || d["idempotency_key"] == nil {
						t.Fatalf("%s has no idempotency_key: %v", tc.eventType, d)
					}
					if tc.refundID == okID && !reflect.DeepEqual(d["metadata"], metadata) {
						t.Fatalf("%s metadata %v", tc.eventType, d["metadata"])
					}
					tc.check(t, d)
				})
			}
		})
	})
}

// wantRefundObject checks that r has exactly the keys of a refund.
func wantRefundObject(t *testing.T, where string, r map[string]any) {
	t.Helper()
	for _, k := range refundFields {
		if _, ok := r[k]; !ok {
			t.Errorf("%s: the refund has no %s: %v", where, k, r)
		}
	}
	if len(r) != len(refundFields) {
		t.Errorf("%s: the refund has %d keys, want %d: %v", where, len(r), len(refundFields), r)
	}
}

// waitRefundEvent returns the data of the first verified delivery of
// eventType about the refund.
func waitRefundEvent(t *testing.T, s *subscriber, eventType, refundID string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, ev := range s.events(t) {
			if ev.Type == eventType && ev.Data["refund_id"] == refundID {
				return ev.Data
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s for refund %s was delivered", eventType, refundID)
		}
	}
}

// later reports whether timestamp a is at or after b (both RFC 3339).
func later(t *testing.T, a, b any) bool {
	t.Helper()
	ta, errA := time.Parse(time.RFC3339Nano, a.(string))
	tb, errB := time.Parse(time.RFC3339Nano, b.(string))
	if errA != nil || errB != nil {
		t.Fatalf("timestamps %v, %v", a, b)
	}
	return !ta.Before(tb)
}
