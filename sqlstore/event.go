package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.WebhookOutbox = (*Store)(nil)

// emitEvent writes an event to the outbox, with one PENDING delivery per
// enabled endpoint of the platform that wants it, in tx: the transaction that
// made the state change the event reports. So an event exists exactly when
// its change was committed, and a crash loses neither.
func (s *Store) emitEvent(ctx context.Context, tx querier, platformID, eventType, objectID string, data any) error {
	now := s.now().Truncate(time.Microsecond)
	ev := ivrpay.Event{ID: s.newID(ivrpay.PrefixEvent), Type: eventType, CreatedAt: now, Data: data}
	// Encoded straight into the string the insert binds: one copy of the
	// payload, not a buffer grown by doubling and then copied into a string.
	var payload strings.Builder
	enc := json.NewEncoder(&payload)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return err
	}
	at := ivrpay.FormatTime(now)
	if _, err := s.exec(ctx, tx, `INSERT INTO events (id, platform_id, type, object_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		ev.ID, platformID, eventType, objectID, strings.TrimSuffix(payload.String(), "\n"), at); err != nil {
		return err
	}
	endpoints, err := s.endpointsOf(ctx, tx, platformID)
	if err != nil {
		return err
	}
	for _, e := range endpoints {
		if !e.Wants(eventType) {
			continue
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4, $4)`, ev.ID, e.ID, ivrpay.DeliveryStatusPending, at); err != nil {
			return err
		}
	}
	return nil
}

// EndpointCacheFor bounds how long this process's events may miss a webhook
// endpoint another process created, or still find one it deleted: a
// platform's enabled endpoints are read at most once per this period per
// process (this process's own changes take effect at once).
const EndpointCacheFor = time.Second

// endpointCacheMaxEntries bounds the endpoint cache to that many platforms.
const endpointCacheMaxEntries = 10_000

// endpointCache holds each platform's enabled endpoints for EndpointCacheFor.
type endpointCache = readCache[[]*ivrpay.WebhookEndpoint]

func newEndpointCache() *endpointCache {
	return &endpointCache{period: EndpointCacheFor, maxEntries: endpointCacheMaxEntries}
}

