package ivrpay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/card"
)

// The risk rules (SPEC §11) as functions of counts.

var riskAt = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// marksAgo is one card's declines, the given durations before riskAt, oldest first.
func marksAgo(card string, ago ...time.Duration) []RiskMark {
	out := make([]RiskMark, len(ago))
	for i, d := range ago {
		out[i] = RiskMark{At: riskAt.Add(-d), Card: card}
	}
	return out
}

// everyAgo is n declines of one card, `step` apart, the last at riskAt.
func everyAgo(n int, step time.Duration) []RiskMark {
	ago := make([]time.Duration, n)
	for i := range ago {
		ago[i] = time.Duration(n-1-i) * step
	}
	return marksAgo("c1", ago...)
}

func TestRiskBlocksAfterDecline(t *testing.T) {
	t.Parallel()
	a := RiskAttempt{PlatformID: "plt", MerchantID: "mid", ConfigID: "cfg", CardFingerprint: "fp", CardBrand: card.Visa,
		CardLast4: "0002", Caller: "+15550100", IVR: true}
	cardSub, cfgSub := RiskSubject{RiskKindCard, "fp"}, RiskSubject{RiskKindConfig, "cfg"}
	callerSub := RiskSubject{RiskKindCaller, "plt:+15550100"}
	type want struct {
		kind, rule string
		until      time.Time
	}
	for _, tc := range []struct {
		name     string
		settings RiskSettings
		brand    card.Brand
		declines RiskDeclines
		want     []want
	}{
		{"two declines of a card in an hour: nothing", DefaultRiskSettings, card.Visa,
			RiskDeclines{cardSub: marksAgo("c1", 50*time.Minute, 0)}, nil},
		{"the third decline in an hour blocks the card for an hour", DefaultRiskSettings, card.Visa,
			RiskDeclines{cardSub: marksAgo("c1", 50*time.Minute, 20*time.Minute, 0)},
			[]want{{RiskKindCard, RiskRuleCardVelocity, riskAt.Add(time.Hour)}}},
		{"three declines spread over more than an hour: nothing", DefaultRiskSettings, card.Visa,
			RiskDeclines{cardSub: marksAgo("c1", 61*time.Minute, 30*time.Minute, 0)}, nil},
		{"a platform's own threshold", RiskSettings{CardDeclines: 5, ConfigAttempts: 5, CallerDeclines: 3}, card.Visa,
			RiskDeclines{cardSub: marksAgo("c1", 40*time.Minute, 30*time.Minute, 20*time.Minute, 0)}, nil},
		{"Mastercard's 10 in 24 h: blocked until the oldest of them is a day old", DefaultRiskSettings, card.Mastercard,
			RiskDeclines{cardSub: everyAgo(10, 2*time.Hour)},
			[]want{{RiskKindCard, RiskRuleCardNetworkCap, riskAt.Add(-18 * time.Hour).Add(24 * time.Hour)}}},
		{"nine Mastercard declines in 24 h: nothing", DefaultRiskSettings, card.Mastercard,
			RiskDeclines{cardSub: everyAgo(9, 2*time.Hour)}, nil},
		{"Visa's 15 in 30 days", DefaultRiskSettings, card.Visa,
			RiskDeclines{cardSub: everyAgo(15, 24*time.Hour)},
			[]want{{RiskKindCard, RiskRuleCardNetworkCap, riskAt.Add(-14 * 24 * time.Hour).Add(30 * 24 * time.Hour)}}},
		{"ten Visa declines in a day are within Visa's cap", DefaultRiskSettings, card.Visa,
			RiskDeclines{cardSub: everyAgo(10, 2*time.Hour)}, nil},
		{"the cap's end wins over the hour when it is later", DefaultRiskSettings, card.Mastercard,
			RiskDeclines{cardSub: marksAgo("c1", 18*time.Hour, 15*time.Hour, 12*time.Hour, 9*time.Hour, 6*time.Hour, 3*time.Hour,
				3*time.Minute, 2*time.Minute, time.Minute, 0)},
			[]want{{RiskKindCard, RiskRuleCardNetworkCap, riskAt.Add(-18 * time.Hour).Add(24 * time.Hour)}}},
		{"the fifth declined attempt locks the config", DefaultRiskSettings, card.Visa,
			RiskDeclines{cfgSub: marksAgo("x", 5*time.Hour, 4*time.Hour, 3*time.Hour, 2*time.Hour, 0)},
			[]want{{RiskKindConfig, RiskRuleConfigAttempts, riskAt.Add(ConfigLockFor)}}},
		{"four declined attempts on a config: nothing", DefaultRiskSettings, card.Visa,
			RiskDeclines{cfgSub: marksAgo("x", 4*time.Hour, 3*time.Hour, 2*time.Hour, 0)}, nil},
		{"three different cards declined for a caller in an hour", DefaultRiskSettings, card.Visa,
			RiskDeclines{callerSub: append(append(marksAgo("c1", 30*time.Minute), marksAgo("c2", 20*time.Minute)...), marksAgo("c3", 0)...)},
			[]want{{RiskKindCaller, RiskRuleCallerVelocity, riskAt.Add(time.Hour)}}},
		{"three declines of two cards for a caller: nothing", DefaultRiskSettings, card.Visa,
			RiskDeclines{callerSub: append(marksAgo("c1", 30*time.Minute, 20*time.Minute), marksAgo("c2", 0)...)}, nil},
		{"a caller's cards declined over more than an hour: nothing", DefaultRiskSettings, card.Visa,
			RiskDeclines{callerSub: append(append(marksAgo("c1", 70*time.Minute), marksAgo("c2", 20*time.Minute)...), marksAgo("c3", 0)...)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a
			a.CardBrand = tc.brand
			got := RiskBlocksAfterDecline(tc.settings, a, tc.declines, riskAt)
			if len(got) != len(tc.want) {
				t.Fatalf("blocks = %+v, want %+v", got, tc.want)
			}
			for i, w := range tc.want {
				if g := got[i]; g.Kind != w.kind || g.Rule != w.rule || !g.Until.Equal(w.until) {
					t.Fatalf("block %d = %s/%s until %s, want %s/%s until %s", i, g.Kind, g.Rule, g.Until, w.kind, w.rule, w.until)
				}
				if strings.Contains(got[i].Detail, "fp") && got[i].Kind == RiskKindCard {
					t.Fatalf("a card block's detail %q shows its fingerprint", got[i].Detail)
				}
			}
		})
	}
}

func TestRiskAttemptSubjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a    RiskAttempt
		want string
	}{
		{"IVR with a caller", RiskAttempt{PlatformID: "p", MerchantID: "m", ConfigID: "c", CardFingerprint: "f", Caller: "+1555", IVR: true},
			"card/f config/c caller/p:+1555 merchant/m"},
		{"IVR without a caller", RiskAttempt{PlatformID: "p", MerchantID: "m", ConfigID: "c", CardFingerprint: "f", IVR: true},
			"card/f config/c merchant/m"},
		{"REST: no merchant breaker", RiskAttempt{PlatformID: "p", MerchantID: "m", ConfigID: "c", CardFingerprint: "f"},
			"card/f config/c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range tc.a.Subjects() {
				got = append(got, s.Kind+"/"+s.Subject)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("subjects = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestMerchantBreakerTrips(t *testing.T) {
	t.Parallel()
	off := DefaultRiskSettings
	off.MerchantBreaker = false
	for _, tc := range []struct {
		name               string
		settings           RiskSettings
		declines, attempts int
		want               bool
	}{
		{"20 of 40: half", DefaultRiskSettings, 20, 40, true},
		{"20 of 20", DefaultRiskSettings, 20, 20, true},
		{"20 of 41: under half", DefaultRiskSettings, 20, 41, false},
		{"19 of 19: too few", DefaultRiskSettings, 19, 19, false},
		{"switched off", off, 100, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MerchantBreakerTrips(tc.settings, tc.declines, tc.attempts); got != tc.want {
				t.Fatalf("MerchantBreakerTrips(%d, %d) = %t, want %t", tc.declines, tc.attempts, got, tc.want)
			}
		})
	}
	if n := MerchantDeclines(everyAgo(25, time.Minute), riskAt); n != 10 {
		t.Fatalf("MerchantDeclines counted %d declines of the last 10 minutes, want 10", n)
	}
}

func TestRefuseByRisk(t *testing.T) {
	t.Parallel()
	card := RiskBlock{Kind: RiskKindCard, Value: "fp", Rule: RiskRuleCardVelocity, Until: riskAt.Add(time.Hour)}
	cfg := RiskBlock{Kind: RiskKindConfig, Value: "cfg_1", Rule: RiskRuleConfigAttempts, Until: riskAt.Add(ConfigLockFor)}
	merchant := RiskBlock{Kind: RiskKindMerchant, Value: "mid_1", Rule: RiskRuleMerchantBreaker, Until: riskAt.Add(15 * time.Minute)}
	caller := RiskBlock{Kind: RiskKindCaller, Value: "plt:+1555", Rule: RiskRuleCallerVelocity, Until: riskAt.Add(time.Hour)}
	ended := card
	ended.Until = riskAt
	for _, tc := range []struct {
		name   string
		blocks []RiskBlock
		rule   string
		code   string
		says   string
	}{
		{"none", nil, "", "", ""},
		{"an ended block", []RiskBlock{ended}, "", "", ""},
		{"a card", []RiskBlock{card}, RiskRuleCardVelocity, ConnRiskBlocked, "until 2026-03-15T11:00:00Z"},
		{"a config lock weighs most", []RiskBlock{card, caller, cfg}, RiskRuleConfigAttempts, ConnConfigLocked, "is locked until 2026-04-14T10:00:00Z; create a new payin config"},
		{"a merchant pause before a caller", []RiskBlock{caller, merchant}, RiskRuleMerchantBreaker, ConnRiskBlocked, "until 2026-03-15T10:15:00Z"},
		{"a caller before a card", []RiskBlock{card, caller}, RiskRuleCallerVelocity, ConnRiskBlocked, "caller velocity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := RefuseByRisk(tc.blocks, riskAt)
			if tc.rule == "" {
				if r != nil {
					t.Fatalf("refused by %+v, want no refusal", r.Block)
				}
				return
			}
			if r == nil || r.Block.Rule != tc.rule || r.Code != tc.code || !strings.Contains(r.Message, tc.says) {
				t.Fatalf("refusal = %+v, want rule %s, code %s, a message saying %q", r, tc.rule, tc.code, tc.says)
			}
			if strings.Contains(r.Message, "fp") {
				t.Fatalf("the message %q shows the card's fingerprint", r.Message)
			}
		})
	}
}

