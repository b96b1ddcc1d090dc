package ivrpay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Processor moves money at an acquirer (docs/processors.md). Every call is a
// phone order (MOTO) and carries an idempotency key derived from ivrpay's own
// ids, so that re-sending a call whose answer was lost never charges twice.
//
// A definite answer, approved or refused, is a ProcessorResult with a nil
// error. An error means the outcome is unknown (a timeout, a network failure,
// a 5xx): the call may or may not have moved money, and the caller must never
// read it as a decline. Adapters wrap such errors in ErrOutcomeUnknown.
type Processor interface {
	// Kind names the adapter ("sandbox", "stripe", "adyen").
	Kind() string
	// Capabilities says which operations the adapter supports.
	Capabilities() ProcessorCapabilities
	// Authorize charges a card: captured at once when p.Capture, otherwise
	// held for a later Capture. With p.Stored set it is a merchant-initiated
	// charge of a stored card (no CVV).
	Authorize(ctx context.Context, p CardPayment) (ProcessorResult, error)
	// Verify checks a card without charging it (a zero-amount
	// authorization), for tokenize.
	Verify(ctx context.Context, p CardPayment) (ProcessorResult, error)
	// Capture captures all or part of an authorization.
	Capture(ctx context.Context, op PaymentOperation) (ProcessorResult, error)
	// Void cancels an authorization, or a capture that has not settled.
	Void(ctx context.Context, op PaymentOperation) (ProcessorResult, error)
	// Refund gives back all or part of a captured payment; a payment can be
	// refunded several times, each with its own idempotency key.
	Refund(ctx context.Context, op PaymentOperation) (ProcessorResult, error)
	// Resolve settles an unknown outcome of Authorize: it finds the charge
	// made under p.IdempotencyKey and reports it as approved, or makes sure no
	// money moved (reversing what it finds, if the adapter cannot look it up)
	// and reports it as refused. It never needs the CVV.
	Resolve(ctx context.Context, p CardPayment) (ProcessorResult, error)
}

// StatusLookup is the part of the processor contract that tells where a
// payment or refund stands now: an adapter whose processor can be asked
// implements it (Stripe retrieves the PaymentIntent or the Refund); one
// whose processor cannot (Adyen, whose notifications are the only word)
// does not. The look-up fallback (serve --processor-check-after) asks it
// about a real account's payins and refunds that stay PROCESSING, and
// applies the answer through the same transition table as events.
type StatusLookup interface {
	// LookupPayment reports the payment op.Reference as the event that
	// would say so: Effect PAYMENT_CAPTURED, PAYMENT_AUTHORIZED,
	// PAYMENT_CANCELED or PAYMENT_FAILED, or EffectNone while the processor
	// has not decided yet; with PaymentReference, Amount and Currency, and
	// the card network's answer of its charge (AuthCode, AVSResultCode,
	// CVCResultCode, NetworkTransactionID) where the processor gives it.
	// Account, Kind and ID are the caller's. An error is a look-up that
	// got no answer.
	LookupPayment(ctx context.Context, op PaymentOperation) (ProcessorEvent, error)
	// LookupRefund reports the refund refundReference (of the payment
	// op.Reference) likewise: REFUND_SUCCEEDED, REFUND_FAILED or EffectNone.
	LookupRefund(ctx context.Context, op PaymentOperation, refundReference string) (ProcessorEvent, error)
}

// ProcessorCapabilities are the operations an adapter supports. A missing
// capability is refused before any card data leaves.
type ProcessorCapabilities struct {
	ManualCapture  bool // processing_mode AUTHORIZE, then Capture
	PartialCapture bool
	Void           bool
	Refund         bool
	PartialRefund  bool
	Verify         bool // tokenize
	StoredCharges  bool // merchant-initiated charges of stored cards
}

// ErrOutcomeUnknown is wrapped by every processor error: nobody knows whether
// the call moved money.
var ErrOutcomeUnknown = errors.New("processor outcome unknown")

// UnknownOutcome wraps err (a timeout, a network error, a 5xx) in ErrOutcomeUnknown.
func UnknownOutcome(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrOutcomeUnknown, fmt.Sprintf(format, args...))
}

// ErrNotSent is wrapped, beside ErrOutcomeUnknown, by the error of a call
// whose request never left this process (refused locally, before any
// connection was asked for). This request moved no money; an earlier request
// under the same idempotency key may have, so only the caller knows whether
// the operation's outcome is known: a first attempt that was not sent did
// nothing.
var ErrNotSent = errors.New("the request was refused locally and never sent")

// NotSent is UnknownOutcome for a request that was never sent.
func NotSent(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrOutcomeUnknown, ErrNotSent, fmt.Sprintf(format, args...))
}

