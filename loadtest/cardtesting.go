package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
	cardpkg "github.com/ivrpay/ivrpay/card"
	"github.com/ivrpay/ivrpay/twilio"
)

// A card-testing attack (SPEC §11, docs/risk.md) played against the
// deployment while normal traffic runs: attacker callers type stolen,
// Luhn-valid cards one call at a time, most of which the issuer declines,
// reusing a payin config for a few attempts as an IVR session would. The run
// measures the normal traffic twice, alone and during the attack, and
// reports when the attack stopped reaching the processor and how many
// normal charges a risk rule refused.

// attackDeclineAmount makes the sandbox decline any card (DECLINED), as an
// issuer declines most stolen cards.
const attackDeclineAmount = 5101

// AttackOptions shape the attack.
type AttackOptions struct {
	// Callers are the attacker's phone numbers; each places one call at a time.
	Callers int
	// CardsPerCaller are the stolen cards each caller tries, in turn.
	CardsPerCaller int
	// TriesPerCard is how often a caller types a card before the next one
	// (a tester retries another expiry or CVV).
	TriesPerCard int
	// AttemptsPerConfig is how many attempts share one payin config (one IVR session).
	AttemptsPerConfig int
	// Interval is each caller's pause between attempts.
	Interval time.Duration
	// LiveEvery makes every n-th card a live one the issuer approves (0: none).
	LiveEvery int
	// Thresholds are the platform's risk settings the report checks the attack against.
	Thresholds ivrpay.RiskSettings
}

// DefaultAttack is `ivrpay loadtest --card-testing`'s attack.
var DefaultAttack = AttackOptions{Callers: 5, CardsPerCaller: 40, TriesPerCard: 4, AttemptsPerConfig: 6,
	Interval: 100 * time.Millisecond, LiveEvery: 10, Thresholds: ivrpay.DefaultRiskSettings}

// AttackReport is what the attack got.
type AttackReport struct {
	Attempts int `json:"attempts"`
	// Reached are the attempts the processor answered (declined or approved).
	Reached  int `json:"reached_processor"`
	Declined int `json:"declined"`
	Approved int `json:"approved"`
	// Refused counts the attempts refused before the processor, by error_code.
	Refused map[string]int `json:"refused"`
	// Other counts any other outcome (transport errors, …).
	Other map[string]int `json:"other,omitempty"`
	// StoppedAfterS is when, after the attack began, its last attempt
	// reached the processor; every later one was refused.
	StoppedAfterS float64 `json:"stopped_after_s"`
	// StoppedAtAttempt is that attempt's number (1-based).
	StoppedAtAttempt int `json:"stopped_at_attempt"`
	// The most the processor saw per card, distinct declined cards per caller, declines per config.
	MaxDeclinesPerCard   int  `json:"max_declines_per_card"`
	MaxCardsPerCaller    int  `json:"max_declined_cards_per_caller"`
	MaxDeclinesPerConfig int  `json:"max_declines_per_config"`
	WithinThresholds     bool `json:"within_thresholds"`
}

// CardTestingReport compares the normal traffic alone and during the attack.
type CardTestingReport struct {
	Baseline *Report      `json:"baseline"`
	Mixed    *Report      `json:"during_attack"`
	Attack   AttackReport `json:"attack"`
	// NormalRefused are normal calls a risk rule refused during the attack.
	NormalRefused int `json:"normal_refused"`
	// ThroughputRatio is the normal charges/s during the attack over alone.
	ThroughputRatio float64 `json:"throughput_ratio"`
}

// OK reports whether both runs passed their audits, the attack stayed
// within the thresholds and no normal charge was refused.
func (r *CardTestingReport) OK() bool {
	return r.Baseline.OK() && r.Mixed.OK() && r.Attack.WithinThresholds && r.NormalRefused == 0
}

