package payments

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// ProcessIVR runs one connector request: claim the transaction, run the
// checks in order, charge or store the card, and store the answer with the
// change it reports, so that every retry replays it. A new charge's claim is
// written with its reservation; a replay reads and writes nothing.
func (s *Service) ProcessIVR(ctx context.Context, req ivrpay.IVRRequest) (res ivrpay.IVRResult, err error) {
	if refusal := ivrpay.CheckIVRRequest(req); refusal != nil {
		return refusal.Result(), nil // nothing of it is stored: it may hold a card number
	}
	caller := ivrpay.PrincipalFromContext(ctx)
	if req.Provider == "" {
		req.Provider = ivrpay.ProviderTwilio
	}
	if req.ReceivedAt.IsZero() {
		req.ReceivedAt = time.Now()
	}
	key := transactionKey(caller, req)
	ref := req.ConfigParam()
	// The card's fingerprint, computed once: the hash, the risk blocks, the
	// risk check and the stored card all use it.
	cardFP := ""
	if req.CardNumber != "" {
		cardFP = s.vault.Fingerprint(req.CardNumber)
	}
	hash := s.ivrRequestHash(req, ref, cardFP)
	newClaimOf := func() *newClaim {
		return &newClaim{ConnectorClaim: ivrpay.ConnectorClaim{ConnectorTransactionKey: key, RequestHash: hash, ConfigID: ref.ID, Lease: s.opts.ConnectorLease}}
	}
	var tx ivrpay.ConnectorTransaction
	// cfg is the payin config read with the transaction (cfgRead; nil when
	// it does not exist), for the replay's check.
	var cfg *ivrpay.PayinConfig
	cfgRead := req.Method == ivrpay.IVRMethodCharge && ivrpay.IDHasKind(ref.ID, ivrpay.PrefixPayinConfig)
	if cfgRead {
		// The new charge it most likely is reads, decides and reserves in
		// one write; a replay of an answered transaction writes nothing.
		var read ivrpay.ChargeRead
		read, res, err = s.startIVRCharge(ctx, caller, req, cardFP, newClaimOf())
		if !read.Found && !errors.Is(err, ivrpay.ErrClaimTaken) {
			return res, err
		}
		tx, cfg = read.Transaction, read.Config
		// ErrClaimTaken: another request claimed it meanwhile; wait for it like any retry.
	} else {
		// A read first: a replay of an answered transaction writes nothing.
		var found bool
		if tx, found, err = s.store.FindConnectorTransaction(ctx, key); err != nil {
			return res, err
		}
		if !found && req.Method == ivrpay.IVRMethodCharge {
			// A new charge writes its claim with its payin's reservation (or
			// its refusal): one commit before the processor call instead of two.
			claim := newClaimOf()
			res, err = s.runOwned(ctx, caller, req, claim, func(ctx context.Context) (ivrpay.IVRResult, bool, error) {
				return s.runIVR(ctx, caller, req, cardFP, claim)
			})
			if !errors.Is(err, ivrpay.ErrClaimTaken) {
				return res, err
			}
			// Another request claimed it meanwhile: wait for it like any retry.
		}
	}
	if !tx.Done {
		if tx, err = s.claimTransaction(ctx, key, hash, ref.ID); err != nil {
			return res, err
		}
	}
	if !tx.Owned {
		if tx.RequestHash != hash {
			return ivrpay.DuplicateTransaction(req.TransactionID).Result(), nil
		}
		// The config read with the transaction serves the check when it is the transaction's.
		refusal, err := s.checkReplay(ctx, caller, req.Method, tx.ConfigID, cfg, cfgRead && tx.ConfigID == ref.ID)
		if err != nil {
			return res, err
		} else if refusal != nil {
			return refusal.Result(), nil
		}
		return tx.Response, nil
	}
	return s.runOwned(ctx, caller, req, nil, func(ctx context.Context) (ivrpay.IVRResult, bool, error) {
		return s.runIVR(ctx, caller, req, cardFP, nil)
	})
}

