package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ivrpay/ivrpay"
)

// This file is the payments service's Store: persistence only, each method
// one transaction; the decisions are the service's (package payments).

const (
	txRunning = "RUNNING"
	txDone    = "DONE"
)

// LoadPayinConfig reads a payin config without a permission check.
func (s *Store) LoadPayinConfig(ctx context.Context, id string) (c *ivrpay.PayinConfig, err error) {
	defer wrap(&err, "Store.LoadPayinConfig(%q)", id)
	return s.findPayinConfig(ctx, s.rdb, id)
}

// LoadPaymentMethodConfig reads a payment method config without a permission check.
func (s *Store) LoadPaymentMethodConfig(ctx context.Context, id string) (c *ivrpay.PaymentMethodConfig, err error) {
	defer wrap(&err, "Store.LoadPaymentMethodConfig(%q)", id)
	return s.findPaymentMethodConfig(ctx, s.rdb, id)
}

// LoadPayin reads a payin without a permission check.
func (s *Store) LoadPayin(ctx context.Context, id string) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.LoadPayin(%q)", id)
	return s.findPayin(ctx, s.rdb, id)
}

// LoadPaymentMethod reads a payment method without a permission check.
func (s *Store) LoadPaymentMethod(ctx context.Context, id string) (pm *ivrpay.PaymentMethod, err error) {
	defer wrap(&err, "Store.LoadPaymentMethod(%q)", id)
	return s.findPaymentMethod(ctx, id)
}

// LoadPaymentMethodCard returns a stored card's PAN ciphertext and the
// network transaction id of its first payment.
func (s *Store) LoadPaymentMethodCard(ctx context.Context, id string) (ciphertext, nti string, err error) {
	defer wrap(&err, "Store.LoadPaymentMethodCard(%q)", id)
	err = s.queryRow(ctx, s.rdb, `SELECT pan_ciphertext, network_transaction_id FROM payment_methods WHERE id = $1`, id).Scan(&ciphertext, &nti)
	return ciphertext, nti, err
}

// ConnectorTransactionID is the value of connector_transactions.transaction_id
// for k: the provider's transaction id qualified by the provider
// ("TELNYX:abc"). Provider names hold no colon, so the table's key
// (platform_id, transaction_id) is unique per platform and provider
// (SPEC §5.6; migration 00029).
func ConnectorTransactionID(k ivrpay.ConnectorTransactionKey) string {
	return string(k.Provider) + ":" + k.TransactionID
}

// ClaimConnectorTransaction inserts the transaction, owned by the caller,
// or takes over one whose lease has ended, or returns it as it is.
func (s *Store) ClaimConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey, hash, configID string, lease time.Duration) (t ivrpay.ConnectorTransaction, err error) {
	defer wrap(&err, "Store.ClaimConnectorTransaction")
	now := s.now()
	claim := ivrpay.ConnectorClaim{ConnectorTransactionKey: k, RequestHash: hash, ConfigID: configID, Lease: lease}
	n, err := s.execTx(ctx, claimInsert, claimArgs(claim, now)...)
	if err != nil || n == 1 {
		return ivrpay.ConnectorTransaction{Owned: n == 1, RequestHash: hash, ConfigID: configID}, err
	}
	t, leaseUntil, found, err := s.readConnectorTransaction(ctx, s.rdb, k)
	if err != nil || !found || t.Done {
		if err == nil && !found {
			err = fmt.Errorf("connector transaction %s vanished after its insert conflicted", k.TransactionID)
		}
		return t, err
	}
	if t.RequestHash != hash || leaseUntil >= ivrpay.FormatTime(now) {
		return t, nil
	}
	n, err = s.execTx(ctx, `UPDATE connector_transactions SET lease_until = $3, updated_at = $4
		WHERE platform_id = $1 AND transaction_id = $2 AND status = $5 AND lease_until = $6`,
		k.PlatformID, ConnectorTransactionID(k), ivrpay.FormatTime(now.Add(lease)), ivrpay.FormatTime(now), txRunning, leaseUntil)
	t.Owned = n == 1
	return t, err
}

