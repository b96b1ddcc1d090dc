package ivrpay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ivrpay/ivrpay/card"
)

// Connector error codes, returned to Twilio as error_code and passed on to the
// platform's action URL as ConnectorError.
const (
	ConnUnauthorized             = "UNAUTHORIZED"
	ConnRateLimited              = "RATE_LIMITED"
	ConnInvalidRequest           = "INVALID_REQUEST"
	ConnIVRNotEnabled            = "IVR_NOT_ENABLED"
	ConnUnsupportedAPIVersion    = "UNSUPPORTED_API_VERSION"
	ConnMissingConfigID          = "MISSING_CONFIG_ID"
	ConnConfigMethodMismatch     = "CONFIG_METHOD_MISMATCH"
	ConnConfigNotFound           = "CONFIG_NOT_FOUND"
	ConnForbidden                = "FORBIDDEN"
	ConnUnsupportedPaymentMethod = "UNSUPPORTED_PAYMENT_METHOD"
	ConnUnsupportedCurrency      = "UNSUPPORTED_CURRENCY"
	ConnInvalidAmount            = "INVALID_AMOUNT"
	ConnAmountMismatch           = "AMOUNT_MISMATCH"
	ConnInvalidCardNumber        = "INVALID_CARD_NUMBER"
	ConnUnsupportedCardBrand     = "UNSUPPORTED_CARD_BRAND"
	ConnInvalidExpirationDate    = "INVALID_EXPIRATION_DATE"
	ConnExpiredCard              = "EXPIRED_CARD"
	ConnInvalidCardSecurityCode  = "INVALID_CARD_SECURITY_CODE"
	ConnMissingPostalCode        = "MISSING_POSTAL_CODE"
	ConnConfigAlreadyUsed        = "CONFIG_ALREADY_USED"
	ConnProcessorNotConfigured   = "PROCESSOR_NOT_CONFIGURED"
	ConnDuplicateTransaction     = "DUPLICATE_TRANSACTION"
	// ConnPaymentPending: the processor's answer did not arrive in time; the
	// payment may have gone through, and its final status follows by webhook.
	ConnPaymentPending = "PAYMENT_PENDING"
	ConnInternal       = "INTERNAL_ERROR"
)

// ConnectorError is a refusal of a connector request: one of the Conn* codes
// and a message for the platform developer. Transports map it to Twilio's
// shape in one place.
type ConnectorError struct {
	Code    string
	Message string
}

func (e *ConnectorError) Error() string { return e.Code + ": " + e.Message }