// startIVRCharge starts a connector charge naming a payin config: one
// write reads its transaction, config, route and risk blocks, decides
// (planIVRCharge) and, for a new transaction the checks let through,
// reserves the payin with the claim; then the charge runs on as runOwned
// runs it. read.Found means the transaction existed, and nothing was done;
// ErrClaimTaken that another request claimed it first, and nothing was
// written.
func (s *Service) startIVRCharge(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, cardFP string, claim *newClaim) (read ivrpay.ChargeRead, res ivrpay.IVRResult, err error) {
	// The attempt runs to completion even if the caller hangs up (runOwned),
	// and what decide reads inside the write must not fail the write's batch.
	ctx = context.WithoutCancel(ctx)
	// The same read finds the risk blocks on the card, caller, config and merchant.
	claim.risk = &ivrpay.RiskLookup{CardFingerprint: cardFP, Now: s.now()}
	if c := ivrpay.NormalizeCaller(req.Parameters[ivrpay.ParamCaller]); c != "" {
		claim.risk.CallerSubject = ivrpay.CallerSubject(caller.PlatformID, c)
	}
	var plan ivrChargePlan
	read, reserved, holder, err := s.store.ReserveConnectorCharge(ctx, claim.ConnectorTransactionKey, claim.ConfigID, claim.risk,
		func(read ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
			claim.cfg, claim.route, claim.cfgRead = read.Config, read.Route, true
			var err error
			if plan, err = s.planIVRCharge(ctx, caller, req, cardFP, claim); err != nil || plan.refusal != nil {
				return nil, err
			}
			return &plan.reservation, nil
		})
	if read.Found || errors.Is(err, ivrpay.ErrClaimTaken) {
		return read, res, err
	}
	res, err = s.runOwned(ctx, caller, req, claim, func(ctx context.Context) (ivrpay.IVRResult, bool, error) {
		if err != nil {
			return ivrpay.IVRResult{}, false, err
		} else if plan.refusal != nil {
			return plan.refusal.Result(), false, nil
		}
		p, err := s.runReserved(ctx, plan.attempt, reserved, holder, nil)
		return ivrChargeAnswer(plan.attempt, p, err)
	})
	return read, res, err
}

// newClaim is the claim of a new charge transaction, not written yet: it is
// written with the transaction's first change (written), or not at all.
type newClaim struct {
	ivrpay.ConnectorClaim
	written bool
	// cfg is the payin config read with the look-up of the transaction
	// (cfgRead), nil when it does not exist; route is its merchant's, and
	// risk the risk blocks read with it.
	cfg     *ivrpay.PayinConfig
	route   ivrpay.ProcessorRoute
	cfgRead bool
	risk    *ivrpay.RiskLookup
}

// runOwned runs a transaction this request has claimed (claim nil) or a new
// one whose claim it writes with its first change, by run. ErrClaimTaken
// means another request claimed the new one first and nothing was written.
func (s *Service) runOwned(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, claim *newClaim,
	run func(ctx context.Context) (res ivrpay.IVRResult, finished bool, err error)) (ivrpay.IVRResult, error) {
	// From here the attempt runs to completion even if Twilio hangs up, so
	// that its retry finds the answer.
	ctx = context.WithoutCancel(ctx)
	res, finished, err := run(ctx)
	if err == nil && !finished {
		// A refusal decided without a change to record.
		a := ivrpay.ConnectorAnswer{ConnectorTransactionKey: transactionKey(caller, req), Result: res}
		if claim != nil && !claim.written {
			a.Claim = &claim.ConnectorClaim
		}
		err = s.store.FinishConnectorTransaction(ctx, a)
	}
	claimed := claim == nil || claim.written
	if claimed && (err != nil || (finished && res.ErrorCode == ivrpay.ConnPaymentPending)) {
		// Release the lease so that the next retry takes over at once: after
		// an error, or while the processor's outcome is unknown (the retry
		// asks the processor again with the same idempotency key).
		if rerr := s.store.ReleaseConnectorTransaction(ctx, transactionKey(caller, req)); rerr != nil && err == nil {
			err = rerr
		}
	}
	return res, err
}