// FindConnectorTransaction reads a transaction without claiming it.
func (s *Store) FindConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey) (t ivrpay.ConnectorTransaction, found bool, err error) {
	defer wrap(&err, "Store.FindConnectorTransaction")
	t, _, found, err = s.readConnectorTransaction(ctx, s.rdb, k)
	return t, found, err
}

func (s *Store) readConnectorTransaction(ctx context.Context, q querier, k ivrpay.ConnectorTransactionKey) (t ivrpay.ConnectorTransaction, leaseUntil string, found bool, err error) {
	var c connectorTransactionColumns
	err = s.queryRow(ctx, q, `SELECT request_hash, config_id, status, response, lease_until FROM connector_transactions
		WHERE platform_id = $1 AND transaction_id = $2`, k.PlatformID, ConnectorTransactionID(k)).Scan(c.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return t, "", false, nil
	} else if err != nil {
		return t, "", false, err
	}
	t, leaseUntil, err = c.transaction()
	return t, leaseUntil, true, err
}

// ReserveConnectorCharge starts a new connector charge in one write
// transaction: it reads the transaction, like FindConnectorTransaction, the
// payin config the charge names, like LoadPayinConfig, and the processor
// route of the config's merchant, like ProcessorRoute, in one statement;
// then, when the transaction does not exist, it asks decide for the
// charge's reservation and writes it, with its claim, as ReservePayin does.
// decide returning nil (a refusal) writes nothing.
//
// With risk, the same statement also reads the risk block that weighs most
// among those active on the charge's card, caller, config and merchant
// (risk.Blocks; SPEC §11), so that the rules cost a new charge no statement.
//
// On SQLite the read runs inside the write, so that it meets the writer's
// page cache, which other commits do not drop (a reader's is dropped at each
// commit), and so that nothing commits between the read and the claim.
// decide therefore runs inside a write: it may read, must not write, and
// may run more than once (a group commit runs a batch again after a failure:
// the last run's reservation is the one written).
func (s *Store) ReserveConnectorCharge(ctx context.Context, k ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup,
	decide func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error)) (read ivrpay.ChargeRead, reserved, holder *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ReserveConnectorCharge")
	// A few point lookups and one insert: not worth the drivers' watch over
	// a context that can end (database/sql and modernc.org/sqlite each start
	// a goroutine per query for it, and SQLite runs a progress handler), and
	// the write shares a group commit only under such a context.
	ctx = context.WithoutCancel(ctx)
	var r *ivrpay.PayinReservation
	if s.engine == EnginePostgres {
		// PostgreSQL keeps no per-connection cache a commit drops, and a
		// read inside the transaction would cost it a round trip of its own
		// (BEGIN cannot ride on it): read, then reserve. A claim that commits
		// in between refuses the reservation (ErrClaimTaken).
		if read, err = s.readCharge(ctx, s.rdb, k, configID, risk); err != nil || read.Found {
			return read, nil, nil, err
		}
		if r, err = decide(read); err != nil || r == nil {
			return read, nil, nil, err
		}
		reserved, holder, err = s.ReservePayin(ctx, *r)
		return read, reserved, holder, err
	}
	var w reservationWrite
	err = s.inTx(ctx, func(tx querier) error {
		r = nil
		var err error
		if read, err = s.readCharge(ctx, tx, k, configID, risk); err != nil || read.Found {
			return err
		}
		if r, err = decide(read); err != nil || r == nil {
			return err
		}
		if w, err = newReservationWrite(*r); err != nil {
			return err
		}
		return s.writeReservation(ctx, tx, w)
	})
	if err == nil && r != nil {
		return read, w.payin(), nil, nil
	} else if err != nil && isUniqueViolation(err) {
		reserved, holder, err = s.reservationRefused(ctx, *r)
	}
	return read, reserved, holder, err
}

