package ivrpay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// The records below are what the payments service hands its Store to
// persist. Each record is written in one database transaction.

// ErrStateChanged is returned by a Store when a conditional write finds the
// row in another state than the one the decision was made on.
var ErrStateChanged = errors.New("state changed since it was read")

// ErrConfigUsed is returned by a Store when a payment method config already
// stored its payment method.
var ErrConfigUsed = errors.New("config already used")

// ErrClaimTaken is returned by a Store when a write that carries a
// ConnectorClaim finds the transaction claimed by another request; nothing
// of the write was kept.
var ErrClaimTaken = errors.New("connector transaction claimed by another request")

// ConnectorClaim is the claim of a new connector transaction, written with
// the transaction's first change (its payin's reservation, or its refusal)
// rather than in a transaction of its own: a charge then commits once, not
// twice, before its processor call.
type ConnectorClaim struct {
	ConnectorTransactionKey
	RequestHash string
	ConfigID    string
	Lease       time.Duration
}

// ConnectorTransactionKey names a connector transaction: a transaction_id
// is unique per platform and provider (SPEC §5.6).
type ConnectorTransactionKey struct {
	PlatformID    string
	Provider      IVRProvider
	TransactionID string
}

// ConnectorTransaction is the state of a connector transaction_id as a claim found it.
type ConnectorTransaction struct {
	// Owned: this request now runs the transaction (it was new, or the
	// attempt that ran it lost its lease).
	Owned       bool
	RequestHash string
	// Done: the transaction has its answer in Response.
	Done     bool
	Response IVRResult
	// ConfigID is the config the first request named.
	ConfigID string
}

// ChargeRead is what a new connector charge reads before it writes: its
// transaction (Found when it exists), the payin config it names (nil when
// there is none) and the processor route of the config's merchant.
type ChargeRead struct {
	Transaction ConnectorTransaction
	Found       bool
	Config      *PayinConfig
	Route       ProcessorRoute
}

// ConnectorAnswer is the answer of a connector transaction, stored with the
// change that decided it.
type ConnectorAnswer struct {
	ConnectorTransactionKey
	Result IVRResult
	// Claim, when set, is the claim of a new transaction, written with its
	// answer (ErrClaimTaken when another request claimed it first).
	Claim *ConnectorClaim
}

// PayinReservation is a CREATED payin that reserves its config while the processor answers.
type PayinReservation struct {
	ID             string
	Config         *PayinConfig
	Card           Card
	BillingContact *BillingContact
	Source         string
	// IVRProvider and IVRTransactionID name the connector transaction of a
	// payin made over IVR.
	IVRProvider      IVRProvider
	IVRTransactionID string
	// PaymentMethodID is the stored card charged, for API_STORED_PAYMENT_METHOD
	// payins, and PaymentMethodConfigID the config it was stored from, if any.
	PaymentMethodID       string
	PaymentMethodConfigID string
	Processor             ProcessorAccountRef
	CreatedAt             time.Time
	// CreatedBy is the API key or session id the payin is made through.
	CreatedBy string
	// Claim, when set, is the claim of the new IVR transaction, written
	// with the payin or not at all (ErrClaimTaken when another request
	// claimed the transaction first).
	Claim *ConnectorClaim
}

// ProcessorAccountRef is the processor account a payment goes to.
type ProcessorAccountRef struct {
	Name string // the account's name ("sandbox" for the built-in sandbox processor)
	Kind string // sandbox, stripe, adyen
	// AccountRef is the merchant's sub-account there (Stripe acct_…, an Adyen merchant account).
	AccountRef string
}

// NewPaymentMethod is a card to store: the PAN only as vault ciphertext and
// keyed fingerprint.
type NewPaymentMethod struct {
	ID                    string
	PlatformID            string
	MerchantID            string
	PaymentMethodConfigID string
	Status                string
	Card                  Card
	PANCiphertext         string
	Fingerprint           string
	NetworkTransactionID  string
	BillingContact        *BillingContact
	Metadata              json.RawMessage
	// Announce emits payment_method.active (an ACTIVE card whose first use is known).
	Announce  bool
	CreatedAt time.Time
	// CreatedBy is the API key or session id the card is stored through.
	CreatedBy string
}

