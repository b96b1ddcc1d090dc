package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

var _ ivrpay.ConnectorService = (*Store)(nil)

const (
	txRunning = "RUNNING"
	txDone    = "DONE"
	// leaseDuration bounds how long a crashed attempt blocks its transaction:
	// after it, a retry takes the attempt over and resumes it. It is longer
	// than processorTimeout so a live attempt never loses its lease.
	leaseDuration    = 30 * time.Second
	processorTimeout = 20 * time.Second
	pollInterval     = 20 * time.Millisecond
)

// ProcessIVR runs one connector request: claim the transaction, run the
// checks in order, charge or store the card, and store the answer in the same
// transaction as the payin, so that every retry replays it.
func (s *Store) ProcessIVR(ctx context.Context, req ivrpay.IVRRequest) (res ivrpay.IVRResult, err error) {
	defer wrap(&err, "Store.ProcessIVR")
	caller := ivrpay.PrincipalFromContext(ctx)
	owned, replay, err := s.claimTransaction(ctx, caller.PlatformID, req.TransactionID, s.ivrRequestHash(req))
	if err != nil || !owned {
		return replay, err
	}
	// From here the attempt runs to completion even if Twilio hangs up, so
	// that its retry finds the answer.
	ctx = context.WithoutCancel(ctx)
	res, err = s.runIVR(ctx, caller, req)
	if err != nil {
		// Release the lease so that the next retry takes over at once.
		_, _ = s.execTx(ctx, `UPDATE connector_transactions SET lease_until = $3 WHERE platform_id = $1 AND transaction_id = $2 AND status = $4`,
			caller.PlatformID, req.TransactionID, ivrpay.FormatTime(s.now()), txRunning)
	}
	return res, err
}

// ivrRequestHash identifies "the same request" for a transaction_id: method,
// config, card fingerprint and amount. CVV, expiry and postal code are not
// compared, and the card enters only as a keyed fingerprint.
func (s *Store) ivrRequestHash(req ivrpay.IVRRequest) string {
	cardFP := ""
	if req.CardNumber != "" {
		cardFP = s.opts.Vault.Fingerprint(req.CardNumber)
	}
	amount := req.Amount
	if cents, err := ivrpay.ParseDollars(req.Amount); err == nil {
		amount = fmt.Sprint(cents)
	}
	_, configID := configParam(req)
	return requestHash([]string{req.Method, configID, cardFP, amount, fmt.Sprint(req.ACH)})
}

