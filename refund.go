package ivrpay

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Refund statuses.
const (
	RefundStatusProcessing = "PROCESSING"
	RefundStatusSucceeded  = "SUCCEEDED"
	RefundStatusFailed     = "FAILED"
)

// Reasons a payin is voided or refunded.
const (
	RefundReasonRequestedByCustomer = "REQUESTED_BY_CUSTOMER"
	RefundReasonDuplicate           = "DUPLICATE"
	RefundReasonFraudulent          = "FRAUDULENT"
)

// RefundReasons lists every reason (for validation).
var RefundReasons = []string{RefundReasonRequestedByCustomer, RefundReasonDuplicate, RefundReasonFraudulent}

// What a void_or_refund request did.
const (
	VoidOrRefundTypeVoid   = "VOID"
	VoidOrRefundTypeRefund = "REFUND"
)

// Refund gives back all or part of a SUCCEEDED payin. It moves PROCESSING →
// SUCCEEDED when settlement runs, like a payin.
type Refund struct {
	ID           string    `json:"refund_id"`
	PayinID      string    `json:"payin_id"`
	MerchantID   string    `json:"merchant_id"`
	PlatformID   string    `json:"-"`
	Amount       int64     `json:"amount"`
	CurrencyCode string    `json:"currency_code"`
	Reason       string    `json:"reason"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
}

// Object returns what permissions on r are checked against.
func (r *Refund) Object() Object { return Object{PlatformID: r.PlatformID, MerchantID: r.MerchantID} }

// VoidOrRefund is the body of POST /v1/payins/{id}/void_or_refund.
//
// Type is an ivrpay extension: omitted, the payin's state decides (a void
// while PROCESSING or AUTHORIZED, a refund once SUCCEEDED), as on Rainforest;
// "VOID" or "REFUND" says what the caller means, so that a void that arrives
// after settlement is refused instead of silently becoming a refund.
type VoidOrRefund struct {
	IdempotencyKey string      `json:"idempotency_key"`
	Reason         string      `json:"reason"`
	Amount         json.Number `json:"amount"`
	Type           string      `json:"type"`
}

// Validate checks the body and returns the amount in cents (0 for the full amount).
func (v *VoidOrRefund) Validate() (int64, error) {
	if err := validateIdempotencyKey(v.IdempotencyKey); err != nil {
		return 0, err
	}
	if v.Reason == "" {
		return 0, FieldErrorf("reason", "is required: REQUESTED_BY_CUSTOMER, DUPLICATE or FRAUDULENT")
	}
	if !slices.Contains(RefundReasons, v.Reason) {
		return 0, FieldErrorf("reason", "must be REQUESTED_BY_CUSTOMER, DUPLICATE or FRAUDULENT, not %q", v.Reason)
	}
	if v.Type != "" && v.Type != VoidOrRefundTypeVoid && v.Type != VoidOrRefundTypeRefund {
		return 0, FieldErrorf("type", "must be VOID or REFUND (or omitted: the payin's status decides)")
	}
	if n, err := v.Amount.Int64(); v.Amount == "" || (err == nil && n == 0) {
		return 0, nil // omitted or 0: the full amount
	}
	return ParseCents("amount", v.Amount)
}

// VoidOrRefundResult is the data of a void_or_refund answer. RefundID and
// RefundStatus are null for a void.
type VoidOrRefundResult struct {
	Type         string    `json:"type"`
	MerchantID   string    `json:"merchant_id"`
	PayinID      string    `json:"payin_id"`
	PayinStatus  string    `json:"payin_status"`
	RefundID     OptString `json:"refund_id"`
	RefundStatus OptString `json:"refund_status"`
	Amount       int64     `json:"amount"`
	CurrencyCode string    `json:"currency_code"`
	Reason       string    `json:"reason"`
}

// PayinCapture is the body of POST /v1/payins/{id}/capture: an amount up to
// the authorized amount, or the full authorized amount when omitted.
type PayinCapture struct {
	Amount json.Number `json:"amount"`
}

// Validate returns the amount in cents, or 0 for the full authorized amount.
func (c *PayinCapture) Validate() (int64, error) {
	if c.Amount == "" {
		return 0, nil
	}
	return ParseCents("amount", c.Amount)
}

// PayinLifecycleService moves payins after their charge: capture, void,
// refund, and reading refunds, for the key in the context.
type PayinLifecycleService interface {
	// CapturePayin captures an AUTHORIZED payin (all of it, or part of the
	// authorized amount), which moves it to PROCESSING. It needs
	// payin:update and API version 2024-10-16; any other status is ECONFLICT.
	CapturePayin(ctx context.Context, payinID string, c PayinCapture) (*Payin, error)
	// VoidOrRefund voids a PROCESSING or AUTHORIZED payin in full (→
	// CANCELED), or refunds a SUCCEEDED one in full or in part, never beyond
	// its refundable amount. It needs refund:create. The idempotency key is
	// scoped to the platform: a repeat of the same request returns the first
	// result, a different request under the same key is ECONFLICT, and a
	// refused request does not use up its key.
	VoidOrRefund(ctx context.Context, payinID string, v VoidOrRefund) (*VoidOrRefundResult, error)
	// FindRefund returns a refund the key may read (refund:read).
	FindRefund(ctx context.Context, id string) (*Refund, error)
}
