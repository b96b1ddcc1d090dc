package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.PaymentMethodService = (*Store)(nil)

// payinSelect reads a payin with (first) its config's idempotency key, the
// payment method config its card was stored from and how many chargebacks
// it has, each a look-up by index in the select list, so that the list
// filters' column names stay the payins table's alone, and a payin without
// chargebacks (nearly all) costs no query for them.
const payinSelect = `SELECT (SELECT c.idempotency_key FROM payin_configs c WHERE c.id = payins.payin_config_id),
	(SELECT m.payment_method_config_id FROM payment_methods m WHERE m.id = payins.payment_method_id),
	(SELECT COUNT(*) FROM chargebacks ch WHERE ch.payin_id = payins.id),
	id, platform_id, merchant_id, payin_config_id, payment_method_id, amount, currency_code, status,
	authorized_amount, captured_amount, refunded_amount, refusal_code, refusal_desc, auth_code, avs_result_code, cvc_result_code,
	brand, last4, exp_month, exp_year, billing_contact, metadata, source, ivr_provider, ivr_transaction_id, created_at, updated_at,
	processor_account, processor_kind, processor_sub_account, processor_reference, network_transaction_id, processor_outcome, created_by,
	operation, operation_amount, operation_key, operation_outcome, operation_request_key FROM payins`

func scanPayin(row scanner) (*ivrpay.Payin, error) {
	var p ivrpay.Payin
	var pmID, bc, md, provider, txID, idempotencyKey, pmcID sql.NullString
	var chargebacks int64
	var refusalCode, refusalDesc, authCode, avs, cvc, brand, last4 string
	var expMonth, expYear int
	var created, updated string
	var proc ivrpay.PayinProcessor
	var procRef, nti, outcome string
	var op ivrpay.PayinOperation
	if err := row.Scan(&idempotencyKey, &pmcID, &chargebacks, &p.ID, &p.PlatformID, &p.MerchantID, &p.PayinConfigID, &pmID, &p.Amount, &p.CurrencyCode, &p.Status,
		&p.AuthorizedAmount, &p.CapturedAmount, &p.RefundedAmount, &refusalCode, &refusalDesc, &authCode, &avs, &cvc,
		&brand, &last4, &expMonth, &expYear, &bc, &md, &p.Source, &provider, &txID, &created, &updated,
		&proc.Account, &proc.Kind, &proc.SubAccount, &procRef, &nti, &outcome, &p.CreatedBy,
		&op.Kind, &op.Amount, &op.IdempotencyKey, &op.Outcome, &op.RequestKey); err != nil {
		return nil, err
	}
	if op.Kind != "" {
		p.Operation = &op
	}
	proc.Reference, proc.NetworkTransactionID, proc.Outcome = ivrpay.OptString(procRef), ivrpay.OptString(nti), ivrpay.OptString(outcome)
	p.Processor = &proc
	p.PaymentMethodID = ivrpay.OptString(pmID.String)
	p.IdempotencyKey, p.PaymentMethodConfigID = ivrpay.ClientIdempotencyKey(idempotencyKey.String), ivrpay.OptString(pmcID.String)
	p.RefusalCode, p.RefusalDesc, p.AuthCode = ivrpay.OptString(refusalCode), ivrpay.OptString(refusalDesc), ivrpay.OptString(authCode)
	p.AVSResultCode, p.CVCResultCode = ivrpay.OptString(avs), ivrpay.OptString(cvc)
	p.MethodType = ivrpay.MethodTypeCard
	if brand != "" {
		p.Card = &ivrpay.Card{Brand: brand, Last4: last4, ExpMonth: expMonth, ExpYear: expYear}
	}
	p.BillingContact, p.Metadata = billingContact(bc), rawJSON(md)
	if txID.Valid {
		p.IVR = &ivrpay.IVRInfo{Provider: ivrpay.IVRProvider(provider.String), TransactionID: txID.String}
	}
	p.Refunds = []ivrpay.Refund{}
	if chargebacks == 0 {
		p.Chargebacks = []ivrpay.PayinChargeback{}
		p.SetRefundable()
	} // else nil until loadChargebacks reads them, and sets the refundable amount they decide
	p.CreatedAt, p.UpdatedAt = parseTime(created), parseTime(updated)
	return &p, nil
}