// readCharge is ReserveConnectorCharge's read, on q.
func (s *Store) readCharge(ctx context.Context, q querier, k ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup) (read ivrpay.ChargeRead, err error) {
	var c connectorTransactionColumns
	var platformAccount, merchantAccount, ref, block sql.NullString
	var lookup ivrpay.RiskLookup
	if risk != nil {
		lookup = *risk
	}
	read.Config, err = scanPayinConfig(scanAlso{s.queryRow(ctx, q, chargeReadQuery,
		k.PlatformID, ConnectorTransactionID(k), configID, lookup.CardFingerprint, lookup.CallerSubject, ivrpay.FormatTime(lookup.Now)),
		append(c.dest(), &platformAccount, &merchantAccount, &ref, &block)})
	if risk != nil {
		risk.Blocks = parseRiskBlockOfCharge(block)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// No such config (a refusal to come): the transaction on its own.
		read.Config = nil
		read.Transaction, _, read.Found, err = s.readConnectorTransaction(ctx, q, k)
		return read, err
	} else if err != nil {
		return ivrpay.ChargeRead{}, err
	}
	read.Route = processorRoute(platformAccount, merchantAccount, ref)
	if c.requestHash.Valid {
		read.Transaction, _, err = c.transaction()
		read.Found = true
	}
	return read, err
}

// chargeReadQuery is readCharge's statement,
// built once (payinConfigColumns is not a constant).
var chargeReadQuery = `SELECT ` + payinConfigColumns + `,
		t.request_hash, t.config_id, t.status, t.response, t.lease_until,
		pl.processor_account, m.processor_account, m.processor_account_ref, ` + riskBlockOfCharge + `
		` + payinConfigFrom + ` JOIN platforms pl ON pl.id = c.platform_id
		LEFT JOIN connector_transactions t ON t.platform_id = $1 AND t.transaction_id = $2
		WHERE c.id = $3`

// connectorTransactionColumns receives a connector transaction's columns,
// NULL when a LEFT JOIN found none.
type connectorTransactionColumns struct {
	requestHash, configID, status, response, leaseUntil sql.NullString
}

func (c *connectorTransactionColumns) dest() []any {
	return []any{&c.requestHash, &c.configID, &c.status, &c.response, &c.leaseUntil}
}

func (c *connectorTransactionColumns) transaction() (t ivrpay.ConnectorTransaction, leaseUntil string, err error) {
	t.RequestHash, t.ConfigID = c.requestHash.String, c.configID.String
	if c.status.String == txDone {
		t.Done = true
		err = json.Unmarshal([]byte(c.response.String), &t.Response)
	}
	return t, c.leaseUntil.String, err
}

// scanAlso scans a row's leading columns into a scanner's destinations
// (scanPayinConfig's) and the rest into also.
type scanAlso struct {
	row  scanner
	also []any
}

func (s scanAlso) Scan(dest ...any) error { return s.row.Scan(append(dest, s.also...)...) }

// claimInsert inserts a running transaction leased to the caller; 0 rows
// when it exists already.
const claimInsert = `INSERT INTO connector_transactions (platform_id, transaction_id, request_hash, config_id, status, lease_until, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (platform_id, transaction_id) DO NOTHING`

func claimArgs(c ivrpay.ConnectorClaim, now time.Time) []any {
	return []any{c.PlatformID, ConnectorTransactionID(c.ConnectorTransactionKey), c.RequestHash, c.ConfigID, txRunning, ivrpay.FormatTime(now.Add(c.Lease)), ivrpay.FormatTime(now)}
}

// writeClaim inserts the claim a write carries, if any: ErrClaimTaken (which
// undoes the write) when another request holds the transaction.
func (s *Store) writeClaim(ctx context.Context, tx querier, c *ivrpay.ConnectorClaim) error {
	if c == nil {
		return nil
	}
	return s.execOne(ctx, tx, ivrpay.ErrClaimTaken, claimInsert, claimArgs(*c, s.now())...)
}