// PayinOutcome is the processor's definite answer for a CREATED payin.
type PayinOutcome struct {
	PayinID string
	// Payin is the CREATED payin as the service knows it, so that the store
	// can report the outcome without reading it back (nil: read it).
	Payin *Payin
	// APIVersion is the platform's minimum API version, which the payin's
	// event is shaped at (empty: read it).
	APIVersion       APIVersion
	Status           string // PROCESSING, AUTHORIZED or FAILED
	AuthorizedAmount int64
	CapturedAmount   int64
	Result           ProcessorResult
	// NewPaymentMethod is the card to store with the payin (nil when it is
	// a stored card, or was stored when the outcome became unknown).
	NewPaymentMethod *NewPaymentMethod
	// PaymentMethodID links the payin to its card.
	PaymentMethodID string
	// PaymentMethodStatus, when set, is the new status of the payin's card
	// (a stored card refused for what it is).
	PaymentMethodStatus string
	// AnnouncePaymentMethod emits payment_method.active for PaymentMethodID.
	AnnouncePaymentMethod bool
	Answer                *ConnectorAnswer
	Audit                 AuditEvent
	At                    time.Time
	// RiskDecline, when set, counts the decline toward the risk rules in
	// the same transaction.
	RiskDecline *RiskDecline
	// Operation, when set, is recorded in flight on the approved payin (a
	// void whose answer was lost), in the same write.
	Operation *PayinOperation
	// CardAnswerDue marks the payin for the card-answer pass: an approval
	// (an event's) that lacks the card network's answer its processor can
	// be asked for.
	CardAnswerDue bool
}

// ProcessorOutcome is APPROVED or DECLINED, as the payin shows it, or empty
// for a risk refusal, which never reached the processor.
func (o PayinOutcome) ProcessorOutcome() string {
	if o.Result.Approved {
		return ProcessorOutcomeApproved
	} else if o.Result.RefusalCode == RefusalRiskBlocked {
		return ""
	}
	return ProcessorOutcomeDeclined
}

// Applied is the CREATED payin p as the outcome leaves it, as a read would
// return it (times at the stored precision).
func (o PayinOutcome) Applied(p *Payin) *Payin {
	f := *p
	res := o.Result
	f.Status, f.PaymentMethodID = o.Status, OptString(o.PaymentMethodID)
	f.AuthorizedAmount, f.CapturedAmount, f.RefundedAmount = o.AuthorizedAmount, o.CapturedAmount, 0
	f.RefusalCode, f.RefusalDesc, f.AuthCode = OptString(res.RefusalCode), OptString(res.RefusalDesc), OptString(res.AuthCode)
	f.AVSResultCode, f.CVCResultCode = OptString(res.AVSResultCode), OptString(res.CVCResultCode)
	var proc PayinProcessor
	if p.Processor != nil {
		proc = *p.Processor
	}
	proc.Reference, proc.NetworkTransactionID, proc.Outcome = OptString(res.Reference), OptString(res.NetworkTransactionID), OptString(o.ProcessorOutcome())
	f.Processor = &proc
	f.Refunds, f.Chargebacks = []Refund{}, []PayinChargeback{}
	f.SetRefundable()
	f.Operation = o.Operation
	f.UpdatedAt, _ = time.Parse(time.RFC3339Nano, FormatTime(o.At))
	return &f
}

// PayinUnknown records that a CREATED payin's processor outcome is unknown;
// the card is stored so that the outcome can be resolved without the caller.
// The first such record announces the payin (payin.created), with the payin
// shaped at APIVersion (the platform's minimum; empty: the store reads it).
type PayinUnknown struct {
	PayinID          string
	NewPaymentMethod *NewPaymentMethod
	At               time.Time
	APIVersion       APIVersion
}

