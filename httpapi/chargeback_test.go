package httpapi_test

// Chargebacks over real HTTP (SPEC §4.3): dispute events applied to the real
// store on every engine, read back through GET /v1/chargebacks[/{id}] and
// the payin, and announced as signed webhooks to a loopback receiver.

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

var disputeSeq atomic.Int64

// disputeEvent is a sandbox account's dispute event about the payin payinID
// (or, with payinID empty, the payment paymentRef), as an adapter makes it.
func disputeEvent(payinID, paymentRef, disputeRef, status string) ivrpay.ProcessorEvent {
	return ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: "sandbox", ID: fmt.Sprintf("evt_test_%d", disputeSeq.Add(1)),
		Type: "dispute." + status, Effect: ivrpay.EffectDispute, Reference: payinID, PaymentReference: paymentRef,
		Dispute: &ivrpay.DisputeDetails{Reference: disputeRef, Status: status}}
}

// apply receives a dispute event as the events endpoints do (through the
// inbox) and returns its chargeback, and whether the event changed it.
func (e *lcEnv) apply(ev ivrpay.ProcessorEvent) (*ivrpay.Chargeback, bool) {
	e.t.Helper()
	stored := paymentstest.Receive(e.t, e.store, ev)
	if stored.ObjectID == "" {
		e.t.Fatalf("dispute event %s (%s) was not applied to a chargeback: %s, %s", ev.ID, ev.Dispute.Status, stored.Status, stored.Note)
	}
	c, err := (&httpapi.Client{BaseURL: e.base, APIKey: e.admin}).GetChargeback(context.Background(), stored.ObjectID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, stored.Status == ivrpay.ProcessorEventApplied
}

// settledPayin charges cents over IVR and waits for the payin to settle.
func (e *lcEnv) settledPayin(cents int64) lcObj {
	e.t.Helper()
	id := e.approvedPayin(cents, map[string]any{"metadata": map[string]any{"invoice": "INV-" + lcKey("m")}})
	return e.waitPayinStatus(id, ivrpay.PayinStatusSucceeded)
}

// deliveryTypes lists the event types of an endpoint's deliveries, which
// are written with the change that emits them.
func (e *lcEnv) deliveryTypes(endpointID string) []string {
	e.t.Helper()
	ds := e.ok("GET", "/v1/webhook_endpoints/"+endpointID+"/deliveries?limit=100", e.admin, nil)
	results, _ := ds["results"].([]any)
	var out []string
	for _, x := range results {
		out = append(out, lcObj(x.(map[string]any)).str("event_type"))
	}
	return out
}

func chargebacksOf(p lcObj) []map[string]any {
	list, ok := p["chargebacks"].([]any)
	if !ok {
		return nil
	}
	out := []map[string]any{}
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

// TestChargebackLifecycle: a dispute event makes a chargeback that GET shows,
// the payin lists and a signed webhook announces; each change is announced
// once, and repeated or reordered events change nothing.
func TestChargebackLifecycle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 10*time.Millisecond)
		rcv := lcNewReceiver(t)
		e.createEndpoint(rcv)
		onlyChargebacks := e.createEndpoint(lcNewReceiver(t), ivrpay.ChargebackEventTypes()...)
		cbEndpoint := onlyChargebacks.str("webhook_endpoint_id")

		p := e.settledPayin(1500)
		payinID := p.str("payin_id")
		if cbs := chargebacksOf(p); cbs == nil || len(cbs) != 0 {
			t.Fatalf("payin without chargebacks: chargebacks = %v, want []", p["chargebacks"])
		}
		proc, _ := p["processor"].(map[string]any)
		paymentRef, _ := proc["reference"].(string)
		if paymentRef == "" {
			t.Fatalf("settled payin has no processor reference: %v", p)
		}

		// The dispute names the payment by the processor's reference only.
		respondBy := time.Now().UTC().Add(7 * 24 * time.Hour).Truncate(time.Second)
		open := disputeEvent("", paymentRef, "du_"+lcKey("d"), ivrpay.ChargebackStatusDisputeActionRequired)
		open.Dispute.Amount, open.Dispute.Currency = 1500, "usd"
		open.Dispute.ReasonCode, open.Dispute.ReasonDesc = "fraudulent", "The cardholder says they did not make this payment"
		open.Dispute.RespondBy, open.Dispute.DashboardURL = &respondBy, "https://dashboard.example/disputes/1"
		cb, changed := e.apply(open)
		if !changed || cb.Status != ivrpay.ChargebackStatusDisputeActionRequired {
			t.Fatalf("first dispute event: changed %v, %+v", changed, cb)
		}
		wantID(t, cb.ID, "chb_")

		got := e.ok("GET", "/v1/chargebacks/"+cb.ID, e.admin, nil)
		want := map[string]any{"chargeback_id": cb.ID, "payin_id": payinID, "merchant_id": e.merchantID, "platform_id": e.platformID,
			"amount": float64(1500), "currency_code": "USD", "status": "DISPUTE_ACTION_REQUIRED", "reason_code": "fraudulent",
			"reason_desc": "The cardholder says they did not make this payment", "method_type": "CARD",
			"card":       map[string]any{"brand": "VISA", "last_4": "1111"},
			"metadata":   p["metadata"],
			"processor":  map[string]any{"account": "sandbox", "kind": "sandbox", "reference": open.Dispute.Reference, "dashboard_url": "https://dashboard.example/disputes/1"},
			"respond_by": respondBy.Format(time.RFC3339), "created_at": got["created_at"], "updated_at": got["updated_at"]}
		if got["metadata"] == nil || !reflect.DeepEqual(map[string]any(got), want) {
			t.Fatalf("GET chargeback =\n%v\nwant\n%v", got, want)
		}

		// The payin lists it and stays SUCCEEDED, in GET, lists and webhooks.
		p = e.payin(payinID)
		summary := []map[string]any{{"chargeback_id": cb.ID, "status": "DISPUTE_ACTION_REQUIRED", "amount": float64(1500)}}
		if p.str("status") != ivrpay.PayinStatusSucceeded || !reflect.DeepEqual(chargebacksOf(p), summary) {
			t.Fatalf("payin after the dispute: status %s, chargebacks %v", p.str("status"), p["chargebacks"])
		}
		l := e.ok("GET", "/v1/payins?limit=100", e.admin, nil)
		found := false
		for _, x := range l["results"].([]any) {
			if o := lcObj(x.(map[string]any)); o.str("payin_id") == payinID {
				found = reflect.DeepEqual(chargebacksOf(o), summary)
			} else if cbs := chargebacksOf(o); cbs == nil || len(cbs) != 0 {
				t.Fatalf("another payin in the list has chargebacks %v", o["chargebacks"])
			}
		}
		if !found {
			t.Fatalf("GET /v1/payins does not list payin %s with its chargeback: %v", payinID, l)
		}
		ev := rcv.wait(t, "chargeback.dispute_action_required", "chargeback_id", cb.ID)
		if !reflect.DeepEqual(map[string]any(ev.Data), map[string]any(got)) {
			t.Fatalf("webhook data =\n%v\nGET =\n%v", ev.Data, got)
		}
		if ev.Header.Get("svix-signature") != ev.Header.Get("webhook-signature") || ev.Header.Get("webhook-signature") == "" {
			t.Fatalf("webhook headers %v", ev.Header)
		}

		// Repeats and late events change nothing: the same status again (a
		// second event id), and an inquiry status that the dispute is past.
		for _, st := range []string{ivrpay.ChargebackStatusDisputeActionRequired, ivrpay.ChargebackStatusInquiryActionRequired, ivrpay.ChargebackStatusInquiryProcessing} {
			again := disputeEvent(payinID, paymentRef, open.Dispute.Reference, st)
			again.Dispute.Amount = 1
			if c, changed := e.apply(again); changed || c.Status != ivrpay.ChargebackStatusDisputeActionRequired || c.Amount != 1500 {
				t.Fatalf("%s after DISPUTE_ACTION_REQUIRED: changed %v, %+v", st, changed, c)
			}
		}
		if types := e.deliveryTypes(cbEndpoint); !reflect.DeepEqual(types, []string{"chargeback.dispute_action_required"}) {
			t.Fatalf("deliveries after repeats = %v", types)
		}

		// Lost: one webhook; then a late CHARGEBACK_PROCESSING and a WON change nothing.
		lost := disputeEvent(payinID, "", open.Dispute.Reference, ivrpay.ChargebackStatusLost)
		if c, changed := e.apply(lost); !changed || c.Status != ivrpay.ChargebackStatusLost || c.ID != cb.ID ||
			c.RespondBy == nil || !c.RespondBy.Equal(respondBy) || c.ReasonCode != "fraudulent" {
			t.Fatalf("LOST: changed %v, %+v", changed, c)
		}
		for _, st := range []string{ivrpay.ChargebackStatusChargebackProcessing, ivrpay.ChargebackStatusWon, ivrpay.ChargebackStatusLost} {
			if c, changed := e.apply(disputeEvent(payinID, "", open.Dispute.Reference, st)); changed || c.Status != ivrpay.ChargebackStatusLost {
				t.Fatalf("%s after LOST: changed %v, %+v", st, changed, c)
			}
		}
		lostEv := rcv.wait(t, "chargeback.lost", "chargeback_id", cb.ID)
		if lostEv.Data.str("status") != "LOST" || lostEv.Data.str("payin_id") != payinID {
			t.Fatalf("chargeback.lost data %v", lostEv.Data)
		}
		if types := e.deliveryTypes(cbEndpoint); !reflect.DeepEqual(types, []string{"chargeback.dispute_action_required", "chargeback.lost"}) {
			t.Fatalf("deliveries = %v, want one per change", types)
		}
		p = e.payin(payinID)
		if p.str("status") != ivrpay.PayinStatusSucceeded || chargebacksOf(p)[0]["status"] != "LOST" {
			t.Fatalf("payin after LOST: %v", p)
		}
	})
}

