package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/ivrpay/ivrpay"
)

// This file is the processor events inbox (SPEC §4.2): persistence only;
// what an event does is the transition table's (package ivrpay) and the
// payments service's decision.

const processorEventColumns = `account, event_id, kind, type, effect, payment_reference, reference, refund_reference, amount, currency,
	refusal_code, refusal_desc, dispute, occurred_at, received_at, status, object_id, note, attempts, failures, next_attempt_at, applied_at,
	auth_code, avs_result_code, cvc_result_code, network_transaction_id`

// processorEventRow receives a processor_events row.
type processorEventRow struct {
	ivrpay.InboxEvent
	dispute, occurredAt, appliedAt sql.NullString
	receivedAt, nextAttemptAt      string
}

func (r *processorEventRow) dest() []any {
	e := &r.InboxEvent
	return []any{&e.Account, &e.ID, &e.Kind, &e.Type, &e.Effect, &e.PaymentReference, &e.Reference, &e.RefundReference, &e.Amount,
		&e.Currency, &e.RefusalCode, &e.RefusalDesc, &r.dispute, &r.occurredAt, &r.receivedAt, &e.Status, &e.ObjectID, &e.Note,
		&e.Attempts, &e.Failures, &r.nextAttemptAt, &r.appliedAt, &e.AuthCode, &e.AVSResultCode, &e.CVCResultCode, &e.NetworkTransactionID}
}

func (r *processorEventRow) event() (ivrpay.InboxEvent, error) {
	e := r.InboxEvent
	e.ReceivedAt = parseTime(r.receivedAt)
	if r.occurredAt.Valid {
		e.OccurredAt = parseTime(r.occurredAt.String)
	}
	if r.dispute.Valid {
		e.Dispute = &ivrpay.DisputeDetails{}
		if err := json.Unmarshal([]byte(r.dispute.String), e.Dispute); err != nil {
			return e, err
		}
	}
	return e, nil
}

// InsertProcessorEvent stores a verified event, once per (account, event
// id): it returns false, writing nothing, for a duplicate. The new row is
// held by the caller until at+hold, so that the caller applies it at once
// and a worker takes it over only if the caller dies first. When it
// returns, the event is durable.
func (s *Store) InsertProcessorEvent(ctx context.Context, e ivrpay.ProcessorEvent, at time.Time, hold time.Duration) (inserted bool, err error) {
	defer wrap(&err, "Store.InsertProcessorEvent(%q, %q)", e.Account, e.ID)
	var dispute, occurred sql.NullString
	if e.Dispute != nil {
		b, err := json.Marshal(e.Dispute)
		if err != nil {
			return false, err
		}
		dispute = sql.NullString{String: string(b), Valid: true}
	}
	if !e.OccurredAt.IsZero() {
		occurred = sql.NullString{String: ivrpay.FormatTime(e.OccurredAt), Valid: true}
	}
	n, err := s.execTx(ctx, `INSERT INTO processor_events (account, event_id, kind, type, effect, payment_reference, reference, refund_reference,
		amount, currency, refusal_code, refusal_desc, dispute, occurred_at, received_at, status, next_attempt_at,
		auth_code, avs_result_code, cvc_result_code, network_transaction_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
		ON CONFLICT (account, event_id) DO NOTHING`,
		e.Account, e.ID, e.Kind, e.Type, string(e.Effect), e.PaymentReference, e.Reference, e.RefundReference, e.Amount, e.Currency,
		e.RefusalCode, e.RefusalDesc, dispute, occurred, ivrpay.FormatTime(at), ivrpay.ProcessorEventPending, ivrpay.FormatTime(at.Add(hold)),
		e.AuthCode, e.AVSResultCode, e.CVCResultCode, e.NetworkTransactionID)
	return n == 1, err
}