// Payin operations: a capture or a void ivrpay has asked the processor for.
const (
	PayinOperationCapture = "CAPTURE"
	PayinOperationVoid    = "VOID"
)

// PayinOperation is a capture or void of a payin that ivrpay is about to
// send, has sent, or has sent without an answer (Outcome UNKNOWN), and whose
// outcome is not recorded yet. It is written before the processor is asked
// and is the only one of its payin: while it is in flight the payin does not
// settle and no other capture, void or settlement confirmation applies
// (SPEC §4.2), and the reconciler re-sends it under the same idempotency key
// until the processor answers for certain.
type PayinOperation struct {
	Kind   string // PayinOperationCapture or PayinOperationVoid
	Amount int64
	// IdempotencyKey is the processor's: every send of the operation uses it.
	IdempotencyKey string
	// Outcome is empty while the first send runs, UNKNOWN once its answer was lost.
	Outcome string
	// RequestKey is the (scoped) idempotency key of the void_or_refund
	// request that asked for a void, whose replayed answer the outcome
	// corrects; empty for a capture.
	RequestKey string
}

// PayinOperationStart is an operation to record on its payin before the
// processor is asked; for a void, with the idempotency row of the request.
type PayinOperationStart struct {
	PayinID string
	// Status is the payin's status the operation was planned on.
	Status    string
	Operation PayinOperation
	// Request, for a void, is the void_or_refund request's idempotency row;
	// its Result shows the payin as it is until the outcome is known.
	Request *VoidOrRefundRecord
	At      time.Time
}

// PayinOperationOutcome is the processor's answer to a payin's operation:
// APPROVED (a capture moves the payin to PROCESSING, a void to CANCELED),
// DECLINED (the payin stays as it was) or UNKNOWN (it stays in flight).
type PayinOperationOutcome struct {
	PayinID        string
	IdempotencyKey string
	Outcome        string
	// KeepRequest, for a declined void, keeps the request's idempotency row
	// (the caller was already answered) and replays the payin as it is;
	// otherwise a declined void gives its idempotency key back.
	KeepRequest bool
	At          time.Time
}

// VoidOrRefundRecord is a void the processor accepted, or a refund to
// reserve before the processor is asked, with the idempotency row that
// replays its result.
type VoidOrRefundRecord struct {
	PlatformID     string
	IdempotencyKey string
	RequestHash    string
	Payin          *Payin
	Plan           VoidOrRefundPlan
	// Result is the answer repeats replay: a void's as given; for a refund
	// the store keeps the refund's own (RefundResult) instead.
	Result   VoidOrRefundResult
	RefundID string
	// ProcessorIdempotencyKey is the key the refund is sent to the processor under.
	ProcessorIdempotencyKey string
	Reason                  string
	// Metadata is kept on the refund.
	Metadata json.RawMessage
	At       time.Time
}

// UnresolvedRefund is a PROCESSING refund whose processor answer was lost,
// with what asking again needs.
type UnresolvedRefund struct {
	Refund                  *Refund
	Payin                   *Payin
	ProcessorIdempotencyKey string
}

