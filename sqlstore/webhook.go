package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.WebhookEndpointService = (*Store)(nil)

const webhookEndpointSelect = `SELECT id, platform_id, url, events, status, previous_secret_expires_at, created_at FROM webhook_endpoints`

func scanWebhookEndpoint(row scanner) (*ivrpay.WebhookEndpoint, error) {
	var e ivrpay.WebhookEndpoint
	var events, previousUntil, created string
	if err := row.Scan(&e.ID, &e.PlatformID, &e.URL, &events, &e.Status, &previousUntil, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, err
	}
	if e.Events == nil {
		e.Events = []string{}
	}
	if previousUntil != "" {
		t := parseTime(previousUntil)
		e.PreviousSecretExpiresAt = &t
	}
	e.CreatedAt = parseTime(created)
	return &e, nil
}

// endpointScanner scans endpoints as callers see them: a replaced secret
// that no longer signs is not mentioned.
func (s *Store) endpointScanner() func(scanner) (*ivrpay.WebhookEndpoint, error) {
	now := s.now()
	return func(row scanner) (*ivrpay.WebhookEndpoint, error) {
		e, err := scanWebhookEndpoint(row)
		if e != nil && e.PreviousSecretExpiresAt != nil && !e.PreviousSecretExpiresAt.After(now) {
			e.PreviousSecretExpiresAt = nil
		}
		return e, err
	}
}

// authorizePlatformLevel checks permission on a platform-level object of the
// caller's platform: only a statement without a merchant constraint grants it.
func authorizePlatformLevel(ctx context.Context, permission string) (*ivrpay.APIKey, error) {
	caller := ivrpay.PrincipalFromContext(ctx)
	if err := ivrpay.Authorize(caller, permission, ivrpay.Object{PlatformID: callerPlatform(caller)}); err != nil {
		return nil, err
	}
	return caller, nil
}

func callerPlatform(k *ivrpay.APIKey) string {
	if k == nil {
		return ""
	}
	return k.PlatformID
}