func TestMatchPolicyRefusal(t *testing.T) {
	t.Parallel()
	both := RiskSettings{RequireCVCMatch: true, RequireAVSMatch: true}
	approved := func(cvc, avs string) ProcessorResult {
		return ProcessorResult{Approved: true, CVCResultCode: cvc, AVSResultCode: avs}
	}
	for _, tc := range []struct {
		name     string
		settings RiskSettings
		res      ProcessorResult
		code     string
	}{
		{"off by default: a CVC mismatch stands", DefaultRiskSettings, approved("N", "Y"), ""},
		{"CVC required, N", both, approved("N", "Y"), RefusalInvalidCardSecurityCode},
		{"CVC required, not processed", both, approved("P", "Y"), ""},
		{"AVS required, N", both, approved("M", "N"), RefusalIncorrectPaymentInformation},
		{"AVS not required", RiskSettings{RequireCVCMatch: true}, approved("M", "N"), ""},
		{"a decline is left alone", both, ProcessorResult{RefusalCode: RefusalDeclined, CVCResultCode: "N"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, _, ok := MatchPolicyRefusal(tc.settings, tc.res)
			if ok != (tc.code != "") || code != tc.code {
				t.Fatalf("MatchPolicyRefusal = %q, %t, want %q", code, ok, tc.code)
			}
		})
	}
}

func TestRiskSettingsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		s     RiskSettings
		field string
	}{
		{"defaults", DefaultRiskSettings, ""},
		{"card declines 0", RiskSettings{CardDeclines: 0, ConfigAttempts: 5, CallerDeclines: 3}, "card-declines"},
		{"card declines above Mastercard's cap", RiskSettings{CardDeclines: 11, ConfigAttempts: 5, CallerDeclines: 3}, "card-declines"},
		{"config attempts 21", RiskSettings{CardDeclines: 3, ConfigAttempts: 21, CallerDeclines: 3}, "config-attempts"},
		{"caller declines 0", RiskSettings{CardDeclines: 3, ConfigAttempts: 5}, "caller-declines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("Validate = %v, want an error on %s", err, tc.field)
			}
		})
	}
}

func TestNormalizeCallerAndDeclinesThatCount(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+15550100": "+15550100", " +442071838750 ": "+442071838750", "anonymous": "",
		"": "", "+1": "", "+1234567890123456": "", "client:alice": "", "266696687": "266696687"} {
		if got := NormalizeCaller(in); got != want {
			t.Errorf("NormalizeCaller(%q) = %q, want %q", in, got, want)
		}
	}
	for code, want := range map[string]bool{RefusalDeclined: true, RefusalInsufficientFunds: true, RefusalInvalidCardSecurityCode: true,
		RefusalProcessingError: false, RefusalRiskBlocked: false, "": false} {
		if got := CountsAsRiskDecline(code); got != want {
			t.Errorf("CountsAsRiskDecline(%q) = %t, want %t", code, got, want)
		}
	}
}