// RunCardTesting runs the normal traffic o alone, then again while the attack runs.
func RunCardTesting(ctx context.Context, t *Target, o Options, a AttackOptions) *CardTestingReport {
	r := &CardTestingReport{Baseline: Run(ctx, t, o)}
	attackCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var attack AttackReport
	done := make(chan struct{})
	go func() {
		defer close(done)
		attack = t.attack(attackCtx, o, a)
	}()
	r.Mixed = Run(ctx, t, o)
	<-done
	r.Attack = attack
	r.NormalRefused = r.Mixed.Outcomes[ivrpay.ConnRiskBlocked] + r.Mixed.Outcomes[ivrpay.ConnConfigLocked]
	if r.Baseline.ChargesPerS > 0 {
		r.ThroughputRatio = r.Mixed.ChargesPerS / r.Baseline.ChargesPerS
	}
	return r
}

// attackAttempt is one attempt as the attack recorded it.
type attackAttempt struct {
	at          time.Duration
	caller, pan string
	config      string
	outcome     string
}

// attack runs the callers until ctx ends or they run out of cards.
func (t *Target) attack(ctx context.Context, o Options, a AttackOptions) AttackReport {
	start := time.Now()
	var mu sync.Mutex
	var attempts []attackAttempt
	var wg sync.WaitGroup
	// Each run's attacker has numbers and cards of its own, so that a run
	// never meets the blocks an earlier one left.
	run := start.UnixMilli() % 1000
	for c := range a.Callers {
		caller := fmt.Sprintf("+1555%03d%04d", run, c)
		wg.Go(func() {
			var cfg string
			var cfgAmount int64
			used := 0
			for i := range a.CardsPerCaller {
				pan := cardpkg.CompleteLuhn(fmt.Sprintf("49%03d%02d%08d", run, c%100, i+1))
				live := a.LiveEvery > 0 && (c*a.CardsPerCaller+i+1)%a.LiveEvery == 0
				amount := int64(attackDeclineAmount)
				if live {
					amount = t.Amount
				}
				for range a.TriesPerCard {
					if ctx.Err() != nil {
						return
					}
					if cfg == "" || used >= a.AttemptsPerConfig || cfgAmount != amount {
						var err error
						if cfg, err = t.createAttackConfig(ctx, amount); err != nil {
							return
						}
						cfgAmount, used = amount, 0
					}
					used++
					at := time.Since(start)
					outcome := t.attackCharge(ctx, o, cfg, pan, caller, amount)
					mu.Lock()
					attempts = append(attempts, attackAttempt{at: at, caller: caller, pan: pan, config: cfg, outcome: outcome})
					mu.Unlock()
					if outcome == outcomeCharged {
						cfg = "" // a live card used its config
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(a.Interval):
					}
				}
			}
		})
	}
	wg.Wait()
	slices.SortFunc(attempts, func(x, y attackAttempt) int { return int(x.at - y.at) })
	return summarizeAttack(attempts, a.Thresholds)
}

// summarizeAttack counts what reached the processor per card, caller and config.
func summarizeAttack(attempts []attackAttempt, th ivrpay.RiskSettings) AttackReport {
	r := AttackReport{Refused: map[string]int{}, Other: map[string]int{}}
	perCard, perConfig := map[string]int{}, map[string]int{}
	callerCards := map[string]map[string]bool{}
	for i, at := range attempts {
		r.Attempts++
		switch at.outcome {
		case ivrpay.RefusalDeclined, outcomeCharged:
			r.Reached++
			r.StoppedAfterS, r.StoppedAtAttempt = at.at.Seconds(), i+1
			if at.outcome == outcomeCharged {
				r.Approved++
				continue
			}
			r.Declined++
			perCard[at.pan]++
			perConfig[at.config]++
			if callerCards[at.caller] == nil {
				callerCards[at.caller] = map[string]bool{}
			}
			callerCards[at.caller][at.pan] = true
		case ivrpay.ConnRiskBlocked, ivrpay.ConnConfigLocked:
			r.Refused[at.outcome]++
		case outcomeCanceled:
			r.Attempts-- // in flight when the run ended: no answer to judge
		default:
			r.Other[at.outcome]++
		}
	}
	for _, n := range perCard {
		r.MaxDeclinesPerCard = max(r.MaxDeclinesPerCard, n)
	}
	for _, n := range perConfig {
		r.MaxDeclinesPerConfig = max(r.MaxDeclinesPerConfig, n)
	}
	for _, cards := range callerCards {
		r.MaxCardsPerCaller = max(r.MaxCardsPerCaller, len(cards))
	}
	r.WithinThresholds = r.Attempts > 0 && r.MaxDeclinesPerCard <= th.CardDeclines && r.MaxDeclinesPerConfig <= th.ConfigAttempts &&
		r.MaxCardsPerCaller <= th.CallerDeclines && len(r.Other) == 0
	return r
}