// TestChargebackMatching: a dispute reaches only a payin of its own account;
// one that matches none waits in the inbox, to be retried, and one whose
// status no adapter mapped is ignored.
func TestChargebackMatching(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 10*time.Millisecond)
		payinID := e.settledPayin(1000).str("payin_id")
		for _, tc := range []struct {
			name string
			ev   ivrpay.ProcessorEvent
		}{
			{"unknown payin", disputeEvent("sbx_pyi_0000000000000000000000000000", "", "du_x1", ivrpay.ChargebackStatusLost)},
			{"unknown payment reference", disputeEvent("", "pi_unknown", "du_x2", ivrpay.ChargebackStatusLost)},
			{"another account's payin", func() ivrpay.ProcessorEvent {
				ev := disputeEvent(payinID, "", "du_x3", ivrpay.ChargebackStatusLost)
				ev.Account, ev.Kind = "stripe-live", "stripe"
				return ev
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if ev := paymentstest.Receive(t, e.store, tc.ev); ev.Status != ivrpay.ProcessorEventPending || !strings.Contains(ev.Note, "no payin") {
					t.Fatalf("event %s: %s %q, want PENDING for want of its payin", ev.ID, ev.Status, ev.Note)
				}
			})
		}
		bad := disputeEvent(payinID, "", "du_x4", "needs_response")
		if ev := paymentstest.Receive(t, e.store, bad); ev.Status != ivrpay.ProcessorEventIgnored {
			t.Fatalf("a dispute with an unmapped status: %s %q, want IGNORED", ev.Status, ev.Note)
		}
		if l := e.ok("GET", "/v1/chargebacks", e.admin, nil); l.num("total_results") != 0 {
			t.Fatalf("refused disputes left chargebacks: %v", l)
		}
	})
}

