package sqlstore

import (
	"context"
	"strings"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.AuditService = (*Store)(nil)

// auditFrom fills in what the context knows of an audit event: the actor,
// the client address, the time and an id.
func (s *Store) auditFrom(ctx context.Context, e ivrpay.AuditEvent) ivrpay.AuditEvent {
	if e.Actor == "" {
		e.Actor = ivrpay.ActorFromContext(ctx)
	}
	if e.ClientAddress == "" {
		e.ClientAddress = ivrpay.ClientAddressFromContext(ctx)
	}
	if e.PlatformID == "" {
		if k := ivrpay.PrincipalFromContext(ctx); k != nil {
			e.PlatformID = k.PlatformID
		}
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.now()
	}
	if e.ID == "" {
		e.ID = s.newID("aud_")
	}
	return e
}

// insertAudit writes an audit event inside tx, so that the record and the
// change it describes commit together.
func (s *Store) insertAudit(ctx context.Context, tx querier, e ivrpay.AuditEvent) error {
	e = s.auditFrom(ctx, e)
	_, err := s.exec(ctx, tx, `INSERT INTO audit_events (id, occurred_at, actor, platform_id, action, target, client_address, outcome, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, ivrpay.FormatTime(e.OccurredAt), e.Actor, e.PlatformID, e.Action,
		e.Target, e.ClientAddress, e.Outcome, e.Detail)
	return err
}

// RecordAudit writes an audit event on its own (refused requests, auth failures).
func (s *Store) RecordAudit(ctx context.Context, e ivrpay.AuditEvent) (err error) {
	defer wrap(&err, "Store.RecordAudit(%q)", e.Action)
	return s.inTx(context.WithoutCancel(ctx), func(tx querier) error { return s.insertAudit(ctx, tx, e) })
}

// ListAudit returns audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, f ivrpay.AuditFilter) (out []ivrpay.AuditEvent, err error) {
	defer wrap(&err, "Store.ListAudit")
	var q listQuery
	for col, v := range map[string]string{"actor": f.Actor, "platform_id": f.PlatformID, "outcome": f.Outcome} {
		if v != "" {
			q.where = append(q.where, col+" = "+q.arg(v))
		}
	}
	if f.Action != "" {
		// An action filter matches a whole family with a trailing dot: "payin." finds payin.create.
		if strings.HasSuffix(f.Action, ".") {
			q.where = append(q.where, "action LIKE "+q.arg(f.Action+"%"))
		} else {
			q.where = append(q.where, "action = "+q.arg(f.Action))
		}
	}
	if !f.Since.IsZero() {
		q.where = append(q.where, "occurred_at >= "+q.arg(ivrpay.FormatTime(f.Since)))
	}
	if !f.Until.IsZero() {
		q.where = append(q.where, "occurred_at < "+q.arg(ivrpay.FormatTime(f.Until)))
	}
	where := ""
	if len(q.where) > 0 {
		where = " WHERE " + strings.Join(q.where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, occurred_at, actor, platform_id, action, target, client_address, outcome, detail
		FROM audit_events`+where+` ORDER BY occurred_at DESC, id DESC LIMIT `+q.arg(limit), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e ivrpay.AuditEvent
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.PlatformID, &e.Action, &e.Target, &e.ClientAddress, &e.Outcome, &e.Detail); err != nil {
			return nil, err
		}
		e.OccurredAt = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditRefusal records a refused change (an escalation attempt, say); a
// failure to record it is logged, never returned over the refusal itself.
func (s *Store) auditRefusal(ctx context.Context, action, target string, refusal error) {
	e := ivrpay.AuditEvent{Action: action, Target: target, Outcome: ivrpay.AuditDenied, Detail: ivrpay.ErrorMessage(refusal)}
	if err := s.RecordAudit(ctx, e); err != nil {
		s.opts.Logger.Error("audit record failed", "action", action, "error", err)
	}
}
