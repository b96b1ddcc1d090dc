package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ivrpay/ivrpay"
)

const processorAccountSelect = `SELECT name, kind, secret_ciphertext, merchant_account, api_base, events_secret_ciphertext,
	previous_events_secret_ciphertext, previous_events_secret_until, created_at FROM processor_accounts`

func scanProcessorAccount(row scanner) (*ivrpay.ProcessorAccount, error) {
	var a ivrpay.ProcessorAccount
	var previousUntil, created string
	if err := row.Scan(&a.Name, &a.Kind, &a.SecretCiphertext, &a.MerchantAccount, &a.APIBase, &a.EventsSecretCiphertext,
		&a.PreviousEventsSecretCiphertext, &previousUntil, &created); err != nil {
		return nil, err
	}
	if previousUntil != "" {
		a.PreviousEventsSecretUntil = parseTime(previousUntil)
	}
	a.EventsSecretSet = a.EventsSecretCiphertext != ""
	a.CreatedAt = parseTime(created)
	return &a, nil
}

// CreateProcessorAccount stores an account whose secret the caller
// encrypted; a name in use is an ECONFLICT.
func (s *Store) CreateProcessorAccount(ctx context.Context, a ivrpay.ProcessorAccount) (err error) {
	defer wrap(&err, "Store.CreateProcessorAccount(%q)", a.Name)
	if err := a.Validate(); err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO processor_accounts (name, kind, secret_ciphertext, merchant_account, api_base, events_secret_ciphertext, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.Name, a.Kind, a.SecretCiphertext, a.MerchantAccount, a.APIBase, a.EventsSecretCiphertext, ivrpay.FormatTime(s.now())); err != nil {
			return err
		}
		detail := "kind=" + a.Kind
		if a.EventsSecretCiphertext != "" {
			detail += " events_secret=set"
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "processor_account.create", Target: a.Name, Outcome: ivrpay.AuditSuccess, Detail: detail})
	})
	if isUniqueViolation(err) {
		return ivrpay.Errorf(ivrpay.ECONFLICT, "processor account %s already exists; remove it first or choose another name", a.Name)
	}
	return err
}