// TestChargebackListFilters: GET /v1/chargebacks filters by merchant, payin
// and status, pages with limit/start_key, and names the bad filter.
func TestChargebackListFilters(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 10*time.Millisecond)
		p1, p2 := e.settledPayin(1000).str("payin_id"), e.settledPayin(2000).str("payin_id")
		inquiry, _ := e.apply(disputeEvent(p1, "", "du_"+lcKey("a"), ivrpay.ChargebackStatusInquiryActionRequired))
		dispute, _ := e.apply(disputeEvent(p2, "", "du_"+lcKey("b"), ivrpay.ChargebackStatusDisputeActionRequired))
		second, _ := e.apply(disputeEvent(p2, "", "du_"+lcKey("c"), ivrpay.ChargebackStatusChargebackProcessing))
		if p := e.payin(p2); len(chargebacksOf(p)) != 2 || chargebacksOf(p)[0]["chargeback_id"] != dispute.ID || chargebacksOf(p)[1]["chargeback_id"] != second.ID {
			t.Fatalf("payin with two chargebacks lists %v", p["chargebacks"])
		}
		ids := func(query string) []string {
			l := e.ok("GET", "/v1/chargebacks"+query, e.admin, nil)
			var out []string
			for _, x := range l["results"].([]any) {
				out = append(out, lcObj(x.(map[string]any)).str("chargeback_id"))
			}
			if int(l.num("total_results")) < len(out) {
				t.Fatalf("%s: total_results %d for %d results", query, l.num("total_results"), len(out))
			}
			return out
		}
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			{"all", "", []string{inquiry.ID, dispute.ID, second.ID}},
			{"merchant", "?merchant_id=" + e.merchantID, []string{inquiry.ID, dispute.ID, second.ID}},
			{"payin", "?payin_id=" + p2, []string{dispute.ID, second.ID}},
			{"status", "?status=INQUIRY_ACTION_REQUIRED", []string{inquiry.ID}},
			{"payin and status", "?payin_id=" + p2 + "&status=CHARGEBACK_PROCESSING", []string{second.ID}},
			{"no match", "?status=WON", nil},
			{"first page", "?limit=2", []string{inquiry.ID, dispute.ID}},
			{"next page", "?limit=2&start_key=" + url.QueryEscape(dispute.ID), []string{second.ID}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := ids(tc.query); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("GET /v1/chargebacks%s = %v, want %v", tc.query, got, tc.want)
				}
			})
		}
		for _, tc := range []struct{ query, field string }{
			{"?status=lost", "status"},
			{"?merchant_id=" + p1, "merchant_id"},
			{"?payin_id=" + e.merchantID, "payin_id"},
			{"?limit=0", "limit"},
		} {
			t.Run("bad "+tc.field, func(t *testing.T) {
				r := e.do("GET", "/v1/chargebacks"+tc.query, e.admin, nil)
				if r.status != 400 || len(r.errors) != 1 || r.errors[0].Field != tc.field {
					t.Fatalf("GET /v1/chargebacks%s: HTTP %d %s, want 400 on %s", tc.query, r.status, r.raw, tc.field)
				}
			})
		}
		e.refused(404, "EntityNotFound", "GET", "/v1/chargebacks/sbx_chb_0000000000000000000000000000", e.admin, nil)
		// Our own Go client reads them as the domain type.
		api := &httpapi.Client{BaseURL: e.base, APIKey: e.admin}
		c, err := api.GetChargeback(context.Background(), second.ID)
		if err != nil || c.Status != ivrpay.ChargebackStatusChargebackProcessing || c.RespondBy != nil || c.PayinID != p2 {
			t.Fatalf("GetChargeback = %+v, %v", c, err)
		}
		l, err := api.ListChargebacks(context.Background(), ivrpay.ChargebackFilter{Page: ivrpay.Page{Limit: 1}, PayinID: p2})
		if err != nil || l.TotalResults != 2 || len(l.Results) != 1 || l.Results[0].ID != dispute.ID || l.LastKey != dispute.ID {
			t.Fatalf("ListChargebacks = %+v, %v", l, err)
		}
	})
}

