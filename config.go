package ivrpay

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Processing modes of a payin config.
const (
	ProcessingModeAuthorizeAndCapture = "AUTHORIZE_AND_CAPTURE"
	ProcessingModeAuthorize           = "AUTHORIZE"
)

// MaxAmount is the largest payin amount in cents ($1,000,000, Twilio's chargeAmount ceiling).
const MaxAmount = 100_000_000

// MaxMetadataBytes bounds metadata objects ("under 8 KiB").
const MaxMetadataBytes = 8 << 10

// PayinConfig is step 1 of a payin, created with a full-permission key.
type PayinConfig struct {
	ID             string          `json:"payin_config_id"`
	PlatformID     string          `json:"platform_id"`
	MerchantID     string          `json:"merchant_id"`
	Merchant       MerchantRef     `json:"merchant"`
	IdempotencyKey string          `json:"idempotency_key"`
	Amount         int64           `json:"amount"`
	CurrencyCode   string          `json:"currency_code"`
	BillingContact *BillingContact `json:"billing_contact"`
	Metadata       json.RawMessage `json:"metadata"`
	MethodMetadata json.RawMessage `json:"method_metadata"`
	ProcessingMode string          `json:"processing_mode"`
	Payin          *PayinRef       `json:"payin"`
	CreatedAt      time.Time       `json:"created_at"`
}

// Object returns what permissions on c (and on a payin made from it) are checked against.
func (c *PayinConfig) Object() Object {
	return Object{PlatformID: c.PlatformID, MerchantID: c.MerchantID, PayinConfigID: c.ID}
}

// MerchantRef is the minimal representation of a merchant.
type MerchantRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// PayinRef is the minimal representation of the payin made with a config.
type PayinRef struct {
	PayinID string `json:"payin_id"`
}

