package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// chargeSpec is one payin to make from a config and a card.
type chargeSpec struct {
	cfg    *ivrpay.PayinConfig
	card   cardInput
	source string
	// ivrTxID is the Twilio transaction_id, for payins made over IVR.
	ivrTxID string
	// storedPaymentMethodID charges a stored card; when empty the card is
	// stored as a new payment method with the payin.
	storedPaymentMethodID string
	// finish runs in the transaction that settles the payin's outcome.
	finish func(tx *sql.Tx, p *ivrpay.Payin) error
}

// charge makes a payin in three steps. (1) A CREATED payin reserves the
// config: the unique index on live payins lets exactly one racer through.
// (2) The processor answers, outside any database transaction, with the payin
// id as its idempotency reference. (3) One transaction stores the outcome,
// the payment method and whatever finish adds. An attempt that crashed after
// (1) is resumed by its retry, which finds its CREATED payin.
func (s *Store) charge(ctx context.Context, spec chargeSpec) (*ivrpay.Payin, error) {
	cfg, ci := spec.cfg, spec.card
	p, err := s.reservePayin(ctx, spec)
	if err != nil {
		return nil, err
	}
	if p.Status != ivrpay.PayinStatusCreated {
		return p, nil
	}
	capture := cfg.ProcessingMode != ivrpay.ProcessingModeAuthorize
	auth, err := s.authorize(ctx, ivrpay.CardPayment{IdempotencyKey: p.ID, Reference: p.ID, Amount: cfg.Amount, Currency: cfg.CurrencyCode,
		Card: ci.details(), Capture: capture})
	if err != nil {
		return nil, err
	}
	status, authorized, captured := ivrpay.PayinStatusFailed, int64(0), int64(0)
	if auth.Approved {
		status, authorized = ivrpay.PayinStatusProcessing, cfg.Amount
		if capture {
			captured = cfg.Amount
		} else {
			status = ivrpay.PayinStatusAuthorized
		}
	}
	pmID := spec.storedPaymentMethodID
	var final *ivrpay.Payin
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if pmID == "" {
			pmID = s.newID(ivrpay.PrefixPaymentMethod)
			pmStatus := ivrpay.PaymentMethodStatusActive
			if !auth.Approved && auth.RefusalCode != ivrpay.RefusalInsufficientFunds && auth.RefusalCode != ivrpay.RefusalProcessingError {
				// A card the issuer refused for what it is (not for a
				// passing condition) must not be charged again.
				pmStatus = ivrpay.PaymentMethodStatusFailed
			}
			if err := s.insertPaymentMethod(ctx, tx, pmID, cfg.PlatformID, cfg.MerchantID, "", pmStatus, ci, p.BillingContact, cfg.MethodMetadata); err != nil {
				return err
			}
			if err := s.emitPaymentMethodEvent(ctx, tx, pmID); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE payins SET status = $2, payment_method_id = $3, authorized_amount = $4, captured_amount = $5,
			refusal_code = $6, refusal_desc = $7, auth_code = $8, avs_result_code = $9, cvc_result_code = $10, updated_at = $11, status_at = $11 WHERE id = $1`,
			p.ID, status, pmID, authorized, captured, auth.RefusalCode, auth.RefusalDesc, auth.AuthCode, auth.AVSResultCode,
			auth.CVCResultCode, ivrpay.FormatTime(s.now())); err != nil {
			return err
		}
		final, err = s.findPayin(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		// The payin's event is written with its outcome, in this transaction.
		if err := s.emitPayinEvent(ctx, tx, final); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, ivrpay.AuditEvent{PlatformID: final.PlatformID, Action: "payin.create", Target: final.ID,
			Outcome: final.Status, Detail: fmt.Sprintf("source=%s amount=%d config=%s refusal=%s", final.Source, final.Amount, final.PayinConfigID, final.RefusalCode)}); err != nil {
			return err
		}
		if spec.finish != nil {
			return spec.finish(tx, final)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The payin as the committed transaction wrote it; no need to read it again.
	return final, nil
}

// reservePayin inserts the CREATED payin that reserves the config. For an IVR
// transaction that already has a payin (a crashed attempt), it returns that
// payin instead. A config already in use is an ECONFLICT.
func (s *Store) reservePayin(ctx context.Context, spec chargeSpec) (*ivrpay.Payin, error) {
	cfg, ci := spec.cfg, spec.card
	now := s.now()
	id := s.newID(ivrpay.PrefixPayin)
	bc, err := jsonText(mergePostal(cfg.BillingContact, ci.postalCode))
	if err != nil {
		return nil, err
	}
	md, err := jsonText(cfg.Metadata)
	if err != nil {
		return nil, err
	}
	txID := sql.NullString{String: spec.ivrTxID, Valid: spec.ivrTxID != ""}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO payins (id, platform_id, merchant_id, payin_config_id, amount, currency_code, status,
			brand, last4, exp_month, exp_year, billing_contact, metadata, source, ivr_transaction_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)`,
			id, cfg.PlatformID, cfg.MerchantID, cfg.ID, cfg.Amount, cfg.CurrencyCode, ivrpay.PayinStatusCreated,
			string(ci.brand), card.Last4(ci.pan), ci.expiry.Month, ci.expiry.Year, bc, md, spec.source, txID, ivrpay.FormatTime(now))
		return err
	})
	if err == nil {
		return s.findPayin(ctx, s.rdb, id)
	}
	if !isUniqueViolation(err) {
		return nil, err
	}
	if spec.ivrTxID != "" {
		var existing string
		err := s.queryRow(ctx, s.rdb, `SELECT id FROM payins WHERE platform_id = $1 AND ivr_transaction_id = $2`, cfg.PlatformID, spec.ivrTxID).Scan(&existing)
		if err == nil {
			return s.findPayin(ctx, s.rdb, existing)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	var live, status string
	if err := s.queryRow(ctx, s.rdb, `SELECT id, status FROM payins WHERE payin_config_id = $1 AND status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED')`,
		cfg.ID).Scan(&live, &status); err != nil {
		return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin config %s is already used; create a new payin config for a new payment", cfg.ID)
	}
	if status == ivrpay.PayinStatusCreated {
		return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin config %s is being charged by another request (payin %s); create a new payin config for a new payment", cfg.ID, live)
	}
	return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin config %s already has payin %s; create a new payin config for a new payment", cfg.ID, live)
}

// authorize calls the processor with its own deadline, detached from the
// client, and turns a failure to answer into a PROCESSING_ERROR decline.
func (s *Store) authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), processorTimeout)
	defer cancel()
	call := s.opts.Processor.Authorize
	if a.Amount == 0 {
		call = s.opts.Processor.Verify
	}
	res, err := call(ctx, a)
	if err != nil {
		s.opts.Logger.Error("processor did not answer", "reference", a.Reference, "error", err)
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "The processor did not answer; try again"}, nil
	}
	return res, nil
}