// TestSandboxDisputeTriggers: the sandbox processor's triggers end to end,
// as a platform sees them: an IVR charge of 51.30 settles, a chargeback
// opens (DISPUTE_ACTION_REQUIRED, with a deadline) and is LOST one settle
// delay later; one of 51.31 gets an inquiry that ends WON. Each step is a
// signed webhook, and the payin stays SUCCEEDED.
func TestSandboxDisputeTriggers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		const settleAfter = 300 * time.Millisecond
		e := lcSetup(t, engine, settleAfter)
		rcv := lcNewReceiver(t)
		e.createEndpoint(rcv)
		for _, tc := range []struct {
			cents      int64
			open, end  string
			openReason string
			refundCode int // HTTP status of a refund once the dispute ended
		}{
			{sandbox.ChargebackAmount, ivrpay.ChargebackStatusDisputeActionRequired, ivrpay.ChargebackStatusLost, "fraudulent", 409},
			{sandbox.InquiryAmount, ivrpay.ChargebackStatusInquiryActionRequired, ivrpay.ChargebackStatusWon, "general", 200},
		} {
			t.Run(ivrpay.FormatDollars(tc.cents), func(t *testing.T) {
				payinID := e.approvedPayin(tc.cents, nil)
				rcv.wait(t, ivrpay.EventPayinSucceeded, "payin_id", payinID)
				opened := rcv.wait(t, ivrpay.ChargebackEventType(tc.open), "payin_id", payinID)
				cbID := opened.Data.str("chargeback_id")
				if opened.Data.str("status") != tc.open || opened.Data.num("amount") != tc.cents || opened.Data.str("reason_code") != tc.openReason ||
					opened.Data["respond_by"] == nil {
					t.Fatalf("%s data %v", opened.Type, opened.Data)
				}
				ended := rcv.wait(t, ivrpay.ChargebackEventType(tc.end), "chargeback_id", cbID)
				if ended.Data.str("status") != tc.end || ended.Data.str("payin_id") != payinID {
					t.Fatalf("%s data %v", ended.Type, ended.Data)
				}
				got := e.ok("GET", "/v1/chargebacks/"+cbID, e.admin, nil)
				proc, _ := got["processor"].(map[string]any)
				if got.str("status") != tc.end || proc["account"] != ivrpay.SandboxAccount || proc["reference"] == "" {
					t.Fatalf("GET chargeback = %v", got)
				}
				p := e.payin(payinID)
				if p.str("status") != ivrpay.PayinStatusSucceeded || !reflect.DeepEqual(chargebacksOf(p),
					[]map[string]any{{"chargeback_id": cbID, "status": tc.end, "amount": float64(tc.cents)}}) {
					t.Fatalf("payin after its dispute: %v", p)
				}
				// One webhook per step, for this chargeback.
				count := 0
				rcv.mu.Lock()
				for _, ev := range rcv.events {
					if ev.Data.str("chargeback_id") == cbID {
						count++
					}
				}
				rcv.mu.Unlock()
				if count != 2 {
					t.Fatalf("%d chargeback webhooks for %s, want 2 (opened, ended)", count, cbID)
				}
				// A lost dispute gave the money back already: no refund; a won inquiry's payin refunds.
				if r := e.voidOrRefund(payinID, map[string]any{"idempotency_key": lcKey("r"), "reason": "REQUESTED_BY_CUSTOMER"}); r.status != tc.refundCode {
					t.Fatalf("refund after %s: HTTP %d %s, want %d", tc.end, r.status, r.raw, tc.refundCode)
				}
			})
		}
	})
}

