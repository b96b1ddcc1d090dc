package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.ChargebackService = (*Store)(nil)

// chargebackSelect reads chargebacks with the card and metadata of their
// payin. The join sits in a derived table so that list filters name the
// chargebacks' own columns unqualified.
const chargebackSelect = `SELECT id, platform_id, merchant_id, payin_id, payin_config_id, amount, currency_code, status,
	reason_code, reason_desc, processor_account, processor_kind, processor_reference, dashboard_url, respond_by,
	created_at, updated_at, brand, last4, metadata
	FROM (SELECT c.id, c.platform_id, c.merchant_id, c.payin_id, c.payin_config_id, c.amount, c.currency_code, c.status,
		c.reason_code, c.reason_desc, c.processor_account, c.processor_kind, c.processor_reference, c.dashboard_url,
		c.respond_by, c.created_at, c.updated_at, p.brand, p.last4, p.metadata
		FROM chargebacks c JOIN payins p ON p.id = c.payin_id) AS chargebacks`

func scanChargeback(row scanner) (*ivrpay.Chargeback, error) {
	var c ivrpay.Chargeback
	var reasonCode, reasonDesc, dashboard, brand, last4, created, updated string
	var respondBy, md sql.NullString
	if err := row.Scan(&c.ID, &c.PlatformID, &c.MerchantID, &c.PayinID, &c.PayinConfigID, &c.Amount, &c.CurrencyCode, &c.Status,
		&reasonCode, &reasonDesc, &c.Processor.Account, &c.Processor.Kind, &c.Processor.Reference, &dashboard, &respondBy,
		&created, &updated, &brand, &last4, &md); err != nil {
		return nil, err
	}
	c.ReasonCode, c.ReasonDesc, c.Processor.DashboardURL = ivrpay.OptString(reasonCode), ivrpay.OptString(reasonDesc), ivrpay.OptString(dashboard)
	c.MethodType = ivrpay.MethodTypeCard
	if brand != "" {
		c.Card = &ivrpay.CardSummary{Brand: brand, Last4: last4}
	}
	c.Metadata = rawJSON(md)
	if respondBy.Valid {
		t := parseTime(respondBy.String)
		c.RespondBy = &t
	}
	c.CreatedAt, c.UpdatedAt = parseTime(created), parseTime(updated)
	return &c, nil
}

