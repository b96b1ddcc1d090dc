package payments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// chargeAttempt is one payin to make from a config and a card.
type chargeAttempt struct {
	cfg   *ivrpay.PayinConfig
	entry ivrpay.CardEntry
	// fingerprint is the card's (vault.Fingerprint), when already computed.
	fingerprint string
	source      string
	// ivrProvider and ivrTxID name the connector transaction, for payins made over IVR.
	ivrProvider ivrpay.IVRProvider
	ivrTxID     string
	// stored is the stored card charged (merchant-initiated), with the
	// network transaction id of its first payment; nil for a card just typed.
	stored    *ivrpay.PaymentMethod
	storedNTI string
	account   ivrpay.ProcessorAccountRef
	processor ivrpay.Processor
	// version is the platform's minimum API version, which the payin's
	// event is shaped at (empty: the store reads it).
	version ivrpay.APIVersion
	// answer, for connector charges, is the answer stored with the outcome.
	answer func(p *ivrpay.Payin) *ivrpay.ConnectorAnswer
	// claim, for a new connector transaction, is written with the reservation.
	claim *newClaim
	// createdBy is the API key or session id the payin is made through.
	createdBy string
	// risk is the attempt's risk check (nil: not checked, as the reconciler's).
	risk *riskCheck
	// timeout bounds the processor call (0: the service's ProcessorTimeout).
	timeout time.Duration
	// voidInFlight is the void of the approval whose answer was lost,
	// recorded with the approval.
	voidInFlight *ivrpay.PayinOperation
	// cardAnswerDue marks an approval given without the card network's
	// answer for the card-answer pass (FillCardAnswersDue).
	cardAnswerDue bool
	// answerBy, for connector charges, is when the voice provider must have
	// the answer: a first call that timed out before it is followed by one
	// Resolve in the time left.
	answerBy time.Time
}

// minResolveTime is the least time left before answerBy worth asking the
// processor once more in.
const minResolveTime = 500 * time.Millisecond

// charge makes a payin in three steps. (1) A CREATED payin reserves the
// config: the unique index on live payins lets exactly one racer through.
// (2) The processor answers, outside any database transaction, with the payin
// id as its idempotency key. (3) One transaction stores the outcome with the
// card, the events and the connector answer. An attempt that crashed after
// (1), or whose processor outcome is unknown, is resumed by its retry, which
// finds its CREATED payin and asks the processor again under the same key.
// A config already in use is an ECONFLICT, or CONFIG_ALREADY_USED over IVR.
func (s *Service) charge(ctx context.Context, a chargeAttempt) (*ivrpay.Payin, error) {
	reserved, holder, err := s.store.ReservePayin(context.WithoutCancel(ctx), s.newReservation(a))
	return s.runReserved(ctx, a, reserved, holder, err)
}

// runReserved runs a charge on from its reservation (ReservePayin's answer:
// the payin reserved, or the payin holding the config), steps (2) and (3).
func (s *Service) runReserved(ctx context.Context, a chargeAttempt, reserved, holder *ivrpay.Payin, err error) (*ivrpay.Payin, error) {
	p, resumed, err := s.reserved(a, reserved, holder, err)
	if err != nil || p.Status != ivrpay.PayinStatusCreated {
		return p, err
	}
	if a.risk != nil && a.risk.refusal != nil {
		s.opts.RiskMetrics.Refused(a.risk.refusal.Block.Rule)
		return s.recordOutcome(ctx, p, a, riskRefusedResult(a.risk.refusal)) // the card never leaves
	}
	pay := ivrpay.CardPayment{IdempotencyKey: p.ID, Reference: p.ID, Amount: a.cfg.Amount, Currency: a.cfg.CurrencyCode,
		Capture: a.cfg.ProcessingMode != ivrpay.ProcessingModeAuthorize, Card: a.entry.Details(), AccountRef: a.account.AccountRef}
	if a.stored != nil {
		pay.Stored = &ivrpay.StoredCredential{NetworkTransactionID: a.storedNTI}
	}
	timeout := cmp.Or(a.timeout, s.opts.ProcessorTimeout)
	deadline := time.Now().Add(timeout)
	res, err := s.callWithin(ctx, timeout, func(ctx context.Context) (ivrpay.ProcessorResult, error) { return a.processor.Authorize(ctx, pay) })
	if errors.Is(err, ivrpay.ErrNotSent) && !resumed {
		// Refused before it left, and no earlier attempt sent this payin's
		// idempotency key: nothing was charged, so the payin fails at once
		// instead of waiting for the reconciler (SPEC §9).
		s.opts.Logger.Error("processor request refused before it was sent; the payin fails", "payin_id", p.ID, "processor", a.account.Name, "error", err)
		res, err = ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: notSentDesc}, nil
	}
	if err != nil && !time.Now().Before(deadline) && time.Until(a.answerBy) >= minResolveTime {
		// The call timed out with time left before the caller must hear
		// something: ask once what it did, so that fewer callers hear
		// "being confirmed" (SPEC §4.2).
		pay.DuringCall = true
		if res, err = s.callWithin(ctx, min(time.Until(a.answerBy), timeout), func(ctx context.Context) (ivrpay.ProcessorResult, error) {
			return a.processor.Resolve(ctx, pay)
		}); err == nil {
			res = resolvedResult(res)
		}
	}
	if err != nil {
		s.opts.Logger.Warn("processor outcome unknown; the payin keeps its config until a retry or the reconciler resolves it",
			"payin_id", p.ID, "processor", a.account.Name, "error", err)
		return s.recordUnknown(ctx, p, a)
	}
	res, a.voidInFlight = s.applyMatchPolicy(ctx, a, p, res)
	return s.recordOutcome(ctx, p, a, res)
}