// ConnectorErrorf returns a ConnectorError with a formatted message.
func ConnectorErrorf(code, format string, args ...any) *ConnectorError {
	return &ConnectorError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Result is the connector answer that reports e.
func (e *ConnectorError) Result() IVRResult {
	return IVRResult{ErrorCode: e.Code, ErrorMessage: e.Message}
}

// AsConnectorError returns the ConnectorError in err's chain, or nil.
func AsConnectorError(err error) *ConnectorError {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// IVRProvider is the voice platform whose pay verb sent a connector request
// (SPEC §5.6). Payins record it as ivr.provider, and a transaction_id is
// unique per platform and provider.
type IVRProvider string

// The voice platforms the connector serves.
const (
	ProviderTwilio     IVRProvider = "TWILIO"
	ProviderTelnyx     IVRProvider = "TELNYX"
	ProviderSignalWire IVRProvider = "SIGNALWIRE"
)

// IVRProviders lists every provider, in the order the docs show them.
var IVRProviders = []IVRProvider{ProviderTwilio, ProviderTelnyx, ProviderSignalWire}

// Name is the provider as it spells itself: "Twilio", "Telnyx", "SignalWire".
func (p IVRProvider) Name() string {
	switch p {
	case ProviderTelnyx:
		return "Telnyx"
	case ProviderSignalWire:
		return "SignalWire"
	}
	return "Twilio"
}

// ConnectorTimeout is how long the provider waits for the connector's answer
// (reference voice-providers.md): Twilio 10 s (then it retries), Telnyx 5 s
// (then it retries), SignalWire 5 s (once).
func (p IVRProvider) ConnectorTimeout() time.Duration {
	if p == ProviderTelnyx || p == ProviderSignalWire {
		return 5 * time.Second
	}
	return 10 * time.Second
}

// IVR connector methods.
const (
	IVRMethodCharge   = "charge"
	IVRMethodTokenize = "tokenize"
)

// Custom <Parameter> names that carry the config id.
const (
	ParamPayinConfigID         = "payin_config_id"
	ParamPaymentMethodConfigID = "payment_method_config_id"
	// ParamPaymentMethodIDAlias is the name the IVR guide uses for the payment method config id.
	ParamPaymentMethodIDAlias = "payment_method_id"
)

// IVRAmount is the connector's amount, parsed once at the edge.
type IVRAmount struct {
	Present bool   // the field was sent (not absent nor null)
	Raw     string // as sent
	Cents   int64  // when Err is nil
	Err     error  // why Raw is not a decimal amount with at most two decimals
}

// ParseIVRAmount parses the amount Twilio sent (a decimal dollar string).
func ParseIVRAmount(present bool, raw string) IVRAmount {
	a := IVRAmount{Present: present, Raw: raw}
	a.Cents, a.Err = ParseDollars(raw)
	return a
}

// IVRRequest is a connector request that passed the INVALID_REQUEST checks.
// It holds the card and CVV in memory only.
type IVRRequest struct {
	// Provider is the voice platform that sent the request; empty is
	// Twilio, the connector's first provider.
	Provider      IVRProvider
	Method        string
	TransactionID string
	CardNumber    string
	CVV           string
	ExpiryMonth   string
	ExpiryYear    string
	PostalCode    string
	ACH           bool
	Amount        IVRAmount
	CurrencyCode  string
	Parameters    map[string]string
	// ReceivedAt is when the request arrived: the provider's timeout
	// (ConnectorTimeout) runs from then. Zero: when ProcessIVR starts.
	ReceivedAt time.Time
}

// IVRResult is the connector's answer: the payin or payment method id on
// success, otherwise an error code and message; Parameters go back to Twilio.
type IVRResult struct {
	ID           string            `json:"id,omitempty"`
	ErrorCode    string            `json:"error_code,omitempty"`
	ErrorMessage string            `json:"error_message,omitempty"`
	Parameters   map[string]string `json:"parameters,omitempty"`
}

// ConnectorService runs IVR charges and tokenizations for the key in the context.
type ConnectorService interface {
	// ProcessIVR runs CheckIVRRequest, then the checks of the connector
	// after INVALID_REQUEST, in order, and charges or stores the card. A transaction_id seen before on
	// the platform replays its first answer (waiting for it if it is still
	// running); a different request under the same id is DUPLICATE_TRANSACTION.
	ProcessIVR(ctx context.Context, req IVRRequest) (IVRResult, error)
}

// IVRConfigRef is the config a connector request names with its custom parameter.
type IVRConfigRef struct {
	Param string // payin_config_id, payment_method_config_id or its alias
	ID    string
}

// ConfigParam returns the config the request names: the first of
// payin_config_id, payment_method_config_id and payment_method_id present.
func (req IVRRequest) ConfigParam() IVRConfigRef {
	for _, name := range []string{ParamPayinConfigID, ParamPaymentMethodConfigID, ParamPaymentMethodIDAlias} {
		if v := req.Parameters[name]; v != "" {
			return IVRConfigRef{Param: name, ID: v}
		}
	}
	return IVRConfigRef{}
}

// CheckIVRRequest is the part of check 2 that every voice provider's
// request passes before anything is looked up or stored: no field holds a
// NUL character (PostgreSQL stores none), and neither transaction_id nor a
// config parameter, identifiers that are stored and echoed, holds a card
// number (SPEC §9). No message echoes the value.
func CheckIVRRequest(req IVRRequest) *ConnectorError {
	for _, f := range []struct{ name, value string }{
		{"transaction_id", req.TransactionID}, {"method", req.Method}, {"cardnumber", req.CardNumber}, {"cvv", req.CVV},
		{"expiry_month", req.ExpiryMonth}, {"expiry_year", req.ExpiryYear}, {"postal_code", req.PostalCode},
		{"amount", req.Amount.Raw}, {"currency_code", req.CurrencyCode},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return ConnectorErrorf(ConnInvalidRequest, "%s must not contain a NUL character", f.name)
		}
	}
	var nulParams []string
	for k, v := range req.Parameters {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			nulParams = append(nulParams, SafeJSONKey(k))
		}
	}
	if len(nulParams) > 0 {
		slices.Sort(nulParams)
		return ConnectorErrorf(ConnInvalidRequest, "parameters.%s must not contain a NUL character", nulParams[0])
	}
	if ContainsCardNumber(req.TransactionID) {
		return ConnectorErrorf(ConnInvalidRequest, "transaction_id looks like it holds a card number; it must be the voice provider's id of the payment attempt")
	}
	for _, name := range []string{ParamPayinConfigID, ParamPaymentMethodConfigID, ParamPaymentMethodIDAlias} {
		if ContainsCardNumber(req.Parameters[name]) {
			return ConnectorErrorf(ConnInvalidRequest, "parameters.%s looks like it holds a card number; it must be an ivrpay config id", name)
		}
	}
	return nil
}

