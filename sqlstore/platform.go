package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.OperatorService = (*Store)(nil)

// Empty reports whether no platform exists yet.
func (s *Store) Empty(ctx context.Context) (empty bool, err error) {
	defer wrap(&err, "Store.Empty")
	var n int
	err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM platforms`).Scan(&n)
	return n == 0, err
}

// CreatePlatform creates a platform (IVR off unless enableIVR, minimum API
// version 2024-10-16) and its admin key (group#all on the platform).
func (s *Store) CreatePlatform(ctx context.Context, name string, enableIVR bool) (p *ivrpay.Platform, key *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.CreatePlatform(%q)", name)
	if name == "" {
		return nil, nil, ivrpay.FieldErrorf("name", "is required")
	} else if len(name) > 100 {
		return nil, nil, ivrpay.FieldErrorf("name", "must be at most 100 characters")
	}
	now := s.now()
	p = &ivrpay.Platform{ID: s.newID(ivrpay.PrefixPlatform), Name: name, IVRPayments: enableIVR,
		MinAPIVersion: ivrpay.LatestAPIVersion, Risk: ivrpay.DefaultRiskSettings, CreatedAt: now, UpdatedAt: now}
	err = s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO platforms (id, name, ivr_payments, min_api_version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, p.ID, p.Name, boolInt(p.IVRPayments), string(p.MinAPIVersion), ivrpay.FormatTime(now)); err != nil {
			return err
		}
		if key, err = s.insertAPIKey(ctx, tx, p.ID, ivrpay.AdminStatements(p.ID)); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{PlatformID: p.ID, Action: "platform.create", Target: p.ID,
			Outcome: ivrpay.AuditSuccess, Detail: fmt.Sprintf("ivr_payments=%t admin_key=%s", enableIVR, key.ID)})
	})
	if err != nil {
		return nil, nil, err
	}
	key.Platform = p
	return p, key, nil
}

// SetPlatformIVR turns the platform's ivr_payments feature flag on or off.
func (s *Store) SetPlatformIVR(ctx context.Context, platformID string, enabled bool) (p *ivrpay.Platform, err error) {
	defer wrap(&err, "Store.SetPlatformIVR(%q)", platformID)
	action := "platform.disable_ivr"
	if enabled {
		action = "platform.enable_ivr"
	}
	return s.updatePlatform(ctx, platformID, action, fmt.Sprintf("ivr_payments=%t", enabled), `UPDATE platforms SET ivr_payments = $2, updated_at = $3 WHERE id = $1`, boolInt(enabled))
}

// SetPlatformMinAPIVersion sets the platform's minimum API version.
func (s *Store) SetPlatformMinAPIVersion(ctx context.Context, platformID string, v ivrpay.APIVersion) (p *ivrpay.Platform, err error) {
	defer wrap(&err, "Store.SetPlatformMinAPIVersion(%q)", platformID)
	if !v.Known() {
		return nil, ivrpay.FieldErrorf("version", "unknown API version %q; known versions are 2023-01-01, 2023-12-01 and 2024-10-16", v)
	}
	return s.updatePlatform(ctx, platformID, "platform.set_min_api_version", "min_api_version="+string(v), `UPDATE platforms SET min_api_version = $2, updated_at = $3 WHERE id = $1`, string(v))
}

func (s *Store) updatePlatform(ctx context.Context, id, action, detail, query string, value any) (*ivrpay.Platform, error) {
	err := s.updateAudited(ctx, ivrpay.Errorf(ivrpay.ENOTFOUND, "platform %s not found", id),
		ivrpay.AuditEvent{PlatformID: id, Action: action, Target: id, Outcome: ivrpay.AuditSuccess, Detail: detail},
		query, id, value, ivrpay.FormatTime(s.now()))
	// Authentications carry the platform: after the commit, and whatever the error.
	s.auth.clear()
	if err != nil {
		return nil, err
	}
	return s.findPlatform(ctx, s.rdb, id)
}

// updateAudited runs one UPDATE and its audit record in one transaction;
// notFound is returned when the UPDATE matched no row.
func (s *Store) updateAudited(ctx context.Context, notFound error, audit ivrpay.AuditEvent, query string, args ...any) error {
	return s.inTx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound
		}
		return s.insertAudit(ctx, tx, audit)
	})
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) findPlatform(ctx context.Context, q querier, id string) (*ivrpay.Platform, error) {
	var r platformRow
	err := s.queryRow(ctx, q, `SELECT `+platformColumns+` FROM platforms p WHERE p.id = $1`, id).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "platform %s not found", id)
	} else if err != nil {
		return nil, err
	}
	return r.platform(), nil
}

// platformColumns are the platforms columns platformRow scans, for table alias p.
const platformColumns = `p.id, p.name, p.ivr_payments, p.min_api_version, p.created_at, p.updated_at, p.risk`

// platformRow is a platforms row as scanned.
type platformRow struct {
	p                         ivrpay.Platform
	ivr                       int
	v, created, updated, risk string
}

func (r *platformRow) dest() []any {
	return []any{&r.p.ID, &r.p.Name, &r.ivr, &r.v, &r.created, &r.updated, &r.risk}
}

func (r *platformRow) platform() *ivrpay.Platform {
	p := r.p
	p.IVRPayments, p.MinAPIVersion = r.ivr == 1, ivrpay.APIVersion(r.v)
	p.CreatedAt, p.UpdatedAt = parseTime(r.created), parseTime(r.updated)
	p.Risk = riskSettings(r.risk)
	return &p
}

// FindPlatform returns a platform by id (operator use).
func (s *Store) FindPlatform(ctx context.Context, id string) (p *ivrpay.Platform, err error) {
	defer wrap(&err, "Store.FindPlatform(%q)", id)
	return s.findPlatform(ctx, s.rdb, id)
}

// ActivateMerchant sets a merchant ACTIVE (production merchants start PENDING).
func (s *Store) ActivateMerchant(ctx context.Context, merchantID string) (m *ivrpay.Merchant, err error) {
	defer wrap(&err, "Store.ActivateMerchant(%q)", merchantID)
	m, err = s.findMerchant(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	if err := s.updateAudited(ctx, ivrpay.Errorf(ivrpay.ENOTFOUND, "merchant %s not found", merchantID),
		ivrpay.AuditEvent{PlatformID: m.PlatformID, Action: "merchant.activate", Target: merchantID, Outcome: ivrpay.AuditSuccess},
		`UPDATE merchants SET status = $2, updated_at = $3 WHERE id = $1`, merchantID, ivrpay.MerchantStatusActive, ivrpay.FormatTime(s.now())); err != nil {
		return nil, err
	}
	return s.findMerchant(ctx, merchantID)
}

// CreateMerchantAsOperator creates a merchant on a platform without an API key (sandbox bootstrap, demo).
func (s *Store) CreateMerchantAsOperator(ctx context.Context, platformID string, m ivrpay.MerchantCreate) (*ivrpay.Merchant, error) {
	return s.createMerchant(ctx, platformID, m)
}

// DisableAPIKey disables any key (operator use, e.g. a leaked key). The
// key stops authenticating at once in this process, and within AuthCacheFor
// in the others (ivrpay admin is another process than the servers).
func (s *Store) DisableAPIKey(ctx context.Context, keyID string) (k *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.DisableAPIKey(%q)", keyID)
	if err := s.setKeyStatus(ctx, keyID, ivrpay.APIKeyStatusDisabled); err != nil {
		return nil, err
	}
	return s.findAPIKey(ctx, keyID)
}

// hashSecret is how key secrets are stored: they are 256 random bits, so a
// fast hash is enough (no password-style stretching needed).
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *Store) insertAPIKey(ctx context.Context, tx querier, platformID string, statements []ivrpay.Statement) (*ivrpay.APIKey, error) {
	now := s.now()
	secret := ivrpay.NewAPIKeySecret(s.opts.Mode)
	k := &ivrpay.APIKey{ID: s.newID(ivrpay.PrefixAPIKey), PlatformID: platformID, Secret: secret,
		MaskedSecret: ivrpay.MaskAPIKeySecret(secret), Statements: statements, Status: ivrpay.APIKeyStatusEnabled,
		CreatedAt: now, UpdatedAt: now}
	st, err := json.Marshal(statements)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_keys (id, platform_id, secret_hash, masked, statements, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, k.ID, platformID, hashSecret(secret), k.MaskedSecret, string(st), k.Status, ivrpay.FormatTime(now))
	return k, err
}
