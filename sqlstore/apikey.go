package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/ivrpay/ivrpay"
)

var (
	_ ivrpay.AuthService   = (*Store)(nil)
	_ ivrpay.APIKeyService = (*Store)(nil)
)

// apiKeyStatusDeleted marks a deleted key; it is never shown and never authenticates.
const apiKeyStatusDeleted = "DELETED"

// Authenticate returns the enabled key with this secret and its platform,
// or, for a session key, the unexpired session as a principal. A key that
// authenticated is not read again for AuthCacheFor; each call returns its own
// copy of the key and of its platform.
func (s *Store) Authenticate(ctx context.Context, secret string) (k *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.Authenticate")
	if ivrpay.IsSessionSecret(secret) {
		return s.authenticateSession(ctx, secret)
	}
	hash := hashSecret(secret)
	now := s.now()
	if k, ok := s.auth.get(hash, now); ok {
		return k, nil
	}
	generation := s.auth.start()
	// One query for the key and its platform together.
	var pr platformRow
	row := s.queryRow(ctx, s.rdb, `SELECT k.id, k.platform_id, k.masked, k.statements, k.status, k.created_at, k.updated_at, `+
		platformColumns+` FROM api_keys k JOIN platforms p ON p.id = k.platform_id WHERE k.secret_hash = $1`, hash)
	k, err = s.scanAPIKey(scanWith{row, pr.dest()})
	if err != nil {
		if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
			return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: unknown API key.")
		}
		return nil, err
	}
	if k.Status != ivrpay.APIKeyStatusEnabled {
		return nil, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: this API key is disabled.")
	}
	k.Platform = pr.platform()
	s.auth.put(hash, k, now, generation)
	return k, nil
}

// scanWith scans a row into the caller's destinations and then extra ones, so
// that one scan function serves a table alone and joined.
type scanWith struct {
	row   scanner
	extra []any
}

func (w scanWith) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// CreateAPIKey creates a key on the caller's platform. Every permission of
// every statement must be one the caller holds for the same constraints.
func (s *Store) CreateAPIKey(ctx context.Context, statements []ivrpay.Statement) (k *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.CreateAPIKey")
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.Authorize(caller, "api_key:create", ivrpay.Object{PlatformID: caller.PlatformID}); err != nil {
		s.auditRefusal(ctx, "api_key.create", "", err)
		return nil, err
	}
	if caller.Session {
		err := errSessionCannot("create API keys")
		s.auditRefusal(ctx, "api_key.create", "", err)
		return nil, err
	}
	if err := ivrpay.CheckGrant(caller.Statements, statements); err != nil {
		s.auditRefusal(ctx, "api_key.create", "", err)
		return nil, err
	}
	if err := s.checkConstraintObjects(ctx, caller.PlatformID, statements); err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx querier) error {
		if k, err = s.insertAPIKey(ctx, tx, caller.PlatformID, statements); err != nil {
			return err
		}
		st, _ := json.Marshal(statements)
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "api_key.create", Target: k.ID, Outcome: ivrpay.AuditSuccess, Detail: string(st)})
	})
	return k, err
}

// checkConstraintObjects refuses a statement whose merchant, payin config or
// payment method config constraint names no object of the platform (400
// naming the field): such a statement would grant nothing, which is never
// what its author meant.
func (s *Store) checkConstraintObjects(ctx context.Context, platformID string, statements []ivrpay.Statement) error {
	for i, st := range statements {
		c := st.Constraints
		if c.Merchant != nil {
			m, err := s.findMerchant(ctx, c.Merchant.MerchantID)
			if err != nil || m.PlatformID != platformID {
				return ivrpay.FieldErrorf(fieldf("statements[%d].constraints.merchant.merchant_id", i),
					"merchant %s not found on platform %s", c.Merchant.MerchantID, platformID)
			}
		}
		if c.PayinConfig != nil {
			cfg, err := s.findPayinConfig(ctx, s.rdb, c.PayinConfig.PayinConfigID)
			if err != nil || cfg.PlatformID != platformID {
				return ivrpay.FieldErrorf(fieldf("statements[%d].constraints.payin_config.payin_config_id", i),
					"payin config %s not found on platform %s", c.PayinConfig.PayinConfigID, platformID)
			}
		}
		if c.PaymentMethodConfig != nil {
			pmc, err := s.findPaymentMethodConfig(ctx, s.rdb, c.PaymentMethodConfig.PaymentMethodConfigID)
			if err != nil || pmc.PlatformID != platformID {
				return ivrpay.FieldErrorf(fieldf("statements[%d].constraints.payment_method_config.payment_method_config_id", i),
					"payment method config %s not found on platform %s", c.PaymentMethodConfig.PaymentMethodConfigID, platformID)
			}
		}
	}
	return nil
}

