package ivrpay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/card"
)

// Risk controls for phone payments (SPEC §11, docs/risk.md). IP rules cannot
// fire on a phone call, so the rules key on what a call has: the card's
// fingerprint, the payin config, the caller's number (when the platform
// passes it) and the merchant. The functions here decide over the declines the
// store counted; the payments service runs them before any card data leaves.

// Kinds of subject a risk block is on: the KIND of `ivrpay admin risk clear`.
const (
	RiskKindCard     = "card"
	RiskKindConfig   = "config"
	RiskKindCaller   = "caller"
	RiskKindMerchant = "merchant"
)

// RiskKinds lists the kinds, in the order a refusal names them when several
// blocks apply (the one a new attempt cannot get around first).
var RiskKinds = []string{RiskKindConfig, RiskKindMerchant, RiskKindCaller, RiskKindCard}

// Risk rules, as audit rows, metrics and blocks name them.
const (
	RiskRuleCardVelocity    = "card_velocity"    // rule 1
	RiskRuleCardNetworkCap  = "card_network_cap" // rule 1: the networks' retry caps
	RiskRuleConfigAttempts  = "config_attempts"  // rule 2
	RiskRuleCallerVelocity  = "caller_velocity"  // rule 3
	RiskRuleMerchantBreaker = "merchant_breaker" // rule 4
	RiskRuleCVCPolicy       = "cvc_policy"       // rule 5
	RiskRuleAVSPolicy       = "avs_policy"       // rule 5
)

// RiskRules lists every rule, for metrics.
var RiskRules = []string{RiskRuleCardVelocity, RiskRuleCardNetworkCap, RiskRuleConfigAttempts, RiskRuleCallerVelocity,
	RiskRuleMerchantBreaker, RiskRuleCVCPolicy, RiskRuleAVSPolicy}

// RefusalRiskBlocked is the refusal_code of a payin a risk block refused:
// it never reached the processor.
const RefusalRiskBlocked = "RISK_BLOCKED"

// Connector answers of a risk refusal: RISK_BLOCKED, or CONFIG_LOCKED when
// rule 2 locked the config (a new config is needed).
const (
	ConnRiskBlocked  = "RISK_BLOCKED"
	ConnConfigLocked = "CONFIG_LOCKED"
)

// ParamCaller is the <Pay> parameter that carries the caller's number
// (<Parameter name="caller" value="{{From}}"/>).
const ParamCaller = "caller"

// Windows and durations of the rules (SPEC §11), and the anchors: Hyperswitch's
// card testing guard counts unsuccessful attempts per card over 1 h;
// Mastercard allows 10 declines per card in 24 h, Visa 15 in 30 days.
const (
	CardVelocityWindow    = time.Hour
	CardVelocityBlock     = time.Hour
	CallerVelocityWindow  = time.Hour
	CallerVelocityBlock   = time.Hour
	MerchantBreakerWindow = 10 * time.Minute
	MerchantBreakerPause  = 15 * time.Minute
	// MerchantBreakerDeclines and MerchantBreakerRate (percent) trip the
	// breaker together.
	MerchantBreakerDeclines = 20
	MerchantBreakerRate     = 50
	// ConfigLockFor is how long a config locked by rule 2 stays locked (and
	// how long its declines are remembered): a payin config is one bill, so
	// in practice the platform makes a new one; the lock still ends, so that
	// the table of blocks stays bounded.
	ConfigLockFor = 30 * 24 * time.Hour
	// MastercardCap declines per MastercardCapWindow, VisaCap per VisaCapWindow.
	MastercardCap       = 10
	MastercardCapWindow = 24 * time.Hour
	VisaCap             = 15
	VisaCapWindow       = 30 * 24 * time.Hour
)

// RiskMarksKept is how many recent declines the store keeps per subject:
// more than any threshold or network cap, so every rule sees all it counts.
const RiskMarksKept = 24

// RiskRetention is how long the store keeps a subject's declines after its
// last one: the longest window a rule of that kind looks at.
func RiskRetention(kind string) time.Duration {
	switch kind {
	case RiskKindCard:
		return VisaCapWindow
	case RiskKindConfig:
		return ConfigLockFor
	case RiskKindCaller:
		return CallerVelocityWindow
	default:
		return MerchantBreakerWindow
	}
}