// CheckIVRPlatform is check 3: the platform's feature flag and API version.
func CheckIVRPlatform(p *Platform) *ConnectorError {
	if !p.IVRPayments {
		return ConnectorErrorf(ConnIVRNotEnabled, "IVR payments are not enabled for platform %s; ask your ivrpay operator (your Platform Success Manager) to enable them", p.ID)
	}
	if !p.MinAPIVersion.SupportsIVR() {
		return ConnectorErrorf(ConnUnsupportedAPIVersion, "IVR payments need API version 2023-12-01 or 2024-10-16; platform %s has minimum API version %s", p.ID, p.MinAPIVersion)
	}
	return nil
}

// CheckIVRConfigParam is the first half of check 4: a config id is present
// and of the kind the method needs.
func CheckIVRConfigParam(req IVRRequest) (IVRConfigRef, *ConnectorError) {
	ref := req.ConfigParam()
	isPayinID := IDHasKind(ref.ID, PrefixPayinConfig)
	isPMCID := IDHasKind(ref.ID, PrefixPaymentMethodConfig)
	switch {
	case ref.Param == "":
		if req.Method == IVRMethodCharge {
			return ref, ConnectorErrorf(ConnMissingConfigID, `missing config id: add <Parameter name="payin_config_id" value="cfg_…"/> to <Pay> (Studio: a payin_config_id parameter)`)
		}
		return ref, ConnectorErrorf(ConnMissingConfigID, `missing config id: add <Parameter name="payment_method_config_id" value="pmc_…"/> to <Pay> (Studio: a payment_method_config_id parameter)`)
	case req.Method == IVRMethodCharge && (ref.Param != ParamPayinConfigID || isPMCID):
		return ref, ConnectorErrorf(ConnConfigMethodMismatch, "%s sent a charge (chargeAmount above 0) with payment method config %s; to store a card set chargeAmount to 0 or leave it empty, to take a payment pass payin_config_id with chargeAmount equal to the config amount", req.Provider.Name(), ShownConfigID(ref.ID))
	case req.Method == IVRMethodTokenize && (ref.Param == ParamPayinConfigID || isPayinID):
		return ref, ConnectorErrorf(ConnConfigMethodMismatch, "%s sent a tokenize (chargeAmount 0 or empty) with payin config %s; to take the payment set chargeAmount to the payin config amount, to store a card pass payment_method_config_id", req.Provider.Name(), ShownConfigID(ref.ID))
	}
	return ref, nil
}

// CardEntry is a card that passed the connector's checks. It holds the PAN
// and CVV, so it lives in memory only.
type CardEntry struct {
	PAN        string
	CVV        string
	Brand      card.Brand
	Expiry     card.Expiry
	PostalCode string
}

// Details is the card as a processor needs it.
func (c CardEntry) Details() CardDetails {
	return CardDetails{PAN: c.PAN, CVV: c.CVV, ExpMonth: c.Expiry.Month, ExpYear: c.Expiry.Year, PostalCode: c.PostalCode, Brand: string(c.Brand)}
}