// notSentDesc is the refusal_desc of a payin whose request was refused
// before it was sent.
const notSentDesc = "The payment could not be sent to the processor; nothing was charged"

// newReservation is the CREATED payin attempt a reserves its config with.
func (s *Service) newReservation(a chargeAttempt) ivrpay.PayinReservation {
	r := ivrpay.PayinReservation{ID: s.newID(ivrpay.PrefixPayin), Config: a.cfg, Card: cardOf(a.entry),
		BillingContact: a.cfg.BillingContact.WithPostalCode(a.entry.PostalCode), Source: a.source,
		IVRProvider: a.ivrProvider, IVRTransactionID: a.ivrTxID, Processor: a.account, CreatedAt: s.now(), CreatedBy: a.createdBy}
	if a.stored != nil {
		r.PaymentMethodID, r.PaymentMethodConfigID = a.stored.ID, string(a.stored.PaymentMethodConfigID)
	}
	if a.claim != nil && !a.claim.written {
		r.Claim = &a.claim.ConnectorClaim
	}
	return r
}

// reserved is the payin attempt a goes on with after its reservation wrote
// p, or found holder: the payin of the same attempt (a crashed or unknown
// one, which the caller resumes: resumed), or a refusal: the config is used.
func (s *Service) reserved(a chargeAttempt, p, holder *ivrpay.Payin, err error) (*ivrpay.Payin, bool, error) {
	if err != nil || holder == nil {
		if err == nil && a.claim != nil {
			a.claim.written = true
		}
		return p, false, err
	}
	if sameAttempt(holder, a) {
		return holder, true, nil
	}
	if holder.Status == ivrpay.PayinStatusCreated {
		return nil, false, s.configUsed(a, fmt.Sprintf("payin config %s is being charged by another request (payin %s); create a new payin config for a new payment", a.cfg.ID, holder.ID))
	}
	return nil, false, s.configUsed(a, fmt.Sprintf("payin config %s already has payin %s; create a new payin config for a new payment", a.cfg.ID, holder.ID))
}

// sameAttempt reports whether the payin holding the config is the one this
// attempt made before: the payin of its IVR transaction, or, for a stored
// card charged over REST, the CREATED payin of the same card and config
// whose outcome is unknown (a retry of that request; one still at the
// processor is another request's).
func sameAttempt(holder *ivrpay.Payin, a chargeAttempt) bool {
	if a.ivrTxID != "" {
		return holder.IVR != nil && holder.IVR.Provider == a.ivrProvider && holder.IVR.TransactionID == a.ivrTxID
	}
	return a.stored != nil && holder.Status == ivrpay.PayinStatusCreated && holder.Source == a.source &&
		string(holder.PaymentMethodID) == a.stored.ID && holder.PayinConfigID == a.cfg.ID &&
		holder.Processor != nil && holder.Processor.Outcome == ivrpay.ProcessorOutcomeUnknown
}

