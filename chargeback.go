package ivrpay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Chargeback is a cardholder's dispute of a payin, as Rainforest shows it
// (SPEC §4.3). ivrpay never decides one: it shows what the processor says,
// and the merchant answers in the processor's dashboard.
type Chargeback struct {
	ID           string          `json:"chargeback_id"`
	PayinID      string          `json:"payin_id"`
	MerchantID   string          `json:"merchant_id"`
	PlatformID   string          `json:"platform_id"`
	Amount       int64           `json:"amount"`
	CurrencyCode string          `json:"currency_code"`
	Status       string          `json:"status"`
	ReasonCode   OptString       `json:"reason_code"`
	ReasonDesc   OptString       `json:"reason_desc"`
	MethodType   string          `json:"method_type"`
	Card         *CardSummary    `json:"card"`
	Metadata     json.RawMessage `json:"metadata"`
	// Processor names the dispute at the processor.
	Processor ChargebackProcessor `json:"processor"`
	// RespondBy is the deadline for the merchant's evidence; null when the
	// processor gives none (or no answer is due any more).
	RespondBy *time.Time `json:"respond_by"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	// PayinConfigID is the config of the disputed payin, which a key
	// narrowed to that config is checked against; not shown.
	PayinConfigID string `json:"-"`
}

// ChargebackProcessor is where a chargeback lives at the processor: the
// account's NAME and kind, the processor's id of the dispute and, an ivrpay
// extension, the page where the merchant answers it when the processor
// gives one.
type ChargebackProcessor struct {
	Account      string    `json:"account"`
	Kind         string    `json:"kind"`
	Reference    string    `json:"reference"`
	DashboardURL OptString `json:"dashboard_url"`
}

// CardSummary is a card as a chargeback shows it: brand and last 4 only.
type CardSummary struct {
	Brand string `json:"brand"`
	Last4 string `json:"last_4"`
}

// Object returns what permissions on c are checked against: the disputed
// payin's platform, merchant and config.
func (c *Chargeback) Object() Object {
	return Object{PlatformID: c.PlatformID, MerchantID: c.MerchantID, PayinConfigID: c.PayinConfigID}
}

// Summary is the chargeback as its payin lists it.
func (c *Chargeback) Summary() PayinChargeback {
	return PayinChargeback{ID: c.ID, Status: c.Status, Amount: c.Amount}
}

// PayinChargeback is one chargeback in a payin's `chargebacks`.
type PayinChargeback struct {
	ID     string `json:"chargeback_id"`
	Status string `json:"status"`
	Amount int64  `json:"amount"`
}

// ChargebackEventType is the webhook a chargeback emits on reaching status:
// chargeback.<status in lower case> (SPEC §4.3).
func ChargebackEventType(status string) string { return "chargeback." + strings.ToLower(status) }

// ChargebackEventTypes are the webhooks of every chargeback status.
func ChargebackEventTypes() []string {
	out := make([]string, len(ChargebackStatuses))
	for i, s := range ChargebackStatuses {
		out[i] = ChargebackEventType(s)
	}
	return out
}

// chargebackNext is the chargeback transition table: the statuses each
// status may move to. A dispute only moves forward: an inquiry may escalate
// to a dispute, a dispute under review may be provisionally won (Adyen's
// CHARGEBACK_REVERSED), and WON and LOST are final. An event whose status
// is not listed here (a late or reordered one, or a repeat of the current
// status) changes nothing. docs/decisions.md (issue 24) explains each row.
var chargebackNext = map[string][]string{
	ChargebackStatusInquiryActionRequired: {ChargebackStatusInquiryProcessing, ChargebackStatusDisputeActionRequired,
		ChargebackStatusChargebackProcessing, ChargebackStatusProvisionalWin, ChargebackStatusWon, ChargebackStatusLost},
	ChargebackStatusInquiryProcessing: {ChargebackStatusDisputeActionRequired, ChargebackStatusChargebackProcessing,
		ChargebackStatusProvisionalWin, ChargebackStatusWon, ChargebackStatusLost},
	ChargebackStatusDisputeActionRequired: {ChargebackStatusChargebackProcessing, ChargebackStatusProvisionalWin,
		ChargebackStatusWon, ChargebackStatusLost},
	ChargebackStatusChargebackProcessing: {ChargebackStatusProvisionalWin, ChargebackStatusWon, ChargebackStatusLost},
	ChargebackStatusProvisionalWin:       {ChargebackStatusWon, ChargebackStatusLost},
	ChargebackStatusWon:                  nil,
	ChargebackStatusLost:                 nil,
}

// ChargebackCanMove reports whether a chargeback in status from may move to
// status to (the transition table above).
func ChargebackCanMove(from, to string) bool { return slices.Contains(chargebackNext[from], to) }

// ChargebackStatusFinal reports whether no event moves a chargeback in status on.
func ChargebackStatusFinal(status string) bool {
	next, known := chargebackNext[status]
	return known && len(next) == 0
}

// ChargebackStatusAwaitsMerchant reports whether the merchant is asked to
// answer (respond_by is the deadline) in status.
func ChargebackStatusAwaitsMerchant(status string) bool {
	return status == ChargebackStatusInquiryActionRequired || status == ChargebackStatusDisputeActionRequired
}

// ChargebackStatusesRefusingRefunds are the statuses in which a chargeback
// makes its payin unrefundable: a formal dispute that has taken the money
// back from the merchant, or may still (PROVISIONAL_WIN can end LOST), and
// one that was LOST. A refund would then pay the cardholder a second time,
// and processors refuse it (Stripe's charge_disputed, Adyen's blocked
// refund). An inquiry moved no money and a refund is what closes it, and a
// WON dispute gave the money back to the merchant: both allow refunds.
// The store's refund reservation names the same list (docs/decisions.md,
// "Refunds of disputed payins").
var ChargebackStatusesRefusingRefunds = []string{ChargebackStatusDisputeActionRequired, ChargebackStatusChargebackProcessing,
	ChargebackStatusProvisionalWin, ChargebackStatusLost}

// CheckDispute validates what a processor event says of a dispute before it
// is applied: an adapter's bug must not write a chargeback without a
// reference or with a status outside the table.
func CheckDispute(d *DisputeDetails) error {
	switch {
	case d == nil:
		return errors.New("dispute event without dispute details")
	case d.Reference == "":
		return errors.New("dispute event without the processor's dispute reference")
	case !slices.Contains(ChargebackStatuses, d.Status):
		return fmt.Errorf("dispute %s has unknown chargeback status %q", d.Reference, d.Status)
	case d.Amount < 0:
		return fmt.Errorf("dispute %s has a negative amount", d.Reference)
	}
	return nil
}

// DisputeChange is a dispute event to apply to its payin's chargeback,
// written in one transaction with the event marked in the inbox.
type DisputeChange struct {
	// Account and Kind are the processor account's; EventID the event's in the inbox.
	Account, Kind, EventID string
	Payin                  *Payin
	Dispute                DisputeDetails
	At                     time.Time
}

// ChargebackFilter selects chargebacks for GET /v1/chargebacks.
type ChargebackFilter struct {
	Page
	MerchantID string
	PayinID    string
	Status     string
}

// Validate refuses filters that can match nothing because they are
// malformed, naming the field.
func (f ChargebackFilter) Validate() error {
	if f.MerchantID != "" && !IDHasKind(f.MerchantID, PrefixMerchant) {
		return FieldErrorf("merchant_id", "must be a merchant id (%s…), not %q", PrefixMerchant, f.MerchantID)
	}
	if f.PayinID != "" && !IDHasKind(f.PayinID, PrefixPayin) {
		return FieldErrorf("payin_id", "must be a payin id (%s…), not %q", PrefixPayin, f.PayinID)
	}
	if f.Status != "" && !slices.Contains(ChargebackStatuses, f.Status) {
		return FieldErrorf("status", "unknown chargeback status %q; statuses are %s", f.Status, strings.Join(ChargebackStatuses, ", "))
	}
	return nil
}

// ChargebackService reads chargebacks for the key in the context
// (chargeback:read).
type ChargebackService interface {
	FindChargeback(ctx context.Context, id string) (*Chargeback, error)
	ListChargebacks(ctx context.Context, f ChargebackFilter) (*List[*Chargeback], error)
}

// The built-in sandbox processor's dispute triggers (SPEC §4,
// docs/sandbox.md): once a payin of one of these amounts (cents) has
// settled, the sandbox disputes it by its events. The partial index
// payins_sandbox_disputes (sqlstore migration 00028) lists the same amounts.
const (
	// SandboxChargebackAmount: a chargeback opens (DISPUTE_ACTION_REQUIRED)
	// and is LOST one settle delay later.
	SandboxChargebackAmount = 5130
	// SandboxInquiryAmount: an inquiry opens (INQUIRY_ACTION_REQUIRED) and
	// ends WON one settle delay later.
	SandboxInquiryAmount = 5131
)

// SandboxDisputeDue is a settled payin of the sandbox processor of a dispute
// trigger amount whose dispute has a step due: none opened yet, or one that
// has awaited the merchant for the settle delay.
type SandboxDisputeDue struct {
	PayinID string
	// PayinAmount is the amount authorized, which decides the trigger;
	// CapturedAmount is what was taken, which the dispute claims back.
	PayinAmount    int64
	CapturedAmount int64
	PayinReference string
	Currency       string
	// ChargebackStatus is the status of the dispute opened so far; empty
	// when none is.
	ChargebackStatus string
	// Since is when the payin settled, or when the open dispute last changed.
	Since time.Time
}