// ConfigNotFound is the connector's answer to a config the caller may not
// see: none, another platform's, or one beyond a payer's browser's reach
// (SPEC §1.1), alike so that it reveals nothing.
func ConfigNotFound(method, configID, platformID string) *ConnectorError {
	kind := "payin config"
	if method != IVRMethodCharge {
		kind = "payment method config"
	}
	return ConnectorErrorf(ConnConfigNotFound, "%s %s not found on platform %s", kind, ShownConfigID(configID), platformID)
}

// CheckIVRCharge runs checks 4 to 10 of a charge against the payin config
// the request names (nil when there is none): the config exists on the
// caller's platform, the key may charge it, then the card request, then the
// config's single use.
func CheckIVRCharge(caller *APIKey, cfg *PayinConfig, configID string, req IVRRequest, now time.Time) (CardEntry, *ConnectorError) {
	if cfg == nil || cfg.PlatformID != caller.PlatformID {
		return CardEntry{}, ConfigNotFound(IVRMethodCharge, configID, caller.PlatformID)
	}
	// The statements are evaluated once on a charge's own path; a refusal
	// is not found where the config is beyond a payer's browser's reach.
	if !Allows(caller, "payin:create", cfg.Object()) {
		if Hidden(caller, "payin:create", "payin config", cfg.Object()) {
			return CardEntry{}, ConfigNotFound(IVRMethodCharge, configID, caller.PlatformID)
		}
		return CardEntry{}, ConnectorErrorf(ConnForbidden, "API key %s lacks permission payin:create for merchant %s", caller.ID, cfg.MerchantID)
	}
	c, refusal := checkIVRCard(req, cfg.Amount, cfg.BillingContact.PostalCodeOrEmpty(), now)
	if refusal != nil {
		return c, refusal
	}
	if cfg.Payin != nil {
		return c, ConnectorErrorf(ConnConfigAlreadyUsed, "payin config %s already has payin %s; create a new payin config for a new payment", cfg.ID, cfg.Payin.PayinID)
	}
	return c, nil
}

// CheckIVRTokenize runs checks 4 to 10 of a tokenize against the payment
// method config the request names (nil when there is none).
func CheckIVRTokenize(caller *APIKey, pmc *PaymentMethodConfig, configID string, req IVRRequest, now time.Time) (CardEntry, *ConnectorError) {
	if pmc == nil || pmc.PlatformID != caller.PlatformID {
		return CardEntry{}, ConfigNotFound(IVRMethodTokenize, configID, caller.PlatformID)
	}
	if !Allows(caller, "payment_method:create", pmc.Object()) {
		if Hidden(caller, "payment_method:create", "payment method config", pmc.Object()) {
			return CardEntry{}, ConfigNotFound(IVRMethodTokenize, configID, caller.PlatformID)
		}
		where := "platform " + pmc.PlatformID
		if pmc.MerchantID != "" {
			where = "merchant " + pmc.MerchantID
		}
		return CardEntry{}, ConnectorErrorf(ConnForbidden, "API key %s lacks permission payment_method:create for %s", caller.ID, where)
	}
	c, refusal := checkIVRCard(req, 0, pmc.BillingContact.PostalCodeOrEmpty(), now)
	if refusal != nil {
		return c, refusal
	}
	if pmc.PaymentMethod != nil {
		return c, ConnectorErrorf(ConnConfigAlreadyUsed, "payment method config %s already stored payment method %s; create a new payment method config to store another card", pmc.ID, pmc.PaymentMethod.PaymentMethodID)
	}
	return c, nil
}