// RiskSettings are a platform's thresholds and switches (`ivrpay admin
// platform set-risk`).
type RiskSettings struct {
	// CardDeclines per card in 1 h (rule 1), deployment-wide counts.
	CardDeclines int `json:"card_declines_per_hour"`
	// ConfigAttempts declined attempts lock a payin config (rule 2).
	ConfigAttempts int `json:"config_attempts"`
	// CallerDeclines different cards declined for one caller in 1 h (rule 3).
	CallerDeclines int `json:"caller_declines_per_hour"`
	// MerchantBreaker pauses a merchant's IVR charges (rule 4).
	MerchantBreaker bool `json:"merchant_breaker"`
	// RequireCVCMatch and RequireAVSMatch void approvals whose CVC or AVS
	// result is N (rule 5).
	RequireCVCMatch bool `json:"require_cvc_match"`
	RequireAVSMatch bool `json:"require_avs_match"`
}

// DefaultRiskSettings are SPEC §11's defaults.
var DefaultRiskSettings = RiskSettings{CardDeclines: 3, ConfigAttempts: 5, CallerDeclines: 3, MerchantBreaker: true}

// Bounds of the thresholds. Card declines stop at Mastercard's daily cap:
// more per hour could never be allowed anyway.
const (
	MaxCardDeclines   = MastercardCap
	MaxConfigAttempts = 20
	MaxCallerDeclines = 20
)

// Validate checks the thresholds, naming the flag of a bad one.
func (r RiskSettings) Validate() error {
	for _, f := range []struct {
		name   string
		value  int
		maxVal int
	}{{"card-declines", r.CardDeclines, MaxCardDeclines}, {"config-attempts", r.ConfigAttempts, MaxConfigAttempts},
		{"caller-declines", r.CallerDeclines, MaxCallerDeclines}} {
		if f.value < 1 || f.value > f.maxVal {
			return FieldErrorf(f.name, "%s must be between 1 and %d, got %d", f.name, f.maxVal, f.value)
		}
	}
	return nil
}

// RiskMark is one decline a subject's counter holds: when, and which card
// (the first RiskCardKeyLen characters of its fingerprint), so that a caller's
// declines count different cards.
type RiskMark struct {
	At   time.Time
	Card string
}

// RiskCardKeyLen is the length of a card's key in a mark.
const RiskCardKeyLen = 12

// RiskCardKey is the key of a card in marks: a prefix of its keyed
// fingerprint, enough to tell the cards of one caller apart.
func RiskCardKey(fingerprint string) string {
	if len(fingerprint) > RiskCardKeyLen {
		return fingerprint[:RiskCardKeyLen]
	}
	return fingerprint
}

// RiskSubject is one counter a decline adds to.
type RiskSubject struct {
	Kind    string
	Subject string
}

// RiskAttempt is what one charge attempt is counted under and checked
// against. Caller is the number the platform passed, empty when it passed none.
type RiskAttempt struct {
	PlatformID      string
	MerchantID      string
	ConfigID        string
	CardFingerprint string
	CardBrand       card.Brand
	CardLast4       string
	Caller          string
	// IVR: the merchant breaker pauses, and counts, IVR charges only.
	IVR bool
}

// CallerSubject is the subject of a caller's counter and block: callers are
// the platform's data, so they count per platform.
func CallerSubject(platformID, caller string) string { return platformID + ":" + caller }

// Subjects are the counters a decline of a adds to, and the blocks a checks.
func (a RiskAttempt) Subjects() []RiskSubject {
	out := []RiskSubject{{RiskKindCard, a.CardFingerprint}, {RiskKindConfig, a.ConfigID}}
	if a.Caller != "" {
		out = append(out, RiskSubject{RiskKindCaller, CallerSubject(a.PlatformID, a.Caller)})
	}
	if a.IVR {
		out = append(out, RiskSubject{RiskKindMerchant, a.MerchantID})
	}
	return out
}

// NormalizeCaller reads the caller parameter: a phone number as the voice
// platform sends it (E.164, "+" and digits), or "" when it is absent or not a
// number (Twilio sends "anonymous" or an empty From for withheld numbers;
// those calls are not counted per caller).
func NormalizeCaller(v string) string {
	v = strings.TrimSpace(v)
	digits := strings.TrimPrefix(v, "+")
	if len(digits) < 3 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return ""
	}
	return v
}

// RiskBlock is an active refusal on one subject. A card is shown by brand,
// last 4 and fingerprint, never by number.
type RiskBlock struct {
	Kind       string    `json:"kind"`
	Value      string    `json:"value"`
	PlatformID string    `json:"platform_id,omitempty"`
	MerchantID string    `json:"merchant_id,omitempty"`
	Rule       string    `json:"rule"`
	Detail     string    `json:"detail"`
	Until      time.Time `json:"until"`
	CreatedAt  time.Time `json:"created_at"`
}

// RiskDeclines are the declines the store counted for one attempt's
// subjects, this decline included, oldest first.
type RiskDeclines map[RiskSubject][]RiskMark

