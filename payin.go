package ivrpay

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/card"
)

// Payin statuses.
const (
	PayinStatusCreated    = "CREATED"
	PayinStatusProcessing = "PROCESSING"
	PayinStatusAuthorized = "AUTHORIZED"
	PayinStatusSucceeded  = "SUCCEEDED"
	PayinStatusFailed     = "FAILED"
	PayinStatusCanceled   = "CANCELED"
)

// PayinStatuses lists every payin status (for filter validation).
var PayinStatuses = []string{PayinStatusCreated, PayinStatusProcessing, PayinStatusAuthorized,
	PayinStatusSucceeded, PayinStatusFailed, PayinStatusCanceled}

// PayinStatusesHoldingConfig are the statuses of a payin that keeps its
// config from being charged again: one being charged (CREATED, also while its
// processor outcome is unknown) or one whose money moved. FAILED and CANCELED
// payins free their config. The database's unique index on live payins
// (migrations/00001_init.sql) lists the same statuses.
var PayinStatusesHoldingConfig = []string{PayinStatusCreated, PayinStatusProcessing, PayinStatusAuthorized, PayinStatusSucceeded}

// Payin sources.
const (
	PayinSourceIVR                    = "IVR"
	PayinSourceAPIDirect              = "API_DIRECT"
	PayinSourceAPIStoredPaymentMethod = "API_STORED_PAYMENT_METHOD"
)

// PayinSources lists every payin source (for filter validation).
var PayinSources = []string{PayinSourceIVR, PayinSourceAPIDirect, PayinSourceAPIStoredPaymentMethod}

// Refusal codes the sandbox processor and the connector produce.
const (
	RefusalDeclined                    = "DECLINED"
	RefusalInsufficientFunds           = "INSUFFICIENT_FUNDS"
	RefusalDoNotHonor                  = "DO_NOT_HONOR"
	RefusalExpiredCard                 = "EXPIRED_CARD"
	RefusalInvalidCardSecurityCode     = "INVALID_CARD_SECURITY_CODE"
	RefusalIncorrectPaymentInformation = "INCORRECT_PAYMENT_INFORMATION"
	RefusalProcessingError             = "PROCESSING_ERROR"
	RefusalRiskDecline                 = "RISK_DECLINE"
)

// refusalDescriptions are the refusal_desc tenants see for each refusal code.
var refusalDescriptions = map[string]string{
	RefusalDeclined:                    "Card declined",
	RefusalInsufficientFunds:           "Insufficient funds",
	RefusalDoNotHonor:                  "Do not honor",
	RefusalExpiredCard:                 "Expired card",
	RefusalInvalidCardSecurityCode:     "Incorrect card security code",
	RefusalIncorrectPaymentInformation: "Postal code or card details do not match",
	RefusalProcessingError:             "Processing error",
	RefusalRiskDecline:                 "Declined by risk rules",
}

// maxProcessorCode bounds the processor's code shown in a refusal_desc.
const maxProcessorCode = 80

// RefusalDescription is the refusal_desc of a refusal: a fixed text per
// refusal code (an unknown or empty code is a processing error), followed
// by the processor's own code when there is one, e.g. "Insufficient funds
// (stripe card_declined/insufficient_funds)". The processor's own text never
// reaches tenants: it can name the operator's account or key (SPEC §9).
func RefusalDescription(refusalCode, processorCode string) string {
	desc, ok := refusalDescriptions[refusalCode]
	if !ok {
		desc = refusalDescriptions[RefusalProcessingError]
	}
	if processorCode == "" || len(processorCode) > maxProcessorCode || ContainsCardNumber(processorCode) ||
		strings.ContainsFunc(processorCode, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return desc
	}
	return desc + " (" + processorCode + ")"
}

// PaymentMethodStatusAfterDecline is the status of a card stored from a
// refused charge: a card the issuer refused for what it is must not be
// charged again, while one refused for a passing condition (no funds today,
// a processing error) stays usable.
func PaymentMethodStatusAfterDecline(refusalCode string) string {
	if refusalCode == RefusalInsufficientFunds || refusalCode == RefusalProcessingError {
		return PaymentMethodStatusActive
	}
	return PaymentMethodStatusFailed
}

// MethodTypeCard is the only method type ivrpay processes.
const MethodTypeCard = "CARD"

// OptString is a string that is JSON null when empty.
type OptString string

// MarshalJSON writes null for the empty string.
func (s OptString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return AppendJSONString(make([]byte, 0, len(s)+2), string(s)), nil
}

// UnmarshalJSON reads null as the empty string.
func (s *OptString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}