// TestSandboxDisputeOfPartialCapture: an authorization of 51.30 captured in
// part is disputed for what was captured, not for what was authorized: a
// chargeback never claims back more than was taken.
func TestSandboxDisputeOfPartialCapture(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 300*time.Millisecond)
		rcv := lcNewReceiver(t)
		e.createEndpoint(rcv, "chargeback.dispute_action_required")
		const captured = 5000
		payinID := e.approvedPayin(sandbox.ChargebackAmount, map[string]any{"processing_mode": "AUTHORIZE"})
		if p := e.ok("POST", "/v1/payins/"+payinID+"/capture", e.admin, map[string]any{"amount": captured}); p.num("captured_amount") != captured {
			t.Fatalf("captured payin = %v", p)
		}
		opened := rcv.wait(t, "chargeback.dispute_action_required", "payin_id", payinID)
		cbID := opened.Data.str("chargeback_id")
		if got := e.ok("GET", "/v1/chargebacks/"+cbID, e.admin, nil); got.num("amount") != captured || opened.Data.num("amount") != captured {
			t.Fatalf("chargeback of a 51.30 authorization captured for 50.00: GET %v, webhook %v; want amount %d", got, opened.Data, captured)
		}
		p := e.payin(payinID)
		if p.num("amount") != sandbox.ChargebackAmount || len(chargebacksOf(p)) != 1 || chargebacksOf(p)[0]["amount"] != float64(captured) {
			t.Fatalf("payin after its dispute: %v", p)
		}
	})
}

