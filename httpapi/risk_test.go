package httpapi_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// The risk rules of SPEC §11 through the connector, on every engine: the
// attempt past a threshold never reaches the processor (the sandbox counts
// its calls), a normal card on a new config still charges, and clearing the
// block gives the processor back.

// riskBundle is a served store whose sandbox processor counts its calls.
type riskBundle struct {
	*bundle
	proc    *sandbox.Processor
	metrics *countingRiskMetrics
	key     string // the IVR key (payin:create)
}

func setupRisk(t *testing.T, engine string) *riskBundle {
	proc, metrics := sandbox.New(), &countingRiskMetrics{counts: map[string]int{}}
	b := setup(t, engine, func(c *paymentstest.Config) { c.Processor, c.RiskMetrics = proc, metrics })
	return &riskBundle{bundle: b, proc: proc, metrics: metrics, key: b.ivrKey("payin:create")}
}

// countingRiskMetrics is what /metrics counts, per rule.
type countingRiskMetrics struct {
	mu     sync.Mutex
	counts map[string]int // "refused/rule", "blocked/rule"
}

func (m *countingRiskMetrics) Refused(rule string) { m.add("refused/" + rule) }
func (m *countingRiskMetrics) Blocked(rule string) { m.add("blocked/" + rule) }
func (m *countingRiskMetrics) add(k string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[k]++
}

func (m *countingRiskMetrics) wantCount(t *testing.T, key string, want int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts[key] != want {
		t.Fatalf("metric %s = %d, want %d (all: %v)", key, m.counts[key], want, m.counts)
	}
}

var riskCardSeq atomic.Int64

// freshCard is a Luhn-valid Visa no other test uses and no sandbox trigger lists.
func freshCard() string {
	return card.CompleteLuhn(fmt.Sprintf("42424%010d", riskCardSeq.Add(1)+time.Now().UnixNano()%1e9))
}

// declineAmount makes the sandbox decline any card (DECLINED).
const declineAmount = 5101

// attempt charges card on a new payin config of amount cents (of merchant)
// with the given caller ("" sends none) and returns the answer.
func (b *riskBundle) attempt(t *testing.T, merchant, pan, caller string, amount int64) connResp {
	t.Helper()
	return b.attemptOn(t, b.payinConfig(b.admin, merchant, amount, nil), pan, caller, amount)
}

func (b *riskBundle) attemptOn(t *testing.T, cfg, pan, caller string, amount int64) connResp {
	t.Helper()
	params := map[string]any{"payin_config_id": cfg}
	if caller != "" {
		params["caller"] = caller
	}
	return b.on(t).ivr(b.key, with(chargeBody(cfg), "cardnumber", pan, "amount", ivrpay.FormatDollars(amount), "parameters", params))
}

// wantCalls runs f and checks how many processor calls it made.
func (b *riskBundle) wantCalls(t *testing.T, want int64, what string, f func()) {
	t.Helper()
	before := b.proc.Calls()
	f()
	if got := b.proc.Calls() - before; got != want {
		t.Fatalf("%s made %d processor calls, want %d", what, got, want)
	}
}

// wantRiskRefusal checks a refused attempt: the code, a message naming the
// rule, and the FAILED payin with refusal_code RISK_BLOCKED it records.
func (b *riskBundle) wantRiskRefusal(t *testing.T, r connResp, code, names string) {
	t.Helper()
	msg := r.wantErr(t, "charge", code, 200)
	if !strings.Contains(msg, names) {
		t.Fatalf("the refusal %q does not name %q", msg, names)
	}
	p := b.api("GET", "/v1/payins/"+r.Params["payin_id"], b.admin, nil)
	wantStatus(t, p, 200)
	d := p.data(t)
	if d["status"] != "FAILED" || d["refusal_code"] != ivrpay.RefusalRiskBlocked {
		t.Fatalf("the refused attempt's payin is %v/%v, want FAILED/RISK_BLOCKED", d["status"], d["refusal_code"])
	}
}

func (b *riskBundle) block(t *testing.T, kind string) ivrpay.RiskBlock {
	t.Helper()
	blocks, err := b.store.ListRiskBlocks(context.Background(), b.platformID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, bl := range blocks {
		if bl.Kind == kind {
			return bl
		}
	}
	t.Fatalf("no active %s block in %+v", kind, blocks)
	return ivrpay.RiskBlock{}
}

func (b *riskBundle) clear(t *testing.T, kind, value string) {
	t.Helper()
	if _, err := b.store.ClearRiskBlock(context.Background(), kind, value, time.Now()); err != nil {
		t.Fatalf("ClearRiskBlock(%s, %s): %v", kind, value, err)
	}
}

func (b *riskBundle) wantAudit(t *testing.T, action, target string) {
	t.Helper()
	events, err := b.store.ListAudit(context.Background(), ivrpay.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e ivrpay.AuditEvent) bool { return strings.HasPrefix(e.Target, target) }) {
		t.Fatalf("no %s audit row on %s in %+v", action, target, events)
	}
}