// PayinConfigCreate is the body of POST /v1/payin_configs.
type PayinConfigCreate struct {
	MerchantID     string          `json:"merchant_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	Amount         json.Number     `json:"amount"`
	CurrencyCode   string          `json:"currency_code"`
	BillingContact *BillingContact `json:"billing_contact"`
	Metadata       json.RawMessage `json:"metadata"`
	MethodMetadata json.RawMessage `json:"method_metadata"`
	ProcessingMode string          `json:"processing_mode"`
}

// Validate checks a payin config creation at API version v and returns the amount in cents.
func (c *PayinConfigCreate) Validate(v APIVersion) (int64, error) {
	if c.MerchantID == "" {
		return 0, FieldErrorf("merchant_id", "is required")
	}
	if err := validateIdempotencyKey(c.IdempotencyKey); err != nil {
		return 0, err
	}
	amount, err := ParseCents("amount", c.Amount)
	if err != nil {
		return 0, err
	}
	if err := validateCurrency(c.CurrencyCode); err != nil {
		return 0, err
	}
	if err := c.BillingContact.Validate("billing_contact"); err != nil {
		return 0, err
	}
	if err := ValidateMetadata("metadata", c.Metadata); err != nil {
		return 0, err
	}
	if err := ValidateMetadata("method_metadata", c.MethodMetadata); err != nil {
		return 0, err
	}
	switch c.ProcessingMode {
	case "":
		c.ProcessingMode = ProcessingModeAuthorizeAndCapture
	case ProcessingModeAuthorizeAndCapture:
	case ProcessingModeAuthorize:
		if !v.SupportsAuthorize() {
			return 0, FieldErrorf("processing_mode", "AUTHORIZE is available from API version 2024-10-16; this request runs at %s", v)
		}
	default:
		return 0, FieldErrorf("processing_mode", "must be AUTHORIZE_AND_CAPTURE or AUTHORIZE")
	}
	return amount, nil
}

// ParseCents checks that a JSON number is a whole number of cents between 1 and MaxAmount.
func ParseCents(field string, n json.Number) (int64, error) {
	if n == "" {
		return 0, FieldErrorf(field, "is required: an integer number of cents (1000 is 10.00 USD)")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, FieldErrorf(field, "must be an integer number of cents (1000 is 10.00 USD), not %s", n)
	}
	if v < 1 || v > MaxAmount {
		return 0, FieldErrorf(field, "must be between 1 and %d cents", MaxAmount)
	}
	return v, nil
}

func validateIdempotencyKey(k string) error {
	if k == "" {
		return FieldErrorf("idempotency_key", "is required (1 to 255 characters); a repeat with the same key returns the first result")
	}
	if utf8.RuneCountInString(k) > 255 {
		return FieldErrorf("idempotency_key", "must be at most 255 characters")
	}
	if strings.ContainsFunc(k, unicode.IsControl) {
		return FieldErrorf("idempotency_key", "must not contain control characters")
	}
	// Keys are stored and returned with the object: no card number in them.
	return checkFreeText("idempotency_key", k)
}

// idempotencyScopeSep separates a merchant's id from a key in a scoped key;
// keys cannot contain it (validateIdempotencyKey refuses control characters).
const idempotencyScopeSep = "\x1f"

// ScopedIdempotencyKey is the key as it is unique in the database: keys of a
// merchant's objects are the merchant's own, so one merchant's key can never
// take, or reveal, another merchant's; keys of platform-level objects are the
// platform's.
func ScopedIdempotencyKey(merchantID, key string) string {
	if merchantID == "" {
		return key
	}
	return merchantID + idempotencyScopeSep + key
}

// ClientIdempotencyKey is the key the client sent, from a scoped key (keys
// stored before scoping are returned as they are).
func ClientIdempotencyKey(scoped string) string {
	_, key, found := strings.Cut(scoped, idempotencyScopeSep)
	if !found {
		return scoped
	}
	return key
}

func validateCurrency(c string) error {
	if c == "" {
		return FieldErrorf("currency_code", "is required; only USD is supported")
	}
	if c != "USD" {
		return FieldErrorf("currency_code", "only USD is supported, not %q", c)
	}
	return nil
}

// ValidateMetadata checks that metadata, when present, is a JSON object under
// 8 KiB whose keys and values (at any depth) hold no card number and no NUL
// character; the refusal names the path of the first one, e.g.
// metadata.customer.note.
func ValidateMetadata(field string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if len(raw) >= MaxMetadataBytes {
		return FieldErrorf(field, "must be under 8 KiB")
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(raw) {
		return FieldErrorf(field, "must be a JSON object")
	}
	if mayHoldCardNumber(raw) {
		if path, found := metadataCardPath(field, raw); found {
			return cardNumberError(path)
		}
	}
	return checkJSONNUL(field, raw)
}

// CompactJSON is a JSON value as it is stored and compared: compact, or nil
// for none (absent or null), so that spacing never makes two requests differ.
func CompactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

// PaymentMethodConfig is step 1 of storing a card.
type PaymentMethodConfig struct {
	ID             string            `json:"payment_method_config_id"`
	PlatformID     string            `json:"platform_id"`
	MerchantID     string            `json:"merchant_id,omitempty"`
	IdempotencyKey string            `json:"idempotency_key"`
	BillingContact *BillingContact   `json:"billing_contact"`
	Metadata       json.RawMessage   `json:"metadata"`
	PaymentMethod  *PaymentMethodRef `json:"payment_method"`
	CreatedAt      time.Time         `json:"created_at"`
}

// Object returns what permissions on c (and on the payment method stored from it) are checked against.
func (c *PaymentMethodConfig) Object() Object {
	return Object{PlatformID: c.PlatformID, MerchantID: c.MerchantID, PaymentMethodConfigID: c.ID}
}

// PaymentMethodRef is the minimal representation of a stored payment method.
type PaymentMethodRef struct {
	PaymentMethodID string `json:"payment_method_id"`
}

// PaymentMethodConfigCreate is the body of POST /v1/payment_method_configs.
type PaymentMethodConfigCreate struct {
	PlatformID     string          `json:"platform_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	MerchantID     string          `json:"merchant_id"`
	BillingContact *BillingContact `json:"billing_contact"`
	Metadata       json.RawMessage `json:"metadata"`
}

// Validate checks a payment method config creation.
func (c *PaymentMethodConfigCreate) Validate() error {
	if c.PlatformID == "" {
		return FieldErrorf("platform_id", "is required")
	}
	if err := validateIdempotencyKey(c.IdempotencyKey); err != nil {
		return err
	}
	if err := c.BillingContact.Validate("billing_contact"); err != nil {
		return err
	}
	return ValidateMetadata("metadata", c.Metadata)
}

// PayinConfigService manages payin configs for the key in the context.
type PayinConfigService interface {
	CreatePayinConfig(ctx context.Context, c PayinConfigCreate) (*PayinConfig, error)
	FindPayinConfig(ctx context.Context, id string) (*PayinConfig, error)
	// ListPayinConfigs lists the configs the key may read (payin_config:read), newest last.
	ListPayinConfigs(ctx context.Context, f PayinConfigFilter) (*List[*PayinConfig], error)
}

// Values of PayinConfigFilter.Used.
const (
	PayinConfigUsed   = "used"
	PayinConfigUnused = "unused"
)

// PayinConfigFilter selects payin configs: of one merchant, and used (an
// approved payin exists) or not.
type PayinConfigFilter struct {
	Page
	MerchantID string
	// Used is "", PayinConfigUsed or PayinConfigUnused.
	Used string
}

// PaymentMethodConfigService manages payment method configs for the key in the context.
type PaymentMethodConfigService interface {
	CreatePaymentMethodConfig(ctx context.Context, c PaymentMethodConfigCreate) (*PaymentMethodConfig, error)
	FindPaymentMethodConfig(ctx context.Context, id string) (*PaymentMethodConfig, error)
}