// TestRefundOfDisputedPayin: a refund of a payin one of whose chargebacks
// has taken the money back, or may still, is a 409 naming the chargeback
// and its status, refused before the processor is asked and writing
// nothing (no refund, the idempotency key still free); an inquiry or a WON
// dispute allows it.
func TestRefundOfDisputedPayin(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		proc := sandbox.New()
		e := lcSetup(t, engine, 10*time.Millisecond, func(c *paymentstest.Config) { c.Processor = proc })
		for _, tc := range []struct {
			statuses []string // one chargeback of the payin in each status
			refused  string   // the status the refusal names; "" when the refund is accepted
		}{
			{[]string{ivrpay.ChargebackStatusInquiryActionRequired}, ""},
			{[]string{ivrpay.ChargebackStatusInquiryProcessing}, ""},
			{[]string{ivrpay.ChargebackStatusDisputeActionRequired}, ivrpay.ChargebackStatusDisputeActionRequired},
			{[]string{ivrpay.ChargebackStatusChargebackProcessing}, ivrpay.ChargebackStatusChargebackProcessing},
			{[]string{ivrpay.ChargebackStatusProvisionalWin}, ivrpay.ChargebackStatusProvisionalWin},
			{[]string{ivrpay.ChargebackStatusWon}, ""},
			{[]string{ivrpay.ChargebackStatusLost}, ivrpay.ChargebackStatusLost},
			{[]string{ivrpay.ChargebackStatusWon, ivrpay.ChargebackStatusLost}, ivrpay.ChargebackStatusLost},
		} {
			t.Run(strings.Join(tc.statuses, "+"), func(t *testing.T) {
				payinID := e.settledPayin(2000).str("payin_id")
				var refusing *ivrpay.Chargeback
				for _, st := range tc.statuses {
					cb, changed := e.apply(disputeEvent(payinID, "", "du_"+lcKey("r"), st))
					if !changed || cb.Status != st {
						t.Fatalf("dispute event %s: changed %v, %+v", st, changed, cb)
					}
					if st == tc.refused {
						refusing = cb
					}
				}
				key := lcKey("refund")
				calls := proc.Calls()
				r := e.voidOrRefund(payinID, map[string]any{"idempotency_key": key, "reason": "REQUESTED_BY_CUSTOMER", "amount": 500})
				if tc.refused == "" {
					if r.status != 200 || r.obj(t).str("type") != "REFUND" || r.obj(t).str("refund_status") != ivrpay.RefundStatusProcessing {
						t.Fatalf("refund with chargebacks %v: HTTP %d %s, want a PROCESSING refund", tc.statuses, r.status, r.raw)
					}
					if p := e.payin(payinID); p.num("refundable_amount") != 1500 || len(p["refunds"].([]any)) != 1 {
						t.Fatalf("payin after the refund: %v", p)
					}
					return
				}
				for _, body := range []map[string]any{
					{"idempotency_key": key, "reason": "REQUESTED_BY_CUSTOMER", "amount": 500},
					{"idempotency_key": key, "reason": "FRAUDULENT", "type": "REFUND"}, // all of it, type stated
				} {
					r := e.voidOrRefund(payinID, body)
					if r.status != 409 || len(r.errors) != 1 || r.errors[0].Code != ivrpay.ECONFLICT || r.errors[0].Field != "" {
						t.Fatalf("refund %v with chargebacks %v: HTTP %d %s, want 409 Conflict", body, tc.statuses, r.status, r.raw)
					}
					if msg := r.errors[0].Message; !strings.Contains(msg, refusing.ID) || !strings.Contains(msg, tc.refused) || !strings.Contains(msg, "twice") {
						t.Fatalf("refusal %q does not name chargeback %s, its status %s and why", msg, refusing.ID, tc.refused)
					}
				}
				if r.status != 409 {
					t.Fatalf("first refund: HTTP %d %s, want 409", r.status, r.raw)
				}
				if got := proc.Calls(); got != calls {
					t.Fatalf("the processor was asked %d times for refused refunds", got-calls)
				}
				p := e.payin(payinID)
				if refunds, _ := p["refunds"].([]any); p.str("status") != ivrpay.PayinStatusSucceeded || p.num("refundable_amount") != 0 ||
					p.str("non_refundable_reason_code") != ivrpay.NonRefundableHasChargebacks || len(refunds) != 0 {
					t.Fatalf("payin after refused refunds: %v", p)
				}
				// Nothing kept the key: it refunds another payin of the merchant.
				other := e.settledPayin(1000).str("payin_id")
				if r := e.voidOrRefund(other, map[string]any{"idempotency_key": key, "reason": "REQUESTED_BY_CUSTOMER"}); r.status != 200 ||
					r.obj(t).str("payin_id") != other || r.obj(t).num("amount") != 1000 {
					t.Fatalf("the refused request's key on another payin: HTTP %d %s, want its refund", r.status, r.raw)
				}
			})
		}
	})
}

