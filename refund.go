package ivrpay

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
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
// SUCCEEDED when settlement runs, like a payin, or FAILED when the processor
// refuses it (then RefusalCode and RefusalDesc say why).
type Refund struct {
	ID           string `json:"refund_id"`
	PayinID      string `json:"payin_id"`
	MerchantID   string `json:"merchant_id"`
	PlatformID   string `json:"-"`
	Amount       int64  `json:"amount"`
	CurrencyCode string `json:"currency_code"`
	Reason       string `json:"reason"`
	Status       string `json:"status"`
	// IdempotencyKey is the key of the void_or_refund request that made the
	// refund, as the client sent it.
	IdempotencyKey string          `json:"idempotency_key"`
	Metadata       json.RawMessage `json:"metadata"`
	RefusalCode    OptString       `json:"refusal_code"`
	RefusalDesc    OptString       `json:"refusal_desc"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
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
	Amount         json.Number `json:"amount,omitempty"` // omitted, not 0, when empty: 0 is refused
	Type           string      `json:"type"`
	// Metadata is kept on the refund (and echoed in the answer of a void).
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// Validate checks the body and returns the amount in cents (0 for the full
// amount, when it is omitted). An amount of 0 is refused: a caller who
// typed 0 did not mean the whole payin (SPEC §9).
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
	if err := ValidateMetadata("metadata", v.Metadata); err != nil {
		return 0, err
	}
	if v.Amount == "" {
		return 0, nil // omitted: the full amount
	}
	if n, err := v.Amount.Int64(); err == nil && n == 0 {
		return 0, FieldErrorf("amount", "must be at least 1 cent; omit amount to void or refund the full amount")
	}
	return ParseCents("amount", v.Amount)
}

// VoidOrRefundResult is the data of a void_or_refund answer. RefundID,
// RefundStatus, RefusalCode and RefusalDesc are null for a void; a refund's
// answer carries the refund's own fields (RefundResult). IdempotencyKey and
// Metadata are the request's.
type VoidOrRefundResult struct {
	Type           string          `json:"type"`
	MerchantID     string          `json:"merchant_id"`
	PayinID        string          `json:"payin_id"`
	PayinStatus    string          `json:"payin_status"`
	RefundID       OptString       `json:"refund_id"`
	RefundStatus   OptString       `json:"refund_status"`
	Amount         int64           `json:"amount"`
	CurrencyCode   string          `json:"currency_code"`
	Reason         string          `json:"reason"`
	IdempotencyKey string          `json:"idempotency_key"`
	Metadata       json.RawMessage `json:"metadata"`
	RefusalCode    OptString       `json:"refusal_code"`
	RefusalDesc    OptString       `json:"refusal_desc"`
	// UpdatedAt is when the void was recorded, or when the refund last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// RefundResult is the answer of the void_or_refund request that made r,
// as r now stands (its payin is SUCCEEDED: only settled payins are refunded).
func RefundResult(r *Refund) VoidOrRefundResult {
	return VoidOrRefundResult{Type: VoidOrRefundTypeRefund, MerchantID: r.MerchantID, PayinID: r.PayinID,
		PayinStatus: PayinStatusSucceeded, RefundID: OptString(r.ID), RefundStatus: OptString(r.Status),
		Amount: r.Amount, CurrencyCode: r.CurrencyCode, Reason: r.Reason, IdempotencyKey: r.IdempotencyKey,
		Metadata: r.Metadata, RefusalCode: r.RefusalCode, RefusalDesc: r.RefusalDesc, UpdatedAt: r.UpdatedAt}
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
	// its refundable amount, and never while a chargeback refuses it
	// (RefundRefusedByChargeback). It needs refund:create. The idempotency key is
	// scoped to the platform: a repeat of the same request returns the first
	// result, a different request under the same key is ECONFLICT, and a
	// refused request does not use up its key.
	VoidOrRefund(ctx context.Context, payinID string, v VoidOrRefund) (*VoidOrRefundResult, error)
	// FindRefund returns a refund the key may read (refund:read).
	FindRefund(ctx context.Context, id string) (*Refund, error)
}

// VoidOrRefundPlan is what a void_or_refund request does to a payin in a given state.
type VoidOrRefundPlan struct {
	Kind   string // VOID or REFUND
	Amount int64
	Status string // the status the decision was made on
}

// PlanVoidOrRefund decides, from the payin's state, what a request of kind
// (VOID, REFUND or "" for "the state decides") for amount (0: all) does, or
// why the state forbids it (ECONFLICT with a message that says why).
func PlanVoidOrRefund(p *Payin, kind string, amount int64) (VoidOrRefundPlan, error) {
	conflict := func(field, format string, args ...any) (VoidOrRefundPlan, error) {
		e := Errorf(ECONFLICT, format, args...)
		e.Field = field
		return VoidOrRefundPlan{}, e
	}
	switch p.Status {
	case PayinStatusCreated:
		return conflict("", "payin %s is still being processed; try again once it is PROCESSING", p.ID)
	case PayinStatusFailed:
		return conflict("", "payin %s FAILED (%s): no money moved, so there is nothing to void or refund", p.ID, p.RefusalCode)
	case PayinStatusCanceled:
		return conflict("", "payin %s was voided (CANCELED): no money moves, so there is nothing left to void or refund", p.ID)
	case PayinStatusProcessing, PayinStatusAuthorized:
		if kind == VoidOrRefundTypeRefund {
			return conflict("type", "payin %s has not settled yet (it is %s): void it in full now (type VOID, or no type), or refund it once it is SUCCEEDED", p.ID, p.Status)
		}
		full := p.CapturedAmount
		if p.Status == PayinStatusAuthorized {
			full = p.AuthorizedAmount
		}
		if amount != 0 && amount != full {
			return conflict("amount", "a payin cannot be partially voided: payin %s is %s, so only its full amount %s can be voided (omit amount); once it is SUCCEEDED it can be partially refunded",
				p.ID, p.Status, FormatDollars(full))
		}
		return VoidOrRefundPlan{Kind: VoidOrRefundTypeVoid, Amount: full, Status: p.Status}, nil
	case PayinStatusSucceeded:
		if kind == VoidOrRefundTypeVoid {
			if p.RefundableAmount == 0 {
				return conflict("type", "payin %s has settled (SUCCEEDED) and can no longer be voided, and nothing of it can be refunded (%s)",
					p.ID, p.NonRefundableReasonCode)
			}
			return conflict("type", "payin %s has settled (SUCCEEDED) and can no longer be voided; use a refund instead (type REFUND, or no type) for all or part of its refundable amount %s",
				p.ID, FormatDollars(p.RefundableAmount))
		}
		// The chargeback first: it refuses the refund whatever the amount,
		// and it is why a disputed payin's refundable amount is 0.
		if err := RefundRefusedByChargeback(p); err != nil {
			return VoidOrRefundPlan{}, err
		}
		if p.RefundableAmount == 0 {
			return conflict("", "payin %s is already fully refunded: its refundable amount is 0.00", p.ID)
		}
		if amount == 0 {
			amount = p.RefundableAmount
		}
		if amount > p.RefundableAmount {
			return conflict("amount", "amount %s is more than the refundable amount %s of payin %s",
				FormatDollars(amount), FormatDollars(p.RefundableAmount), p.ID)
		}
		return VoidOrRefundPlan{Kind: VoidOrRefundTypeRefund, Amount: amount, Status: p.Status}, nil
	}
	return conflict("", "payin %s is %s and cannot be voided or refunded", p.ID, p.Status)
}

// RefundRefusedByChargeback is the refusal (ECONFLICT) of any refund of p
// while one of its chargebacks is in a status of
// ChargebackStatusesRefusingRefunds, naming that chargeback; nil when none is.
func RefundRefusedByChargeback(p *Payin) error {
	c := refusingChargeback(p)
	switch {
	case c == nil:
		return nil
	case c.Status == ChargebackStatusLost:
		return Errorf(ECONFLICT, "payin %s cannot be refunded: its chargeback %s is LOST, so the cardholder already got the money back through the dispute; a refund would pay them twice",
			p.ID, c.ID)
	}
	return Errorf(ECONFLICT, "payin %s cannot be refunded while its chargeback %s is %s: the dispute takes the money back from the merchant (or may still), so a refund would pay the cardholder twice; answer or accept the dispute in the processor's dashboard, and refund only if it ends WON",
		p.ID, c.ID, c.Status)
}

// refusingChargeback is the first of p's chargebacks in a status of
// ChargebackStatusesRefusingRefunds, nil when none is.
func refusingChargeback(p *Payin) *PayinChargeback {
	for i, c := range p.Chargebacks {
		if slices.Contains(ChargebackStatusesRefusingRefunds, c.Status) {
			return &p.Chargebacks[i]
		}
	}
	return nil
}

// Why a payin has nothing to refund: Rainforest's non_refundable_reason_code,
// the values that apply to ivrpay's card payins (docs/decisions.md, "What a
// payin's refundable_amount says").
const (
	NonRefundableVoided             = "VOIDED"
	NonRefundableFailed             = "FAILED"
	NonRefundableFullyRefunded      = "FULLY_REFUNDED"
	NonRefundableHasChargebacks     = "HAS_CHARGEBACKS"
	NonRefundableInSettlementWindow = "IN_SETTLEMENT_WINDOW"
)

// SetRefundable sets p.RefundableAmount and p.NonRefundableReasonCode from
// its status, CapturedAmount, RefundedAmount and Chargebacks: the one place
// they are decided, so that the amount shown is what a refund may take. A
// SUCCEEDED payin may be refunded what its refunds have not taken, nothing
// while a chargeback refuses refunds (that reason first, as in
// PlanVoidOrRefund: it holds whatever the amount); a payin not yet settled
// is voided, not refunded.
func (p *Payin) SetRefundable() {
	p.RefundableAmount, p.NonRefundableReasonCode = 0, ""
	switch p.Status {
	case PayinStatusSucceeded:
		switch {
		case refusingChargeback(p) != nil:
			p.NonRefundableReasonCode = NonRefundableHasChargebacks
		case p.CapturedAmount > p.RefundedAmount:
			p.RefundableAmount = p.CapturedAmount - p.RefundedAmount
		default:
			p.NonRefundableReasonCode = NonRefundableFullyRefunded
		}
	case PayinStatusFailed:
		p.NonRefundableReasonCode = NonRefundableFailed
	case PayinStatusCanceled:
		p.NonRefundableReasonCode = NonRefundableVoided
	default: // CREATED, PROCESSING, AUTHORIZED
		p.NonRefundableReasonCode = NonRefundableInSettlementWindow
	}
}

// CheckCaptureVersion refuses a capture at an API version without AUTHORIZED payins.
func CheckCaptureVersion(v APIVersion) error {
	if !v.SupportsAuthorize() {
		return FieldErrorf("Rainforest-Api-Version", "capture is available from API version 2024-10-16 (with processing_mode AUTHORIZE); this request runs at %s", v)
	}
	return nil
}

// PlanCapture decides how much of an AUTHORIZED payin a capture request for
// amount (0: all) captures, or why it cannot.
func PlanCapture(p *Payin, amount int64) (int64, error) {
	if p.Status != PayinStatusAuthorized {
		return 0, CaptureConflict(p)
	}
	if amount == 0 {
		amount = p.AuthorizedAmount
	}
	if amount > p.AuthorizedAmount {
		return 0, &Error{Code: ECONFLICT, Field: "amount",
			Message: "amount " + FormatDollars(amount) + " is more than the authorized amount " + FormatDollars(p.AuthorizedAmount) + " of payin " + p.ID}
	}
	return amount, nil
}

// CaptureConflict is the refusal of a capture of a payin that is not AUTHORIZED.
func CaptureConflict(p *Payin) error {
	return Errorf(ECONFLICT, "payin %s is %s; only AUTHORIZED payins (made with processing_mode AUTHORIZE) can be captured, once", p.ID, p.Status)
}

// OperationInFlight is the refusal of a capture, void or refund of a payin
// whose capture or void is in flight at the processor: nothing is sent until
// its outcome is known.
func OperationInFlight(p *Payin) error {
	what := "an operation"
	if p.Operation != nil {
		what = "a " + strings.ToLower(p.Operation.Kind)
	}
	return Errorf(ECONFLICT, "payin %s has %s in flight at the processor; its outcome follows by webhook: try again once it is known", p.ID, what)
}