// FinishConnectorTransaction stores the answer of a transaction on its own.
func (s *Store) FinishConnectorTransaction(ctx context.Context, a ivrpay.ConnectorAnswer) (err error) {
	defer wrap(&err, "Store.FinishConnectorTransaction")
	return s.inTx(ctx, func(tx querier) error {
		if err := s.writeClaim(ctx, tx, a.Claim); err != nil {
			return err
		}
		return s.finishTransaction(ctx, tx, a)
	})
}

// ReleaseConnectorTransaction ends the lease of a running transaction.
func (s *Store) ReleaseConnectorTransaction(ctx context.Context, k ivrpay.ConnectorTransactionKey) (err error) {
	defer wrap(&err, "Store.ReleaseConnectorTransaction")
	_, err = s.execTx(ctx, `UPDATE connector_transactions SET lease_until = $3 WHERE platform_id = $1 AND transaction_id = $2 AND status = $4`,
		k.PlatformID, ConnectorTransactionID(k), ivrpay.FormatTime(s.now()), txRunning)
	return err
}

// finishTransaction stores the answer of a transaction inside tx.
func (s *Store) finishTransaction(ctx context.Context, tx querier, a ivrpay.ConnectorAnswer) error {
	b, err := json.Marshal(a.Result)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `UPDATE connector_transactions SET status = $3, response = $4, updated_at = $5
		WHERE platform_id = $1 AND transaction_id = $2`, a.PlatformID, ConnectorTransactionID(a.ConnectorTransactionKey), txDone, string(b), ivrpay.FormatTime(s.now()))
	return err
}

// ReservePayin inserts a CREATED payin, or returns the payin that holds the
// config (or the IVR transaction) as holder.
func (s *Store) ReservePayin(ctx context.Context, r ivrpay.PayinReservation) (reserved, holder *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ReservePayin")
	w, err := newReservationWrite(r)
	if err != nil {
		return nil, nil, err
	}
	err = s.inTx(ctx, func(tx querier) error { return s.writeReservation(ctx, tx, w) })
	if err == nil {
		return w.payin(), nil, nil
	}
	if !isUniqueViolation(err) {
		return nil, nil, err
	}
	return s.reservationRefused(ctx, r)
}

// reservationRefused answers a reservation a unique key refused: the payin
// holding it, or, when that payin finished (declined or voided) since the
// insert, the reservation tried again.
func (s *Store) reservationRefused(ctx context.Context, r ivrpay.PayinReservation) (reserved, holder *ivrpay.Payin, err error) {
	if holder, err = s.payinHolding(ctx, r); err == nil && holder == nil {
		return s.ReservePayin(ctx, r)
	}
	return nil, holder, err
}

// reservationWrite is a reservation with its columns encoded.
type reservationWrite struct {
	r                    ivrpay.PayinReservation
	billingContact, meta sql.NullString
}

func newReservationWrite(r ivrpay.PayinReservation) (w reservationWrite, err error) {
	w.r = r
	if w.billingContact, err = jsonText(r.BillingContact); err != nil {
		return w, err
	}
	w.meta, err = jsonText(r.Config.Metadata)
	return w, err
}