// CardDetails is a card as the processor needs it. It holds the PAN and CVV,
// so it lives in memory only and is never logged or stored.
type CardDetails struct {
	PAN        string
	CVV        string // empty for stored cards and when the caller was not asked
	ExpMonth   int
	ExpYear    int // four digits
	PostalCode string
	Brand      string
}

// StoredCredential marks a merchant-initiated charge of a stored card.
type StoredCredential struct {
	// NetworkTransactionID is the card network's id of the card's first
	// payment (or verification), which a merchant-initiated charge cites.
	NetworkTransactionID string
}

// CardPayment is one Authorize, Verify or Resolve call.
type CardPayment struct {
	// IdempotencyKey is derived from ivrpay's id of the attempt (the payin or
	// payment method id); the same attempt always sends the same key.
	IdempotencyKey string
	// Reference is ivrpay's id of the attempt, shown at the processor
	// (Stripe metadata, Adyen's merchant reference).
	Reference string
	Amount    int64 // cents; 0 for Verify
	Currency  string
	Capture   bool // false for processing_mode AUTHORIZE
	Card      CardDetails
	// Stored is set for a merchant-initiated charge of a stored card.
	Stored *StoredCredential
	// AccountRef routes the call to a sub-account: a Stripe connected account
	// (Stripe-Account) or an Adyen merchant account. Empty for the default.
	AccountRef string
	// Description is shown on the processor's dashboard.
	Description string
	// DuringCall marks the Resolve asked while the caller is still on the
	// line, right after the first call timed out (SPEC §4.2); the
	// reconciler's are not. Adapters may ignore it; the sandbox's
	// LostAnswersAmount loses that answer too.
	DuringCall bool
}

// PaymentOperation is one Capture, Void or Refund of a payment the processor made.
type PaymentOperation struct {
	IdempotencyKey string
	// Reference is the processor's reference of the payment (Stripe pi_…,
	// Adyen pspReference).
	Reference string
	// PayinID is ivrpay's id of the payment.
	PayinID    string
	Amount     int64 // cents
	Currency   string
	AccountRef string
	// PaymentAmount is the payment's own amount in cents, set on refunds. A
	// real processor knows it already; the sandbox, which remembers
	// nothing, reads its dispute trigger from it.
	PaymentAmount int64
}

// ProcessorResult is a definite answer of the processor.
type ProcessorResult struct {
	Approved bool
	// Reference is the processor's id of the payment or operation (Stripe
	// pi_… or re_…, Adyen pspReference).
	Reference            string
	NetworkTransactionID string
	AuthorizedAmount     int64 // may be less than asked (partial authorization); 0 means the amount asked
	AuthCode             string
	AVSResultCode        string // Y match, N no match, U unavailable, ...
	CVCResultCode        string // M match, N no match, P not processed, U unavailable
	// RefusalCode is one of the Refusal* codes. ProcessorCode is the
	// processor's own code of the refusal, named with its processor
	// ("stripe card_declined/insufficient_funds", "adyen 12, scheme 51"). An adapter
	// puts the processor's own code and message in RefusalDesc; since that
	// text can name the operator's account or key, the service logs it for
	// the operator and replaces it with RefusalDescription(RefusalCode,
	// ProcessorCode) before anything stores or shows it (SPEC §9).
	RefusalCode   string
	RefusalDesc   string
	ProcessorCode string
}

// Processor outcomes as the payin shows them (processor.outcome).
const (
	ProcessorOutcomeApproved = "APPROVED"
	ProcessorOutcomeDeclined = "DECLINED"
	ProcessorOutcomeUnknown  = "UNKNOWN"
)

// PayinProcessor tells which processor account made a payin and how to find
// the payment there.
type PayinProcessor struct {
	Account              string    `json:"account"`
	Kind                 string    `json:"kind"`
	Reference            OptString `json:"reference"`
	NetworkTransactionID OptString `json:"network_transaction_id"`
	// Outcome is APPROVED, DECLINED or UNKNOWN (the processor's answer did
	// not arrive; the reconciler resolves it).
	Outcome OptString `json:"outcome"`
	// SubAccount is the merchant's sub-account the payment was made under
	// (Stripe acct_…, an Adyen merchant account); not shown.
	SubAccount string `json:"-"`
}

// Vault encrypts PANs at rest and fingerprints them with a keyed hash.
type Vault interface {
	Encrypt(pan string) (string, error)
	Decrypt(ciphertext string) (string, error)
	// Fingerprint is a keyed HMAC of the PAN, stable for one vault key.
	Fingerprint(pan string) string
}

// ProcessorNotConfiguredError says that no processor account serves a
// merchant (production has no built-in processor).
type ProcessorNotConfiguredError struct {
	MerchantID string
}

func (e *ProcessorNotConfiguredError) Error() string {
	return fmt.Sprintf("merchant %s has no processor account; the operator sets one with: ivrpay admin merchant set-processor %s ACCOUNT (or ivrpay admin platform set-processor PLATFORM_ID ACCOUNT for every merchant of the platform)",
		e.MerchantID, e.MerchantID)
}

