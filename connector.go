package ivrpay

import "context"

// Connector error codes, returned to Twilio as error_code and passed on to the
// platform's action URL as ConnectorError.
const (
	ConnUnauthorized             = "UNAUTHORIZED"
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
	ConnDuplicateTransaction     = "DUPLICATE_TRANSACTION"
	ConnInternal                 = "INTERNAL_ERROR"
)

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

// IVRRequest is a connector request that passed the INVALID_REQUEST checks.
// It holds the card and CVV in memory only.
type IVRRequest struct {
	Method        string
	TransactionID string
	CardNumber    string
	CVV           string
	ExpiryMonth   string
	ExpiryYear    string
	PostalCode    string
	ACH           bool
	AmountPresent bool
	Amount        string
	CurrencyCode  string
	Parameters    map[string]string
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
	// ProcessIVR runs the checks of the connector after INVALID_REQUEST, in
	// order, and charges or stores the card. A transaction_id seen before on
	// the platform replays its first answer (waiting for it if it is still
	// running); a different request under the same id is DUPLICATE_TRANSACTION.
	ProcessIVR(ctx context.Context, req IVRRequest) (IVRResult, error)
}