// Card is how a card is shown: brand and last 4 only.
type Card struct {
	Brand    string `json:"brand"`
	Last4    string `json:"last_4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

// IVRInfo tells which phone call made a payin.
type IVRInfo struct {
	Provider      IVRProvider `json:"provider"`
	TransactionID string      `json:"transaction_id"`
}

// Payin is the money movement made from a payin config and card data.
type Payin struct {
	ID               string    `json:"payin_id"`
	PayinConfigID    string    `json:"payin_config_id"`
	MerchantID       string    `json:"merchant_id"`
	PlatformID       string    `json:"platform_id"`
	PaymentMethodID  OptString `json:"payment_method_id"`
	Amount           int64     `json:"amount"`
	CurrencyCode     string    `json:"currency_code"`
	Status           string    `json:"status"`
	AuthorizedAmount int64     `json:"authorized_amount"`
	CapturedAmount   int64     `json:"captured_amount"`
	RefundableAmount int64     `json:"refundable_amount"`
	// NonRefundableReasonCode is why RefundableAmount is 0 (null when it
	// is not): one of the NonRefundable* codes. SetRefundable sets both.
	NonRefundableReasonCode OptString       `json:"non_refundable_reason_code"`
	RefusalCode             OptString       `json:"refusal_code"`
	RefusalDesc             OptString       `json:"refusal_desc"`
	AuthCode                OptString       `json:"auth_code"`
	AVSResultCode           OptString       `json:"avs_result_code"`
	CVCResultCode           OptString       `json:"cvc_result_code"`
	MethodType              string          `json:"method_type"`
	Card                    *Card           `json:"card"`
	BillingContact          *BillingContact `json:"billing_contact"`
	Metadata                json.RawMessage `json:"metadata"`
	// IdempotencyKey is the payin config's idempotency_key, as its creator sent it.
	IdempotencyKey string `json:"idempotency_key"`
	// PaymentMethodConfigID is the config the charged card was stored from
	// (a stored card tokenized for one); null for a card typed in for this
	// payin.
	PaymentMethodConfigID OptString       `json:"payment_method_config_id"`
	Source                string          `json:"source"`
	IVR                   *IVRInfo        `json:"ivr"`
	Processor             *PayinProcessor `json:"processor"`
	Refunds               []Refund        `json:"refunds"`
	// Chargebacks are the payin's disputes, oldest first; a payin stays
	// SUCCEEDED through them.
	Chargebacks []PayinChargeback `json:"chargebacks"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// CreatedBy is the API key or session id the payin was made through
	// (empty for payins made before ivrpay recorded it); not shown.
	CreatedBy string `json:"-"`
	// RefundedAmount is what the payin's refunds took of CapturedAmount
	// (a refund counts from its creation; a FAILED one gave it back); not
	// shown: RefundableAmount is.
	RefundedAmount int64 `json:"-"`
	// Operation is the capture or void in flight at the processor, nil when
	// none is; not shown. While it is set, settlement and capture
	// confirmations of the payin wait for its outcome.
	Operation *PayinOperation `json:"-"`
}

// Object returns what permissions on p are checked against.
func (p *Payin) Object() Object {
	return Object{PlatformID: p.PlatformID, MerchantID: p.MerchantID, PayinConfigID: p.PayinConfigID, CreatedBy: p.CreatedBy}
}

// PayinFilter selects payins for GET /v1/payins.
type PayinFilter struct {
	Page
	MerchantID string
	Status     string
	Source     string
}

// PayinService reads payins and charges stored cards for the key in the context.
type PayinService interface {
	FindPayin(ctx context.Context, id string) (*Payin, error)
	ListPayins(ctx context.Context, f PayinFilter) (*List[*Payin], error)
	// ChargePaymentMethod makes a payin from a stored payment method
	// (source API_STORED_PAYMENT_METHOD). A config that already has an
	// approved payin, or one being charged by another request, is an
	// ECONFLICT; when the processor's outcome is unknown the payin is
	// returned CREATED with processor.outcome UNKNOWN, and the same request
	// sent again asks the processor again under the same idempotency key.
	ChargePaymentMethod(ctx context.Context, paymentMethodID, payinConfigID string) (*Payin, error)
}

// Payment method statuses.
const (
	PaymentMethodStatusActive      = "ACTIVE"
	PaymentMethodStatusDeactivated = "DEACTIVATED"
	PaymentMethodStatusFailed      = "FAILED"
)