func (t *Target) createAttackConfig(ctx context.Context, amount int64) (string, error) {
	cfg, err := t.AdminClient().CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{
		MerchantID: t.MerchantID, IdempotencyKey: fmt.Sprintf("attack-%s-n%d", t.runID, t.seq.Add(1)),
		Amount: json.Number(fmt.Sprint(amount)), CurrencyCode: "USD", Metadata: json.RawMessage(`{"source":"ivrpay loadtest --card-testing"}`),
	})
	if err != nil {
		return "", err
	}
	return cfg.ID, nil
}

// attackCharge sends one attack attempt and returns its outcome: OK, the
// error_code, or a transport outcome.
func (t *Target) attackCharge(ctx context.Context, o Options, cfg, pan, caller string, amount int64) string {
	exp := time.Now().AddDate(2, 0, 0)
	body, _ := json.Marshal(twilio.ConnectorRequest{
		Method: twilio.MethodCharge, TransactionID: fmt.Sprintf("atk-%s-n%d", t.runID, t.seq.Add(1)), CardNumber: pan, CVV: cvv,
		ExpiryMonth: "12", ExpiryYear: exp.Format("06"), PostalCode: postalCode, Amount: twilio.FormatCents(amount), CurrencyCode: "usd",
		Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfg, ivrpay.ParamCaller: caller},
	})
	reqCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	status, answer, err := t.SendCharge(reqCtx, body)
	if err != nil {
		return outcomeOf(err, ctx)
	}
	var res twilio.ConnectorResponse
	if status != 200 || json.Unmarshal(answer, &res) != nil {
		return outcomeHTTP + fmt.Sprint(status)
	}
	if res.ErrorCode != "" {
		return res.ErrorCode
	}
	return outcomeCharged
}

// Print writes the card-testing report as text.
func (r *CardTestingReport) Print(w io.Writer) {
	fmt.Fprintln(w, "normal traffic alone:")
	r.Baseline.Print(w)
	fmt.Fprintln(w, "normal traffic during the attack:")
	r.Mixed.Print(w)
	a := r.Attack
	var refused []string
	for _, k := range sortedKeys(a.Refused) {
		refused = append(refused, fmt.Sprintf("%s %d", k, a.Refused[k]))
	}
	fmt.Fprintln(w, "card-testing attack:")
	if len(refused) == 0 {
		refused = []string{"none"}
	}
	fmt.Fprintf(w, "  attempts         %d: %d reached the processor (%d declined, %d approved); refused before it: %s\n",
		a.Attempts, a.Reached, a.Declined, a.Approved, strings.Join(refused, ", "))
	if len(a.Other) > 0 {
		fmt.Fprintf(w, "  other outcomes   %v\n", a.Other)
	}
	fmt.Fprintf(w, "  stopped          after %.1fs (attempt %d); every later attempt was refused\n", a.StoppedAfterS, a.StoppedAtAttempt)
	fmt.Fprintf(w, "  per card/caller/config  at most %d declines per card, %d declined cards per caller, %d declines per config: within thresholds %t\n",
		a.MaxDeclinesPerCard, a.MaxCardsPerCaller, a.MaxDeclinesPerConfig, a.WithinThresholds)
	fmt.Fprintf(w, "  normal traffic   %d normal charges refused; throughput during the attack %.1f%% of alone\n", r.NormalRefused, 100*r.ThroughputRatio)
	if r.OK() {
		fmt.Fprintln(w, "  result           OK: the attack was stopped within the thresholds and no normal charge was refused")
	} else {
		fmt.Fprintln(w, "  result           FAILED")
	}
}