func (s *Store) insertPaymentMethod(ctx context.Context, tx *sql.Tx, id, platformID, merchantID, configID, status string,
	ci cardInput, bc *ivrpay.BillingContact, metadata json.RawMessage) error {
	ciphertext, err := s.opts.Vault.Encrypt(ci.pan)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	bcText, err := jsonText(bc)
	if err != nil {
		return err
	}
	md, err := jsonText(metadata)
	if err != nil {
		return err
	}
	now := ivrpay.FormatTime(s.now())
	_, err = s.exec(ctx, tx, `INSERT INTO payment_methods (id, platform_id, merchant_id, payment_method_config_id, status, brand, last4,
		exp_month, exp_year, pan_ciphertext, fingerprint, billing_contact, metadata, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)`,
		id, platformID, sql.NullString{String: merchantID, Valid: merchantID != ""}, sql.NullString{String: configID, Valid: configID != ""},
		status, string(ci.brand), card.Last4(ci.pan), ci.expiry.Month, ci.expiry.Year, ciphertext, s.opts.Vault.Fingerprint(ci.pan), bcText, md, now)
	return err
}

// ChargePaymentMethod charges a stored card for a payin config (no CVV: it was never kept).
func (s *Store) ChargePaymentMethod(ctx context.Context, paymentMethodID, payinConfigID string) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ChargePaymentMethod(%q, %q)", paymentMethodID, payinConfigID)
	caller := ivrpay.PrincipalFromContext(ctx)
	if payinConfigID == "" {
		return nil, ivrpay.FieldErrorf("payin_config_id", "is required")
	}
	pm, err := s.findPaymentMethod(ctx, paymentMethodID)
	if err != nil || pm.PlatformID != caller.PlatformID {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payment method %s not found", paymentMethodID)
	}
	cfg, err := s.findPayinConfig(ctx, s.rdb, payinConfigID)
	if err != nil || cfg.PlatformID != caller.PlatformID {
		return nil, ivrpay.FieldErrorf("payin_config_id", "payin config %s not found on platform %s", payinConfigID, caller.PlatformID)
	}
	if err := ivrpay.Authorize(caller, "payin:create", ivrpay.Object{PlatformID: cfg.PlatformID, MerchantID: cfg.MerchantID}); err != nil {
		return nil, err
	}
	// The card is used as well as the config: a key must be allowed to make
	// payins with it, and a merchant's stored card never pays another merchant.
	if err := ivrpay.Authorize(caller, "payin:create", pm.Object()); err != nil {
		return nil, err
	}
	if pm.MerchantID != "" && string(pm.MerchantID) != cfg.MerchantID {
		return nil, ivrpay.FieldErrorf("payment_method_id", "payment method %s belongs to merchant %s and cannot pay a payin config of merchant %s", pm.ID, pm.MerchantID, cfg.MerchantID)
	}
	if pm.Status != ivrpay.PaymentMethodStatusActive {
		return nil, ivrpay.FieldErrorf("payment_method_id", "payment method %s is %s and cannot be charged", pm.ID, pm.Status)
	}
	if cfg.Payin != nil {
		return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin config %s already has payin %s; create a new payin config for a new payment", cfg.ID, cfg.Payin.PayinID)
	}
	exp := card.Expiry{Month: pm.Card.ExpMonth, Year: pm.Card.ExpYear}
	if exp.Expired(s.now()) {
		return nil, ivrpay.FieldErrorf("payment_method_id", "the stored card expired at the end of %02d/%d", exp.Month, exp.Year)
	}
	var ciphertext string
	if err := s.queryRow(ctx, s.rdb, `SELECT pan_ciphertext FROM payment_methods WHERE id = $1`, pm.ID).Scan(&ciphertext); err != nil {
		return nil, err
	}
	pan, err := s.opts.Vault.Decrypt(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	postal := postalOf(cfg.BillingContact)
	if postal == "" {
		postal = postalOf(pm.BillingContact)
	}
	p, err = s.charge(ctx, chargeSpec{cfg: cfg, source: ivrpay.PayinSourceAPIStoredPaymentMethod, storedPaymentMethodID: pm.ID,
		card: cardInput{pan: pan, brand: card.Brand(pm.Card.Brand), expiry: exp, postalCode: postal}})
	if err != nil {
		return nil, err
	}
	return ivrpay.ShapePayin(ivrpay.VersionFromContext(ctx), p), nil
}