// claimTransaction makes this request the owner of its transaction, or
// returns the stored answer of the first request with the same id (waiting
// while it runs), or DUPLICATE_TRANSACTION when the request differs.
func (s *Store) claimTransaction(ctx context.Context, platformID, txID, hash string) (owned bool, replay ivrpay.IVRResult, err error) {
	now := s.now()
	// The claim is written whatever the client does (an owned attempt then
	// runs to completion), so that it can share a group commit.
	wctx := context.WithoutCancel(ctx)
	n, err := s.execTx(wctx, `INSERT INTO connector_transactions (platform_id, transaction_id, request_hash, status, lease_until, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (platform_id, transaction_id) DO NOTHING`,
		platformID, txID, hash, txRunning, ivrpay.FormatTime(now.Add(s.opts.ConnectorLease)), ivrpay.FormatTime(now))
	if err != nil {
		return false, replay, err
	}
	if n == 1 {
		return true, replay, nil
	}
	for {
		var firstHash, status, lease string
		var response sql.NullString
		if err := s.queryRow(ctx, s.rdb, `SELECT request_hash, status, response, lease_until FROM connector_transactions
			WHERE platform_id = $1 AND transaction_id = $2`, platformID, txID).Scan(&firstHash, &status, &response, &lease); err != nil {
			return false, replay, err
		}
		if firstHash != hash {
			return false, ivrpay.IVRResult{ErrorCode: ivrpay.ConnDuplicateTransaction, ErrorMessage: fmt.Sprintf(
				"transaction_id %s was already used for a different request (another card, amount or config); each payment attempt needs its own transaction_id", truncate(txID, 64))}, nil
		}
		if status == txDone {
			err := json.Unmarshal([]byte(response.String), &replay)
			return false, replay, err
		}
		if now := s.now(); lease < ivrpay.FormatTime(now) {
			n, err := s.execTx(wctx, `UPDATE connector_transactions SET lease_until = $3, updated_at = $4
				WHERE platform_id = $1 AND transaction_id = $2 AND status = $5 AND lease_until = $6`,
				platformID, txID, ivrpay.FormatTime(now.Add(s.opts.ConnectorLease)), ivrpay.FormatTime(now), txRunning, lease)
			if err != nil {
				return false, replay, err
			}
			if n == 1 {
				return true, replay, nil
			}
		}
		select {
		case <-ctx.Done():
			return false, replay, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// finishTransaction stores the answer of a transaction, inside the
// transaction that made its payin or payment method.
func (s *Store) finishTransaction(ctx context.Context, tx *sql.Tx, platformID, txID string, r ivrpay.IVRResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `UPDATE connector_transactions SET status = $3, response = $4, updated_at = $5
		WHERE platform_id = $1 AND transaction_id = $2`, platformID, txID, txDone, string(b), ivrpay.FormatTime(s.now()))
	return err
}

func configParam(req ivrpay.IVRRequest) (name, id string) {
	for _, name := range []string{ivrpay.ParamPayinConfigID, ivrpay.ParamPaymentMethodConfigID, ivrpay.ParamPaymentMethodIDAlias} {
		if v := req.Parameters[name]; v != "" {
			return name, v
		}
	}
	return "", ""
}

// cardInput is a card that passed validation; it exists in memory only.
type cardInput struct {
	pan, cvv   string
	brand      card.Brand
	expiry     card.Expiry
	postalCode string
}

func (s *Store) runIVR(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest) (ivrpay.IVRResult, error) {
	fail := func(code, format string, args ...any) (ivrpay.IVRResult, error) {
		r := ivrpay.IVRResult{ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}
		return r, s.inTx(ctx, func(tx *sql.Tx) error { return s.finishTransaction(ctx, tx, caller.PlatformID, req.TransactionID, r) })
	}
	// 3. The platform's feature flag and API version.
	platform := caller.Platform
	if platform == nil {
		// Keys from Authenticate carry their platform; others are loaded here.
		p, err := s.findPlatform(ctx, s.rdb, caller.PlatformID)
		if err != nil {
			return ivrpay.IVRResult{}, err
		}
		platform, caller.Platform = p, p
	}
	if !platform.IVRPayments {
		return fail(ivrpay.ConnIVRNotEnabled, "IVR payments are not enabled for platform %s; ask your ivrpay operator (your Platform Success Manager) to enable them", platform.ID)
	}
	if !platform.MinAPIVersion.SupportsIVR() {
		return fail(ivrpay.ConnUnsupportedAPIVersion, "IVR payments need API version 2023-12-01 or 2024-10-16; platform %s has minimum API version %s", platform.ID, platform.MinAPIVersion)
	}
	// 4. The config named by the custom parameter.
	name, configID := configParam(req)
	isPayinID := hasIDPrefix(configID, ivrpay.PrefixPayinConfig)
	isPMCID := hasIDPrefix(configID, ivrpay.PrefixPaymentMethodConfig)
	switch {
	case name == "":
		if req.Method == ivrpay.IVRMethodCharge {
			return fail(ivrpay.ConnMissingConfigID, `missing config id: add <Parameter name="payin_config_id" value="cfg_…"/> to <Pay> (Studio: a payin_config_id parameter)`)
		}
		return fail(ivrpay.ConnMissingConfigID, `missing config id: add <Parameter name="payment_method_config_id" value="pmc_…"/> to <Pay> (Studio: a payment_method_config_id parameter)`)
	case req.Method == ivrpay.IVRMethodCharge && (name != ivrpay.ParamPayinConfigID || isPMCID):
		return fail(ivrpay.ConnConfigMethodMismatch, "Twilio sent a charge (chargeAmount above 0) with payment method config %s; to store a card set chargeAmount to 0 or leave it empty, to take a payment pass payin_config_id with chargeAmount equal to the config amount", shownID(configID))
	case req.Method == ivrpay.IVRMethodTokenize && (name == ivrpay.ParamPayinConfigID || isPayinID):
		return fail(ivrpay.ConnConfigMethodMismatch, "Twilio sent a tokenize (chargeAmount 0 or empty) with payin config %s; to take the payment set chargeAmount to the payin config amount, to store a card pass payment_method_config_id", shownID(configID))
	}
	if req.Method == ivrpay.IVRMethodCharge {
		cfg, err := s.findPayinConfig(ctx, s.rdb, configID)
		if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND || (err == nil && cfg.PlatformID != caller.PlatformID) {
			return fail(ivrpay.ConnConfigNotFound, "payin config %s not found on platform %s", shownID(configID), caller.PlatformID)
		} else if err != nil {
			return ivrpay.IVRResult{}, err
		}
		// 5. The key's permission on the config.
		if !ivrpay.Allows(caller.Statements, "payin:create", ivrpay.Object{PlatformID: cfg.PlatformID, MerchantID: cfg.MerchantID}) {
			return fail(ivrpay.ConnForbidden, "API key %s lacks permission payin:create for merchant %s", caller.ID, cfg.MerchantID)
		}
		ci, code, msg := s.checkCardRequest(req, cfg.Amount, postalOf(cfg.BillingContact))
		if code != "" {
			return fail(code, "%s", msg)
		}
		// 10. The config's single use.
		if cfg.Payin != nil {
			return fail(ivrpay.ConnConfigAlreadyUsed, "payin config %s already has payin %s; create a new payin config for a new payment", cfg.ID, cfg.Payin.PayinID)
		}
		return s.chargeIVR(ctx, caller, req, cfg, ci)
	}
	pmc, err := s.findPaymentMethodConfig(ctx, s.rdb, configID)
	if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND || (err == nil && pmc.PlatformID != caller.PlatformID) {
		return fail(ivrpay.ConnConfigNotFound, "payment method config %s not found on platform %s", shownID(configID), caller.PlatformID)
	} else if err != nil {
		return ivrpay.IVRResult{}, err
	}
	if !ivrpay.Allows(caller.Statements, "payment_method:create", ivrpay.Object{PlatformID: pmc.PlatformID, MerchantID: pmc.MerchantID}) {
		where := "platform " + pmc.PlatformID
		if pmc.MerchantID != "" {
			where = "merchant " + pmc.MerchantID
		}
		return fail(ivrpay.ConnForbidden, "API key %s lacks permission payment_method:create for %s", caller.ID, where)
	}
	ci, code, msg := s.checkCardRequest(req, 0, postalOf(pmc.BillingContact))
	if code != "" {
		return fail(code, "%s", msg)
	}
	if pmc.PaymentMethod != nil {
		return fail(ivrpay.ConnConfigAlreadyUsed, "payment method config %s already stored payment method %s; create a new payment method config to store another card", pmc.ID, pmc.PaymentMethod.PaymentMethodID)
	}
	return s.tokenizeIVR(ctx, caller, req, pmc, ci)
}

// checkCardRequest runs checks 6 to 9 (method, currency, amount, card) and
// returns the validated card, or a connector error code and message.
func (s *Store) checkCardRequest(req ivrpay.IVRRequest, configAmount int64, configPostal string) (cardInput, string, string) {
	if req.ACH {
		return cardInput{}, ivrpay.ConnUnsupportedPaymentMethod, `ACH bank accounts are not supported over IVR; set paymentMethod="credit-card" on <Pay>`
	}
	if req.CurrencyCode != "" && !strings.EqualFold(req.CurrencyCode, "USD") {
		return cardInput{}, ivrpay.ConnUnsupportedCurrency, fmt.Sprintf(`currency %s is not supported; only USD is: set currency="usd" on <Pay>`, truncate(req.CurrencyCode, 8))
	}
	if req.Method == ivrpay.IVRMethodCharge {
		if !req.AmountPresent {
			return cardInput{}, ivrpay.ConnInvalidAmount, "a charge needs an amount; set chargeAmount on <Pay> to the payin config amount " + ivrpay.FormatDollars(configAmount)
		}
		cents, err := ivrpay.ParseDollars(req.Amount)
		if err != nil {
			return cardInput{}, ivrpay.ConnInvalidAmount, err.Error()
		}
		if cents != configAmount {
			return cardInput{}, ivrpay.ConnAmountMismatch, fmt.Sprintf("amount %s does not match payin config amount %s; set chargeAmount to %s",
				ivrpay.FormatDollars(cents), ivrpay.FormatDollars(configAmount), ivrpay.FormatDollars(configAmount))
		}
	} else if req.AmountPresent && req.Amount != "" {
		if cents, err := ivrpay.ParseDollars(req.Amount); err != nil || cents != 0 {
			return cardInput{}, ivrpay.ConnInvalidAmount, "storing a card takes no amount; set chargeAmount to 0 or leave it empty"
		}
	}
	brand, err := card.ParsePAN(req.CardNumber)
	switch {
	case errors.Is(err, card.ErrUnsupportedBrand):
		return cardInput{}, ivrpay.ConnUnsupportedCardBrand, "card brand not supported; accepted brands are Visa, Mastercard, American Express, Discover, JCB and Diners Club"
	case err != nil:
		return cardInput{}, ivrpay.ConnInvalidCardNumber, "the card number is invalid (it must be 12 to 19 digits and pass the Luhn check)"
	}
	exp, err := card.ParseExpiry(req.ExpiryMonth, req.ExpiryYear)
	if err != nil {
		return cardInput{}, ivrpay.ConnInvalidExpirationDate, "the expiration date is invalid: expiry_month must be 01 to 12 and expiry_year two or four digits"
	}
	if exp.Expired(s.now()) {
		return cardInput{}, ivrpay.ConnExpiredCard, fmt.Sprintf("the card expired at the end of %02d/%d", exp.Month, exp.Year)
	}
	if req.CVV != "" && card.CheckSecurityCode(req.CVV, brand) != nil {
		digits := 3
		if brand == card.Amex {
			digits = 4
		}
		return cardInput{}, ivrpay.ConnInvalidCardSecurityCode, fmt.Sprintf("the card security code must be %d digits for this card", digits)
	}
	postal := req.PostalCode
	if postal == "" {
		postal = configPostal
	}
	if postal == "" {
		return cardInput{}, ivrpay.ConnMissingPostalCode, `no postal code: set postalCode="true" on <Pay>, or put billing_contact.postal_code in the config`
	}
	return cardInput{pan: req.CardNumber, cvv: req.CVV, brand: brand, expiry: exp, postalCode: postal}, "", ""
}

func (s *Store) chargeIVR(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, cfg *ivrpay.PayinConfig, ci cardInput) (ivrpay.IVRResult, error) {
	var result ivrpay.IVRResult
	_, err := s.charge(ctx, chargeSpec{
		cfg: cfg, card: ci, source: ivrpay.PayinSourceIVR, ivrTxID: req.TransactionID,
		finish: func(tx *sql.Tx, p *ivrpay.Payin) error {
			p = ivrpay.ShapePayin(caller.Platform.MinAPIVersion, p)
			result = ivrpay.IVRResult{Parameters: map[string]string{
				"payin_id": p.ID, "payin_status": p.Status, "payment_method_id": string(p.PaymentMethodID),
				"card_brand": string(ci.brand), "card_last_4": card.Last4(ci.pan),
			}}
			if p.Status == ivrpay.PayinStatusFailed {
				result.ErrorCode, result.ErrorMessage = string(p.RefusalCode), string(p.RefusalDesc)
			} else {
				result.ID = p.ID
			}
			return s.finishTransaction(ctx, tx, caller.PlatformID, req.TransactionID, result)
		},
	})
	if ivrpay.ErrorCode(err) == ivrpay.ECONFLICT {
		r := ivrpay.IVRResult{ErrorCode: ivrpay.ConnConfigAlreadyUsed, ErrorMessage: ivrpay.ErrorMessage(err)}
		return r, s.inTx(ctx, func(tx *sql.Tx) error { return s.finishTransaction(ctx, tx, caller.PlatformID, req.TransactionID, r) })
	}
	return result, err
}

func (s *Store) tokenizeIVR(ctx context.Context, caller *ivrpay.APIKey, req ivrpay.IVRRequest, pmc *ivrpay.PaymentMethodConfig, ci cardInput) (ivrpay.IVRResult, error) {
	pmID := s.newID(ivrpay.PrefixPaymentMethod)
	params := map[string]string{"card_brand": string(ci.brand), "card_last_4": card.Last4(ci.pan)}
	auth, err := s.authorize(ctx, ivrpay.CardPayment{IdempotencyKey: pmID, Reference: pmID, Currency: "USD", Card: ci.details()})
	if err != nil {
		return ivrpay.IVRResult{}, err
	}
	result := ivrpay.IVRResult{Parameters: params}
	if !auth.Approved {
		result.ErrorCode, result.ErrorMessage = auth.RefusalCode, auth.RefusalDesc
	} else {
		result.ID = pmID
		params["payment_method_id"] = pmID
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if auth.Approved {
			bc := mergePostal(pmc.BillingContact, ci.postalCode)
			if err := s.insertPaymentMethod(ctx, tx, pmID, pmc.PlatformID, pmc.MerchantID, pmc.ID, ivrpay.PaymentMethodStatusActive, ci, bc, pmc.Metadata); err != nil {
				return err
			}
			if err := s.emitPaymentMethodEvent(ctx, tx, pmID); err != nil {
				return err
			}
		}
		return s.finishTransaction(ctx, tx, caller.PlatformID, req.TransactionID, result)
	})
	if isUniqueViolation(err) {
		result = ivrpay.IVRResult{ErrorCode: ivrpay.ConnConfigAlreadyUsed, ErrorMessage: fmt.Sprintf(
			"payment method config %s was used by another transaction at the same time; create a new payment method config to store another card", pmc.ID)}
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			return s.finishTransaction(ctx, tx, caller.PlatformID, req.TransactionID, result)
		})
	}
	return result, err
}