// writeReservation inserts the reservation's claim, if any, and its payin.
func (s *Store) writeReservation(ctx context.Context, tx querier, w reservationWrite) error {
	r, cfg := w.r, w.r.Config
	if err := s.writeClaim(ctx, tx, r.Claim); err != nil {
		return err
	}
	txID := sql.NullString{String: r.IVRTransactionID, Valid: r.IVRTransactionID != ""}
	provider := sql.NullString{String: string(r.IVRProvider), Valid: r.IVRTransactionID != ""}
	pmID := sql.NullString{String: r.PaymentMethodID, Valid: r.PaymentMethodID != ""}
	_, err := s.exec(ctx, tx, `INSERT INTO payins (id, platform_id, merchant_id, payin_config_id, payment_method_id, amount, currency_code, status,
		brand, last4, exp_month, exp_year, billing_contact, metadata, source, ivr_provider, ivr_transaction_id, processor_account, processor_kind,
		processor_sub_account, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21, $22)`,
		r.ID, cfg.PlatformID, cfg.MerchantID, cfg.ID, pmID, cfg.Amount, cfg.CurrencyCode, ivrpay.PayinStatusCreated,
		r.Card.Brand, r.Card.Last4, r.Card.ExpMonth, r.Card.ExpYear, w.billingContact, w.meta, r.Source, provider, txID,
		r.Processor.Name, r.Processor.Kind, r.Processor.AccountRef, ivrpay.FormatTime(r.CreatedAt), r.CreatedBy)
	return err
}

// payin is the reserved payin as a read would return it, without reading it.
func (w reservationWrite) payin() *ivrpay.Payin {
	r, cfg := w.r, w.r.Config
	at := parseTime(ivrpay.FormatTime(r.CreatedAt))
	p := &ivrpay.Payin{ID: r.ID, PayinConfigID: cfg.ID, MerchantID: cfg.MerchantID, PlatformID: cfg.PlatformID,
		PaymentMethodID: ivrpay.OptString(r.PaymentMethodID), Amount: cfg.Amount, CurrencyCode: cfg.CurrencyCode,
		Status: ivrpay.PayinStatusCreated, MethodType: ivrpay.MethodTypeCard, BillingContact: storedContact(r.BillingContact, w.billingContact), Metadata: rawJSON(w.meta),
		IdempotencyKey: cfg.IdempotencyKey, PaymentMethodConfigID: ivrpay.OptString(r.PaymentMethodConfigID),
		Source: r.Source, Processor: &ivrpay.PayinProcessor{Account: r.Processor.Name, Kind: r.Processor.Kind, SubAccount: r.Processor.AccountRef},
		Refunds: []ivrpay.Refund{}, Chargebacks: []ivrpay.PayinChargeback{}, CreatedAt: at, UpdatedAt: at, CreatedBy: r.CreatedBy}
	if r.Card.Brand != "" {
		c := r.Card
		p.Card = &c
	}
	if r.IVRTransactionID != "" {
		p.IVR = &ivrpay.IVRInfo{Provider: r.IVRProvider, TransactionID: r.IVRTransactionID}
	}
	p.SetRefundable()
	return p
}

