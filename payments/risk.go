package payments

import (
	"context"
	"fmt"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// The risk rules of SPEC §11 as the service runs them (docs/risk.md): an
// attempt that an active block covers is refused before its card leaves
// (a FAILED payin with refusal_code RISK_BLOCKED, no processor call); a
// decline is counted under its card, config, caller and merchant in the
// transaction that records it, and the blocks it starts are decided here
// from those counts and written at once, before the answer goes back, so that
// the next attempt on any process sees them.

// RiskMetrics counts the rules' work for /metrics.
type RiskMetrics interface {
	// Refused counts an attempt a rule refused (rule 5: an approval voided).
	Refused(rule string)
	// Blocked counts a block a rule started.
	Blocked(rule string)
}

type noRiskMetrics struct{}

func (noRiskMetrics) Refused(string) {}
func (noRiskMetrics) Blocked(string) {}

// riskCheck is what a charge attempt carries for the rules: what it counts
// under, the platform's settings, and the refusal when a block covers it.
type riskCheck struct {
	attempt  ivrpay.RiskAttempt
	settings ivrpay.RiskSettings
	refusal  *ivrpay.RiskRefusal
	// policyRule is the rule 5 check that voided the approval, for the audit row.
	policyRule string
}

// newRiskCheck builds the check of an attempt and refuses it when one of
// blocks (active blocks read on its subjects; nil: read them) covers it.
func (s *Service) newRiskCheck(ctx context.Context, settings ivrpay.RiskSettings, a ivrpay.RiskAttempt, blocks []ivrpay.RiskBlock, read bool) (*riskCheck, error) {
	if !read {
		var err error
		if blocks, err = s.store.FindRiskBlocks(ctx, a.Subjects(), s.now()); err != nil {
			return nil, err
		}
	}
	// Refused is counted when the refusal is recorded (runReserved): this
	// check may run more than once (planIVRCharge).
	return &riskCheck{attempt: a, settings: settings, refusal: ivrpay.RefuseByRisk(blocks, s.now())}, nil
}

// riskAttempt is the attempt of a card on a config.
func riskAttempt(cfg *ivrpay.PayinConfig, fingerprint string, brand card.Brand, last4, caller string, ivr bool) ivrpay.RiskAttempt {
	return ivrpay.RiskAttempt{PlatformID: cfg.PlatformID, MerchantID: cfg.MerchantID, ConfigID: cfg.ID, CardFingerprint: fingerprint,
		CardBrand: brand, CardLast4: last4, Caller: caller, IVR: ivr}
}

// riskRefusedResult is the outcome recorded for a refused attempt, as if a
// processor had declined it: the payin is FAILED with RISK_BLOCKED.
func riskRefusedResult(r *ivrpay.RiskRefusal) ivrpay.ProcessorResult {
	return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalRiskBlocked, RefusalDesc: r.Message}
}

// riskDecline is the count a declined outcome adds, or nil when the
// refusal does not count (ivrpay.CountsAsRiskDecline) or the attempt is not
// checked (the reconciler's).
func (s *Service) riskDecline(rc *riskCheck, res ivrpay.ProcessorResult) *ivrpay.RiskDecline {
	if rc == nil || res.Approved || !ivrpay.CountsAsRiskDecline(res.RefusalCode) {
		return nil
	}
	return &ivrpay.RiskDecline{Subjects: rc.attempt.Subjects(), CardKey: ivrpay.RiskCardKey(rc.attempt.CardFingerprint), At: s.now()}
}

