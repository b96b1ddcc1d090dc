package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.SessionService = (*Store)(nil)

// errSessionCannot refuses what a session key may never do, whatever its
// statements: a session is a narrowed, short-lived copy of its creating key,
// and minting keys or further sessions with it would outlive that.
func errSessionCannot(what string) error {
	return ivrpay.Errorf(ivrpay.EFORBIDDEN, "a session key cannot %s; use an API key", what)
}

// CreateSession creates a session on the caller's platform. It needs
// session:create; its statements obey the no-escalation rule against the
// caller's, and a session cannot create sessions.
func (s *Store) CreateSession(ctx context.Context, in ivrpay.SessionCreate) (ses *ivrpay.Session, err error) {
	defer wrap(&err, "Store.CreateSession")
	caller := ivrpay.PrincipalFromContext(ctx)
	if caller == nil {
		return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized.")
	}
	if err := ivrpay.Authorize(caller, "session:create", ivrpay.Object{PlatformID: caller.PlatformID}); err != nil {
		s.auditRefusal(ctx, "session.create", "", err)
		return nil, err
	}
	if caller.Session {
		err := errSessionCannot("create sessions")
		s.auditRefusal(ctx, "session.create", "", err)
		return nil, err
	}
	if err := ivrpay.CheckGrant(caller.Statements, in.Statements); err != nil {
		s.auditRefusal(ctx, "session.create", "", err)
		return nil, err
	}
	if err := s.checkConstraintObjects(ctx, caller.PlatformID, in.Statements); err != nil {
		return nil, err
	}
	now := s.now()
	secret := ivrpay.NewSessionSecret(s.opts.Mode)
	ses = &ivrpay.Session{ID: s.newID(ivrpay.PrefixSession), PlatformID: caller.PlatformID, SessionKey: secret,
		Statements: in.Statements, ExpiresAt: now.Add(in.Lifetime()), CreatedAt: now, CreatedBy: caller.ID}
	st, err := json.Marshal(in.Statements)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx querier) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO sessions (id, platform_id, api_key_id, secret_hash, statements, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, ses.ID, ses.PlatformID, caller.ID, hashSecret(secret), string(st),
			ivrpay.FormatTime(ses.ExpiresAt), ivrpay.FormatTime(now)); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "session.create", Target: ses.ID, Outcome: ivrpay.AuditSuccess,
			Detail: "expires_at=" + ivrpay.FormatTime(ses.ExpiresAt) + " statements=" + string(st)})
	})
	if err != nil {
		return nil, err
	}
	return ses, nil
}

// ListActiveSessions lists the unexpired sessions of the caller's platform,
// for a key that may read API keys (a session is one).
func (s *Store) ListActiveSessions(ctx context.Context, page ivrpay.Page) (l *ivrpay.List[*ivrpay.Session], err error) {
	defer wrap(&err, "Store.ListActiveSessions")
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.Authorize(caller, "api_key:read", ivrpay.Object{PlatformID: callerPlatform(caller)}); err != nil {
		return nil, err
	}
	return listPage(ctx, s.rdb, page, listQuery{
		base:  `SELECT id, platform_id, api_key_id, statements, expires_at, created_at FROM sessions`,
		where: []string{"platform_id = $1", "expires_at > $2"}, args: []any{caller.PlatformID, ivrpay.FormatTime(s.now())},
	}, scanSession, func(ses *ivrpay.Session) string { return ses.ID })
}

func scanSession(row scanner) (*ivrpay.Session, error) {
	var ses ivrpay.Session
	var statements, expires, created string
	if err := row.Scan(&ses.ID, &ses.PlatformID, &ses.CreatedBy, &statements, &expires, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(statements), &ses.Statements); err != nil {
		return nil, err
	}
	ses.ExpiresAt, ses.CreatedAt = parseTime(expires), parseTime(created)
	return &ses, nil
}

// authenticateSession returns the principal of an unexpired session whose
// creating key is still enabled: disabling or deleting a key ends its
// sessions at once. The first use of a session is audited.
func (s *Store) authenticateSession(ctx context.Context, secret string) (*ivrpay.APIKey, error) {
	var pr platformRow
	var k ivrpay.APIKey
	var statements, expires, created, keyStatus string
	var firstUsed sql.NullString
	err := s.queryRow(ctx, s.rdb, `SELECT s.id, s.platform_id, s.statements, s.expires_at, s.created_at, s.first_used_at, k.status, `+
		platformColumns+` FROM sessions s JOIN api_keys k ON k.id = s.api_key_id JOIN platforms p ON p.id = s.platform_id
		WHERE s.secret_hash = $1`, hashSecret(secret)).
		Scan(append([]any{&k.ID, &k.PlatformID, &statements, &expires, &created, &firstUsed, &keyStatus}, pr.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: unknown session key.")
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(parseTime(expires)) {
		return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: this session key expired at %s.", expires)
	}
	if keyStatus != ivrpay.APIKeyStatusEnabled {
		return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: the API key that created this session is no longer enabled.")
	}
	if err := json.Unmarshal([]byte(statements), &k.Statements); err != nil {
		return nil, err
	}
	k.Status, k.Session, k.Platform = ivrpay.APIKeyStatusEnabled, true, pr.platform()
	k.CreatedAt, k.UpdatedAt = parseTime(created), parseTime(created)
	if !firstUsed.Valid {
		// One audit record per session, on its first use; later uses are in
		// the request log and in the audit records of what they change.
		err = s.inTx(ctx, func(tx querier) error {
			res, err := s.exec(ctx, tx, `UPDATE sessions SET first_used_at = $2 WHERE id = $1 AND first_used_at IS NULL`, k.ID, ivrpay.FormatTime(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
			return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Actor: k.ID, PlatformID: k.PlatformID, Action: "session.use",
				Target: k.ID, Outcome: ivrpay.AuditSuccess, Detail: "first use"})
		})
		if err != nil {
			return nil, err
		}
	}
	return &k, nil
}

// DeleteExpiredSessions deletes the sessions that expired before now and
// returns how many; an expired session key already answers 401 before that.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (n int64, err error) {
	defer wrap(&err, "Store.DeleteExpiredSessions")
	res, err := s.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ivrpay.FormatTime(s.now()))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
