package ivrpay

import "context"

// Processor authorizes cards. The sandbox implementation is deterministic.
type Processor interface {
	// Authorize asks the card network to approve an amount. A decline is a
	// result, not an error; an error means the processor could not answer.
	Authorize(ctx context.Context, a Authorization) (AuthorizationResult, error)
}

// Authorization is one request to the processor. It holds the CVV, so it lives
// in memory only and is never logged or stored.
type Authorization struct {
	// Reference is our id for the attempt (the payin or payment method id); a
	// real processor uses it as its idempotency key, so a retry after a crash
	// never charges twice.
	Reference  string
	Amount     int64 // cents; 0 verifies the card without charging it (tokenize)
	Currency   string
	PAN        string
	CVV        string // empty when the caller was not asked for it, or the card is stored
	ExpMonth   int
	ExpYear    int
	PostalCode string
	Capture    bool // false for processing_mode AUTHORIZE
}

// AuthorizationResult is the processor's answer.
type AuthorizationResult struct {
	Approved      bool
	AuthCode      string
	AVSResultCode string
	CVCResultCode string
	RefusalCode   string
	RefusalDesc   string
}

// Vault encrypts PANs at rest and fingerprints them with a keyed hash.
type Vault interface {
	Encrypt(pan string) (string, error)
	Decrypt(ciphertext string) (string, error)
	// Fingerprint is a keyed HMAC of the PAN, stable for one vault key.
	Fingerprint(pan string) string
}