// RequestHash fingerprints a validated request for idempotency checks: the
// SHA-256 of its JSON encoding.
func RequestHash(v any) string {
	var buf [256]byte
	b, ok := appendHashedList(buf[:0], v)
	if !ok {
		b, _ = json.Marshal(v)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendHashedList appends what json.Marshal makes of v when v is a list the
// services hash (every connector request and payin config hashes one): its
// strings, integers and booleans without the encoder's reflection, any other
// element by json.Marshal (TestRequestHashIsMarshalHash). False: v is no such
// list, or an element does not marshal.
func appendHashedList(b []byte, v any) ([]byte, bool) {
	switch list := v.(type) {
	case []string:
		return appendJSONArray(b, list, func(b []byte, s string) ([]byte, bool) { return AppendJSONString(b, s), true })
	case []any:
		return appendJSONArray(b, list, appendHashedElement)
	}
	return nil, false
}

// appendJSONArray appends list as json.Marshal writes a slice (null when
// nil), each element by appendElement.
func appendJSONArray[E any](b []byte, list []E, appendElement func([]byte, E) ([]byte, bool)) ([]byte, bool) {
	if list == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendElement(b, e); !ok {
			return nil, false
		}
	}
	return append(b, ']'), true
}

// appendHashedElement appends one element of a hashed []any as json.Marshal writes it.
func appendHashedElement(b []byte, e any) ([]byte, bool) {
	switch x := e.(type) {
	case string:
		return AppendJSONString(b, x), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case bool:
		return strconv.AppendBool(b, x), true
	}
	one, err := json.Marshal(e)
	return append(b, one...), err == nil
}

// ErrIdempotencyKeyTaken is returned by a Store when another request
// committed the same idempotency key first.
var ErrIdempotencyKeyTaken = errors.New("idempotency key taken")

// RefundOutcome is the processor's answer to a refund that was reserved.
// A DECLINED outcome fails the refund with Result's refusal (RefundFailure).
type RefundOutcome struct {
	RefundID string
	Outcome  string // APPROVED, DECLINED or UNKNOWN
	Result   ProcessorResult
	At       time.Time
}

// RefundFailure is a refund the processor refused: in its answer to the
// refund request, or later (a processor event, SPEC §4.2). A failed refund
// gives its amount back to the payin (refundable again).
type RefundFailure struct {
	RefundID string
	// From is the status the refund must still be in (a conditional write;
	// otherwise ErrStateChanged): PROCESSING, or SUCCEEDED for a refund the
	// processor fails after it settled.
	From string
	// RefusalCode is a normalized refusal code, RefusalDesc its normalized
	// text (RefusalDescription, never the processor's own words); Refusal
	// fills what is empty.
	RefusalCode string
	RefusalDesc string
	At          time.Time
}

// Refusal returns the refund's refusal_code and refusal_desc: a failure
// without a code is a PROCESSING_ERROR, and one without a text gets its
// code's, as payins' refusals do.
func (f RefundFailure) Refusal() (code, desc string) {
	code, desc = f.RefusalCode, f.RefusalDesc
	if code == "" {
		code = RefusalProcessingError
	}
	if desc == "" {
		desc = RefusalDescription(code, "")
	}
	return code, desc
}

// Vault key states in the deployment's key ring (vault.Keeper).
const (
	// VaultKeyAdded: every process learns the key; nothing is sealed with it yet.
	VaultKeyAdded = "added"
	// VaultKeyCurrent: the key new ciphertexts are sealed with (one at a time).
	VaultKeyCurrent = "current"
	// VaultKeyRetiring: a former current key; it still decrypts while a
	// re-encryption pass moves its ciphertexts to the current key.
	VaultKeyRetiring = "retiring"
	// VaultKeyRetired: nothing stored is sealed with it any more; processes
	// drop it (the key files keep it as a retired copy for old backups).
	VaultKeyRetired = "retired"
)

// VaultKey is one key of the deployment's vault key ring as the database
// keeps it: its id and state, never the key itself, except Wrapped while
// the processes learn it: the key sealed by the key that was current when
// it was added (empty once its rotation has finished).
type VaultKey struct {
	ID      string
	State   string
	Wrapped string
}

// VaultMember is a server process's report on its vault key ring, so that
// a rotation knows when every live process holds a new key and seals with it.
type VaultMember struct {
	ID string
	// Holds are the key ids the process holds and has saved in its key file.
	Holds []string
	// Encrypts is the key id it seals with, reported once the work it
	// started under the previous key has finished.
	Encrypts string
	SeenAt   time.Time
}