// CreateWebhookEndpoint registers an endpoint on the caller's platform and
// returns it with its signing secret, shown this once. Where the URL may
// point depends on the mode (ivrpay.CheckWebhookURL).
func (s *Store) CreateWebhookEndpoint(ctx context.Context, in ivrpay.WebhookEndpointCreate) (e *ivrpay.WebhookEndpoint, err error) {
	defer wrap(&err, "Store.CreateWebhookEndpoint")
	caller, err := authorizePlatformLevel(ctx, "webhook_endpoint:create")
	if err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := ivrpay.CheckWebhookURL(ctx, s.opts.Mode, in.URL, net.DefaultResolver); err != nil {
		return nil, err
	}
	events := in.Events
	if events == nil {
		events = []string{}
	}
	eventsJSON, err := json.Marshal(events)
	if err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Microsecond)
	e = &ivrpay.WebhookEndpoint{ID: s.newID(ivrpay.PrefixWebhookEndpoint), PlatformID: caller.PlatformID, URL: in.URL,
		Events: events, Secret: ivrpay.NewWebhookSecret(), Status: ivrpay.WebhookEndpointStatusEnabled, CreatedAt: now}
	// Counting and inserting under the platform's row lock (SQLite: the
	// write lock) keeps concurrent creates, in any process, within the cap.
	lockPlatform := `SELECT id FROM platforms WHERE id = $1`
	if s.engine == EnginePostgres {
		lockPlatform += ` FOR UPDATE`
	}
	err = s.inTx(ctx, func(tx querier) error {
		var id string
		if err := tx.QueryRowContext(ctx, lockPlatform, e.PlatformID).Scan(&id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE platform_id = $1 AND status = $2`,
			e.PlatformID, ivrpay.WebhookEndpointStatusEnabled).Scan(&n); err != nil {
			return err
		}
		if n >= ivrpay.MaxWebhookEndpointsPerPlatform {
			return ivrpay.Errorf(ivrpay.ECONFLICT, "a platform may have at most %d webhook endpoints and this one has %d; delete one (DELETE /v1/webhook_endpoints/{id}) before creating another",
				ivrpay.MaxWebhookEndpointsPerPlatform, n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, platform_id, url, events, secret, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, e.ID, e.PlatformID, e.URL, string(eventsJSON), e.Secret, e.Status, ivrpay.FormatTime(now))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.endpoints.forget(e.PlatformID)
	return e, nil
}

func (s *Store) findWebhookEndpoint(ctx context.Context, permission, id string) (*ivrpay.WebhookEndpoint, error) {
	e, err := s.endpointScanner()(s.rdb.QueryRowContext(ctx, webhookEndpointSelect+` WHERE id = $1 AND status <> $2`,
		id, ivrpay.WebhookEndpointStatusDeleted))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "webhook endpoint %s not found", id)
	} else if err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, permission, "webhook endpoint", id, e.Object()); err != nil {
		return nil, err
	}
	return e, nil
}

// FindWebhookEndpoint returns an endpoint of the caller's platform (without its secret).
func (s *Store) FindWebhookEndpoint(ctx context.Context, id string) (e *ivrpay.WebhookEndpoint, err error) {
	defer wrap(&err, "Store.FindWebhookEndpoint(%q)", id)
	return s.findWebhookEndpoint(ctx, "webhook_endpoint:read", id)
}

// ListWebhookEndpoints lists the caller's platform's endpoints. They are
// platform-level objects, so a key whose only grants are merchant-constrained
// gets a 403.
func (s *Store) ListWebhookEndpoints(ctx context.Context, page ivrpay.Page) (l *ivrpay.List[*ivrpay.WebhookEndpoint], err error) {
	defer wrap(&err, "Store.ListWebhookEndpoints")
	caller, err := authorizePlatformLevel(ctx, "webhook_endpoint:read")
	if err != nil {
		return nil, err
	}
	var q listQuery
	q.base = webhookEndpointSelect
	q.where = append(q.where, "platform_id = "+q.arg(caller.PlatformID), "status <> "+q.arg(ivrpay.WebhookEndpointStatusDeleted))
	return listPage(ctx, s.rdb, page, q, s.endpointScanner(), func(e *ivrpay.WebhookEndpoint) string { return e.ID })
}

// RotateWebhookEndpointSecret replaces an endpoint's signing secret and
// returns the endpoint with the new one, shown this once. The replaced
// secret keeps signing for ivrpay.WebhookSecretOverlap; a secret replaced
// earlier stops at once (docs/decisions.md). Every process's next claim
// reads the new secrets.
func (s *Store) RotateWebhookEndpointSecret(ctx context.Context, id string) (e *ivrpay.WebhookEndpoint, err error) {
	defer wrap(&err, "Store.RotateWebhookEndpointSecret(%q)", id)
	e, err = s.findWebhookEndpoint(ctx, "webhook_endpoint:update", id)
	if err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Microsecond)
	until := now.Add(ivrpay.WebhookSecretOverlap)
	secret := ivrpay.NewWebhookSecret()
	res, err := s.wdb.ExecContext(ctx, `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $2,
		secret = $3, updated_at = $4 WHERE id = $1 AND status = $5`,
		id, ivrpay.FormatTime(until), secret, ivrpay.FormatTime(now), ivrpay.WebhookEndpointStatusEnabled)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n != 1 {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "webhook endpoint %s not found", id)
	}
	e.Secret, e.PreviousSecretExpiresAt = secret, &until
	return e, nil
}

// DeleteWebhookEndpoint stops deliveries to an endpoint. The row and its
// delivery history are kept; deliveries still pending are CANCELED.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) (err error) {
	defer wrap(&err, "Store.DeleteWebhookEndpoint(%q)", id)
	e, err := s.findWebhookEndpoint(ctx, "webhook_endpoint:delete", id)
	if err != nil {
		return err
	}
	defer s.endpoints.forget(e.PlatformID)
	now := ivrpay.FormatTime(s.now())
	return s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET status = $2, updated_at = $3 WHERE id = $1`,
			id, ivrpay.WebhookEndpointStatusDeleted, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $2, lease_token = '', updated_at = $3 WHERE endpoint_id = $1 AND status = $4`,
			id, ivrpay.DeliveryStatusCanceled, now, ivrpay.DeliveryStatusPending)
		return err
	})
}

// ListWebhookDeliveries lists an endpoint's deliveries in event order, each
// with its attempts (status code or error, time, duration).
func (s *Store) ListWebhookDeliveries(ctx context.Context, endpointID string, page ivrpay.Page) (l *ivrpay.List[*ivrpay.WebhookDelivery], err error) {
	defer wrap(&err, "Store.ListWebhookDeliveries(%q)", endpointID)
	if _, err := s.findWebhookEndpoint(ctx, "webhook_endpoint:read", endpointID); err != nil {
		return nil, err
	}
	l = &ivrpay.List[*ivrpay.WebhookDelivery]{Results: []*ivrpay.WebhookDelivery{}}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1`, endpointID).Scan(&l.TotalResults); err != nil {
		return nil, err
	}
	limit := page.Limit
	if limit <= 0 {
		limit = ivrpay.DefaultPageLimit
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.event_id, e.type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.created_at, d.updated_at
		FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.endpoint_id = $1 AND d.event_id > $2 ORDER BY d.event_id LIMIT $3`, endpointID, page.StartKey, limit)
	if err != nil {
		return nil, err
	}
	byEvent := map[string]*ivrpay.WebhookDelivery{}
	for rows.Next() {
		var d ivrpay.WebhookDelivery
		var next, created, updated string
		if err := rows.Scan(&d.EventID, &d.EventType, &d.WebhookEndpointID, &d.Status, &d.AttemptCount, &next, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		if d.Status == ivrpay.DeliveryStatusPending {
			t := parseTime(next)
			d.NextAttemptAt = &t
		}
		d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
		d.Attempts = []ivrpay.WebhookDeliveryAttempt{}
		l.Results = append(l.Results, &d)
		byEvent[d.EventID] = &d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(l.Results) == 0 {
		return l, nil
	}
	l.LastKey = l.Results[len(l.Results)-1].EventID
	var q listQuery
	ph := make([]string, 0, len(l.Results))
	endpoint := q.arg(endpointID)
	for _, d := range l.Results {
		ph = append(ph, q.arg(d.EventID))
	}
	arows, err := s.rdb.QueryContext(ctx, `SELECT event_id, attempt, attempted_at, status_code, error, duration_ms FROM webhook_delivery_attempts
		WHERE endpoint_id = `+endpoint+` AND event_id IN (`+strings.Join(ph, ", ")+`) ORDER BY event_id, attempt`, q.args...)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var eventID, at, msg string
		var a ivrpay.WebhookDeliveryAttempt
		if err := arows.Scan(&eventID, &a.Attempt, &at, &a.StatusCode, &msg, &a.DurationMS); err != nil {
			return nil, err
		}
		a.AttemptedAt, a.Error = parseTime(at), ivrpay.OptString(msg)
		if d := byEvent[eventID]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	return l, arows.Err()
}