// FindAPIKey returns a key of the caller's platform.
func (s *Store) FindAPIKey(ctx context.Context, id string) (k *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.FindAPIKey(%q)", id)
	k, err = s.findAPIKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "api_key:read", "API key", id, ivrpay.Object{PlatformID: k.PlatformID}); err != nil {
		return nil, err
	}
	return k, nil
}

// ListAPIKeys lists the caller's platform's keys.
func (s *Store) ListAPIKeys(ctx context.Context, page ivrpay.Page) (l *ivrpay.List[*ivrpay.APIKey], err error) {
	defer wrap(&err, "Store.ListAPIKeys")
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.Authorize(caller, "api_key:read", ivrpay.Object{PlatformID: caller.PlatformID}); err != nil {
		return nil, err
	}
	return listPage(ctx, s.rdb, page, listQuery{
		base: apiKeySelect, where: []string{"platform_id = $1", "status <> 'DELETED'"}, args: []any{caller.PlatformID},
	}, s.scanAPIKey, func(k *ivrpay.APIKey) string { return k.ID })
}

// SetAPIKeyStatus enables or disables a key of the caller's platform.
func (s *Store) SetAPIKeyStatus(ctx context.Context, id, status string) (k *ivrpay.APIKey, err error) {
	defer wrap(&err, "Store.SetAPIKeyStatus(%q, %q)", id, status)
	if k, err = s.authorizeKeyChange(ctx, id, "api_key:update"); err != nil {
		return nil, err
	}
	if err := s.setKeyStatus(ctx, id, status); err != nil {
		return nil, err
	}
	return s.findAPIKey(ctx, id)
}

// DeleteAPIKey deletes a key of the caller's platform; it stops authenticating
// at once in this process, and within AuthCacheFor in the others.
func (s *Store) DeleteAPIKey(ctx context.Context, id string) (err error) {
	defer wrap(&err, "Store.DeleteAPIKey(%q)", id)
	if _, err = s.authorizeKeyChange(ctx, id, "api_key:delete"); err != nil {
		return err
	}
	return s.setKeyStatus(ctx, id, apiKeyStatusDeleted)
}

func (s *Store) authorizeKeyChange(ctx context.Context, id, permission string) (*ivrpay.APIKey, error) {
	k, err := s.findAPIKey(ctx, id)
	if err != nil {
		return nil, err
	}
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.AuthorizeObject(caller, permission, "API key", id, ivrpay.Object{PlatformID: k.PlatformID}); err != nil {
		return nil, err
	}
	if caller.Session {
		return nil, errSessionCannot("change API keys")
	}
	// Changing a key is granting or revoking what it holds: a caller may only
	// touch keys whose statements it could have created itself.
	if err := ivrpay.CheckGrant(caller.Statements, k.Statements); err != nil {
		return nil, ivrpay.Errorf(ivrpay.EFORBIDDEN, "cannot change API key %s: it holds permissions this key does not", id)
	}
	return k, nil
}

func (s *Store) setKeyStatus(ctx context.Context, id, status string) error {
	k, err := s.findAPIKey(ctx, id)
	if err != nil {
		return err
	}
	err = s.updateAudited(ctx, ivrpay.Errorf(ivrpay.ENOTFOUND, "API key %s not found", id),
		ivrpay.AuditEvent{PlatformID: k.PlatformID, Action: "api_key.set_status", Target: id, Outcome: ivrpay.AuditSuccess, Detail: "status=" + status},
		`UPDATE api_keys SET status = $2, updated_at = $3 WHERE id = $1 AND status <> 'DELETED'`, id, status, ivrpay.FormatTime(s.now()))
	// After the commit, and whatever the error: a failed commit may still have happened.
	s.auth.clear()
	return err
}

const apiKeySelect = `SELECT id, platform_id, masked, statements, status, created_at, updated_at FROM api_keys`

func (s *Store) findAPIKey(ctx context.Context, id string) (*ivrpay.APIKey, error) {
	k, err := s.scanAPIKey(s.queryRow(ctx, s.rdb, apiKeySelect+` WHERE id = $1 AND status <> 'DELETED'`, id))
	if ivrpay.ErrorCode(err) == ivrpay.ENOTFOUND {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "API key %s not found", id)
	}
	return k, err
}

func (s *Store) scanAPIKey(row scanner) (*ivrpay.APIKey, error) {
	var k ivrpay.APIKey
	var statements, created, updated string
	err := row.Scan(&k.ID, &k.PlatformID, &k.MaskedSecret, &statements, &k.Status, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "API key not found")
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(statements), &k.Statements); err != nil {
		return nil, err
	}
	k.CreatedAt, k.UpdatedAt = parseTime(created), parseTime(updated)
	return &k, nil
}