func (ci cardInput) details() ivrpay.CardDetails {
	return ivrpay.CardDetails{PAN: ci.pan, CVV: ci.cvv, ExpMonth: ci.expiry.Month, ExpYear: ci.expiry.Year, PostalCode: ci.postalCode, Brand: string(ci.brand)}
}

func postalOf(b *ivrpay.BillingContact) string {
	if b == nil {
		return ""
	}
	return b.PostalCode
}

// mergePostal is the config's billing contact with the postal code the caller
// typed, which is what the processor checked.
func mergePostal(b *ivrpay.BillingContact, postal string) *ivrpay.BillingContact {
	var out ivrpay.BillingContact
	if b != nil {
		out = *b
	}
	if postal != "" {
		out.PostalCode = postal
	}
	return &out
}

func hasIDPrefix(id, prefix string) bool {
	return strings.HasPrefix(strings.TrimPrefix(id, "sbx_"), prefix)
}

// shownID echoes a config id back in an answer only when it looks like an
// ivrpay id, so that a card number put in the wrong field is never repeated.
func shownID(id string) string {
	if len(id) <= 64 && (hasIDPrefix(id, ivrpay.PrefixPayinConfig) || hasIDPrefix(id, ivrpay.PrefixPaymentMethodConfig)) {
		return id
	}
	return "(a value that is not an ivrpay config id)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