func (s *Service) configUsed(a chargeAttempt, msg string) error {
	if a.ivrTxID != "" {
		return &ivrpay.ConnectorError{Code: ivrpay.ConnConfigAlreadyUsed, Message: msg}
	}
	return &ivrpay.Error{Code: ivrpay.ECONFLICT, Message: msg}
}

// recordOutcome stores the processor's definite answer. When another attempt
// (a retry, the reconciler) recorded the payin first, its record stands.
func (s *Service) recordOutcome(ctx context.Context, p *ivrpay.Payin, a chargeAttempt, res ivrpay.ProcessorResult) (*ivrpay.Payin, error) {
	o := ivrpay.PayinOutcome{PayinID: p.ID, Payin: p, APIVersion: a.version, Result: res, Operation: a.voidInFlight, At: s.now(),
		CardAnswerDue: a.cardAnswerDue}
	o.Status, o.AuthorizedAmount, o.CapturedAmount = outcomeStatus(a.cfg.Amount, a.cfg.ProcessingMode, res)
	pmStatus := ivrpay.PaymentMethodStatusActive
	if !res.Approved {
		pmStatus = ivrpay.PaymentMethodStatusAfterDecline(res.RefusalCode)
	}
	switch {
	case res.RefusalCode == ivrpay.RefusalRiskBlocked:
		// Refused before the processor: the card is neither stored nor judged.
		if a.stored != nil {
			o.PaymentMethodID = a.stored.ID
		}
	case a.stored != nil:
		o.PaymentMethodID = a.stored.ID
		if !res.Approved && pmStatus != ivrpay.PaymentMethodStatusActive {
			o.PaymentMethodStatus = pmStatus
		}
	case p.PaymentMethodID != "":
		// Stored when the outcome became unknown; its status follows the answer.
		o.PaymentMethodID = string(p.PaymentMethodID)
		o.PaymentMethodStatus, o.AnnouncePaymentMethod = pmStatus, pmStatus == ivrpay.PaymentMethodStatusActive
	case a.entry.PAN == "":
		// An attempt that died before its card was stored: there is no card to keep.
	default:
		pm, err := s.newPaymentMethod(a, p, pmStatus, res.NetworkTransactionID)
		if err != nil {
			return nil, err
		}
		o.NewPaymentMethod, o.PaymentMethodID = pm, pm.ID
	}
	o.Audit = ivrpay.AuditEvent{PlatformID: p.PlatformID, Action: "payin.create", Target: p.ID, Outcome: o.Status,
		Detail: fmt.Sprintf("source=%s amount=%d config=%s refusal=%s", p.Source, p.Amount, p.PayinConfigID, res.RefusalCode) + riskAuditDetail(a.risk)}
	o.RiskDecline = s.riskDecline(a.risk, res)
	if a.answer != nil {
		o.Answer = a.answer(o.Applied(p))
	}
	final, err := s.store.RecordPayinOutcome(context.WithoutCancel(ctx), o)
	if errors.Is(err, ivrpay.ErrStateChanged) {
		return s.store.LoadPayin(ctx, p.ID)
	}
	if err == nil {
		s.afterDecline(ctx, a.risk, o.RiskDecline)
	}
	return final, err
}

// outcomeStatus is a payin's status and amounts after the processor's answer.
func outcomeStatus(amount int64, mode string, res ivrpay.ProcessorResult) (status string, authorized, captured int64) {
	if !res.Approved {
		return ivrpay.PayinStatusFailed, 0, 0
	}
	authorized = amount
	if res.AuthorizedAmount > 0 && res.AuthorizedAmount < amount {
		authorized = res.AuthorizedAmount
	}
	if mode == ivrpay.ProcessingModeAuthorize {
		return ivrpay.PayinStatusAuthorized, authorized, 0
	}
	return ivrpay.PayinStatusProcessing, authorized, authorized
}

// recordUnknown keeps the payin CREATED, holding its config, with its card
// stored so that the reconciler can resolve it without the caller.
func (s *Service) recordUnknown(ctx context.Context, p *ivrpay.Payin, a chargeAttempt) (*ivrpay.Payin, error) {
	u := ivrpay.PayinUnknown{PayinID: p.ID, At: s.now(), APIVersion: a.version}
	if a.stored == nil && p.PaymentMethodID == "" {
		pm, err := s.newPaymentMethod(a, p, ivrpay.PaymentMethodStatusActive, "")
		if err != nil {
			return nil, err
		}
		u.NewPaymentMethod = pm
	}
	return s.store.RecordPayinUnknown(context.WithoutCancel(ctx), u)
}

