package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ivrpay/ivrpay"
)

var (
	_ ivrpay.PayinConfigService         = (*Store)(nil)
	_ ivrpay.PaymentMethodConfigService = (*Store)(nil)
)

// CreatePayinConfig creates step 1 of a payin. A repeat with the same
// idempotency_key and the same body returns the first config; the same key
// with a different body is a conflict. Invalid requests do not use up the key.
func (s *Store) CreatePayinConfig(ctx context.Context, in ivrpay.PayinConfigCreate) (c *ivrpay.PayinConfig, err error) {
	defer wrap(&err, "Store.CreatePayinConfig")
	caller := ivrpay.PrincipalFromContext(ctx)
	if in.MerchantID == "" {
		return nil, ivrpay.FieldErrorf("merchant_id", "is required")
	}
	if err := ivrpay.Authorize(caller, "payin_config:create", ivrpay.Object{PlatformID: caller.PlatformID, MerchantID: in.MerchantID}); err != nil {
		return nil, err
	}
	amount, err := in.Validate(ivrpay.VersionFromContext(ctx))
	if err != nil {
		return nil, err
	}
	bc, err := jsonText(in.BillingContact)
	if err != nil {
		return nil, err
	}
	md, err := jsonText(in.Metadata)
	if err != nil {
		return nil, err
	}
	mmd, err := jsonText(in.MethodMetadata)
	if err != nil {
		return nil, err
	}
	hash := ivrpay.RequestHash([]any{in.MerchantID, amount, in.CurrencyCode, bc, md, mmd, in.ProcessingMode})
	now := s.now()
	id := s.newID(ivrpay.PrefixPayinConfig)
	// The config is written even if the client hangs up, so that its retry
	// with the same idempotency_key finds it, and so that the insert can
	// share a group commit (see inTx).
	ctx = context.WithoutCancel(ctx)
	key := ivrpay.ScopedIdempotencyKey(in.MerchantID, in.IdempotencyKey)
	// The merchant's check is part of the insert, which writes nothing unless
	// the merchant is the caller's and ACTIVE: no read before the write (on
	// PostgreSQL one round trip in all). Writing nothing is then explained
	// by a read: an earlier config under the key, or the merchant.
	var merchantName string
	for attempt := 0; ; attempt++ {
		inserted, err := s.writeQueryRow(ctx, []any{&merchantName},
			`INSERT INTO payin_configs (id, platform_id, merchant_id, idempotency_key, request_hash,
				amount, currency_code, billing_contact, metadata, method_metadata, processing_mode, created_at)
				SELECT $1, $2, m.id, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM merchants m
				WHERE m.id = $3 AND m.platform_id = $2 AND m.status = $13
				ON CONFLICT (platform_id, idempotency_key) DO NOTHING
				RETURNING (SELECT name FROM merchants WHERE id = payin_configs.merchant_id)`,
			id, caller.PlatformID, in.MerchantID, key, hash, amount, in.CurrencyCode, bc, md, mmd, in.ProcessingMode,
			ivrpay.FormatTime(now), ivrpay.MerchantStatusActive)
		if err != nil {
			return nil, err
		}
		if inserted {
			break
		}
		firstID, found, err := s.idempotentReplay(ctx, "payin_configs", "payin config", caller.PlatformID, key, hash)
		if err != nil {
			return nil, err
		}
		if found {
			// A replay of the key: the config as it is now (it may have a payin).
			return s.findPayinConfig(ctx, s.rdb, firstID)
		}
		m, err := s.findMerchant(ctx, in.MerchantID)
		if err != nil || m.PlatformID != caller.PlatformID {
			return nil, ivrpay.FieldErrorf("merchant_id", "merchant %s not found on platform %s", in.MerchantID, caller.PlatformID)
		}
		if m.Status != ivrpay.MerchantStatusActive {
			return nil, ivrpay.FieldErrorf("merchant_id", "merchant %s is %s; payin configs need an ACTIVE merchant", m.ID, m.Status)
		}
		// The merchant became ACTIVE after the insert looked: once more.
		if attempt == 1 {
			return nil, fmt.Errorf("merchant %s is ACTIVE but the config's insert found it otherwise twice", m.ID)
		}
	}
	// The config as a read would return it, without reading it.
	return &ivrpay.PayinConfig{ID: id, PlatformID: caller.PlatformID, MerchantID: in.MerchantID, Merchant: ivrpay.MerchantRef{ID: in.MerchantID, Name: merchantName},
		IdempotencyKey: ivrpay.ClientIdempotencyKey(key), Amount: amount, CurrencyCode: in.CurrencyCode, BillingContact: billingContact(bc),
		Metadata: rawJSON(md), MethodMetadata: rawJSON(mmd), ProcessingMode: in.ProcessingMode, CreatedAt: parseTime(ivrpay.FormatTime(now))}, nil
}

// FindPayinConfig returns a payin config the caller may read.
func (s *Store) FindPayinConfig(ctx context.Context, id string) (c *ivrpay.PayinConfig, err error) {
	defer wrap(&err, "Store.FindPayinConfig(%q)", id)
	if c, err = s.findPayinConfig(ctx, s.rdb, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payin_config:read", "payin config", id, c.Object()); err != nil {
		return nil, err
	}
	return c, nil
}

