package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.MerchantService = (*Store)(nil)

// CreateMerchant creates a merchant on the caller's platform: ACTIVE at once in
// sandbox, PENDING in production until the operator activates it.
func (s *Store) CreateMerchant(ctx context.Context, m ivrpay.MerchantCreate) (*ivrpay.Merchant, error) {
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.Authorize(caller, "merchant:create", ivrpay.Object{PlatformID: caller.PlatformID}); err != nil {
		return nil, err
	}
	return s.createMerchant(ctx, caller.PlatformID, m)
}

func (s *Store) createMerchant(ctx context.Context, platformID string, in ivrpay.MerchantCreate) (m *ivrpay.Merchant, err error) {
	defer wrap(&err, "Store.createMerchant(%q)", platformID)
	if err := in.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	status := ivrpay.MerchantStatusPending
	if s.opts.Mode == ivrpay.ModeSandbox {
		status = ivrpay.MerchantStatusActive
	}
	m = &ivrpay.Merchant{ID: s.newID(ivrpay.PrefixMerchant), PlatformID: platformID, Name: in.Name, DBAName: in.DBAName,
		Email: in.Email, Status: status, CreatedAt: now, UpdatedAt: now}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO merchants (id, platform_id, name, dba_name, email, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, m.ID, platformID, m.Name, m.DBAName, m.Email, m.Status, ivrpay.FormatTime(now))
	return m, err
}

// FindMerchant returns a merchant the caller may read.
func (s *Store) FindMerchant(ctx context.Context, id string) (m *ivrpay.Merchant, err error) {
	defer wrap(&err, "Store.FindMerchant(%q)", id)
	if m, err = s.findMerchant(ctx, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "merchant:read", "merchant", id, ivrpay.Object{PlatformID: m.PlatformID, MerchantID: m.ID}); err != nil {
		return nil, err
	}
	return m, nil
}

// ListMerchants lists the merchants the caller may read.
func (s *Store) ListMerchants(ctx context.Context, page ivrpay.Page) (l *ivrpay.List[*ivrpay.Merchant], err error) {
	defer wrap(&err, "Store.ListMerchants")
	q, err := scoped(ctx, "merchant:read", scopeColumns{merchant: "id"})
	if err != nil {
		return nil, err
	}
	q.base = merchantSelect
	return listPage(ctx, s.rdb, page, q, scanMerchant, func(m *ivrpay.Merchant) string { return m.ID })
}

const merchantSelect = `SELECT id, platform_id, name, dba_name, email, status, created_at, updated_at FROM merchants`

func (s *Store) findMerchant(ctx context.Context, id string) (*ivrpay.Merchant, error) {
	m, err := scanMerchant(s.queryRow(ctx, s.rdb, merchantSelect+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "merchant %s not found", id)
	}
	return m, err
}

func scanMerchant(row scanner) (*ivrpay.Merchant, error) {
	var m ivrpay.Merchant
	var created, updated string
	if err := row.Scan(&m.ID, &m.PlatformID, &m.Name, &m.DBAName, &m.Email, &m.Status, &created, &updated); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = parseTime(created), parseTime(updated)
	return &m, nil
}