func (s *Service) newPaymentMethod(a chargeAttempt, p *ivrpay.Payin, status, nti string) (*ivrpay.NewPaymentMethod, error) {
	ciphertext, err := s.encryptCard(a.entry.PAN)
	if err != nil {
		return nil, err
	}
	fingerprint := a.fingerprint
	if fingerprint == "" {
		fingerprint = s.vault.Fingerprint(a.entry.PAN)
	}
	return &ivrpay.NewPaymentMethod{ID: s.newID(ivrpay.PrefixPaymentMethod), PlatformID: a.cfg.PlatformID, MerchantID: a.cfg.MerchantID,
		Status: status, Card: cardOf(a.entry), PANCiphertext: ciphertext, Fingerprint: fingerprint, NetworkTransactionID: nti,
		BillingContact: p.BillingContact, Metadata: a.cfg.MethodMetadata, Announce: true, CreatedAt: s.now(), CreatedBy: p.CreatedBy}, nil
}

// ChargePaymentMethod charges a stored card for a payin config, as a
// merchant-initiated transaction (no CVV: it was never kept).
func (s *Service) ChargePaymentMethod(ctx context.Context, paymentMethodID, payinConfigID string) (*ivrpay.Payin, error) {
	caller := ivrpay.PrincipalFromContext(ctx)
	if payinConfigID == "" {
		return nil, ivrpay.FieldErrorf("payin_config_id", "is required")
	}
	pm, err := s.store.LoadPaymentMethod(ctx, paymentMethodID)
	// A card a payer's browser cannot see is not found before the config is
	// looked at, so that the config's answer says nothing of the card.
	if err != nil || ivrpay.Hidden(caller, "payment_method:read", "payment method", pm.Object()) {
		if err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
			return nil, err
		}
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payment method %s not found", paymentMethodID)
	}
	cfg, err := s.store.LoadPayinConfig(ctx, payinConfigID)
	if err != nil || cfg.PlatformID != caller.PlatformID {
		if err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
			return nil, err
		}
		return nil, ivrpay.StoredChargeConfigNotFound(payinConfigID, caller.PlatformID)
	}
	if err := ivrpay.CheckStoredCharge(caller, pm, cfg, s.now()); err != nil {
		return nil, err
	}
	account, proc, err := s.route(ctx, cfg.PlatformID, cfg.MerchantID, nil, append(paymentOps(cfg.ProcessingMode), ivrpay.OpStoredCharge)...)
	if err != nil {
		return nil, err
	}
	ciphertext, nti, err := s.store.LoadPaymentMethodCard(ctx, pm.ID)
	if err != nil {
		return nil, err
	}
	pan, err := s.vault.Decrypt(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	postal := cfg.BillingContact.PostalCodeOrEmpty()
	if postal == "" {
		postal = pm.BillingContact.PostalCodeOrEmpty()
	}
	entry := ivrpay.CardEntry{PAN: pan, Brand: card.Brand(pm.Card.Brand), Expiry: card.Expiry{Month: pm.Card.ExpMonth, Year: pm.Card.ExpYear}, PostalCode: postal}
	a := chargeAttempt{cfg: cfg, entry: entry, source: ivrpay.PayinSourceAPIStoredPaymentMethod,
		stored: pm, storedNTI: nti, account: account, processor: proc, createdBy: caller.ID}
	platform := caller.Platform
	if platform == nil {
		if platform, err = s.store.FindPlatform(ctx, caller.PlatformID); err != nil {
			return nil, err
		}
	}
	a.version = platform.MinAPIVersion
	if a.risk, err = s.newRiskCheck(ctx, platform.Risk, riskAttempt(cfg, pm.Fingerprint, entry.Brand, pm.Card.Last4, "", false), nil, false); err != nil {
		return nil, err
	}
	p, err := s.charge(ctx, a)
	if err != nil {
		return nil, err
	}
	if a.risk.refusal != nil && p.Status == ivrpay.PayinStatusFailed && p.RefusalCode == ivrpay.RefusalRiskBlocked {
		return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "%s (payin %s records the refusal)", a.risk.refusal.Message, p.ID)
	}
	return ivrpay.ShapePayin(ivrpay.VersionFromContext(ctx), p), nil
}