// endpointsOf returns the enabled endpoints of a platform, from the cache
// when it is fresh. The rows are read to the end before returning, so the
// transaction can run its next statement.
func (s *Store) endpointsOf(ctx context.Context, q querier, platformID string) ([]*ivrpay.WebhookEndpoint, error) {
	now := s.now()
	if cached, ok := s.endpoints.get(platformID, now); ok {
		return cached, nil
	}
	generation := s.endpoints.start()
	rows, err := s.query(ctx, q, webhookEndpointSelect+` WHERE platform_id = $1 AND status = $2 ORDER BY id`,
		platformID, ivrpay.WebhookEndpointStatusEnabled)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ivrpay.WebhookEndpoint
	for rows.Next() {
		e, err := scanWebhookEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.endpoints.put(platformID, out, now, generation)
	return out, nil
}

// emitPayinEvent reports a payin's current status (payin.processing,
// payin.authorized, …; payin.created for a CREATED payin, which only
// RecordPayinUnknown reports), with the payin as GET returns it at the
// platform's minimum API version v (a webhook has no request version; empty:
// read from the database). Statuses without an event type emit nothing.
func (s *Store) emitPayinEvent(ctx context.Context, tx querier, p *ivrpay.Payin, v ivrpay.APIVersion) error {
	if v == "" {
		if err := s.queryRow(ctx, tx, `SELECT min_api_version FROM platforms WHERE id = $1`, p.PlatformID).Scan(&v); err != nil {
			return err
		}
	}
	shaped := ivrpay.ShapePayin(v, p)
	eventType := "payin." + strings.ToLower(shaped.Status)
	if !slices.Contains(ivrpay.EventTypes, eventType) {
		return nil
	}
	return s.emitEvent(ctx, tx, p.PlatformID, eventType, p.ID, shaped)
}

// emitPaymentMethodEvent reports a payment method that became ACTIVE.
func (s *Store) emitPaymentMethodEvent(ctx context.Context, tx querier, id string) error {
	pm, err := scanPaymentMethod(s.queryRow(ctx, tx, paymentMethodSelect+` WHERE id = $1`, id))
	if err != nil {
		return err
	}
	return s.announcePaymentMethod(ctx, tx, pm)
}

// announcePaymentMethod emits payment_method.active for pm (as a read
// returns it) when it is ACTIVE.
func (s *Store) announcePaymentMethod(ctx context.Context, tx querier, pm *ivrpay.PaymentMethod) error {
	if pm.Status != ivrpay.PaymentMethodStatusActive {
		return nil
	}
	return s.emitEvent(ctx, tx, pm.PlatformID, ivrpay.EventPaymentMethodActive, pm.ID, pm)
}

// emitRefundEvent reports a refund's current status.
func (s *Store) emitRefundEvent(ctx context.Context, tx querier, r *ivrpay.Refund) error {
	return s.emitEvent(ctx, tx, r.PlatformID, "refund."+strings.ToLower(r.Status), r.ID, r)
}

type dueDelivery struct {
	ivrpay.ClaimedDelivery
	seenNextAttempt string
}

// ClaimWebhookDeliveries leases the due deliveries that c.FairShare chooses.
// The due ones are read with their turn within their platform (oldest
// first), enough of them for every platform's next turns; each chosen one is
// then claimed by a conditional UPDATE that moves its next_attempt_at from
// the value read to the end of the lease: of several workers (in one process
// or many) that read the same row, exactly one changes it. A worker that
// dies holding a lease loses nothing: the row is due again when the lease
// ends.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, c ivrpay.WebhookClaim) (claimed []ivrpay.ClaimedDelivery, err error) {
	defer wrap(&err, "Store.ClaimWebhookDeliveries")
	now := s.now()
	at := ivrpay.FormatTime(now)
	// A busy platform's first turns may be passed over, so read as many
	// more rows as there are deliveries in flight.
	limit := c.Limit
	for _, n := range c.Busy {
		limit += n
	}
	maxTurn := c.PerPlatform
	if maxTurn <= 0 {
		maxTurn = limit
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT due.event_id, due.endpoint_id, due.platform_id, due.attempts, due.next_attempt_at, due.turn,
			e.payload, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at
		FROM (SELECT d.event_id, d.endpoint_id, w.platform_id, d.attempts, d.next_attempt_at,
				ROW_NUMBER() OVER (PARTITION BY w.platform_id ORDER BY d.next_attempt_at, d.event_id, d.endpoint_id) AS turn
			FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.status = 'PENDING' AND d.next_attempt_at <= $1 AND w.status = 'ENABLED') due
		JOIN events e ON e.id = due.event_id JOIN webhook_endpoints w ON w.id = due.endpoint_id
		WHERE due.turn <= $2
		ORDER BY due.turn, due.next_attempt_at, due.event_id, due.endpoint_id LIMIT $3`, at, maxTurn, limit)
	if err != nil {
		return nil, err
	}
	var due []dueDelivery
	var turns []ivrpay.DueDelivery
	for rows.Next() {
		var d dueDelivery
		var turn int
		var payload, secret, previous, previousUntil string
		if err := rows.Scan(&d.EventID, &d.EndpointID, &d.PlatformID, &d.Attempt, &d.seenNextAttempt, &turn,
			&payload, &d.URL, &secret, &previous, &previousUntil); err != nil {
			rows.Close()
			return nil, err
		}
		d.Attempt++
		d.Payload = []byte(payload)
		d.Secrets = []string{secret}
		if previous != "" && previousUntil > at {
			d.Secrets = append(d.Secrets, previous)
		}
		due = append(due, d)
		turns = append(turns, ivrpay.DueDelivery{PlatformID: d.PlatformID, Turn: turn})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	chosen := c.FairShare(turns)
	if len(chosen) == 0 {
		return nil, nil
	}
	// Rows are locked in primary-key order, so that two PostgreSQL workers
	// claiming overlapping batches cannot deadlock; the answer keeps the
	// fair order.
	locking := slices.Clone(chosen)
	sort.Slice(locking, func(i, j int) bool {
		a, b := due[locking[i]], due[locking[j]]
		if a.EventID != b.EventID {
			return a.EventID < b.EventID
		}
		return a.EndpointID < b.EndpointID
	})
	leaseEnd := now.Add(c.Lease)
	err = s.inTx(ctx, func(tx querier) error {
		for _, i := range locking {
			d := &due[i]
			d.LeaseToken = ""
			token := randomToken()
			res, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET next_attempt_at = $3, lease_token = $4, updated_at = $5
				WHERE event_id = $1 AND endpoint_id = $2 AND status = $6 AND next_attempt_at = $7`,
				d.EventID, d.EndpointID, ivrpay.FormatTime(leaseEnd), token, at, ivrpay.DeliveryStatusPending, d.seenNextAttempt)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				d.LeaseToken = token
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, i := range chosen {
		if d := due[i]; d.LeaseToken != "" {
			d.LeaseExpiresAt = leaseEnd
			claimed = append(claimed, d.ClaimedDelivery)
		}
	}
	return claimed, nil
}

// maxAttemptErrorLength bounds the error text kept per attempt.
const maxAttemptErrorLength = 500

// RecordWebhookAttempt stores one attempt and moves its delivery on:
// DELIVERED, FAILED, or PENDING until RetryIn has passed. It is a no-op when
// the worker's lease was taken over (it outlived its lease), so that a
// delivery's history has one writer at a time.
func (s *Store) RecordWebhookAttempt(ctx context.Context, a ivrpay.WebhookAttempt) (err error) {
	defer wrap(&err, "Store.RecordWebhookAttempt(%q, %q)", a.EventID, a.EndpointID)
	now := s.now()
	status := ivrpay.DeliveryStatusPending
	switch {
	case a.Delivered:
		status = ivrpay.DeliveryStatusDelivered
	case a.GiveUp:
		status = ivrpay.DeliveryStatusFailed
	}
	msg := a.Error
	if len(msg) > maxAttemptErrorLength {
		msg = msg[:maxAttemptErrorLength] + "…"
	}
	return s.inTx(ctx, func(tx querier) error {
		res, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, lease_token = '',
			last_status_code = $6, last_error = $7, updated_at = $8
			WHERE event_id = $1 AND endpoint_id = $2 AND status = $9 AND lease_token = $10`,
			a.EventID, a.EndpointID, status, a.Attempt, ivrpay.FormatTime(now.Add(a.RetryIn)), a.StatusCode, msg,
			ivrpay.FormatTime(now), ivrpay.DeliveryStatusPending, a.LeaseToken)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		_, err = s.exec(ctx, tx, `INSERT INTO webhook_delivery_attempts (id, event_id, endpoint_id, attempt, attempted_at, status_code, error, duration_ms)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, randomToken(), a.EventID, a.EndpointID, a.Attempt,
			ivrpay.FormatTime(a.AttemptedAt), a.StatusCode, msg, a.Duration.Milliseconds())
		return err
	})
}

func randomToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
