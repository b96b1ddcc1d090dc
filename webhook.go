package ivrpay

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event types (docs/webhooks.md). An event's data is the object as GET returns it.
const (
	// EventPayinCreated: a payin whose processor outcome is not known yet
	// (CREATED, processor.outcome UNKNOWN); its final status follows.
	EventPayinCreated        = "payin.created"
	EventPayinProcessing     = "payin.processing"
	EventPayinFailed         = "payin.failed"
	EventPayinSucceeded      = "payin.succeeded"
	EventPayinCanceled       = "payin.canceled"
	EventPayinAuthorized     = "payin.authorized"
	EventPaymentMethodActive = "payment_method.active"
	EventRefundProcessing    = "refund.processing"
	EventRefundSucceeded     = "refund.succeeded"
	EventRefundFailed        = "refund.failed"
	// EventMerchantRiskPaused: the merchant breaker paused a merchant's IVR
	// charges (SPEC §11); its data is the block as `ivrpay admin risk list` shows it.
	EventMerchantRiskPaused = "merchant.risk_paused"
)

// MaxWebhookEndpointsPerPlatform is how many enabled endpoints a platform may
// have (SPEC §7): it bounds how much of the delivery workers one platform's
// slow endpoints can hold.
const MaxWebhookEndpointsPerPlatform = 16

const (
	webhookSecretPrefix        = "whsec_"
	webhookSecretRandomBytes   = 32
	maxWebhookURLLength        = 2048
	maxWebhookEndpointEventLen = 100
)

// EventTypes lists every event type an endpoint can subscribe to: those
// above and chargeback.<status> for every chargeback status (SPEC §4.3).
var EventTypes = append([]string{EventPayinCreated, EventPayinProcessing, EventPayinFailed, EventPayinSucceeded, EventPayinCanceled,
	EventPayinAuthorized, EventPaymentMethodActive, EventRefundProcessing, EventRefundSucceeded, EventRefundFailed,
	EventMerchantRiskPaused}, ChargebackEventTypes()...)

// EventWildcard subscribes an endpoint to every event, as an empty events
// list does; "<family>.*" (EventPatterns) subscribes it to every event of a
// family, including event types added to it later.
const EventWildcard = "*"

// EventPatterns lists the wildcard subscriptions an endpoint can have: "*"
// and "<family>.*" for each family of EventTypes (payin.*, chargeback.*, …).
var EventPatterns = eventPatterns()