func (s *Store) findChargeback(ctx context.Context, q querier, where string, args ...any) (*ivrpay.Chargeback, error) {
	c, err := scanChargeback(s.queryRow(ctx, q, chargebackSelect+` WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "chargeback not found")
	}
	return c, err
}

// FindChargeback returns a chargeback the caller may read.
func (s *Store) FindChargeback(ctx context.Context, id string) (c *ivrpay.Chargeback, err error) {
	defer wrap(&err, "Store.FindChargeback(%q)", id)
	if c, err = s.findChargeback(ctx, s.rdb, `id = $1`, id); ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "chargeback %s not found", id)
	} else if err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "chargeback:read", "chargeback", id, c.Object()); err != nil {
		return nil, err
	}
	return c, nil
}

// ListChargebacks lists the chargebacks the caller may read, oldest first,
// filtered by merchant, payin and status.
func (s *Store) ListChargebacks(ctx context.Context, f ivrpay.ChargebackFilter) (l *ivrpay.List[*ivrpay.Chargeback], err error) {
	defer wrap(&err, "Store.ListChargebacks")
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, err := scoped(ctx, "chargeback:read", scopeColumns{merchant: "merchant_id", payinConfig: "payin_config_id"})
	if err != nil {
		return nil, err
	}
	q.base = chargebackSelect
	for _, c := range []struct{ column, value string }{{"merchant_id", f.MerchantID}, {"payin_id", f.PayinID}, {"status", f.Status}} {
		if c.value != "" {
			q.where = append(q.where, c.column+" = "+q.arg(c.value))
		}
	}
	return listPage(ctx, s.rdb, f.Page, q, scanChargeback, func(c *ivrpay.Chargeback) string { return c.ID })
}

// loadChargebacks fills the chargebacks of the payins that have some
// (payinSelect counts them), oldest first, with one query, and then their
// refundable amount (which a chargeback may make 0).
func (s *Store) loadChargebacks(ctx context.Context, q querier, payins ...*ivrpay.Payin) error {
	var lq listQuery
	byID := map[string]*ivrpay.Payin{}
	var ph []string
	for _, p := range payins {
		if p.Chargebacks == nil {
			byID[p.ID] = p
			ph = append(ph, lq.arg(p.ID))
			p.Chargebacks = []ivrpay.PayinChargeback{}
		}
	}
	if len(ph) == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, payin_id, status, amount FROM chargebacks WHERE payin_id IN (`+strings.Join(ph, ", ")+`) ORDER BY id`, lq.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c ivrpay.PayinChargeback
		var payinID string
		if err := rows.Scan(&c.ID, &payinID, &c.Status, &c.Amount); err != nil {
			return err
		}
		if p := byID[payinID]; p != nil {
			p.Chargebacks = append(p.Chargebacks, c)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range byID {
		p.SetRefundable()
	}
	return nil
}

// ApplyDisputeEvent creates or advances the chargeback of a dispute event,
// in one transaction with the event marked in the inbox: APPLIED to the
// chargeback when it changed, NO_CHANGE when the transition table refused
// the move (a repeat, or one that arrived late). Each change emits its
// webhook chargeback.<status> in the same transaction, so a change and its
// webhook happen exactly once: ErrEventDone when another process applied
// the event first (nothing is written). The database decides between
// processes applying different events of one dispute: the insert is ON
// CONFLICT DO NOTHING on (account, dispute reference) and each move a
// conditional UPDATE from the status it was decided on. The payin's own
// status is not touched: a payin stays SUCCEEDED through a chargeback.
func (s *Store) ApplyDisputeEvent(ctx context.Context, c ivrpay.DisputeChange) (cb *ivrpay.Chargeback, changed bool, err error) {
	defer wrap(&err, "Store.ApplyDisputeEvent(%q, %q)", c.EventID, c.Dispute.Reference)
	at := ivrpay.FormatTime(c.At)
	err = s.inTx(ctx, func(tx querier) error {
		// First of the writes, as every event's: the event's row lock orders
		// two processes applying the same event.
		if err := s.markApplied(ctx, tx, c.Account, c.EventID, "", at); err != nil {
			return err
		}
		if cb, changed, err = s.applyDispute(ctx, tx, c); err != nil {
			return err
		}
		status, note := ivrpay.ProcessorEventApplied, ""
		if !changed {
			status, note = ivrpay.ProcessorEventNoChange, "chargeback is "+cb.Status
		}
		_, err := s.exec(ctx, tx, `UPDATE processor_events SET status = $3, object_id = $4, note = $5 WHERE account = $1 AND event_id = $2`,
			c.Account, c.EventID, status, cb.ID, note)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return cb, changed, nil
}

// applyDispute creates the chargeback of c in tx, or moves the existing one
// (the same account and dispute reference) to c's status when the
// transition table allows it, with the webhook of the change.
func (s *Store) applyDispute(ctx context.Context, tx querier, c ivrpay.DisputeChange) (*ivrpay.Chargeback, bool, error) {
	if err := ivrpay.CheckDispute(&c.Dispute); err != nil {
		return nil, false, err
	}
	d, payin := c.Dispute, c.Payin
	now := ivrpay.FormatTime(c.At)
	var respondBy sql.NullString
	if d.RespondBy != nil {
		respondBy = sql.NullString{String: ivrpay.FormatTime(*d.RespondBy), Valid: true}
	}
	amount, currency := d.Amount, strings.ToUpper(d.Currency)
	if amount == 0 {
		amount = payin.CapturedAmount
	}
	if currency == "" {
		currency = payin.CurrencyCode
	}
	id := s.newID(ivrpay.PrefixChargeback)
	ins, err := tx.ExecContext(ctx, `INSERT INTO chargebacks (id, platform_id, merchant_id, payin_id, payin_config_id, amount, currency_code,
		status, reason_code, reason_desc, processor_account, processor_kind, processor_reference, dashboard_url, respond_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
		ON CONFLICT (processor_account, processor_reference) DO NOTHING`,
		id, payin.PlatformID, payin.MerchantID, payin.ID, payin.PayinConfigID, amount, currency, d.Status, d.ReasonCode, d.ReasonDesc,
		c.Account, c.Kind, d.Reference, d.DashboardURL, respondBy, now)
	if err != nil {
		return nil, false, err
	}
	if n, err := ins.RowsAffected(); err != nil {
		return nil, false, err
	} else if n == 1 {
		return s.announceChargeback(ctx, tx, id)
	}
	// The dispute is known: move it forward if the table allows. A
	// concurrent move commits first and makes the UPDATE match nothing;
	// the chargeback is then read again, at most once per status.
	for range ivrpay.ChargebackStatuses {
		cur, err := s.findChargeback(ctx, tx, `processor_account = $1 AND processor_reference = $2`, c.Account, d.Reference)
		if err != nil {
			return nil, false, err
		}
		if !ivrpay.ChargebackCanMove(cur.Status, d.Status) {
			return cur, false, nil
		}
		// The event's details replace those it gives; the rest stay.
		upd, err := tx.ExecContext(ctx, `UPDATE chargebacks SET status = $3,
			amount = CASE WHEN CAST($4 AS BIGINT) > 0 THEN CAST($4 AS BIGINT) ELSE amount END,
			currency_code = CASE WHEN $5 <> '' THEN $5 ELSE currency_code END,
			reason_code = CASE WHEN $6 <> '' THEN $6 ELSE reason_code END,
			reason_desc = CASE WHEN $7 <> '' THEN $7 ELSE reason_desc END,
			dashboard_url = CASE WHEN $8 <> '' THEN $8 ELSE dashboard_url END,
			respond_by = COALESCE($9, respond_by), updated_at = $10
			WHERE id = $1 AND status = $2`,
			cur.ID, cur.Status, d.Status, d.Amount, strings.ToUpper(d.Currency), d.ReasonCode, d.ReasonDesc, d.DashboardURL, respondBy, now)
		if err != nil {
			return nil, false, err
		}
		if n, err := upd.RowsAffected(); err != nil {
			return nil, false, err
		} else if n == 1 {
			return s.announceChargeback(ctx, tx, cur.ID)
		}
	}
	return nil, false, ivrpay.ErrStateChanged
}

// announceChargeback reads the chargeback as GET returns it and emits its
// status's webhook in tx.
func (s *Store) announceChargeback(ctx context.Context, tx querier, id string) (*ivrpay.Chargeback, bool, error) {
	c, err := s.findChargeback(ctx, tx, `id = $1`, id)
	if err != nil {
		return nil, false, err
	}
	return c, true, s.emitEvent(ctx, tx, c.PlatformID, ivrpay.ChargebackEventType(c.Status), c.ID, c)
}

// sandboxDisputesDue lists the sandbox's settled payins of the dispute
// trigger amounts (the literals match the partial index
// payins_sandbox_disputes) whose dispute has a step due: none opened yet, or
// one awaiting the merchant since before the cutoff ($1).
var sandboxDisputesDue = `SELECT p.id, p.amount, p.captured_amount, p.processor_reference, p.currency_code, COALESCE(p.status_at, p.updated_at),
		COALESCE(c.status, ''), COALESCE(c.updated_at, '')
	FROM payins p LEFT JOIN chargebacks c ON c.payin_id = p.id AND c.processor_account = p.processor_account
	WHERE p.amount IN (` + strconv.Itoa(ivrpay.SandboxChargebackAmount) + `, ` + strconv.Itoa(ivrpay.SandboxInquiryAmount) + `)
		AND p.status = 'SUCCEEDED' AND p.processor_account = 'sandbox'
		AND (c.id IS NULL OR (c.status IN ('` + ivrpay.ChargebackStatusDisputeActionRequired + `', '` + ivrpay.ChargebackStatusInquiryActionRequired + `')
			AND c.updated_at <= $1))
	ORDER BY p.id LIMIT $2`

// DueSandboxDisputes lists up to limit settled payins of the sandbox
// processor whose dispute trigger has a step due (ivrpay.SandboxDisputeDue):
// the dispute opens at settlement and ends once it has waited since before
// cutoff.
func (s *Store) DueSandboxDisputes(ctx context.Context, cutoff time.Time, limit int) (due []ivrpay.SandboxDisputeDue, err error) {
	defer wrap(&err, "Store.DueSandboxDisputes")
	rows, err := s.query(ctx, s.rdb, sandboxDisputesDue, ivrpay.FormatTime(cutoff), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var d ivrpay.SandboxDisputeDue
		var settled, changed string
		if err := rows.Scan(&d.PayinID, &d.PayinAmount, &d.CapturedAmount, &d.PayinReference, &d.Currency, &settled, &d.ChargebackStatus, &changed); err != nil {
			return nil, err
		}
		d.Since = parseTime(settled)
		if d.ChargebackStatus != "" {
			d.Since = parseTime(changed)
		}
		due = append(due, d)
	}
	return due, rows.Err()
}