// FindProcessorAccount returns an account by name (ENOTFOUND when there is none).
func (s *Store) FindProcessorAccount(ctx context.Context, name string) (a *ivrpay.ProcessorAccount, err error) {
	defer wrap(&err, "Store.FindProcessorAccount(%q)", name)
	a, err = scanProcessorAccount(s.queryRow(ctx, s.rdb, processorAccountSelect+` WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "processor account %s does not exist (see ivrpay admin processor list)", name)
	}
	return a, err
}

// SetProcessorEventsSecret replaces an account's events secret with
// ciphertext (vault ciphertext of the new secret). The secret it replaces
// is still accepted until previousUntil; a zero previousUntil forgets it at
// once (and any secret still kept from before).
func (s *Store) SetProcessorEventsSecret(ctx context.Context, name, ciphertext string, previousUntil time.Time) (a *ivrpay.ProcessorAccount, err error) {
	defer wrap(&err, "Store.SetProcessorEventsSecret(%q)", name)
	if ciphertext == "" {
		return nil, ivrpay.FieldErrorf("events-secret-file", "an events secret is required")
	}
	until, detail := "", "previous=forgotten"
	if !previousUntil.IsZero() {
		until = ivrpay.FormatTime(previousUntil.UTC())
		detail = "previous_accepted_until=" + until
	}
	err = s.inTx(ctx, func(tx querier) error {
		// The right-hand side reads the row as it was: the current secret
		// becomes the previous one.
		res, err := tx.ExecContext(ctx, `UPDATE processor_accounts SET
			previous_events_secret_ciphertext = CASE WHEN $3 = '' THEN '' ELSE events_secret_ciphertext END,
			previous_events_secret_until = CASE WHEN $3 = '' OR events_secret_ciphertext = '' THEN '' ELSE $3 END,
			events_secret_ciphertext = $2
			WHERE name = $1`, name, ciphertext, until)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = ivrpay.Errorf(ivrpay.ENOTFOUND, "processor account %s does not exist (see ivrpay admin processor list)", name)
			}
			return err
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "processor_account.set_events_secret", Target: name, Outcome: ivrpay.AuditSuccess, Detail: detail})
	})
	if err != nil {
		return nil, err
	}
	return s.FindProcessorAccount(ctx, name)
}

// ListProcessorAccounts returns every account, by name.
func (s *Store) ListProcessorAccounts(ctx context.Context) (out []*ivrpay.ProcessorAccount, err error) {
	defer wrap(&err, "Store.ListProcessorAccounts")
	rows, err := s.rdb.QueryContext(ctx, processorAccountSelect+` ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanProcessorAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RemoveProcessorAccount deletes an account that no platform or merchant
// routes to and no payin was made with (its captures and refunds need it).
func (s *Store) RemoveProcessorAccount(ctx context.Context, name string) (err error) {
	defer wrap(&err, "Store.RemoveProcessorAccount(%q)", name)
	if _, err := s.FindProcessorAccount(ctx, name); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx querier) error {
		var routes, payins int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM platforms WHERE processor_account = $1) +
			(SELECT COUNT(*) FROM merchants WHERE processor_account = $1)`, name).Scan(&routes); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM payins WHERE processor_account = $1`, name).Scan(&payins); err != nil {
			return err
		}
		if routes > 0 || payins > 0 {
			return ivrpay.Errorf(ivrpay.ECONFLICT, "processor account %s is used by %d platforms or merchants and %d payins; route them to another account first (payins keep needing it for captures and refunds)", name, routes, payins)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM processor_accounts WHERE name = $1`, name); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "processor_account.remove", Target: name, Outcome: ivrpay.AuditSuccess})
	})
}

// CountProcessorAccounts counts the accounts (production refuses to start without one).
func (s *Store) CountProcessorAccounts(ctx context.Context) (n int, err error) {
	defer wrap(&err, "Store.CountProcessorAccounts")
	err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM processor_accounts`).Scan(&n)
	return n, err
}

// SetPlatformProcessor makes account the default of a platform's merchants.
func (s *Store) SetPlatformProcessor(ctx context.Context, platformID, account string) (p *ivrpay.Platform, err error) {
	defer wrap(&err, "Store.SetPlatformProcessor(%q)", platformID)
	if _, err := s.FindProcessorAccount(ctx, account); err != nil {
		return nil, err
	}
	return s.updatePlatform(ctx, platformID, "platform.set_processor", "processor_account="+account,
		`UPDATE platforms SET processor_account = $2, updated_at = $3 WHERE id = $1`, account)
}

// SetMerchantProcessor routes a merchant's payments to account, under its
// sub-account ref there (empty for the account's default).
func (s *Store) SetMerchantProcessor(ctx context.Context, merchantID, account, ref string) (m *ivrpay.Merchant, err error) {
	defer wrap(&err, "Store.SetMerchantProcessor(%q)", merchantID)
	if ref != "" {
		if err := ivrpay.CheckAccountRef("account-ref", ref); err != nil {
			return nil, err
		}
	}
	if _, err := s.FindProcessorAccount(ctx, account); err != nil {
		return nil, err
	}
	m, err = s.findMerchant(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	err = s.updateAudited(ctx, ivrpay.Errorf(ivrpay.ENOTFOUND, "merchant %s not found", merchantID),
		ivrpay.AuditEvent{PlatformID: m.PlatformID, Action: "merchant.set_processor", Target: merchantID, Outcome: ivrpay.AuditSuccess, Detail: "processor_account=" + account},
		`UPDATE merchants SET processor_account = $2, processor_account_ref = $3, updated_at = $4 WHERE id = $1`,
		merchantID, account, ref, ivrpay.FormatTime(s.now()))
	if err != nil {
		return nil, err
	}
	return s.findMerchant(ctx, merchantID)
}

// ProcessorRoute returns the account a merchant's payments go to: its own,
// else its platform's default.
func (s *Store) ProcessorRoute(ctx context.Context, platformID, merchantID string) (r ivrpay.ProcessorRoute, err error) {
	defer wrap(&err, "Store.ProcessorRoute(%q)", merchantID)
	var merchantAccount, ref, platformAccount sql.NullString
	err = s.queryRow(ctx, s.rdb, `SELECT p.processor_account, m.processor_account, m.processor_account_ref FROM platforms p
		LEFT JOIN merchants m ON m.id = $2 AND m.platform_id = p.id WHERE p.id = $1`, platformID, merchantID).Scan(&platformAccount, &merchantAccount, &ref)
	if err != nil {
		return r, err
	}
	return processorRoute(platformAccount, merchantAccount, ref), nil
}

// processorRoute is the merchant's own account (under its sub-account ref),
// else its platform's default, from their columns.
func processorRoute(platformAccount, merchantAccount, ref sql.NullString) ivrpay.ProcessorRoute {
	if merchantAccount.String != "" {
		return ivrpay.ProcessorRoute{Account: merchantAccount.String, AccountRef: ref.String}
	}
	return ivrpay.ProcessorRoute{Account: platformAccount.String}
}