// checkReplay refuses a replayed transaction to a key that may not act on
// its config (another merchant's key of the platform resending the
// transaction id it learned); the answer names nothing of the transaction.
// A charge's config already read (cfgRead; nil when it does not exist) is
// not read again.
func (s *Service) checkReplay(ctx context.Context, caller *ivrpay.APIKey, method, configID string, cfg *ivrpay.PayinConfig, cfgRead bool) (*ivrpay.ConnectorError, error) {
	var obj ivrpay.Object
	permission, kind := "payin:create", "payin config"
	if method == ivrpay.IVRMethodCharge {
		if !cfgRead {
			var err error
			if cfg, err = s.store.LoadPayinConfig(ctx, configID); err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
				return nil, err
			}
		}
		if cfg == nil {
			return nil, nil // the first answer was CONFIG_NOT_FOUND: nothing to protect
		}
		obj = cfg.Object()
	} else {
		pmc, err := s.store.LoadPaymentMethodConfig(ctx, configID)
		if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		permission, kind, obj = "payment_method:create", "payment method config", pmc.Object()
	}
	if ivrpay.Allows(caller, permission, obj) {
		return nil, nil
	}
	if ivrpay.Hidden(caller, permission, kind, obj) {
		// A payer's browser is answered as for a config it cannot see.
		return ivrpay.ConfigNotFound(method, configID, caller.PlatformID), nil
	}
	return ivrpay.ConnectorErrorf(ivrpay.ConnForbidden, "API key %s lacks permission %s on the config of this transaction_id", caller.ID, permission), nil
}

// ivrRequestHash identifies "the same request" for a transaction_id: method,
// config, card fingerprint and amount. CVV, expiry and postal code are not
// compared, and the card enters only as a keyed fingerprint.
func (s *Service) ivrRequestHash(req ivrpay.IVRRequest, ref ivrpay.IVRConfigRef, cardFP string) string {
	amount := req.Amount.Raw
	if req.Amount.Err == nil {
		amount = strconv.FormatInt(req.Amount.Cents, 10)
	}
	return ivrpay.RequestHash([]string{req.Method, ref.ID, cardFP, amount, strconv.FormatBool(req.ACH)})
}

// claimTransaction makes this request the owner of its transaction, or
// returns the transaction as the first request left it: answered, or
// answered for another request (the caller compares hashes). While the first
// request runs, it waits.
func (s *Service) claimTransaction(ctx context.Context, key ivrpay.ConnectorTransactionKey, hash, configID string) (ivrpay.ConnectorTransaction, error) {
	// The claim is written whatever the client does (an owned attempt then
	// runs to completion), so that it can share a group commit.
	wctx := context.WithoutCancel(ctx)
	for {
		tx, err := s.store.ClaimConnectorTransaction(wctx, key, hash, configID, s.opts.ConnectorLease)
		if err != nil || tx.Owned || tx.Done || tx.RequestHash != hash {
			return tx, err
		}
		select {
		case <-ctx.Done():
			return tx, ctx.Err()
		case <-time.After(s.pollEvery):
		}
	}
}

// runIVR runs checks 3 to 11 and the charge or tokenize. finished reports
// that the answer was stored with the change it reports.
func (s *Service) runIVR(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, cardFP string, claim *newClaim) (res ivrpay.IVRResult, finished bool, err error) {
	if req.Method == ivrpay.IVRMethodCharge {
		plan, err := s.planIVRCharge(ctx, caller, req, cardFP, claim)
		if err != nil {
			return res, false, err
		} else if plan.refusal != nil {
			return plan.refusal.Result(), false, nil
		}
		p, err := s.charge(ctx, plan.attempt)
		return ivrChargeAnswer(plan.attempt, p, err)
	}
	ref, refusal, err := s.checkIVRCaller(ctx, caller, req)
	if err != nil {
		return res, false, err
	} else if refusal != nil {
		return refusal.Result(), false, nil
	}
	pmc, err := s.store.LoadPaymentMethodConfig(ctx, ref.ID)
	if err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
		return res, false, err
	}
	entry, refusal := ivrpay.CheckIVRTokenize(caller, pmc, ref.ID, req, s.now())
	if refusal != nil {
		return refusal.Result(), false, nil
	}
	return s.tokenizeIVR(ctx, caller, req, pmc, entry, cardFP)
}

// checkIVRCaller runs the checks a charge and a tokenize share: the
// caller's platform (check 3) and the config parameter.
func (s *Service) checkIVRCaller(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest) (ivrpay.IVRConfigRef, *ivrpay.ConnectorError, error) {
	platform := caller.Platform
	if platform == nil {
		// Keys from Authenticate carry their platform; others are loaded here.
		var err error
		if platform, err = s.store.FindPlatform(ctx, caller.PlatformID); err != nil {
			return ivrpay.IVRConfigRef{}, nil, err
		}
		caller.Platform = platform
	}
	if refusal := ivrpay.CheckIVRPlatform(platform); refusal != nil {
		return ivrpay.IVRConfigRef{}, refusal, nil
	}
	ref, refusal := ivrpay.CheckIVRConfigParam(req)
	return ref, refusal, nil
}