// TestChargebackWildcardSubscription: an endpoint registered with
// "chargeback.*" (SPEC §7's name for the family) keeps the pattern as given
// and receives every chargeback event of the sandbox's 51.30 dispute, once
// each, and no payin event; one that adds "payin.*" gets those too.
// Malformed patterns are refused naming the element, and write nothing.
func TestChargebackWildcardSubscription(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, 300*time.Millisecond)
		cbRcv, bothRcv := lcNewReceiver(t), lcNewReceiver(t)
		cbOnly := e.createEndpoint(cbRcv, "chargeback.*")
		both := e.createEndpoint(bothRcv, "payin.*", "chargeback.*")
		for _, ep := range []lcObj{cbOnly, e.ok("GET", "/v1/webhook_endpoints/"+cbOnly.str("webhook_endpoint_id"), e.admin, nil)} {
			if !reflect.DeepEqual(ep["events"], []any{"chargeback.*"}) {
				t.Fatalf("endpoint events = %v, want the pattern as registered", ep["events"])
			}
		}

		payinID := e.approvedPayin(sandbox.ChargebackAmount, nil)
		opened := cbRcv.wait(t, "chargeback.dispute_action_required", "payin_id", payinID)
		cbID := opened.Data.str("chargeback_id")
		cbRcv.wait(t, "chargeback.lost", "chargeback_id", cbID)
		bothRcv.wait(t, "chargeback.lost", "chargeback_id", cbID)
		wantCB := []string{"chargeback.dispute_action_required", "chargeback.lost"}
		if got := e.deliveryTypes(cbOnly.str("webhook_endpoint_id")); !reflect.DeepEqual(got, wantCB) {
			t.Fatalf("deliveries to the chargeback.* endpoint = %v, want %v (no payin event, each chargeback event once)", got, wantCB)
		}
		// The payin's events were written before its dispute opened.
		want := append([]string{ivrpay.EventPayinProcessing, ivrpay.EventPayinSucceeded}, wantCB...)
		if got := e.deliveryTypes(both.str("webhook_endpoint_id")); !reflect.DeepEqual(got, want) {
			t.Fatalf("deliveries to the payin.* + chargeback.* endpoint = %v, want %v", got, want)
		}

		for _, pattern := range []string{"charge*", "chargeback.", "*.lost", "chargeback.**", "chargeback.*.lost", "invoice.*", "chargeback*", "**"} {
			t.Run(pattern, func(t *testing.T) {
				r := e.do("POST", "/v1/webhook_endpoints", e.admin, map[string]any{"url": cbRcv.URL, "events": []string{"payin.*", pattern}})
				if r.status != 400 || len(r.errors) != 1 || r.errors[0].Field != "events[1]" || !strings.Contains(r.errors[0].Message, pattern) {
					t.Fatalf("events [payin.* %s]: HTTP %d %s, want a 400 naming events[1] and the pattern", pattern, r.status, r.raw)
				}
			})
		}
		if l := e.ok("GET", "/v1/webhook_endpoints?limit=100", e.admin, nil); len(l["results"].([]any)) != 2 {
			t.Fatalf("endpoints after the refusals: %v, want the 2 created", l["results"])
		}
	})
}