// checkIVRCard runs checks 6 to 9 (method, currency, amount, card) and
// returns the validated card.
func checkIVRCard(req IVRRequest, configAmount int64, configPostal string, now time.Time) (CardEntry, *ConnectorError) {
	if req.ACH {
		return CardEntry{}, ConnectorErrorf(ConnUnsupportedPaymentMethod, `ACH bank accounts are not supported over IVR; set paymentMethod="credit-card" on <Pay>`)
	}
	if req.CurrencyCode != "" && !strings.EqualFold(req.CurrencyCode, "USD") {
		return CardEntry{}, ConnectorErrorf(ConnUnsupportedCurrency, `currency %s is not supported; only USD is: set currency="usd" on <Pay>`, Truncate(req.CurrencyCode, 8))
	}
	if req.Method == IVRMethodCharge {
		if !req.Amount.Present {
			return CardEntry{}, ConnectorErrorf(ConnInvalidAmount, "a charge needs an amount; set chargeAmount on <Pay> to the payin config amount %s", FormatDollars(configAmount))
		}
		if req.Amount.Err != nil {
			return CardEntry{}, &ConnectorError{Code: ConnInvalidAmount, Message: req.Amount.Err.Error()}
		}
		if req.Amount.Cents != configAmount {
			return CardEntry{}, ConnectorErrorf(ConnAmountMismatch, "amount %s does not match payin config amount %s; set chargeAmount to %s",
				FormatDollars(req.Amount.Cents), FormatDollars(configAmount), FormatDollars(configAmount))
		}
	} else if req.Amount.Present && req.Amount.Raw != "" && (req.Amount.Err != nil || req.Amount.Cents != 0) {
		return CardEntry{}, ConnectorErrorf(ConnInvalidAmount, "storing a card takes no amount; set chargeAmount to 0 or leave it empty")
	}
	brand, err := card.ParsePAN(req.CardNumber)
	switch {
	case errors.Is(err, card.ErrUnsupportedBrand):
		return CardEntry{}, ConnectorErrorf(ConnUnsupportedCardBrand, "card brand not supported; accepted brands are Visa, Mastercard, American Express, Discover, JCB and Diners Club")
	case err != nil:
		return CardEntry{}, ConnectorErrorf(ConnInvalidCardNumber, "the card number is invalid (it must be 12 to 19 digits and pass the Luhn check)")
	}
	exp, err := card.ParseExpiry(req.ExpiryMonth, req.ExpiryYear)
	if err != nil {
		return CardEntry{}, ConnectorErrorf(ConnInvalidExpirationDate, "the expiration date is invalid: expiry_month must be 01 to 12 and expiry_year two or four digits")
	}
	if exp.Expired(now) {
		return CardEntry{}, ConnectorErrorf(ConnExpiredCard, "the card expired at the end of %02d/%d", exp.Month, exp.Year)
	}
	if req.CVV != "" && card.CheckSecurityCode(req.CVV, brand) != nil {
		digits := 3
		if brand == card.Amex {
			digits = 4
		}
		return CardEntry{}, ConnectorErrorf(ConnInvalidCardSecurityCode, "the card security code must be %d digits for this card", digits)
	}
	postal := req.PostalCode
	if postal == "" {
		postal = configPostal
	}
	if postal == "" {
		// The request does not say whether <Pay> or the Payments API (an
		// agent-assisted payment) collected the card: name both.
		return CardEntry{}, ConnectorErrorf(ConnMissingPostalCode, `no postal code: set postalCode="true" on <Pay> (PostalCode=true when creating a Payments API session), or put billing_contact.postal_code in the config`)
	}
	return CardEntry{PAN: req.CardNumber, CVV: req.CVV, Brand: brand, Expiry: exp, PostalCode: postal}, nil
}

// DuplicateTransaction is the answer to a transaction_id reused for a different request.
func DuplicateTransaction(txID string) *ConnectorError {
	return ConnectorErrorf(ConnDuplicateTransaction, "transaction_id %s was already used for a different request (another card, amount or config); each payment attempt needs its own transaction_id", Truncate(txID, 64))
}

// ShownConfigID echoes a config id back in an answer only when it looks like
// an ivrpay id, so that a card number put in the wrong field is never repeated.
func ShownConfigID(id string) string {
	if len(id) <= 64 && (IDHasKind(id, PrefixPayinConfig) || IDHasKind(id, PrefixPaymentMethodConfig)) {
		return id
	}
	return "(a value that is not an ivrpay config id)"
}

// Truncate shortens s to at most n bytes followed by "…", never splitting a
// UTF-8 character.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Clip(s, n) + "…"
}

// Clip shortens s to at most n bytes (a field's limit), never splitting a
// UTF-8 character.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