func TestRiskCardVelocity(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		stolen := "4000000000000002" // declined by the sandbox whatever the amount
		for i := range 3 {
			b.wantCalls(t, 1, fmt.Sprintf("decline %d", i+1), func() {
				b.attempt(t, b.merchantID, stolen, "", 1000).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
			})
		}
		var refused connResp
		b.wantCalls(t, 0, "the fourth attempt of the card", func() { refused = b.attempt(t, b.merchantID, stolen, "", 1000) })
		b.wantRiskRefusal(t, refused, ivrpay.ConnRiskBlocked, "card velocity")
		// What the caller learns is what a decline tells: the same parameters, no fingerprint.
		if !slices.Equal(mapKeys(refused.Params), []string{"card_brand", "card_last_4", "payin_id", "payin_status", "payment_method_id"}) {
			t.Fatalf("a refusal answers parameters %v", refused.Params)
		}
		blk := b.block(t, ivrpay.RiskKindCard)
		if strings.Contains(string(refused.Raw), blk.Value) {
			t.Fatalf("the refusal shows the card's fingerprint: %s", refused.Raw)
		}
		b.wantAudit(t, "risk.block", "card:")
		b.metrics.wantCount(t, "blocked/"+ivrpay.RiskRuleCardVelocity, 1)
		b.metrics.wantCount(t, "refused/"+ivrpay.RiskRuleCardVelocity, 1)

		b.wantCalls(t, 1, "a normal card on a new config", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
		b.clear(t, ivrpay.RiskKindCard, blk.Value)
		b.wantAudit(t, "risk.clear", "card:")
		b.wantCalls(t, 1, "the card once its block is cleared", func() {
			b.attempt(t, b.merchantID, stolen, "", 1000).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
		})
	})
}

func mapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestRiskCardVelocityOverREST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		// A card stored by an approved charge, then declined three times by amount.
		pan := freshCard()
		ok := b.attempt(t, b.merchantID, pan, "", 1000)
		ok.wantOK(t, "charge")
		pmID := ok.Params["payment_method_id"]
		for range 3 {
			b.attempt(t, b.merchantID, pan, "", declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
		}
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		var r apiResp
		b.wantCalls(t, 0, "charging the blocked stored card", func() {
			r = b.api("POST", "/v1/payment_methods/"+pmID+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
		})
		wantStatus(t, r, 409)
		if !strings.Contains(r.err().Message, "card velocity") {
			t.Fatalf("the 409 says %q, want the rule named", r.err().Message)
		}
		_, payins := b.api("GET", "/v1/payins?limit=1000", b.admin, nil).list(t)
		if !slices.ContainsFunc(payins, func(p map[string]any) bool {
			return p["payin_config_id"] == cfg && p["status"] == "FAILED" && p["refusal_code"] == ivrpay.RefusalRiskBlocked
		}) {
			t.Fatal("the refused REST charge recorded no FAILED payin with RISK_BLOCKED")
		}
		// The config stays usable: a normal card charges it.
		b.wantCalls(t, 1, "a normal card on the config a refusal left", func() {
			b.attemptOn(t, cfg, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
	})
}

func TestRiskConfigAttempts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		cfg := b.payinConfig(b.admin, b.merchantID, declineAmount, nil)
		for i := range 5 {
			b.wantCalls(t, 1, fmt.Sprintf("declined attempt %d", i+1), func() {
				b.attemptOn(t, cfg, freshCard(), "", declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
			})
		}
		var refused connResp
		b.wantCalls(t, 0, "the sixth attempt on the config", func() { refused = b.attemptOn(t, cfg, freshCard(), "", declineAmount) })
		b.wantRiskRefusal(t, refused, ivrpay.ConnConfigLocked, "create a new payin config")
		b.wantCalls(t, 1, "a normal card on a new config", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
		b.clear(t, ivrpay.RiskKindConfig, cfg)
		b.wantCalls(t, 1, "the config once cleared", func() {
			b.attemptOn(t, cfg, freshCard(), "", declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
		})
	})
}

func TestRiskCallerVelocity(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		const caller = "+15005550006"
		for i := range 3 {
			b.wantCalls(t, 1, fmt.Sprintf("card %d of the caller", i+1), func() {
				b.attempt(t, b.merchantID, freshCard(), caller, declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
			})
		}
		var refused connResp
		b.wantCalls(t, 0, "a fourth card from the caller", func() { refused = b.attempt(t, b.merchantID, freshCard(), caller, 1000) })
		b.wantRiskRefusal(t, refused, ivrpay.ConnRiskBlocked, "caller velocity")
		b.wantCalls(t, 1, "a normal card from another caller on a new config", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "+15005550007", 1000).wantOK(t, "charge")
		})
		b.wantCalls(t, 1, "a call that passes no caller", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
		b.clear(t, ivrpay.RiskKindCaller, caller) // the number alone, as an operator types it
		b.wantCalls(t, 1, "the caller once cleared", func() {
			b.attempt(t, b.merchantID, "4111111111111111", caller, 1000).wantOK(t, "charge")
		})
	})
}