// AccountRef is the sub-account the payment was made under, if any.
func (p *PayinProcessor) AccountRef() string {
	if p == nil {
		return ""
	}
	return p.SubAccount
}

// Processor account kinds (the adapters ivrpay ships).
const (
	ProcessorKindSandbox = "sandbox"
	ProcessorKindStripe  = "stripe"
	ProcessorKindAdyen   = "adyen"
)

// ProcessorAccount is an operator's account at an acquirer. Its secret (a
// Stripe secret key, an Adyen API key) is stored only as vault ciphertext and
// never shown.
type ProcessorAccount struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// SecretCiphertext is the vault ciphertext of the secret.
	SecretCiphertext string `json:"-"`
	// MerchantAccount is Adyen's default merchant account.
	MerchantAccount string `json:"merchant_account,omitempty"`
	// APIBase points the account at another endpoint (a test double).
	APIBase string `json:"api_base,omitempty"`
	// EventsSecretCiphertext is the vault ciphertext of the secret that
	// signs the account's events (SPEC §4.2: Stripe's endpoint secret,
	// Adyen's HMAC key); empty while none is set.
	EventsSecretCiphertext string `json:"-"`
	// PreviousEventsSecretCiphertext is the events secret the current one
	// replaced, still accepted until PreviousEventsSecretUntil.
	PreviousEventsSecretCiphertext string    `json:"-"`
	PreviousEventsSecretUntil      time.Time `json:"-"`
	// EventsSecretSet says whether an events secret is set (never the secret).
	EventsSecretSet bool      `json:"events_secret_set"`
	CreatedAt       time.Time `json:"created_at"`
}

// Validate checks the account's name and kind.
func (a *ProcessorAccount) Validate() error {
	if a.Name == "" || len(a.Name) > 64 || strings.Trim(a.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return FieldErrorf("name", "must be 1 to 64 letters, digits, '-', '_' or '.'")
	}
	if a.Name == ProcessorKindSandbox {
		return FieldErrorf("name", "%q is the built-in sandbox processor's name", a.Name)
	}
	switch a.Kind {
	case ProcessorKindStripe:
	case ProcessorKindAdyen:
		if a.MerchantAccount == "" {
			return FieldErrorf("merchant-account", "an Adyen account needs its merchant account")
		}
		if err := CheckAccountRef("merchant-account", a.MerchantAccount); err != nil {
			return err
		}
	default:
		return FieldErrorf("kind", "must be stripe or adyen, not %q", a.Kind)
	}
	return nil
}

// CheckAccountRef refuses a processor identifier (a Stripe connected
// account, an Adyen merchant account) that is not 1 to 255 printable ASCII
// characters without spaces: it travels in a header or a request field, and
// a line break there would fail every payment of the merchant.
func CheckAccountRef(field, ref string) error {
	if ref == "" || len(ref) > 255 {
		return FieldErrorf(field, "%s must be 1 to 255 characters", field)
	}
	for i := 0; i < len(ref); i++ {
		if ref[i] <= ' ' || ref[i] > '~' {
			return FieldErrorf(field, "%s must be printable characters without spaces or line breaks (character %d is not)", field, i+1)
		}
	}
	return nil
}

// ProcessorRoute is the processor account a merchant's payments go to: the
// merchant's own, else its platform's default; empty when neither is set.
type ProcessorRoute struct {
	Account string
	// AccountRef is the merchant's sub-account (Stripe acct_…, an Adyen merchant account).
	AccountRef string
}

// Operations a processor may lack, for ProcessorCapabilities.Check.
const (
	OpAuthorizeOnly  = "authorize now and capture later"
	OpVerify         = "verify a card to store it"
	OpStoredCharge   = "charge a stored card"
	OpCapture        = "capture"
	OpPartialCapture = "capture part of an authorization"
	OpVoid           = "void"
	OpRefund         = "refund"
	OpPartialRefund  = "refund part of a payment"
)

// Check refuses an operation the adapter lacks, before any card data
// leaves: an ECONFLICT naming the processor and what it cannot do.
func (c ProcessorCapabilities) Check(kind, op string) error {
	has := map[string]bool{OpAuthorizeOnly: c.ManualCapture, OpVerify: c.Verify, OpStoredCharge: c.StoredCharges,
		OpCapture: c.ManualCapture, OpPartialCapture: c.PartialCapture, OpVoid: c.Void, OpRefund: c.Refund,
		OpPartialRefund: c.PartialRefund}
	if has[op] {
		return nil
	}
	return Errorf(ECONFLICT, "the %s processor of this payment cannot %s; ask the operator to route the merchant to a processor account that can", kind, op)
}