// PaymentMethod is a stored, reusable card: the PAN is vaulted, the CVV never kept.
type PaymentMethod struct {
	ID                    string          `json:"payment_method_id"`
	PaymentMethodConfigID OptString       `json:"payment_method_config_id"`
	PlatformID            string          `json:"platform_id"`
	MerchantID            OptString       `json:"merchant_id"`
	Status                string          `json:"status"`
	MethodType            string          `json:"method_type"`
	Card                  *Card           `json:"card"`
	Fingerprint           string          `json:"fingerprint"`
	BillingContact        *BillingContact `json:"billing_contact"`
	Metadata              json.RawMessage `json:"metadata"`
	CreatedAt             time.Time       `json:"created_at"`
	// CreatedBy is the API key or session id the card was stored through
	// (empty for cards stored before ivrpay recorded it); not shown.
	CreatedBy string `json:"-"`
}

// Object returns what permissions on pm are checked against.
func (pm *PaymentMethod) Object() Object {
	return Object{PlatformID: pm.PlatformID, MerchantID: string(pm.MerchantID), PaymentMethodConfigID: string(pm.PaymentMethodConfigID),
		CreatedBy: pm.CreatedBy}
}

// PaymentMethodService reads and deactivates stored payment methods for the key in the context.
type PaymentMethodService interface {
	FindPaymentMethod(ctx context.Context, id string) (*PaymentMethod, error)
	ListPaymentMethods(ctx context.Context, page Page) (*List[*PaymentMethod], error)
	DeactivatePaymentMethod(ctx context.Context, id string) (*PaymentMethod, error)
}

// StoredChargeConfigNotFound answers a stored card's charge whose
// payin_config_id names no config the caller may see: none, another
// platform's, or one beyond a payer's browser's reach. One answer for all
// three, so that it reveals nothing.
func StoredChargeConfigNotFound(id, platformID string) *Error {
	return FieldErrorf("payin_config_id", "payin config %s not found on platform %s", id, platformID)
}

// PostalCodeOrEmpty is b's postal code, or "" when b is nil.
func (b *BillingContact) PostalCodeOrEmpty() string {
	if b == nil {
		return ""
	}
	return b.PostalCode
}

// WithPostalCode is a copy of b (or an empty contact) with the postal code
// the caller typed, which is what the processor checked.
func (b *BillingContact) WithPostalCode(postal string) *BillingContact {
	var out BillingContact
	if b != nil {
		out = *b
	}
	if postal != "" {
		out.PostalCode = postal
	}
	return &out
}

// CheckStoredCharge decides whether caller may charge stored card pm for
// payin config cfg now: the key may make payins on the config and with the
// card, and may read the card (charging a stored card picks whose card pays,
// which an IVR key's payin:create alone must not), a merchant's card never
// pays another merchant, the card is ACTIVE and unexpired, and the config
// has no approved payin yet. A payer's browser is answered first whether it
// can see the card and the config (Hidden): a card it did not store, or a
// config beyond its constraints, is not found, as another platform's is,
// before anything is said of either.
func CheckStoredCharge(caller *APIKey, pm *PaymentMethod, cfg *PayinConfig, now time.Time) error {
	if Hidden(caller, "payment_method:read", "payment method", pm.Object()) {
		return Errorf(ENOTFOUND, "payment method %s not found", pm.ID)
	}
	if Hidden(caller, "payin:create", "payin config", cfg.Object()) {
		return StoredChargeConfigNotFound(cfg.ID, caller.PlatformID)
	}
	if err := Authorize(caller, "payin:create", cfg.Object()); err != nil {
		return err
	}
	if err := Authorize(caller, "payin:create", pm.Object()); err != nil {
		return err
	}
	if err := Authorize(caller, "payment_method:read", pm.Object()); err != nil {
		return err
	}
	if pm.MerchantID != "" && string(pm.MerchantID) != cfg.MerchantID {
		return FieldErrorf("payment_method_id", "payment method %s belongs to merchant %s and cannot pay a payin config of merchant %s", pm.ID, pm.MerchantID, cfg.MerchantID)
	}
	if pm.Status != PaymentMethodStatusActive {
		return FieldErrorf("payment_method_id", "payment method %s is %s and cannot be charged", pm.ID, pm.Status)
	}
	if cfg.Payin != nil {
		return Errorf(ECONFLICT, "payin config %s already has payin %s; create a new payin config for a new payment", cfg.ID, cfg.Payin.PayinID)
	}
	exp := card.Expiry{Month: pm.Card.ExpMonth, Year: pm.Card.ExpYear}
	if exp.Expired(now) {
		return FieldErrorf("payment_method_id", "the stored card expired at the end of %02d/%d", exp.Month, exp.Year)
	}
	return nil
}
