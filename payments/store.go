package payments

import (
	"context"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Store persists what the service decided, each method in one database
// transaction. It makes no decision of its own beyond the conditions the
// database enforces (unique keys, conditional updates); it never calls a
// processor. sqlstore implements it on SQLite and PostgreSQL.
type Store interface {
	// FindPlatform, LoadPayinConfig, LoadPaymentMethodConfig, LoadPayin and
	// LoadPaymentMethod read without permission checks (the service makes
	// them); a missing row is an ENOTFOUND *ivrpay.Error.
	FindPlatform(ctx context.Context, id string) (*ivrpay.Platform, error)
	LoadPayinConfig(ctx context.Context, id string) (*ivrpay.PayinConfig, error)
	LoadPaymentMethodConfig(ctx context.Context, id string) (*ivrpay.PaymentMethodConfig, error)
	LoadPayin(ctx context.Context, id string) (*ivrpay.Payin, error)
	LoadPaymentMethod(ctx context.Context, id string) (*ivrpay.PaymentMethod, error)
	// LoadPaymentMethodCard returns a stored card's PAN ciphertext and the
	// network transaction id of its first payment.
	LoadPaymentMethodCard(ctx context.Context, id string) (panCiphertext, networkTransactionID string, err error)

	// FindConnectorTransaction reads a transaction without claiming it.
	FindConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey) (t ivrpay.ConnectorTransaction, found bool, err error)
	// ReserveConnectorCharge starts a new connector charge in one write: it
	// reads the transaction and, in the same read, the payin config the
	// charge names (nil when there is none) with the processor route of its
	// merchant, and (risk not nil) the risk block that weighs most among
	// those active on the charge's card, caller, config and merchant, in
	// risk.Blocks. When the transaction does not exist it calls decide, which
	// must not write and may run more than once, and writes the reservation
	// decide returns as ReservePayin does (nil: nothing is written).
	ReserveConnectorCharge(ctx context.Context, k ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup,
		decide func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error)) (read ivrpay.ChargeRead, reserved, holder *ivrpay.Payin, err error)
	// ClaimConnectorTransaction inserts the transaction (owned), takes over
	// one whose lease has ended (owned), or returns it as it is.
	ClaimConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey, requestHash, configID string, lease time.Duration) (ivrpay.ConnectorTransaction, error)
	// FinishConnectorTransaction stores the answer of a transaction that
	// ended without a change to record (a refusal); with a.Claim, it inserts
	// the new transaction with its answer (ErrClaimTaken when it exists).
	FinishConnectorTransaction(ctx context.Context, a ivrpay.ConnectorAnswer) error
	// ReleaseConnectorTransaction ends the lease of a running transaction,
	// so that the next retry takes it over at once.
	ReleaseConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey) error

	// ReservePayin inserts a CREATED payin, with r.Claim when set (both or
	// neither; ErrClaimTaken when the transaction exists). When the config
	// already has a live payin (or the IVR transaction a payin), it inserts
	// nothing and returns that payin as holder.
	ReservePayin(ctx context.Context, r ivrpay.PayinReservation) (reserved, holder *ivrpay.Payin, err error)
	// RecordPayinOutcome stores a CREATED payin's definite outcome with its
	// card, events, audit record and connector answer. ErrStateChanged when
	// the payin is no longer CREATED (another attempt recorded it first).
	RecordPayinOutcome(ctx context.Context, o ivrpay.PayinOutcome) (*ivrpay.Payin, error)
	// RecordPayinUnknown marks a CREATED payin's outcome unknown and stores its card.
	RecordPayinUnknown(ctx context.Context, u ivrpay.PayinUnknown) (*ivrpay.Payin, error)
	// StorePaymentMethod stores a tokenized card with its event and connector
	// answer; ErrConfigUsed when its config already stored one.
	StorePaymentMethod(ctx context.Context, pm ivrpay.NewPaymentMethod, answer *ivrpay.ConnectorAnswer) error
	// ClaimUnresolvedPayins leases, for the caller alone, up to limit
	// CREATED payins last changed before cutoff and not leased by another.
	ClaimUnresolvedPayins(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) ([]*ivrpay.Payin, error)
	// PostponeReconcile keeps an unresolved payin or refund (table "payins"
	// or "refunds") leased until until: the reconciler backs off from one it
	// could not resolve.
	PostponeReconcile(ctx context.Context, table, id string, until time.Time) error

	// StartPayinOperation records a capture or void on its payin before the
	// processor is asked (with a void's idempotency row): ErrStateChanged
	// when the payin's status changed or another operation is in flight,
	// ivrpay.ErrIdempotencyKeyTaken when another request committed the key.
	StartPayinOperation(ctx context.Context, o ivrpay.PayinOperationStart) error
	// RecordPayinOperationOutcome stores the processor's answer to the
	// payin's operation (ErrStateChanged when it is no longer in flight) and
	// returns the payin.
	RecordPayinOperationOutcome(ctx context.Context, o ivrpay.PayinOperationOutcome) (*ivrpay.Payin, error)
	// ClaimPayinOperations leases, for the caller alone, up to limit payins
	// whose operation has been in flight since before cutoff.
	ClaimPayinOperations(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) ([]*ivrpay.Payin, error)
	// ReplayVoidOrRefund returns the first result of an idempotency key, an
	// ECONFLICT when the key was used for another request, or nil, nil.
	ReplayVoidOrRefund(ctx context.Context, platformID, key, hash string) (*ivrpay.VoidOrRefundResult, error)
	// RecordVoidOrRefund stores a PROCESSING refund that reserves its
	// amount, with the idempotency row, and returns the refund.
	// ErrStateChanged when the payin changed (a chargeback that refuses
	// refunds included); ivrpay.ErrIdempotencyKeyTaken when another request
	// committed the key first.
	RecordVoidOrRefund(ctx context.Context, r ivrpay.VoidOrRefundRecord) (*ivrpay.Refund, error)
	// RecordRefundOutcome stores the processor's answer to a refund: its
	// reference when approved, FAILED with its refusal (and the amount given
	// back to the payin) when refused, UNKNOWN when no answer came. It
	// returns the refund as it now stands.
	RecordRefundOutcome(ctx context.Context, o ivrpay.RefundOutcome) (*ivrpay.Refund, error)
	// ClaimUnresolvedRefunds leases, for the caller alone, up to limit
	// PROCESSING refunds whose processor answer was lost, last changed before cutoff.
	ClaimUnresolvedRefunds(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) ([]ivrpay.UnresolvedRefund, error)

	// FindRiskBlocks returns the risk blocks active at now on subjects.
	FindRiskBlocks(ctx context.Context, subjects []ivrpay.RiskSubject, now time.Time) ([]ivrpay.RiskBlock, error)
	// CountIVRAttempts counts a merchant's IVR payins since `since` that
	// reached the processor (the merchant breaker's denominator).
	CountIVRAttempts(ctx context.Context, merchantID string, since time.Time) (int, error)
	// RecordRiskBlocks starts or extends blocks; the ones that start get an
	// audit row (and a merchant's, the merchant.risk_paused event) in the
	// same transaction. It returns those that started.
	RecordRiskBlocks(ctx context.Context, blocks []ivrpay.RiskBlock) (started []ivrpay.RiskBlock, err error)

	// The processor events inbox (SPEC §4.2).
	//
	// InsertProcessorEvent stores a verified event durably, once per
	// (account, id); false for a duplicate. The caller holds the new row
	// until at+hold (a worker takes it over only after that).
	InsertProcessorEvent(ctx context.Context, e ivrpay.ProcessorEvent, at time.Time, hold time.Duration) (inserted bool, err error)
	// ClaimProcessorEvents leases, for the caller alone, up to limit
	// PENDING events due at now.
	ClaimProcessorEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ivrpay.InboxEvent, error)
	// FindEventPayin and FindEventRefund return the account's payin or
	// refund an event names (by ivrpay's id, else the processor's
	// reference); ENOTFOUND when there is none.
	FindEventPayin(ctx context.Context, account, reference, paymentReference string) (*ivrpay.Payin, error)
	FindEventRefund(ctx context.Context, account, reference, refundReference string) (*ivrpay.Refund, error)
	// ApplyPayinEventChange and ApplyRefundEventChange write an event's
	// change with the event marked APPLIED and the webhook, in one
	// transaction: ivrpay.ErrEventDone when another process applied the
	// event first, ivrpay.ErrStateChanged when the object moved since it
	// was read.
	ApplyPayinEventChange(ctx context.Context, c ivrpay.PayinEventChange) (*ivrpay.Payin, error)
	ApplyRefundEventChange(ctx context.Context, c ivrpay.RefundEventChange) error
	// ApplyDisputeEvent creates or advances the chargeback of a dispute
	// event as the chargeback transition table allows, with the event
	// marked (APPLIED, or NO_CHANGE when the table refused the move) and the
	// webhook, in one transaction; ivrpay.ErrEventDone when another process
	// applied the event first. changed reports whether the chargeback moved.
	ApplyDisputeEvent(ctx context.Context, c ivrpay.DisputeChange) (cb *ivrpay.Chargeback, changed bool, err error)
	// FinishProcessorEvent records an event that changed or matched
	// nothing, or kept failing (FAILED); PostponeProcessorEvent keeps a
	// PENDING event for another attempt. Both write only under the caller's
	// claim (InboxEvent.Claim): nothing when another process applied the
	// event or took its lease over.
	FinishProcessorEvent(ctx context.Context, d ivrpay.ProcessorEventDone) error
	PostponeProcessorEvent(ctx context.Context, r ivrpay.ProcessorEventRetry) error
	// DueSandboxConfirmations lists the sandbox processor's payins and
	// refunds PROCESSING since before cutoff without a confirmation yet.
	DueSandboxConfirmations(ctx context.Context, cutoff time.Time, limit int) ([]ivrpay.SandboxDue, error)
	// DueSandboxDisputes lists the sandbox processor's settled payins of a
	// dispute trigger amount whose dispute has a step due: none opened
	// yet, or one awaiting the merchant since before cutoff.
	DueSandboxDisputes(ctx context.Context, cutoff time.Time, limit int) ([]ivrpay.SandboxDisputeDue, error)
	// ClaimDueLookups leases a real account's payins and refunds
	// PROCESSING since before cutoff, for the look-up fallback.
	ClaimDueLookups(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) ([]ivrpay.DueLookup, error)
	// ClaimDueCardAnswers leases the payins marked for the card-answer
	// pass (ivrpay.PayinOutcome.CardAnswerDue) whose look-up is due.
	ClaimDueCardAnswers(ctx context.Context, lease time.Duration, limit int) ([]ivrpay.DueCardAnswer, error)
	// PostponeCardAnswer makes a claimed payin's look-up due again at
	// next, only under the caller's claim.
	PostponeCardAnswer(ctx context.Context, payinID string, claim, next time.Time) error
	// FillPayinCardAnswer fills a marked payin's empty card answer fields
	// (and its card's empty network transaction id) and clears the mark, in
	// one transaction; false when it was not marked (filled by another).
	FillPayinCardAnswer(ctx context.Context, a ivrpay.PayinCardAnswer) (filled bool, err error)

	// The reads the REST API serves, with their permission checks.
	FindPayin(ctx context.Context, id string) (*ivrpay.Payin, error)
	ListPayins(ctx context.Context, f ivrpay.PayinFilter) (*ivrpay.List[*ivrpay.Payin], error)
	FindRefund(ctx context.Context, id string) (*ivrpay.Refund, error)
}