func (s *Store) findPayin(ctx context.Context, q querier, id string) (*ivrpay.Payin, error) {
	p, err := scanPayin(s.queryRow(ctx, q, payinSelect+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payin %s not found", id)
	} else if err != nil {
		return nil, err
	}
	if err := s.loadChargebacks(ctx, q, p); err != nil {
		return nil, err
	}
	return p, s.loadRefunds(ctx, q, p)
}

// FindPayin returns a payin the caller may read, shaped for the request's API version.
func (s *Store) FindPayin(ctx context.Context, id string) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.FindPayin(%q)", id)
	if p, err = s.findPayin(ctx, s.rdb, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payin:read", "payin", id, p.Object()); err != nil {
		return nil, err
	}
	return ivrpay.ShapePayin(ivrpay.VersionFromContext(ctx), p), nil
}

// ListPayins lists the payins the caller may read, filtered by merchant, status and source.
func (s *Store) ListPayins(ctx context.Context, f ivrpay.PayinFilter) (l *ivrpay.List[*ivrpay.Payin], err error) {
	defer wrap(&err, "Store.ListPayins")
	if f.Status != "" && !slices.Contains(ivrpay.PayinStatuses, f.Status) {
		return nil, ivrpay.FieldErrorf("status", "unknown payin status %q", f.Status)
	}
	if f.Source != "" && !slices.Contains(ivrpay.PayinSources, f.Source) {
		return nil, ivrpay.FieldErrorf("source", "unknown payin source %q; sources are IVR, API_DIRECT and API_STORED_PAYMENT_METHOD", f.Source)
	}
	q, err := scoped(ctx, "payin:read", scopeColumns{merchant: "merchant_id", payinConfig: "payin_config_id", createdBy: "created_by"})
	if err != nil {
		return nil, err
	}
	q.base = payinSelect
	if f.MerchantID != "" {
		q.where = append(q.where, "merchant_id = "+q.arg(f.MerchantID))
	}
	if f.Status != "" {
		v := ivrpay.VersionFromContext(ctx)
		if f.Status == ivrpay.PayinStatusProcessing && !v.SupportsAuthorize() {
			// AUTHORIZED payins read as PROCESSING at versions that lack the status.
			q.where = append(q.where, "status IN ("+q.arg(ivrpay.PayinStatusProcessing)+", "+q.arg(ivrpay.PayinStatusAuthorized)+")")
		} else {
			q.where = append(q.where, "status = "+q.arg(f.Status))
		}
	}
	if f.Source != "" {
		q.where = append(q.where, "source = "+q.arg(f.Source))
	}
	l, err = listPage(ctx, s.rdb, f.Page, q, scanPayin, func(p *ivrpay.Payin) string { return p.ID })
	if err != nil {
		return nil, err
	}
	if err := s.loadRefunds(ctx, s.rdb, l.Results...); err != nil {
		return nil, err
	}
	if err := s.loadChargebacks(ctx, s.rdb, l.Results...); err != nil {
		return nil, err
	}
	for i, p := range l.Results {
		l.Results[i] = ivrpay.ShapePayin(ivrpay.VersionFromContext(ctx), p)
	}
	return l, nil
}

const paymentMethodSelect = `SELECT id, payment_method_config_id, platform_id, merchant_id, status, brand, last4, exp_month, exp_year,
	fingerprint, billing_contact, metadata, created_at, created_by FROM payment_methods`