func TestRiskMerchantBreaker(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		hook := b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": "http://127.0.0.1:9/hooks", "events": []string{ivrpay.EventMerchantRiskPaused}})
		wantStatus(t, hook, 200)
		// 19 declines and 1 approval: the breaker holds (too few declines).
		b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		for range ivrpay.MerchantBreakerDeclines - 1 {
			b.attempt(t, b.merchantID, freshCard(), "", declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
		}
		b.wantCalls(t, 1, "an attempt while the breaker holds", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
		// The 20th decline (20 of 22 attempts) trips it.
		b.attempt(t, b.merchantID, freshCard(), "", declineAmount).wantErr(t, "charge", ivrpay.RefusalDeclined, 200)
		var refused connResp
		b.wantCalls(t, 0, "a normal card of the paused merchant", func() { refused = b.attempt(t, b.merchantID, "4111111111111111", "", 1000) })
		b.wantRiskRefusal(t, refused, ivrpay.ConnRiskBlocked, "merchant breaker")
		if n := b.count(`events WHERE type = '` + ivrpay.EventMerchantRiskPaused + `'`); n != 1 {
			t.Fatalf("%d merchant.risk_paused events, want 1", n)
		}
		if n := b.count(`webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.type = '` + ivrpay.EventMerchantRiskPaused + `'`); n != 1 {
			t.Fatalf("%d deliveries of merchant.risk_paused, want 1", n)
		}
		b.wantAudit(t, "risk.block", "merchant:"+b.merchantID)
		b.metrics.wantCount(t, "blocked/"+ivrpay.RiskRuleMerchantBreaker, 1)
		other, err := b.store.CreateMerchantAsOperator(context.Background(), b.platformID, ivrpay.MerchantCreate{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		b.wantCalls(t, 1, "a normal card of another merchant", func() {
			b.attempt(t, other.ID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
		b.clear(t, ivrpay.RiskKindMerchant, b.merchantID)
		b.wantCalls(t, 1, "the merchant once cleared", func() {
			b.attempt(t, b.merchantID, "4111111111111111", "", 1000).wantOK(t, "charge")
		})
	})
}

func TestRiskMatchPolicy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setupRisk(t, engine)
		mismatch := func(t *testing.T) map[string]any {
			cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
			return with(chargeBody(cfg), "cvv", sandbox.ApproveMismatchCVC)
		}
		b.wantCalls(t, 1, "a CVC mismatch with the policy off (the default)", func() {
			b.ivr(b.key, mismatch(t)).wantOK(t, "charge")
		})
		settings := ivrpay.DefaultRiskSettings
		settings.RequireCVCMatch = true
		if _, err := b.store.SetPlatformRisk(context.Background(), b.platformID, settings); err != nil {
			t.Fatal(err)
		}
		var voided connResp
		b.wantCalls(t, 2, "an approval the policy refuses (the charge, then its void)", func() { voided = b.ivr(b.key, mismatch(t)) })
		msg := voided.wantErr(t, "charge", ivrpay.RefusalInvalidCardSecurityCode, 200)
		b.metrics.wantCount(t, "refused/"+ivrpay.RiskRuleCVCPolicy, 1)
		// The answer is the one a plain CVC decline gives: nothing says the issuer approved.
		plain := b.ivr(b.key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cvv", sandbox.DeclineCVC))
		if plainMsg := plain.wantErr(t, "charge", ivrpay.RefusalInvalidCardSecurityCode, 200); plainMsg != msg {
			t.Fatalf("the voided approval answers %q, a CVC decline %q: the caller can tell them apart", msg, plainMsg)
		}
		p := b.api("GET", "/v1/payins/"+voided.Params["payin_id"], b.admin, nil).data(t)
		if p["status"] != "FAILED" || p["refusal_code"] != ivrpay.RefusalInvalidCardSecurityCode || p["cvc_result_code"] != "N" {
			t.Fatalf("the voided payin is %v/%v cvc %v, want FAILED/INVALID_CARD_SECURITY_CODE cvc N", p["status"], p["refusal_code"], p["cvc_result_code"])
		}
		b.wantCalls(t, 1, "a matching CVC under the policy", func() {
			b.ivr(b.key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		})
		settings.RequireCVCMatch, settings.RequireAVSMatch = false, true
		if _, err := b.store.SetPlatformRisk(context.Background(), b.platformID, settings); err != nil {
			t.Fatal(err)
		}
		b.wantCalls(t, 1, "a CVC mismatch once the policy is off again", func() { b.ivr(b.key, mismatch(t)).wantOK(t, "charge") })
		b.wantCalls(t, 2, "an AVS mismatch under require_avs_match", func() {
			cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
			b.ivr(b.key, with(chargeBody(cfg), "postal_code", sandbox.ApproveMismatchPostalCode)).
				wantErr(t, "charge", ivrpay.RefusalIncorrectPaymentInformation, 200)
		})
	})
}