// payinConfigColumns select a config with its merchant's name and its
// approved payin. The approved-payin subquery repeats the predicate of the
// partial index payins_one_live_per_config word for word, so that SQLite uses
// the index instead of scanning every payin (it only matches predicates literally).
var payinConfigColumns = `c.id, c.platform_id, c.merchant_id, m.name AS merchant_name, c.idempotency_key, c.amount, c.currency_code,
		c.billing_contact, c.metadata, c.method_metadata, c.processing_mode, c.created_at,
		(SELECT p.id FROM payins p WHERE p.payin_config_id = c.id AND p.` + holdsConfig + ` AND p.status <> 'CREATED') AS payin_id`

// payinConfigFrom is the FROM clause payinConfigColumns' aliases name.
const payinConfigFrom = `FROM payin_configs c JOIN merchants m ON m.id = c.merchant_id`

// holdsConfig is the predicate of the partial index payins_one_live_per_config
// (migrations/00001_init.sql), made from ivrpay.PayinStatusesHoldingConfig:
// the one list of the statuses that hold a config. TestHoldsConfigIsTheIndexPredicate
// checks that the migration says the same.
var holdsConfig = func() string {
	quoted := make([]string, len(ivrpay.PayinStatusesHoldingConfig))
	for i, s := range ivrpay.PayinStatusesHoldingConfig {
		quoted[i] = "'" + s + "'"
	}
	return "status IN (" + strings.Join(quoted, ", ") + ")"
}()