func scanPaymentMethod(row scanner) (*ivrpay.PaymentMethod, error) {
	var pm ivrpay.PaymentMethod
	var cfg, merchant, bc, md sql.NullString
	var c ivrpay.Card
	var created string
	if err := row.Scan(&pm.ID, &cfg, &pm.PlatformID, &merchant, &pm.Status, &c.Brand, &c.Last4, &c.ExpMonth, &c.ExpYear,
		&pm.Fingerprint, &bc, &md, &created, &pm.CreatedBy); err != nil {
		return nil, err
	}
	pm.PaymentMethodConfigID, pm.MerchantID = ivrpay.OptString(cfg.String), ivrpay.OptString(merchant.String)
	pm.MethodType, pm.Card = ivrpay.MethodTypeCard, &c
	pm.BillingContact, pm.Metadata = billingContact(bc), rawJSON(md)
	pm.CreatedAt = parseTime(created)
	return &pm, nil
}

func (s *Store) findPaymentMethod(ctx context.Context, id string) (*ivrpay.PaymentMethod, error) {
	pm, err := scanPaymentMethod(s.queryRow(ctx, s.rdb, paymentMethodSelect+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payment method %s not found", id)
	}
	return pm, err
}

// FindPaymentMethod returns a payment method the caller may read.
func (s *Store) FindPaymentMethod(ctx context.Context, id string) (pm *ivrpay.PaymentMethod, err error) {
	defer wrap(&err, "Store.FindPaymentMethod(%q)", id)
	if pm, err = s.findPaymentMethod(ctx, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payment_method:read", "payment method", id, pm.Object()); err != nil {
		return nil, err
	}
	return pm, nil
}

// ListPaymentMethods lists the payment methods the caller may read.
func (s *Store) ListPaymentMethods(ctx context.Context, page ivrpay.Page) (l *ivrpay.List[*ivrpay.PaymentMethod], err error) {
	defer wrap(&err, "Store.ListPaymentMethods")
	q, err := scoped(ctx, "payment_method:read", scopeColumns{merchant: "merchant_id", paymentMethodConfig: "payment_method_config_id", createdBy: "created_by"})
	if err != nil {
		return nil, err
	}
	q.base = paymentMethodSelect
	return listPage(ctx, s.rdb, page, q, scanPaymentMethod, func(pm *ivrpay.PaymentMethod) string { return pm.ID })
}

// DeactivatePaymentMethod stops a stored card from being charged again.
func (s *Store) DeactivatePaymentMethod(ctx context.Context, id string) (pm *ivrpay.PaymentMethod, err error) {
	defer wrap(&err, "Store.DeactivatePaymentMethod(%q)", id)
	if pm, err = s.findPaymentMethod(ctx, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payment_method:update", "payment method", id, pm.Object()); err != nil {
		return nil, err
	}
	if _, err := s.wdb.ExecContext(ctx, `UPDATE payment_methods SET status = $2, updated_at = $3 WHERE id = $1`,
		id, ivrpay.PaymentMethodStatusDeactivated, ivrpay.FormatTime(s.now())); err != nil {
		return nil, err
	}
	return s.findPaymentMethod(ctx, id)
}

// RecentPayinStatusCounts counts, by status, the payins created since the
// given time (for metrics). It reads a range of the primary key (ids sort by
// creation time), so its cost follows recent traffic, never the whole table.
func (s *Store) RecentPayinStatusCounts(ctx context.Context, since time.Time) (counts map[string]int, err error) {
	defer wrap(&err, "Store.RecentPayinStatusCounts")
	return s.statusCounts(ctx, `SELECT status, COUNT(*) FROM payins WHERE id >= $1 AND id < $2 GROUP BY status`,
		ivrpay.FirstIDAt(s.opts.Mode, ivrpay.PrefixPayin, since), s.opts.Mode.IDPrefix()+ivrpay.PrefixPayin+"~")
}

// statusCounts runs a query of (status, count) rows on a reader.
func (s *Store) statusCounts(ctx context.Context, query string, args ...any) (map[string]int, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		counts[status] = n
	}
	return counts, rows.Err()
}