// ivrChargePlan is what a connector charge decides before its first write:
// a refusal to answer, or the attempt to make with its reservation.
type ivrChargePlan struct {
	refusal     *ivrpay.ConnectorError
	attempt     chargeAttempt
	reservation ivrpay.PayinReservation
}

// planIVRCharge runs a charge's checks (3 to 11), finds its processor and
// checks it against the risk blocks, with the config, route and blocks read
// with its transaction when claim holds them (cfgRead). It writes nothing,
// and it may run inside the write that reserves the payin
// (Store.ReserveConnectorCharge), more than once.
func (s *Service) planIVRCharge(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, cardFP string, claim *newClaim) (plan ivrChargePlan, err error) {
	ref, refusal, err := s.checkIVRCaller(ctx, caller, req)
	if err != nil || refusal != nil {
		return ivrChargePlan{refusal: refusal}, err
	}
	var cfg *ivrpay.PayinConfig
	readWithConfig := claim != nil && claim.cfgRead && claim.ConfigID == ref.ID
	if readWithConfig {
		cfg = claim.cfg
	} else if cfg, err = s.store.LoadPayinConfig(ctx, ref.ID); err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
		return plan, err
	}
	entry, refusal := ivrpay.CheckIVRCharge(caller, cfg, ref.ID, req, s.now())
	if refusal != nil {
		return ivrChargePlan{refusal: refusal}, nil
	}
	var read *ivrpay.ProcessorRoute
	var blocks []ivrpay.RiskBlock
	if readWithConfig {
		read = &claim.route // read with the config
		blocks = claim.risk.Blocks
	}
	account, proc, err := s.route(ctx, cfg.PlatformID, cfg.MerchantID, read, paymentOps(cfg.ProcessingMode)...)
	if refusal := notConfigured(err); refusal != nil {
		return ivrChargePlan{refusal: refusal}, nil
	} else if err != nil {
		return plan, err
	}
	rc, err := s.newRiskCheck(ctx, caller.Platform.Risk, riskAttempt(cfg, cardFP, entry.Brand, card.Last4(entry.PAN),
		ivrpay.NormalizeCaller(req.Parameters[ivrpay.ParamCaller]), true), blocks, readWithConfig)
	if err != nil {
		return plan, err
	}
	version := caller.Platform.MinAPIVersion
	answer := func(p *ivrpay.Payin) *ivrpay.ConnectorAnswer {
		res := ivrChargeResult(version, p, entry)
		if rc.refusal != nil && p.RefusalCode == ivrpay.RefusalRiskBlocked {
			res.ErrorCode = rc.refusal.Code // CONFIG_LOCKED for rule 2
		}
		return &ivrpay.ConnectorAnswer{ConnectorTransactionKey: transactionKey(caller, req), Result: res}
	}
	plan.attempt = chargeAttempt{cfg: cfg, entry: entry, source: ivrpay.PayinSourceIVR, ivrProvider: req.Provider, ivrTxID: req.TransactionID,
		fingerprint: cardFP, account: account, processor: proc, answer: answer, version: version, claim: claim, createdBy: caller.ID, risk: rc,
		timeout: s.ivrProcessorTimeout(req.Provider), answerBy: ivrAnswerBy(req)}
	plan.reservation = s.newReservation(plan.attempt)
	return plan, nil
}

// ivrChargeAnswer is the connector's answer to charge attempt a, made (p)
// or refused (err): a refusal's answer is not stored yet (finished false).
func ivrChargeAnswer(a chargeAttempt, p *ivrpay.Payin, err error) (ivrpay.IVRResult, bool, error) {
	if ce := ivrpay.AsConnectorError(err); ce != nil {
		return ce.Result(), false, nil
	} else if err != nil {
		return ivrpay.IVRResult{}, false, err
	}
	return a.answer(p).Result, true, nil
}