// afterDecline starts the blocks a counted decline reached: rules 1 to 3
// from the counts, rule 4 from the merchant's declines and attempts. A
// failure here is logged, not returned: the decline itself is recorded, and
// the next decline decides again from the same counts.
func (s *Service) afterDecline(ctx context.Context, rc *riskCheck, d *ivrpay.RiskDecline) {
	if d == nil || d.Counted == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	blocks := ivrpay.RiskBlocksAfterDecline(rc.settings, rc.attempt, d.Counted, d.At)
	if rc.attempt.IVR && rc.settings.MerchantBreaker {
		marks := d.Counted[ivrpay.RiskSubject{Kind: ivrpay.RiskKindMerchant, Subject: rc.attempt.MerchantID}]
		if declines := ivrpay.MerchantDeclines(marks, d.At); declines >= ivrpay.MerchantBreakerDeclines {
			attempts, err := s.store.CountIVRAttempts(ctx, rc.attempt.MerchantID, d.At.Add(-ivrpay.MerchantBreakerWindow))
			if err != nil {
				s.opts.Logger.Error("risk: counting the merchant's IVR attempts failed", "merchant_id", rc.attempt.MerchantID, "error", err)
			} else if ivrpay.MerchantBreakerTrips(rc.settings, declines, attempts) {
				blocks = append(blocks, ivrpay.MerchantBreakerBlock(rc.attempt, declines, attempts, d.At))
			}
		}
	}
	if len(blocks) == 0 {
		return
	}
	for i := range blocks {
		blocks[i].CreatedAt = d.At
	}
	started, err := s.store.RecordRiskBlocks(ctx, blocks)
	if err != nil {
		s.opts.Logger.Error("risk: recording blocks failed; the next decline decides again", "error", err)
		return
	}
	for _, b := range started {
		s.opts.RiskMetrics.Blocked(b.Rule)
		s.opts.Logger.Warn("risk block started", "kind", b.Kind, "rule", b.Rule, "platform_id", b.PlatformID, "until", b.Until, "detail", b.Detail)
	}
}

// applyMatchPolicy is rule 5: an approval the platform's CVC/AVS policy
// refuses is voided at once and recorded as the decline the check would
// have been. When the void cannot be made (no void at this processor, or a
// refusal) the approval stands: money may have moved, and telling the caller
// "declined" then would be false. When the void's answer is lost the
// approval stands too, with the void in flight (the returned operation, to
// record with it): the payin does not settle, and the reconciler sends the
// void again until the processor answers.
func (s *Service) applyMatchPolicy(ctx context.Context, a chargeAttempt, p *ivrpay.Payin, res ivrpay.ProcessorResult) (ivrpay.ProcessorResult, *ivrpay.PayinOperation) {
	if a.risk == nil {
		return res, nil
	}
	rule, code, desc, ok := ivrpay.MatchPolicyRefusal(a.risk.settings, res)
	if !ok {
		return res, nil
	}
	if !a.processor.Capabilities().Void {
		s.opts.Logger.Warn("risk: the processor cannot void; the approval stands", "payin_id", p.ID, "rule", rule)
		return res, nil
	}
	op := ivrpay.PayinOperation{Kind: ivrpay.PayinOperationVoid, Amount: a.cfg.Amount, IdempotencyKey: "riskvoid_" + p.ID,
		Outcome: ivrpay.ProcessorOutcomeUnknown}
	void, err := s.call(ctx, func(ctx context.Context) (ivrpay.ProcessorResult, error) {
		return a.processor.Void(ctx, ivrpay.PaymentOperation{IdempotencyKey: op.IdempotencyKey, Reference: res.Reference, PayinID: p.ID,
			Amount: op.Amount, Currency: a.cfg.CurrencyCode, AccountRef: a.account.AccountRef})
	})
	if err != nil {
		s.opts.Logger.Warn("risk: the answer to the void of an approval the match policy refuses was lost; the approval stands with the void in flight",
			"payin_id", p.ID, "rule", rule, "error", err)
		return res, &op
	}
	if !void.Approved {
		s.opts.Logger.Error("risk: voiding an approval the match policy refuses failed; the approval stands", "payin_id", p.ID, "rule", rule,
			"refusal", void.RefusalCode)
		return res, nil
	}
	s.opts.RiskMetrics.Refused(rule)
	a.risk.policyRule = rule
	// The answer is the refusal the check itself gives: nothing tells the
	// caller the issuer approved.
	return ivrpay.ProcessorResult{RefusalCode: code, RefusalDesc: desc, Reference: res.Reference,
		AVSResultCode: res.AVSResultCode, CVCResultCode: res.CVCResultCode}, nil
}

// riskAuditDetail adds the rule behind a refusal to the payin's audit row.
func riskAuditDetail(rc *riskCheck) string {
	switch {
	case rc == nil:
		return ""
	case rc.refusal != nil:
		return fmt.Sprintf(" risk_rule=%s risk_until=%s", rc.refusal.Block.Rule, ivrpay.FormatTime(rc.refusal.Block.Until))
	case rc.policyRule != "":
		return " risk_rule=" + rc.policyRule + " voided=true"
	}
	return ""
}