func (s *Store) findPayinConfig(ctx context.Context, q querier, id string) (*ivrpay.PayinConfig, error) {
	c, err := scanPayinConfig(s.queryRow(ctx, q, `SELECT `+payinConfigColumns+` `+payinConfigFrom+` WHERE c.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payin config %s not found", id)
	}
	return c, err
}

// ListPayinConfigs lists the payin configs the caller may read, filtered by
// merchant and by whether an approved payin used them.
func (s *Store) ListPayinConfigs(ctx context.Context, f ivrpay.PayinConfigFilter) (l *ivrpay.List[*ivrpay.PayinConfig], err error) {
	defer wrap(&err, "Store.ListPayinConfigs")
	if f.Used != "" && f.Used != ivrpay.PayinConfigUsed && f.Used != ivrpay.PayinConfigUnused {
		return nil, ivrpay.FieldErrorf("used", "must be used or unused")
	}
	q, err := scoped(ctx, "payin_config:read", scopeColumns{merchant: "merchant_id", payinConfig: "id"})
	if err != nil {
		return nil, err
	}
	// The filters apply to the joined row, so the select is wrapped.
	q.base = `SELECT id, platform_id, merchant_id, merchant_name, idempotency_key, amount, currency_code, billing_contact, metadata,
		method_metadata, processing_mode, created_at, payin_id FROM (SELECT ` + payinConfigColumns + ` ` + payinConfigFrom + `) AS pc`
	if f.MerchantID != "" {
		q.where = append(q.where, "merchant_id = "+q.arg(f.MerchantID))
	}
	switch f.Used {
	case ivrpay.PayinConfigUsed:
		q.where = append(q.where, "payin_id IS NOT NULL")
	case ivrpay.PayinConfigUnused:
		q.where = append(q.where, "payin_id IS NULL")
	}
	return listPage(ctx, s.rdb, f.Page, q, scanPayinConfig, func(c *ivrpay.PayinConfig) string { return c.ID })
}

func scanPayinConfig(row scanner) (*ivrpay.PayinConfig, error) {
	var c ivrpay.PayinConfig
	var bc, md, mmd sql.NullString
	var payinID sql.NullString
	var created string
	if err := row.Scan(&c.ID, &c.PlatformID, &c.MerchantID, &c.Merchant.Name, &c.IdempotencyKey, &c.Amount, &c.CurrencyCode,
		&bc, &md, &mmd, &c.ProcessingMode, &created, &payinID); err != nil {
		return nil, err
	}
	c.Merchant.ID = c.MerchantID
	c.IdempotencyKey = ivrpay.ClientIdempotencyKey(c.IdempotencyKey)
	c.BillingContact, c.Metadata, c.MethodMetadata = billingContact(bc), rawJSON(md), rawJSON(mmd)
	c.CreatedAt = parseTime(created)
	if payinID.Valid {
		c.Payin = &ivrpay.PayinRef{PayinID: payinID.String}
	}
	return &c, nil
}

// CreatePaymentMethodConfig creates step 1 of storing a card, with the same
// idempotency_key rules as payin configs.
func (s *Store) CreatePaymentMethodConfig(ctx context.Context, in ivrpay.PaymentMethodConfigCreate) (c *ivrpay.PaymentMethodConfig, err error) {
	defer wrap(&err, "Store.CreatePaymentMethodConfig")
	caller := ivrpay.PrincipalFromContext(ctx)
	if in.PlatformID == "" {
		return nil, ivrpay.FieldErrorf("platform_id", "is required")
	}
	if err := ivrpay.Authorize(caller, "payment_method_config:create", ivrpay.Object{PlatformID: in.PlatformID, MerchantID: in.MerchantID}); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.MerchantID != "" {
		m, err := s.findMerchant(ctx, in.MerchantID)
		if err != nil || m.PlatformID != caller.PlatformID {
			return nil, ivrpay.FieldErrorf("merchant_id", "merchant %s not found on platform %s", in.MerchantID, caller.PlatformID)
		}
	}
	bc, err := jsonText(in.BillingContact)
	if err != nil {
		return nil, err
	}
	md, err := jsonText(in.Metadata)
	if err != nil {
		return nil, err
	}
	merchant := sql.NullString{String: in.MerchantID, Valid: in.MerchantID != ""}
	hash := ivrpay.RequestHash([]any{in.PlatformID, in.MerchantID, bc, md})
	id := s.newID(ivrpay.PrefixPaymentMethodConfig)
	key := ivrpay.ScopedIdempotencyKey(in.MerchantID, in.IdempotencyKey)
	id, err = s.insertIdempotent(ctx, "payment_method_configs", "payment method config", in.PlatformID, key, hash, id,
		`INSERT INTO payment_method_configs (id, platform_id, merchant_id, idempotency_key, request_hash,
			billing_contact, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (platform_id, idempotency_key) DO NOTHING`,
		id, in.PlatformID, merchant, key, hash, bc, md, ivrpay.FormatTime(s.now()))
	if err != nil {
		return nil, err
	}
	return s.findPaymentMethodConfig(ctx, s.rdb, id)
}

// FindPaymentMethodConfig returns a payment method config the caller may read.
func (s *Store) FindPaymentMethodConfig(ctx context.Context, id string) (c *ivrpay.PaymentMethodConfig, err error) {
	defer wrap(&err, "Store.FindPaymentMethodConfig(%q)", id)
	if c, err = s.findPaymentMethodConfig(ctx, s.rdb, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payment_method_config:read", "payment method config", id, c.Object()); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Store) findPaymentMethodConfig(ctx context.Context, q querier, id string) (*ivrpay.PaymentMethodConfig, error) {
	var c ivrpay.PaymentMethodConfig
	var merchant, bc, md, pmID sql.NullString
	var created string
	err := s.queryRow(ctx, q, `SELECT c.id, c.platform_id, c.merchant_id, c.idempotency_key, c.billing_contact, c.metadata, c.created_at,
		(SELECT pm.id FROM payment_methods pm WHERE pm.payment_method_config_id = c.id)
		FROM payment_method_configs c WHERE c.id = $1`, id).
		Scan(&c.ID, &c.PlatformID, &merchant, &c.IdempotencyKey, &bc, &md, &created, &pmID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "payment method config %s not found", id)
	} else if err != nil {
		return nil, err
	}
	c.MerchantID = merchant.String
	c.IdempotencyKey = ivrpay.ClientIdempotencyKey(c.IdempotencyKey)
	c.BillingContact, c.Metadata = billingContact(bc), rawJSON(md)
	c.CreatedAt = parseTime(created)
	if pmID.Valid {
		c.PaymentMethod = &ivrpay.PaymentMethodRef{PaymentMethodID: pmID.String}
	}
	return &c, nil
}

// insertIdempotent runs insert, an INSERT … ON CONFLICT (platform_id,
// idempotency_key) DO NOTHING into table, as one write (on PostgreSQL one
// round trip), and returns the id that holds the (scoped) key: id when the
// row is new, the first row's id when the key was used before for the same
// request. The same key with a different request is an ECONFLICT that names
// no object; the database's unique constraint decides races.
func (s *Store) insertIdempotent(ctx context.Context, table, what, platformID, key, hash, id, insert string, args ...any) (string, error) {
	n, err := s.execTx(ctx, insert, args...)
	if err != nil || n == 1 {
		return id, err
	}
	firstID, found, err := s.idempotentReplay(ctx, table, what, platformID, key, hash)
	if err == nil && !found {
		err = fmt.Errorf("%s: the insert wrote nothing and no row holds idempotency key %s", table, ivrpay.ClientIdempotencyKey(key))
	}
	return firstID, err
}

// idempotentReplay finds the row of table that holds the (scoped) key: its id
// when it was made by the same request (hash), an ECONFLICT naming no object
// when by a different one, found false when there is none.
func (s *Store) idempotentReplay(ctx context.Context, table, what, platformID, key, hash string) (firstID string, found bool, err error) {
	var firstHash string
	err = s.queryRow(ctx, s.rdb, `SELECT id, request_hash FROM `+table+` WHERE platform_id = $1 AND idempotency_key = $2`,
		platformID, key).Scan(&firstID, &firstHash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	if firstHash != hash {
		return "", false, &ivrpay.Error{Code: ivrpay.ECONFLICT, Field: "idempotency_key",
			Message: fmt.Sprintf("idempotency_key %s was already used for a different %s; use a new key for a new config", ivrpay.ClientIdempotencyKey(key), what)}
	}
	return firstID, true, nil
}