// payinHolding is the payin whose unique key refused reservation r: the
// payin of its IVR transaction, or the live payin of its config; nil when
// that payin finished since.
func (s *Store) payinHolding(ctx context.Context, r ivrpay.PayinReservation) (*ivrpay.Payin, error) {
	cfg := r.Config
	var id string
	if r.IVRTransactionID != "" {
		err := s.queryRow(ctx, s.rdb, `SELECT id FROM payins WHERE platform_id = $1 AND ivr_provider = $2 AND ivr_transaction_id = $3`,
			cfg.PlatformID, r.IVRProvider, r.IVRTransactionID).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	if id == "" {
		// The predicate repeats the partial index payins_one_live_per_config.
		err := s.queryRow(ctx, s.rdb, `SELECT id FROM payins WHERE payin_config_id = $1 AND `+holdsConfig,
			cfg.ID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	return s.findPayin(ctx, s.rdb, id)
}

// RecordPayinOutcome stores a CREATED payin's definite outcome.
func (s *Store) RecordPayinOutcome(ctx context.Context, o ivrpay.PayinOutcome) (final *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.RecordPayinOutcome(%q)", o.PayinID)
	res, outcome := o.Result, o.ProcessorOutcome()
	at := ivrpay.FormatTime(o.At)
	err = s.inTx(ctx, func(tx querier) error {
		if pm := o.NewPaymentMethod; pm != nil {
			view, err := s.insertPaymentMethod(ctx, tx, *pm)
			if err != nil {
				return err
			}
			if pm.Announce {
				if err := s.announcePaymentMethod(ctx, tx, view); err != nil {
					return err
				}
			}
		}
		var op ivrpay.PayinOperation
		if o.Operation != nil {
			op = *o.Operation
		}
		upd, err := s.exec(ctx, tx, `UPDATE payins SET status = $2, payment_method_id = $3, authorized_amount = $4, captured_amount = $5,
			refusal_code = $6, refusal_desc = $7, auth_code = $8, avs_result_code = $9, cvc_result_code = $10, processor_reference = $11,
			network_transaction_id = $12, processor_outcome = $13, reconcile_lease_until = NULL, updated_at = $14, status_at = $14,
			operation = $15, operation_amount = $16, operation_key = $17, operation_outcome = $18,
			card_answer_due_at = $19, card_answer_since = $19
			WHERE id = $1 AND status = 'CREATED'`,
			o.PayinID, o.Status, sql.NullString{String: o.PaymentMethodID, Valid: o.PaymentMethodID != ""}, o.AuthorizedAmount, o.CapturedAmount,
			res.RefusalCode, res.RefusalDesc, res.AuthCode, res.AVSResultCode, res.CVCResultCode, res.Reference,
			res.NetworkTransactionID, outcome, at, op.Kind, op.Amount, op.IdempotencyKey, op.Outcome,
			sql.NullString{String: at, Valid: o.CardAnswerDue})
		if err != nil {
			return err
		}
		if n, _ := upd.RowsAffected(); n != 1 {
			return ivrpay.ErrStateChanged
		}
		if o.RiskDecline != nil {
			if err := s.addRiskDecline(ctx, tx, o.RiskDecline); err != nil {
				return err
			}
		}
		if o.PaymentMethodStatus != "" {
			if _, err := s.exec(ctx, tx, `UPDATE payment_methods SET status = $2, updated_at = $3,
				network_transaction_id = CASE WHEN network_transaction_id = '' THEN $4 ELSE network_transaction_id END WHERE id = $1`,
				o.PaymentMethodID, o.PaymentMethodStatus, at, res.NetworkTransactionID); err != nil {
				return err
			}
		}
		if o.AnnouncePaymentMethod {
			if err := s.emitPaymentMethodEvent(ctx, tx, o.PaymentMethodID); err != nil {
				return err
			}
		}
		if o.Payin != nil {
			final = o.Applied(o.Payin)
		} else if final, err = s.findPayin(ctx, tx, o.PayinID); err != nil {
			return err
		}
		// The payin's event is written with its outcome, in this transaction.
		if err := s.emitPayinEvent(ctx, tx, final, o.APIVersion); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, o.Audit); err != nil {
			return err
		}
		if o.Answer != nil {
			return s.finishTransaction(ctx, tx, *o.Answer)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The payin as the committed transaction wrote it; no need to read it again.
	return final, nil
}

// RecordPayinUnknown marks a CREATED payin's outcome unknown and stores its
// card. The first time, it also emits payin.created (SPEC §7: a payin whose
// outcome is not known yet), in the same transaction; a retry that finds the
// outcome still unknown emits nothing more.
func (s *Store) RecordPayinUnknown(ctx context.Context, u ivrpay.PayinUnknown) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.RecordPayinUnknown(%q)", u.PayinID)
	err = s.inTx(ctx, func(tx querier) error {
		var pmID sql.NullString
		if pm := u.NewPaymentMethod; pm != nil {
			if _, err := s.insertPaymentMethod(ctx, tx, *pm); err != nil {
				return err
			}
			pmID = sql.NullString{String: pm.ID, Valid: true}
		}
		record := `UPDATE payins SET processor_outcome = $2, payment_method_id = COALESCE($3, payment_method_id), updated_at = $4
			WHERE id = $1 AND status = 'CREATED'`
		args := []any{u.PayinID, ivrpay.ProcessorOutcomeUnknown, pmID, ivrpay.FormatTime(u.At)}
		// The row's own outcome tells the first record from a retry's, also
		// when two processes record at once: the second finds it UNKNOWN.
		upd, err := s.exec(ctx, tx, record+` AND processor_outcome <> $2`, args...)
		if err != nil {
			return err
		}
		n, _ := upd.RowsAffected()
		first := n == 1
		if !first {
			if upd, err = s.exec(ctx, tx, record, args...); err != nil {
				return err
			}
			if n, _ := upd.RowsAffected(); n != 1 {
				return ivrpay.ErrStateChanged
			}
		}
		if p, err = s.findPayin(ctx, tx, u.PayinID); err != nil || !first {
			return err
		}
		return s.emitPayinEvent(ctx, tx, p, u.APIVersion)
	})
	if errors.Is(err, ivrpay.ErrStateChanged) {
		// Resolved meanwhile (the reconciler, or another attempt): that stands.
		return s.findPayin(ctx, s.rdb, u.PayinID)
	}
	return p, err
}

// StorePaymentMethod stores a tokenized card with its event and connector answer.
func (s *Store) StorePaymentMethod(ctx context.Context, pm ivrpay.NewPaymentMethod, answer *ivrpay.ConnectorAnswer) (err error) {
	defer wrap(&err, "Store.StorePaymentMethod")
	err = s.inTx(ctx, func(tx querier) error {
		view, err := s.insertPaymentMethod(ctx, tx, pm)
		if err != nil {
			return err
		}
		if err := s.announcePaymentMethod(ctx, tx, view); err != nil {
			return err
		}
		if answer != nil {
			return s.finishTransaction(ctx, tx, *answer)
		}
		return nil
	})
	if isUniqueViolation(err) {
		return ivrpay.ErrConfigUsed
	}
	return err
}

// insertPaymentMethod stores pm and returns it as a read would.
func (s *Store) insertPaymentMethod(ctx context.Context, tx querier, pm ivrpay.NewPaymentMethod) (*ivrpay.PaymentMethod, error) {
	bc, err := jsonText(pm.BillingContact)
	if err != nil {
		return nil, err
	}
	md, err := jsonText(pm.Metadata)
	if err != nil {
		return nil, err
	}
	at := ivrpay.FormatTime(pm.CreatedAt)
	_, err = s.exec(ctx, tx, `INSERT INTO payment_methods (id, platform_id, merchant_id, payment_method_config_id, status, brand, last4,
		exp_month, exp_year, pan_ciphertext, fingerprint, network_transaction_id, billing_contact, metadata, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)`,
		pm.ID, pm.PlatformID, sql.NullString{String: pm.MerchantID, Valid: pm.MerchantID != ""},
		sql.NullString{String: pm.PaymentMethodConfigID, Valid: pm.PaymentMethodConfigID != ""},
		pm.Status, pm.Card.Brand, pm.Card.Last4, pm.Card.ExpMonth, pm.Card.ExpYear, pm.PANCiphertext, pm.Fingerprint,
		pm.NetworkTransactionID, bc, md, at, pm.CreatedBy)
	if err != nil {
		return nil, err
	}
	c := pm.Card
	return &ivrpay.PaymentMethod{ID: pm.ID, PaymentMethodConfigID: ivrpay.OptString(pm.PaymentMethodConfigID), PlatformID: pm.PlatformID,
		MerchantID: ivrpay.OptString(pm.MerchantID), Status: pm.Status, MethodType: ivrpay.MethodTypeCard, Card: &c,
		Fingerprint: pm.Fingerprint, BillingContact: billingContact(bc), Metadata: rawJSON(md), CreatedAt: parseTime(at), CreatedBy: pm.CreatedBy}, nil
}

// storedContact is the billing contact a read of bc returns, bc being what
// jsonText made of c, without decoding bc: a copy of c, unless one of its
// strings is not UTF-8, which the JSON encoding replaces (TestStoredContactIsRead).
func storedContact(c *ivrpay.BillingContact, bc sql.NullString) *ivrpay.BillingContact {
	if c == nil {
		return nil
	}
	for _, s := range [...]string{c.Name, c.AddressLine1, c.AddressLine2, c.City, c.State, c.PostalCode, c.Country, c.Email, c.Phone} {
		if !utf8.ValidString(s) {
			return billingContact(bc)
		}
	}
	read := *c
	return &read
}

// ClaimUnresolvedPayins leases up to limit CREATED payins last changed
// before cutoff.
func (s *Store) ClaimUnresolvedPayins(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) (out []*ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ClaimUnresolvedPayins")
	return s.leasePayins(ctx, "status = 'CREATED'", cutoff, lease, limit)
}

// leasePayins is leaseDue on payins, and reads the payins it leased.
func (s *Store) leasePayins(ctx context.Context, where string, cutoff time.Time, lease time.Duration, limit int) (out []*ivrpay.Payin, err error) {
	ids, err := s.leaseDue(ctx, "payins", where, cutoff, lease, limit)
	for _, id := range ids {
		p, err := s.findPayin(ctx, s.rdb, id)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, err
}

// PostponeReconcile extends the reconciler's lease of a payin or refund
// that it could not resolve, so that it is asked again only after until.
func (s *Store) PostponeReconcile(ctx context.Context, table, id string, until time.Time) (err error) {
	defer wrap(&err, "Store.PostponeReconcile(%q, %q)", table, id)
	if table != "payins" && table != "refunds" {
		return fmt.Errorf("no reconciled table %q", table)
	}
	_, err = s.execTx(ctx, `UPDATE `+table+` SET reconcile_lease_until = $2 WHERE id = $1`, id, ivrpay.FormatTime(until))
	return err
}

// dueQueryOn lists the ids of table's rows that match where, changed
// before $1 and not leased (by column) at $2, oldest first, up to $3.
func dueQueryOn(table, column, where string) string {
	return `SELECT id FROM ` + table + ` WHERE ` + where + ` AND updated_at <= $1
		AND (` + column + ` IS NULL OR ` + column + ` < $2) ORDER BY updated_at LIMIT $3`
}

// leaseDue leases, for the caller alone, up to limit rows of table that
// match where, changed before cutoff and are not leased by another: each
// row is claimed by a conditional UPDATE of its reconcile_lease_until, so of
// several processes that read the same row exactly one leases it. It
// returns the leased ids.
func (s *Store) leaseDue(ctx context.Context, table, where string, cutoff time.Time, lease time.Duration, limit int) ([]string, error) {
	ids, _, err := s.leaseDueOn(ctx, table, "reconcile_lease_until", where, cutoff, lease, limit)
	return ids, err
}

// leaseDueOn is leaseDue with another lease column; it also returns the end
// of the lease it wrote (the claim a later conditional write names).
func (s *Store) leaseDueOn(ctx context.Context, table, column, where string, cutoff time.Time, lease time.Duration, limit int) ([]string, string, error) {
	now := ivrpay.FormatTime(s.now())
	until := ivrpay.FormatTime(s.now().Add(lease))
	rows, err := s.rdb.QueryContext(ctx, dueQueryOn(table, column, where), ivrpay.FormatTime(cutoff), now, limit)
	if err != nil {
		return nil, until, err
	}
	var candidates []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, until, err
		}
		candidates = append(candidates, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, until, err
	}
	var leased []string
	for _, id := range candidates {
		n, err := s.execTx(ctx, `UPDATE `+table+` SET `+column+` = $2 WHERE id = $1 AND `+where+`
			AND (`+column+` IS NULL OR `+column+` < $3)`, id, until, now)
		if err != nil {
			return leased, until, err
		}
		if n == 1 { // else another process leased it, or it was resolved
			leased = append(leased, id)
		}
	}
	return leased, until, nil
}