// RiskBlocksAfterDecline decides which blocks a decline at `at` starts,
// from the counts of its subjects and the charging platform's settings. The
// merchant breaker is decided apart (MerchantBreakerTrips), since its rate
// needs the merchant's attempts, read only when the declines reach the bar.
func RiskBlocksAfterDecline(s RiskSettings, a RiskAttempt, d RiskDeclines, at time.Time) []RiskBlock {
	var out []RiskBlock
	card := d[RiskSubject{RiskKindCard, a.CardFingerprint}]
	if rule, until := cardBlock(s, a.CardBrand, card, at); rule != "" {
		out = append(out, RiskBlock{Kind: RiskKindCard, Value: a.CardFingerprint, PlatformID: a.PlatformID, Rule: rule, Until: until,
			Detail: fmt.Sprintf("%s •••• %s: %d declines in %s", a.CardBrand, a.CardLast4, countSince(card, at.Add(-ruleWindow(rule, a.CardBrand))), ruleWindowText(rule, a.CardBrand))})
	}
	if n := len(d[RiskSubject{RiskKindConfig, a.ConfigID}]); n >= s.ConfigAttempts {
		out = append(out, RiskBlock{Kind: RiskKindConfig, Value: a.ConfigID, PlatformID: a.PlatformID, MerchantID: a.MerchantID,
			Rule: RiskRuleConfigAttempts, Until: at.Add(ConfigLockFor), Detail: fmt.Sprintf("%d declined attempts", n)})
	}
	if a.Caller != "" {
		marks := d[RiskSubject{RiskKindCaller, CallerSubject(a.PlatformID, a.Caller)}]
		if n := distinctCardsSince(marks, at.Add(-CallerVelocityWindow)); n >= s.CallerDeclines {
			out = append(out, RiskBlock{Kind: RiskKindCaller, Value: CallerSubject(a.PlatformID, a.Caller), PlatformID: a.PlatformID,
				Rule: RiskRuleCallerVelocity, Until: at.Add(CallerVelocityBlock), Detail: fmt.Sprintf("%d different cards declined in 1h", n)})
		}
	}
	return out
}

// cardBlock is rule 1 for one card's declines: the hourly threshold blocks
// for an hour from the decline that reached it; the network caps block until
// the oldest decline they count leaves their window, so that the next
// decline can never exceed them. The later end wins.
func cardBlock(s RiskSettings, brand card.Brand, marks []RiskMark, at time.Time) (rule string, until time.Time) {
	if countSince(marks, at.Add(-CardVelocityWindow)) >= s.CardDeclines {
		rule, until = RiskRuleCardVelocity, at.Add(CardVelocityBlock)
	}
	if capN, window := networkCap(brand); capN > 0 {
		recent := marksSince(marks, at.Add(-window))
		if len(recent) >= capN {
			if end := recent[len(recent)-capN].At.Add(window); end.After(until) {
				rule, until = RiskRuleCardNetworkCap, end
			}
		}
	}
	return rule, until
}

// networkCap is the retry cap of a card's network: Mastercard 10 declines in
// 24 h, Visa 15 in 30 days; none for the others.
func networkCap(b card.Brand) (int, time.Duration) {
	switch b {
	case card.Mastercard:
		return MastercardCap, MastercardCapWindow
	case card.Visa:
		return VisaCap, VisaCapWindow
	}
	return 0, 0
}

func ruleWindow(rule string, b card.Brand) time.Duration {
	if rule == RiskRuleCardNetworkCap {
		_, w := networkCap(b)
		return w
	}
	return CardVelocityWindow
}

func ruleWindowText(rule string, b card.Brand) string {
	switch ruleWindow(rule, b) {
	case VisaCapWindow:
		return "30 days"
	case MastercardCapWindow:
		return "24h"
	default:
		return "1h"
	}
}

func marksSince(marks []RiskMark, since time.Time) []RiskMark {
	i := slices.IndexFunc(marks, func(m RiskMark) bool { return m.At.After(since) })
	if i < 0 {
		return nil
	}
	return marks[i:]
}

func countSince(marks []RiskMark, since time.Time) int { return len(marksSince(marks, since)) }

func distinctCardsSince(marks []RiskMark, since time.Time) int {
	seen := map[string]bool{}
	for _, m := range marksSince(marks, since) {
		seen[m.Card] = true
	}
	return len(seen)
}

// MerchantDeclines is how many of a merchant's declines fall in the breaker's window.
func MerchantDeclines(marks []RiskMark, at time.Time) int {
	return countSince(marks, at.Add(-MerchantBreakerWindow))
}

// MerchantBreakerTrips is rule 4: with the breaker on, 20 or more declines in
// 10 min that are at least half of the merchant's attempts in that time.
func MerchantBreakerTrips(s RiskSettings, declines, attempts int) bool {
	return s.MerchantBreaker && declines >= MerchantBreakerDeclines && declines*100 >= attempts*MerchantBreakerRate
}