// ivrChargeResult is the connector's answer for a payin: its id when
// approved, the refusal when declined, PAYMENT_PENDING while the processor's
// outcome is unknown; the parameters Twilio passes on either way.
func ivrChargeResult(v ivrpay.APIVersion, p *ivrpay.Payin, entry ivrpay.CardEntry) ivrpay.IVRResult {
	shaped := ivrpay.ShapePayin(v, p)
	r := ivrpay.IVRResult{Parameters: map[string]string{
		"payin_id": p.ID, "payin_status": shaped.Status, "payment_method_id": string(p.PaymentMethodID),
		"card_brand": string(entry.Brand), "card_last_4": card.Last4(entry.PAN),
	}}
	switch p.Status {
	case ivrpay.PayinStatusFailed:
		r.ErrorCode, r.ErrorMessage = string(p.RefusalCode), string(p.RefusalDesc)
	case ivrpay.PayinStatusCreated:
		r.ErrorCode = ivrpay.ConnPaymentPending
		r.ErrorMessage = "the processor has not confirmed the payment yet; it may have gone through: tell the caller it is being confirmed (the final status follows by webhook, payin " + p.ID + ")"
	default:
		r.ID = p.ID
	}
	return r
}

func (s *Service) tokenizeIVR(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, pmc *ivrpay.PaymentMethodConfig, entry ivrpay.CardEntry, cardFP string) (ivrpay.IVRResult, bool, error) {
	account, proc, err := s.route(ctx, pmc.PlatformID, pmc.MerchantID, nil, ivrpay.OpVerify)
	if refusal := notConfigured(err); refusal != nil {
		return refusal.Result(), false, nil
	} else if err != nil {
		return ivrpay.IVRResult{}, false, err
	}
	pmID := s.newID(ivrpay.PrefixPaymentMethod)
	params := map[string]string{"card_brand": string(entry.Brand), "card_last_4": card.Last4(entry.PAN)}
	verified, err := s.callWithin(ctx, s.ivrProcessorTimeout(req.Provider), func(ctx context.Context) (ivrpay.ProcessorResult, error) {
		return proc.Verify(ctx, ivrpay.CardPayment{IdempotencyKey: pmID, Reference: pmID, Currency: "USD", Card: entry.Details(), AccountRef: account.AccountRef})
	})
	if err != nil {
		// A verification moves no money, so an unknown one is answered as a
		// processing error the caller may try again (docs/decisions.md).
		s.opts.Logger.Error("processor did not answer a card verification", "payment_method_id", pmID, "error", err)
		verified = ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "The processor did not answer; try again"}
	}
	result := ivrpay.IVRResult{Parameters: params}
	if !verified.Approved {
		result.ErrorCode, result.ErrorMessage = verified.RefusalCode, verified.RefusalDesc
		return result, false, nil
	}
	result.ID = pmID
	params["payment_method_id"] = pmID
	ciphertext, err := s.encryptCard(entry.PAN)
	if err != nil {
		return ivrpay.IVRResult{}, false, err
	}
	err = s.store.StorePaymentMethod(ctx, ivrpay.NewPaymentMethod{ID: pmID, PlatformID: pmc.PlatformID, MerchantID: pmc.MerchantID,
		PaymentMethodConfigID: pmc.ID, Status: ivrpay.PaymentMethodStatusActive, Card: cardOf(entry), PANCiphertext: ciphertext,
		Fingerprint: cardFP, NetworkTransactionID: verified.NetworkTransactionID,
		BillingContact: pmc.BillingContact.WithPostalCode(entry.PostalCode), Metadata: pmc.Metadata, Announce: true, CreatedAt: s.now(),
		CreatedBy: caller.ID},
		&ivrpay.ConnectorAnswer{ConnectorTransactionKey: transactionKey(caller, req), Result: result})
	if errors.Is(err, ivrpay.ErrConfigUsed) {
		return ivrpay.ConnectorErrorf(ivrpay.ConnConfigAlreadyUsed,
			"payment method config %s was used by another transaction at the same time; create a new payment method config to store another card", pmc.ID).Result(), false, nil
	} else if err != nil {
		return ivrpay.IVRResult{}, false, err
	}
	return result, true, nil
}

// transactionKey is the key of the caller's connector transaction req.
func transactionKey(caller *ivrpay.APIKey, req ivrpay.IVRRequest) ivrpay.ConnectorTransactionKey {
	return ivrpay.ConnectorTransactionKey{PlatformID: caller.PlatformID, Provider: req.Provider, TransactionID: req.TransactionID}
}

// cardOf is how a card entry is shown: brand, last 4 and expiry.
func cardOf(e ivrpay.CardEntry) ivrpay.Card {
	return ivrpay.Card{Brand: string(e.Brand), Last4: card.Last4(e.PAN), ExpMonth: e.Expiry.Month, ExpYear: e.Expiry.Year}
}