func eventPatterns() []string {
	out := []string{EventWildcard}
	for _, t := range EventTypes {
		if p := eventFamily(t) + ".*"; !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// eventFamily is the part of an event type before its dot: "chargeback"
// for chargeback.lost.
func eventFamily(eventType string) string {
	family, _, _ := strings.Cut(eventType, ".")
	return family
}

// EventMatches reports whether a subscription (an event type or one of
// EventPatterns) covers eventType.
func EventMatches(subscription, eventType string) bool {
	if subscription == eventType || subscription == EventWildcard {
		return true
	}
	family, ok := strings.CutSuffix(subscription, ".*")
	return ok && family == eventFamily(eventType)
}

// Event is one state change, as a webhook delivers it. Its ID is the
// webhook-id header of every delivery attempt.
type Event struct {
	ID        string    `json:"event_id"`
	Type      string    `json:"event_type"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// Webhook endpoint statuses. Deleted endpoints are kept (their delivery
// history stays) but are never shown, listed or sent to.
const (
	WebhookEndpointStatusEnabled = "ENABLED"
	WebhookEndpointStatusDeleted = "DELETED"
)

// WebhookEndpoint is a URL of a platform that receives events. It is a
// platform-level object: a merchant-constrained key never reaches it.
type WebhookEndpoint struct {
	ID         string   `json:"webhook_endpoint_id"`
	PlatformID string   `json:"platform_id"`
	URL        string   `json:"url"`
	Events     []string `json:"events"`
	// Secret is the signing secret, set in the create and rotate_secret
	// responses only.
	Secret string `json:"secret,omitempty"`
	Status string `json:"status"`
	// PreviousSecretExpiresAt is set while the secret replaced by the last
	// rotation still signs too: until then, deliveries carry both signatures.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
}

// WebhookSecretOverlap is how long a rotated-out secret keeps signing beside
// the new one, so that receivers can switch without refusing a delivery.
const WebhookSecretOverlap = 24 * time.Hour

// Object returns what permissions on e are checked against.
func (e *WebhookEndpoint) Object() Object { return Object{PlatformID: e.PlatformID} }

// Wants reports whether the endpoint subscribes to eventType (no filter
// means every event), by name or by a pattern it was created with.
func (e *WebhookEndpoint) Wants(eventType string) bool {
	return len(e.Events) == 0 || slices.ContainsFunc(e.Events, func(s string) bool { return EventMatches(s, eventType) })
}

// WebhookEndpointCreate is the body of POST /v1/webhook_endpoints.
type WebhookEndpointCreate struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// Validate checks the body's shape (not where the URL points: see
// CheckWebhookURL) and removes duplicate events. Patterns are kept as
// given, not expanded, so that an endpoint of chargeback.* also gets a
// chargeback status added later and reads back as it was registered.
func (c *WebhookEndpointCreate) Validate() error {
	if c.URL == "" {
		return FieldErrorf("url", "is required: the http(s) URL that receives events")
	}
	if len(c.URL) > maxWebhookURLLength {
		return FieldErrorf("url", "must be at most %d characters", maxWebhookURLLength)
	}
	// The URL is stored, listed and logged with every delivery.
	if err := checkFreeText("url", c.URL); err != nil {
		return err
	}
	if len(c.Events) > maxWebhookEndpointEventLen {
		return FieldErrorf("events", "must list at most %d event types", maxWebhookEndpointEventLen)
	}
	var events []string
	for i, e := range c.Events {
		field := "events[" + strconv.Itoa(i) + "]"
		switch {
		case slices.Contains(EventTypes, e), slices.Contains(EventPatterns, e):
		case strings.Contains(e, "*"):
			return FieldErrorf(field, "pattern %q is not accepted: a wildcard is %q (every event) or a whole family followed by \".*\", one of %s",
				e, EventWildcard, strings.Join(EventPatterns[1:], ", "))
		default:
			return FieldErrorf(field, "unknown event type %q; known types are %s, and the patterns %s", e,
				strings.Join(EventTypes, ", "), strings.Join(EventPatterns, ", "))
		}
		if !slices.Contains(events, e) {
			events = append(events, e)
		}
	}
	c.Events = events
	return nil
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// CheckWebhookURL decides whether events may be sent to raw. Sandbox accepts
// any http or https URL, loopback included, so a developer can receive
// events on their machine. Production requires https and a host whose every
// address is public: no loopback, private, link-local, shared or reserved
// address, so a webhook URL cannot make the server reach internal systems.
// The delivery worker checks the address again when it connects, since DNS
// answers can change.
func CheckWebhookURL(ctx context.Context, mode Mode, raw string, r Resolver) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return FieldErrorf("url", "must be an absolute http or https URL such as https://example.com/webhooks")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && mode == ModeSandbox:
	case u.Scheme == "http":
		return FieldErrorf("url", "must use https in production")
	default:
		return FieldErrorf("url", "must be an http or https URL, not %q", u.Scheme)
	}
	if mode == ModeSandbox {
		return nil
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if !IsPublicAddr(addr) {
			return FieldErrorf("url", "%s is not a public address; webhook URLs must point to the public internet", host)
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return FieldErrorf("url", "%s is not a public host; webhook URLs must point to the public internet", host)
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return FieldErrorf("url", "host %s does not resolve", host)
	}
	for _, a := range addrs {
		addr, ok := netip.AddrFromSlice(a.IP)
		if !ok || !IsPublicAddr(addr) {
			return FieldErrorf("url", "host %s resolves to %s, which is not a public address; webhook URLs must point to the public internet", host, a.IP)
		}
	}
	return nil
}

// nonPublicPrefixes are the ranges that net/netip's predicates do not cover
// but that are not the public internet either.
var nonPublicPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may embed a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed a private IPv4 address
}

// IsPublicAddr reports whether a is a public unicast address.
func IsPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublicPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// NewWebhookSecret returns a fresh signing secret: "whsec_" and the base64 of
// 32 random bytes, as the Standard Webhooks specification describes.
func NewWebhookSecret() string {
	var raw [webhookSecretRandomBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(raw[:])
}

// Webhook delivery statuses.
const (
	DeliveryStatusPending   = "PENDING"
	DeliveryStatusDelivered = "DELIVERED"
	DeliveryStatusFailed    = "FAILED"
	// DeliveryStatusCanceled marks deliveries of a deleted endpoint that were still pending.
	DeliveryStatusCanceled = "CANCELED"
)

// WebhookDelivery is one event's delivery to one endpoint, with every attempt.
type WebhookDelivery struct {
	EventID           string                   `json:"event_id"`
	EventType         string                   `json:"event_type"`
	WebhookEndpointID string                   `json:"webhook_endpoint_id"`
	Status            string                   `json:"status"`
	AttemptCount      int                      `json:"attempt_count"`
	NextAttemptAt     *time.Time               `json:"next_attempt_at"`
	Attempts          []WebhookDeliveryAttempt `json:"attempts"`
	CreatedAt         time.Time                `json:"created_at"`
	UpdatedAt         time.Time                `json:"updated_at"`
}

// WebhookDeliveryAttempt is one HTTP request to an endpoint: the status code it
// answered (0 when there was no answer) or the error.
type WebhookDeliveryAttempt struct {
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  int       `json:"status_code"`
	Error       OptString `json:"error"`
	DurationMS  int64     `json:"duration_ms"`
}

// WebhookEndpointService manages webhook endpoints for the key in the context.
type WebhookEndpointService interface {
	// CreateWebhookEndpoint registers an endpoint and returns it with its
	// signing secret, the only time the secret is shown.
	CreateWebhookEndpoint(ctx context.Context, c WebhookEndpointCreate) (*WebhookEndpoint, error)
	FindWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	ListWebhookEndpoints(ctx context.Context, page Page) (*List[*WebhookEndpoint], error)
	// RotateWebhookEndpointSecret gives the endpoint a new signing secret,
	// returned this once. Deliveries are signed with both the new and the
	// replaced secret for WebhookSecretOverlap, then with the new one only.
	RotateWebhookEndpointSecret(ctx context.Context, id string) (*WebhookEndpoint, error)
	// DeleteWebhookEndpoint stops deliveries to the endpoint; pending ones are canceled.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// ListWebhookDeliveries lists an endpoint's deliveries, oldest event first, with their attempts.
	ListWebhookDeliveries(ctx context.Context, endpointID string, page Page) (*List[*WebhookDelivery], error)
}

// ClaimedDelivery is a due delivery a worker holds a lease on: send Payload to
// URL, signed with each of Secrets (the current one first), as attempt number
// Attempt (1 for the first), and record the attempt before LeaseExpiresAt.
type ClaimedDelivery struct {
	EventID        string
	EndpointID     string
	PlatformID     string
	URL            string
	Secrets        []string
	Payload        []byte
	Attempt        int
	LeaseToken     string
	LeaseExpiresAt time.Time
}

// WebhookClaim asks the outbox for due deliveries.
type WebhookClaim struct {
	// Limit is how many deliveries to claim at most.
	Limit int
	// PerPlatform is how many deliveries of one platform the worker may be
	// sending at once, those in Busy included (0: no bound).
	PerPlatform int
	// Busy counts, by platform, the deliveries the worker is sending now.
	Busy map[string]int
	// Lease is how long the claimed deliveries stay away from other workers.
	Lease time.Duration
}

// DueDelivery is what FairShare needs of a due delivery: its platform, and
// its turn within that platform (1 for the platform's longest-waiting one).
type DueDelivery struct {
	PlatformID string
	Turn       int
}

// FairShare chooses which of due to claim, and in what order to send them:
// platforms take turns, a platform's deliveries in flight (c.Busy) counting
// as turns it already had, so that the platform sending the least goes
// first; no platform gets more than c.PerPlatform in flight; at most c.Limit
// in all. due is in the outbox's order (turn, then time waited), and that
// order breaks ties. It returns indexes into due.
func (c WebhookClaim) FairShare(due []DueDelivery) []int {
	order := make([]int, len(due))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		da, db := due[order[a]], due[order[b]]
		return da.Turn+c.Busy[da.PlatformID] < db.Turn+c.Busy[db.PlatformID]
	})
	taken := map[string]int{}
	var chosen []int
	for _, i := range order {
		if len(chosen) == c.Limit {
			break
		}
		p := due[i].PlatformID
		if c.PerPlatform > 0 && c.Busy[p]+taken[p] >= c.PerPlatform {
			continue
		}
		taken[p]++
		chosen = append(chosen, i)
	}
	return chosen
}

// WebhookAttempt is the outcome of sending a claimed delivery. When it was not
// delivered, the delivery is retried after RetryIn, or marked FAILED when
// GiveUp is set.
type WebhookAttempt struct {
	EventID     string
	EndpointID  string
	LeaseToken  string
	Attempt     int
	AttemptedAt time.Time
	Duration    time.Duration
	StatusCode  int
	Error       string
	Delivered   bool
	RetryIn     time.Duration
	GiveUp      bool
}

// WebhookOutbox is the durable queue of deliveries that the delivery worker drains.
type WebhookOutbox interface {
	// ClaimWebhookDeliveries leases the due deliveries that c.FairShare
	// chooses, in its order: no other worker gets them until the lease ends
	// or the attempt is recorded.
	ClaimWebhookDeliveries(ctx context.Context, c WebhookClaim) ([]ClaimedDelivery, error)
	// RecordWebhookAttempt stores an attempt and the delivery's next state.
	// It does nothing when the lease was lost to another worker.
	RecordWebhookAttempt(ctx context.Context, a WebhookAttempt) error
}