// MerchantBreakerBlock is the pause rule 4 starts at `at`.
func MerchantBreakerBlock(a RiskAttempt, declines, attempts int, at time.Time) RiskBlock {
	return RiskBlock{Kind: RiskKindMerchant, Value: a.MerchantID, PlatformID: a.PlatformID, MerchantID: a.MerchantID,
		Rule: RiskRuleMerchantBreaker, Until: at.Add(MerchantBreakerPause),
		Detail: fmt.Sprintf("%d declines of %d IVR attempts in 10m", declines, attempts)}
}

// CountsAsRiskDecline reports whether a refusal counts toward the rules: a
// processor's decline of the card does; a processing error (the processor's
// trouble, not the card's) and a risk refusal (which never reached the
// processor) do not.
func CountsAsRiskDecline(refusalCode string) bool {
	return refusalCode != "" && refusalCode != RefusalProcessingError && refusalCode != RefusalRiskBlocked
}

// RiskRefusal is the refusal of an attempt that an active block covers: the
// block that weighs most (RiskKinds' order), and the answer to give.
type RiskRefusal struct {
	Block RiskBlock
	// Code is the connector's error_code: RISK_BLOCKED, or CONFIG_LOCKED.
	Code    string
	Message string
}

// RefuseByRisk picks the refusal among the blocks active at now on an
// attempt's subjects (nil when none is). Its message names the rule and when
// it lifts, and never the card's fingerprint.
func RefuseByRisk(blocks []RiskBlock, now time.Time) *RiskRefusal {
	var pick *RiskBlock
	for i := range blocks {
		b := &blocks[i]
		if !b.Until.After(now) {
			continue
		}
		if pick == nil || slices.Index(RiskKinds, b.Kind) < slices.Index(RiskKinds, pick.Kind) {
			pick = b
		}
	}
	if pick == nil {
		return nil
	}
	until := pick.Until.UTC().Format(time.RFC3339)
	r := &RiskRefusal{Block: *pick, Code: ConnRiskBlocked}
	switch pick.Rule {
	case RiskRuleConfigAttempts:
		r.Code = ConnConfigLocked
		r.Message = fmt.Sprintf("risk rule config attempts: payin config %s had too many declined attempts and is locked until %s; create a new payin config for this payment", pick.Value, until)
	case RiskRuleMerchantBreaker:
		r.Message = fmt.Sprintf("risk rule merchant breaker: IVR charges for merchant %s are paused until %s after a high decline rate", pick.Value, until)
	case RiskRuleCallerVelocity:
		r.Message = "risk rule caller velocity: too many different cards were declined for this caller; this caller is refused until " + until
	case RiskRuleCardNetworkCap:
		r.Message = "risk rule card velocity (network retry cap): this card reached its network's limit of declines; it is refused until " + until
	default:
		r.Message = "risk rule card velocity: this card was declined too many times in the last hour; it is refused until " + until
	}
	return r
}

// MatchPolicyRefusal is rule 5: an approval whose CVC (or AVS) result is N,
// on a platform that requires a match, is voided and answered as the
// processor's own refusal for that check would be, so that the caller
// learns nothing an ordinary decline would not tell. ok is false when the
// approval stands.
func MatchPolicyRefusal(s RiskSettings, res ProcessorResult) (rule, code, desc string, ok bool) {
	switch {
	case !res.Approved:
		return "", "", "", false
	case s.RequireCVCMatch && res.CVCResultCode == "N":
		return RiskRuleCVCPolicy, RefusalInvalidCardSecurityCode, "Incorrect card security code", true
	case s.RequireAVSMatch && res.AVSResultCode == "N":
		return RiskRuleAVSPolicy, RefusalIncorrectPaymentInformation, "Postal code does not match", true
	}
	return "", "", "", false
}

// RiskDecline asks the store to count a decline under its subjects, in the
// transaction that records the decline; the store sets Counted to the
// subjects' declines as they now stand (this one included).
type RiskDecline struct {
	Subjects []RiskSubject
	CardKey  string
	At       time.Time
	Counted  RiskDeclines
}

// RiskLookup asks the read a charge starts with for the blocks active at Now
// on its card and caller (the read knows its config and merchant); the read
// sets Blocks.
type RiskLookup struct {
	CardFingerprint string
	CallerSubject   string
	Now             time.Time
	Blocks          []RiskBlock
}

// RiskBlockService lists the risk blocks a platform meets, for its portal.
type RiskBlockService interface {
	// ListActiveRiskBlocks returns the blocks active now that a decline on
	// the caller's platform started, newest first; it needs payin:read
	// without a merchant constraint.
	ListActiveRiskBlocks(ctx context.Context) ([]RiskBlock, error)
}