// FindProcessorEvent reads one event of the inbox.
func (s *Store) FindProcessorEvent(ctx context.Context, account, id string) (e ivrpay.InboxEvent, err error) {
	defer wrap(&err, "Store.FindProcessorEvent(%q, %q)", account, id)
	var r processorEventRow
	err = s.queryRow(ctx, s.rdb, `SELECT `+processorEventColumns+` FROM processor_events WHERE account = $1 AND event_id = $2`, account, id).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ivrpay.Errorf(ivrpay.ENOTFOUND, "processor event %s of account %s not found", id, account)
	} else if err != nil {
		return e, err
	}
	return r.event()
}

// ClaimProcessorEvents leases, for the caller alone, up to limit PENDING
// events that are due at now, oldest due first. Each is claimed by a
// conditional UPDATE that moves its next_attempt_at from the value read to
// the end of the lease: of several processes that read the same row,
// exactly one claims it. A claim that dies expires with its lease.
func (s *Store) ClaimProcessorEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) (claimed []ivrpay.InboxEvent, err error) {
	defer wrap(&err, "Store.ClaimProcessorEvents")
	at := ivrpay.FormatTime(now)
	rows, err := s.query(ctx, s.rdb, `SELECT `+processorEventColumns+` FROM processor_events
		WHERE status = 'PENDING' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2`, at, limit)
	if err != nil {
		return nil, err
	}
	var due []processorEventRow
	for rows.Next() {
		var r processorEventRow
		if err := rows.Scan(r.dest()...); err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	until := ivrpay.FormatTime(now.Add(lease))
	for _, r := range due {
		n, err := s.execTx(ctx, `UPDATE processor_events SET next_attempt_at = $3
			WHERE account = $1 AND event_id = $2 AND status = 'PENDING' AND next_attempt_at = $4`, r.Account, r.ID, until, r.nextAttemptAt)
		if err != nil {
			return claimed, err
		}
		if n != 1 {
			continue // another process claimed it, or applied it
		}
		e, err := r.event()
		if err != nil {
			return claimed, err
		}
		e.Claim = now.Add(lease)
		claimed = append(claimed, e)
	}
	return claimed, nil
}

// markApplied marks a PENDING event APPLIED to objectID inside tx, first
// of the transaction's writes: of two processes applying the same event,
// the second waits for the first's row lock (PostgreSQL) or its turn
// (SQLite), then finds it applied and undoes its own writes (ErrEventDone).
func (s *Store) markApplied(ctx context.Context, tx querier, account, id, objectID string, at string) error {
	return s.execOne(ctx, tx, ivrpay.ErrEventDone, `UPDATE processor_events SET status = $3, object_id = $4, note = '', applied_at = $5
		WHERE account = $1 AND event_id = $2 AND status = 'PENDING'`, account, id, ivrpay.ProcessorEventApplied, objectID, at)
}

// execOne runs a conditional write in tx that must change exactly one row:
// notOne when it changed none (its condition no longer holds).
func (s *Store) execOne(ctx context.Context, tx querier, notOne error, query string, args ...any) error {
	res, err := s.exec(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return cmp.Or(err, notOne)
	}
	return nil
}

// ApplyPayinEventChange moves a payin as an event says, in one transaction
// with the event marked APPLIED and the payin's webhook: ErrEventDone when
// another process applied the event first, ErrStateChanged when the payin
// is no longer c.From, or has a void in flight and c.To is not CANCELED
// (nothing is written either way). A move that ends the payin's operation
// ends it (endOperationBy).
func (s *Store) ApplyPayinEventChange(ctx context.Context, c ivrpay.PayinEventChange) (final *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ApplyPayinEventChange(%q, %q)", c.EventID, c.PayinID)
	at := ivrpay.FormatTime(c.At)
	err = s.inTx(ctx, func(tx querier) error {
		if err := s.markApplied(ctx, tx, c.Account, c.EventID, c.PayinID, at); err != nil {
			return err
		}
		query, args := `UPDATE payins SET status = $2, updated_at = $3, status_at = $3`, []any{c.PayinID, c.To, at, c.From}
		if c.CapturedAmount > 0 {
			query, args = query+`, captured_amount = $5`, append(args, c.CapturedAmount)
		}
		if c.RefusalCode != "" {
			query, args = query+fieldf(`, refusal_code = $%d, refusal_desc = $%d`, len(args)+1, len(args)+2), append(args, c.RefusalCode, c.RefusalDesc)
		}
		where := ` WHERE id = $1 AND status = $4`
		if c.To != ivrpay.PayinStatusCanceled {
			where += ` AND ` + NoVoidInFlight // a void started since the decision: the event waits for it
		}
		if err := s.execOne(ctx, tx, ivrpay.ErrStateChanged, query+where, args...); err != nil {
			return err
		}
		if final, err = s.findPayin(ctx, tx, c.PayinID); err != nil {
			return err
		}
		if final, err = s.endOperationBy(ctx, tx, final); err != nil {
			return err
		}
		return s.emitPayinEvent(ctx, tx, final, "")
	})
	if err != nil {
		return nil, err
	}
	return final, nil
}

// ApplyRefundEventChange moves a refund as an event says, in one
// transaction with the event marked APPLIED and the refund's webhook; a
// refund that fails does so as failRefund fails it (its refusal, its amount
// refundable again, the replayed answer). The processor's word that it
// holds the refund also resolves an unknown outcome (processor_outcome
// APPROVED, with its reference). Errors as ApplyPayinEventChange.
func (s *Store) ApplyRefundEventChange(ctx context.Context, c ivrpay.RefundEventChange) (err error) {
	defer wrap(&err, "Store.ApplyRefundEventChange(%q, %q)", c.EventID, c.RefundID)
	at := ivrpay.FormatTime(c.At)
	return s.inTx(ctx, func(tx querier) error {
		if err := s.markApplied(ctx, tx, c.Account, c.EventID, c.RefundID, at); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE refunds SET
			processor_outcome = CASE WHEN processor_outcome IN ('', 'UNKNOWN') THEN 'APPROVED' ELSE processor_outcome END,
			processor_reference = CASE WHEN processor_reference = '' THEN $2 ELSE processor_reference END
			WHERE id = $1`, c.RefundID, c.ProcessorReference); err != nil {
			return err
		}
		if c.To == ivrpay.RefundStatusFailed {
			_, err := s.failRefund(ctx, tx, ivrpay.RefundFailure{RefundID: c.RefundID, From: c.From, RefusalCode: c.RefusalCode,
				RefusalDesc: c.RefusalDesc, At: c.At})
			return err
		}
		if err := s.execOne(ctx, tx, ivrpay.ErrStateChanged, `UPDATE refunds SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4`,
			c.RefundID, c.To, at, c.From); err != nil {
			return err
		}
		r, err := s.findRefund(ctx, tx, c.RefundID)
		if err != nil {
			return err
		}
		return s.emitRefundEvent(ctx, tx, r)
	})
}

// FinishProcessorEvent records an event that changed nothing, matched
// nothing or kept failing (d.Status NO_CHANGE, IGNORED, UNMATCHED or
// FAILED, which counts a failure and leaves applied_at empty: nothing was
// applied). It writes only under the caller's claim (d.Claim): an event
// applied by another process, or whose lease another process took over,
// is left as it is.
func (s *Store) FinishProcessorEvent(ctx context.Context, d ivrpay.ProcessorEventDone) (err error) {
	defer wrap(&err, "Store.FinishProcessorEvent(%q, %q)", d.Account, d.EventID)
	applied, failed := sql.NullString{String: ivrpay.FormatTime(d.At), Valid: true}, 0
	if d.Status == ivrpay.ProcessorEventFailed {
		applied, failed = sql.NullString{}, 1
	}
	_, err = s.execTx(ctx, `UPDATE processor_events SET status = $4, object_id = $5, note = $6, applied_at = $7, attempts = attempts + 1,
		failures = failures + $8
		WHERE account = $1 AND event_id = $2 AND status = 'PENDING' AND next_attempt_at = $3`,
		d.Account, d.EventID, ivrpay.FormatTime(d.Claim), d.Status, d.ObjectID, d.Note, applied, failed)
	return err
}

// PostponeProcessorEvent keeps a PENDING event for another attempt at
// r.Next, counting this one (and, r.Failed, its failure), with why it
// waits; only under the caller's claim, as FinishProcessorEvent.
func (s *Store) PostponeProcessorEvent(ctx context.Context, r ivrpay.ProcessorEventRetry) (err error) {
	defer wrap(&err, "Store.PostponeProcessorEvent(%q, %q)", r.Account, r.EventID)
	failed := 0
	if r.Failed {
		failed = 1
	}
	_, err = s.execTx(ctx, `UPDATE processor_events SET attempts = attempts + 1, failures = failures + $7, next_attempt_at = $4,
		object_id = $5, note = $6
		WHERE account = $1 AND event_id = $2 AND status = 'PENDING' AND next_attempt_at = $3`,
		r.Account, r.EventID, ivrpay.FormatTime(r.Claim), ivrpay.FormatTime(r.Next), r.ObjectID, r.Note, failed)
	return err
}

// RetryProcessorEvent puts a FAILED event back to PENDING, due at now,
// with its failures counted from 0 again (`ivrpay admin events retry`,
// once the cause is fixed), with an audit row; the inbox worker of every
// serve process applies it at its next pass. ENOTFOUND when there is no
// such event, ECONFLICT when it is not FAILED.
func (s *Store) RetryProcessorEvent(ctx context.Context, account, id string, now time.Time) (l ivrpay.ProcessorEventListing, err error) {
	defer wrap(&err, "Store.RetryProcessorEvent(%q, %q)", account, id)
	err = s.inTx(ctx, func(tx querier) error {
		err := s.execOne(ctx, tx, errNotFailed, `UPDATE processor_events SET status = 'PENDING', failures = 0, next_attempt_at = $3
			WHERE account = $1 AND event_id = $2 AND status = 'FAILED'`, account, id, ivrpay.FormatTime(now))
		if errors.Is(err, errNotFailed) {
			var status string
			err = s.queryRow(ctx, tx, `SELECT status FROM processor_events WHERE account = $1 AND event_id = $2`, account, id).Scan(&status)
			if errors.Is(err, sql.ErrNoRows) {
				return ivrpay.Errorf(ivrpay.ENOTFOUND, "processor event %s of account %s not found", id, account)
			} else if err == nil {
				return ivrpay.Errorf(ivrpay.ECONFLICT, "processor event %s of account %s is %s: only a FAILED event is retried", id, account, status)
			}
		}
		if err != nil {
			return err
		}
		var r processorEventRow
		if err := s.queryRow(ctx, tx, `SELECT `+processorEventColumns+` FROM processor_events WHERE account = $1 AND event_id = $2`,
			account, id).Scan(r.dest()...); err != nil {
			return err
		}
		l = r.listing()
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "processor_event.retry", Target: id, Outcome: ivrpay.AuditSuccess,
			Detail: "account=" + account})
	})
	return l, err
}

// errNotFailed: RetryProcessorEvent's event is not FAILED (or not there).
var errNotFailed = errors.New("processor event not FAILED")

// FindEventPayin returns the payin of account an event is about: by
// ivrpay's own id when the event carries it (reference), else by the
// processor's reference of the payment. A payin of another account is
// never returned: an account's events move only its own payins.
func (s *Store) FindEventPayin(ctx context.Context, account, reference, paymentReference string) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.FindEventPayin(%q)", account)
	if ivrpay.IDHasKind(reference, ivrpay.PrefixPayin) {
		// Read at once, its account checked here: finding the id first was
		// one statement more for every sandbox confirmation, each on a
		// reader whose cache the last commit emptied.
		p, err = s.findPayin(ctx, s.rdb, reference)
		if err == nil && p.Processor.Account == account {
			return p, nil
		}
		if err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
			return nil, err
		}
	}
	var id string
	if paymentReference != "" {
		err = s.queryRow(ctx, s.rdb, payinByProcessorReference, paymentReference, account).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	if id == "" {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "no payin of account %s is %q or has the processor reference %q", account, reference, paymentReference)
	}
	return s.findPayin(ctx, s.rdb, id)
}

// payinByProcessorReference and refundByProcessorReference find an event's
// object by the processor's reference. Each repeats the predicate of its
// partial index (payins_processor_reference, refunds_processor_reference:
// the reference is not empty), which an engine uses only when the query
// implies it: without it every event naming a processor reference read all
// payins.
const (
	payinByProcessorReference  = `SELECT id FROM payins WHERE processor_reference = $1 AND processor_reference <> '' AND processor_account = $2`
	refundByProcessorReference = `SELECT r.id FROM refunds r JOIN payins p ON p.id = r.payin_id
		WHERE r.processor_reference = $1 AND r.processor_reference <> '' AND p.processor_account = $2`
)

// FindEventRefund returns the refund of account an event is about: by
// ivrpay's id (reference), else by the processor's reference of the
// refund; only refunds of the account's payins.
func (s *Store) FindEventRefund(ctx context.Context, account, reference, refundReference string) (r *ivrpay.Refund, err error) {
	defer wrap(&err, "Store.FindEventRefund(%q)", account)
	var id string
	if ivrpay.IDHasKind(reference, ivrpay.PrefixRefund) {
		err = s.queryRow(ctx, s.rdb, `SELECT r.id FROM refunds r JOIN payins p ON p.id = r.payin_id WHERE r.id = $1 AND p.processor_account = $2`,
			reference, account).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	if id == "" && refundReference != "" {
		err = s.queryRow(ctx, s.rdb, refundByProcessorReference, refundReference, account).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	if id == "" {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "no refund of account %s is %q or has the processor reference %q", account, reference, refundReference)
	}
	return s.findRefund(ctx, s.rdb, id)
}

// ListProcessorEvents lists the inbox's events, newest first.
func (s *Store) ListProcessorEvents(ctx context.Context, f ivrpay.ProcessorEventFilter) (out []ivrpay.ProcessorEventListing, err error) {
	defer wrap(&err, "Store.ListProcessorEvents")
	limit := f.Limit
	if limit <= 0 || limit > ivrpay.MaxPageLimit {
		limit = ivrpay.DefaultPageLimit
	}
	query := `SELECT ` + processorEventColumns + ` FROM processor_events`
	args := []any{limit}
	if f.Status != "" {
		query += ` WHERE status = $2`
		args = append(args, f.Status)
	}
	rows, err := s.rdb.QueryContext(ctx, query+` ORDER BY received_at DESC, event_id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out = []ivrpay.ProcessorEventListing{}
	for rows.Next() {
		var r processorEventRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		out = append(out, r.listing())
	}
	return out, rows.Err()
}

// listing is the row as `ivrpay admin events list` prints it.
func (r *processorEventRow) listing() ivrpay.ProcessorEventListing {
	e := r.InboxEvent
	l := ivrpay.ProcessorEventListing{Account: e.Account, Kind: e.Kind, EventID: e.ID, Type: e.Type, Effect: e.Effect, Status: e.Status,
		ObjectID: ivrpay.OptString(e.ObjectID), Reference: ivrpay.OptString(e.Reference), PaymentReference: ivrpay.OptString(e.PaymentReference),
		RefundReference: ivrpay.OptString(e.RefundReference), Amount: e.Amount, Currency: ivrpay.OptString(e.Currency),
		RefusalCode: ivrpay.OptString(e.RefusalCode), Note: ivrpay.OptString(e.Note), Attempts: e.Attempts, Failures: e.Failures,
		ReceivedAt: parseTime(r.receivedAt)}
	if r.dispute.Valid {
		l.Dispute = json.RawMessage(r.dispute.String)
	}
	l.OccurredAt, l.AppliedAt = optTime(r.occurredAt), optTime(r.appliedAt)
	return l
}

func optTime(ns sql.NullString) *time.Time {
	if !ns.Valid {
		return nil
	}
	t := parseTime(ns.String)
	return &t
}

// sandboxDuePayins lists the sandbox's payins due to be confirmed, oldest
// first, that have no confirmation in the inbox yet and no void in flight
// (the sandbox confirms no capture it was asked to cancel; a refused void
// lets the payin come due again). Its filter and order are the index
// payins_sandbox_due's, word for word, so that a pass reads
// only what it confirms (SQLite matches an index expression literally); the
// inbox look-up repeats processor_events_reference's predicate (the
// reference is not empty) for the same reason, without which it read every
// event of the account for each payin.
const sandboxDuePayins = `SELECT id, amount, processor_reference, captured_amount, currency_code, COALESCE(status_at, updated_at) FROM payins
	WHERE status = 'PROCESSING' AND processor_account = 'sandbox' AND COALESCE(status_at, updated_at) <= $1 AND ` + NoOperationInFlight + `
	AND NOT EXISTS (SELECT 1 FROM processor_events e WHERE e.account = 'sandbox' AND e.reference = payins.id AND e.reference <> '' AND e.effect = $3)
	ORDER BY COALESCE(status_at, updated_at), id LIMIT $2`

// sandboxDueRefunds lists the sandbox's refunds due to be confirmed, oldest
// first, that have no confirmation in the inbox yet (reference <> ” as in
// sandboxDuePayins).
const sandboxDueRefunds = `SELECT r.id, r.amount, r.processor_reference, r.created_at, p.id, p.amount, p.processor_reference,
		p.captured_amount, p.currency_code
	FROM refunds r JOIN payins p ON p.id = r.payin_id
	WHERE r.status = 'PROCESSING' AND r.created_at <= $1 AND r.processor_outcome <> 'UNKNOWN' AND p.processor_account = 'sandbox'
	AND NOT EXISTS (SELECT 1 FROM processor_events e WHERE e.account = 'sandbox' AND e.reference = r.id AND e.reference <> '')
	ORDER BY r.created_at, r.id LIMIT $2`

// DueSandboxConfirmations lists what the built-in sandbox processor
// confirms next: its payins and refunds PROCESSING since before cutoff
// (refunds whose answer was lost excepted: the reconciler asks again
// first) that have no confirmation in the inbox yet, up to limit of each.
func (s *Store) DueSandboxConfirmations(ctx context.Context, cutoff time.Time, limit int) (due []ivrpay.SandboxDue, err error) {
	defer wrap(&err, "Store.DueSandboxConfirmations")
	at := ivrpay.FormatTime(cutoff)
	rows, err := s.query(ctx, s.rdb, sandboxDuePayins, at, limit, string(ivrpay.EffectPaymentCaptured))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var d ivrpay.SandboxDue
		var since string
		if err := rows.Scan(&d.PayinID, &d.PayinAmount, &d.PayinReference, &d.CapturedAmount, &d.Currency, &since); err != nil {
			rows.Close()
			return nil, err
		}
		d.ProcessingSince = parseTime(since)
		due = append(due, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.query(ctx, s.rdb, sandboxDueRefunds, at, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var d ivrpay.SandboxDue
		var since string
		if err := rows.Scan(&d.RefundID, &d.RefundAmount, &d.RefundReference, &since, &d.PayinID, &d.PayinAmount, &d.PayinReference,
			&d.CapturedAmount, &d.Currency); err != nil {
			return nil, err
		}
		d.ProcessingSince = parseTime(since)
		due = append(due, d)
	}
	return due, rows.Err()
}

// The rows the look-up fallback asks about: a real account's PROCESSING
// payins with no operation in flight (the reconciler's, which shares the
// lease column, until it ends), and the PROCESSING refunds of its payins that the processor
// accepted (those whose answer was lost are the reconciler's). The refunds'
// payin is checked row by row: as `payin_id IN (SELECT id FROM payins …)`
// SQLite listed every payin first, at each pass.
const (
	lookupPayins  = `status = 'PROCESSING' AND processor_account <> 'sandbox' AND ` + NoOperationInFlight
	lookupRefunds = `status = 'PROCESSING' AND processor_outcome = 'APPROVED' AND processor_reference <> ''
		AND EXISTS (SELECT 1 FROM payins p WHERE p.id = refunds.payin_id AND p.processor_account <> 'sandbox')`
)

// ClaimDueLookups leases, for the caller alone, up to limit payins and as
// many refunds of real accounts that have been PROCESSING since before
// cutoff and that no other process holds (the reconciler's lease column:
// a look-up that finds nothing new is postponed with PostponeReconcile).
func (s *Store) ClaimDueLookups(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) (out []ivrpay.DueLookup, err error) {
	defer wrap(&err, "Store.ClaimDueLookups")
	ids, err := s.leaseDue(ctx, "payins", lookupPayins, cutoff, lease, limit)
	for _, id := range ids {
		p, err := s.findPayin(ctx, s.rdb, id)
		if err != nil {
			return out, err
		}
		out = append(out, ivrpay.DueLookup{Payin: p})
	}
	if err != nil {
		return out, err
	}
	ids, err = s.leaseDue(ctx, "refunds", lookupRefunds, cutoff, lease, limit)
	for _, id := range ids {
		l := ivrpay.DueLookup{}
		if l.Refund, err = s.findRefund(ctx, s.rdb, id); err != nil {
			return out, err
		}
		if err := s.queryRow(ctx, s.rdb, `SELECT processor_reference FROM refunds WHERE id = $1`, id).Scan(&l.RefundReference); err != nil {
			return out, err
		}
		if l.Payin, err = s.findPayin(ctx, s.rdb, l.Refund.PayinID); err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, err
}

// ListStaleObjects lists up to limit of a real account's payins and
// refunds PROCESSING since before cutoff, oldest first (ivrpay admin
// events list --stale).
func (s *Store) ListStaleObjects(ctx context.Context, cutoff time.Time, limit int) (out []ivrpay.StaleObject, err error) {
	defer wrap(&err, "Store.ListStaleObjects")
	at := ivrpay.FormatTime(cutoff)
	rows, err := s.rdb.QueryContext(ctx, `SELECT 'payin', id, id, processor_account, processor_kind, processor_reference, status, amount, updated_at
		FROM payins WHERE `+lookupPayins+` AND updated_at <= $1
		UNION ALL
		SELECT 'refund', r.id, r.payin_id, p.processor_account, p.processor_kind, r.processor_reference, r.status, r.amount, r.updated_at
		FROM refunds r JOIN payins p ON p.id = r.payin_id
		WHERE r.status = 'PROCESSING' AND p.processor_account <> 'sandbox' AND r.updated_at <= $1
		ORDER BY 9, 2 LIMIT $2`, at, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out = []ivrpay.StaleObject{}
	for rows.Next() {
		var o ivrpay.StaleObject
		var ref, since string
		if err := rows.Scan(&o.Object, &o.ID, &o.PayinID, &o.Account, &o.Kind, &ref, &o.Status, &o.Amount, &since); err != nil {
			return nil, err
		}
		o.Reference, o.Since = ivrpay.OptString(ref), parseTime(since)
		out = append(out, o)
	}
	return out, rows.Err()
}

// unappliedEventCounts is UnappliedProcessorEventCounts' statement: it
// reads processor_events_received (status first), never the applied events.
const unappliedEventCounts = `SELECT status, COUNT(*) FROM processor_events WHERE status IN ($1, $2, $3) GROUP BY status`

// UnappliedProcessorEventCounts counts the events not applied, by status
// (PENDING, UNMATCHED, FAILED), over the status index: the metrics' gauge.
// Every status has its row, zero included, so that an alert on FAILED sees
// a 0 rather than no series.
func (s *Store) UnappliedProcessorEventCounts(ctx context.Context) (counts map[string]int, err error) {
	defer wrap(&err, "Store.UnappliedProcessorEventCounts")
	statuses := []any{ivrpay.ProcessorEventPending, ivrpay.ProcessorEventUnmatched, ivrpay.ProcessorEventFailed}
	if counts, err = s.statusCounts(ctx, unappliedEventCounts, statuses...); err != nil {
		return nil, err
	}
	for _, status := range statuses {
		counts[status.(string)] += 0 // a series for every status, 0 included
	}
	return counts, nil
}
