package httpapi

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Authentication failure limits (PCI DSS 8.3.4: lock out after at most 10
// attempts for at least 30 minutes).
const (
	AuthFailureLimit  = 10
	AuthFailureWindow = 15 * time.Minute
	AuthBlockDuration = 30 * time.Minute
)

// ConnectorAddressFailureLimit is how many failed connector authentications
// one client address may make in AuthFailureWindow, whatever credentials it
// presents, before the address is blocked for AuthBlockDuration. It is higher
// than AuthFailureLimit because every platform's calls come from Twilio's few
// shared addresses: one misconfigured connector is stopped by its own
// credential's limit after 10 failures, so it takes five at once to block an
// address. While an address is blocked, only credentials that authenticated
// from it before (see KnownGood) are still checked; every other one is
// refused unchecked, so a guessing run learns nothing more.
const ConnectorAddressFailureLimit = 50

// DefaultMaxLimiterEntries bounds the limiter's memory (about 300 bytes an
// entry); the least recently used entries are evicted first.
const DefaultMaxLimiterEntries = 20000

// knownGoodFor is how long a credential that authenticated from an address
// stays trusted there while the address is blocked.
const knownGoodFor = 24 * time.Hour

// AuthLimiter counts authentication failures (401s; 403s do not count) per
// key — a client address, or on the connector an address and a credential —
// and blocks a key that reached its limit. It also remembers which connector
// credentials authenticated from which address, and how many failures of an
// address are still to be written to the audit trail. Its memory holds at
// most MaxEntries entries and evicts the least recently used.
//
// Without Shared, the counts live in this process's memory only. With
// Shared (see NewSharedAuthLimiter), every failure is counted in the
// database, so that every process on it enforces one limit; blocks are
// mirrored into memory (at once in the process that set them, within
// SharedRefreshInterval in the others, see Run), so that checking a block
// and a successful authentication read nothing from the database.
type AuthLimiter struct {
	Now func() time.Time
	// MaxEntries bounds the entries held; 0 means DefaultMaxLimiterEntries.
	MaxEntries int
	// Shared, when set, counts failures in the database.
	Shared SharedFailures

	mu      sync.Mutex
	entries map[string]*list.Element // of *limitEntry
	order   list.List                // front: least recently used
	secret  [32]byte                 // keys the credential hashes
}

type limitEntry struct {
	key      string
	failures []time.Time
	blocked  time.Time // blocked until
	good     time.Time // a credential: when it last authenticated
	// audit aggregation, per address
	auditStart time.Time // when the address's current audit window began
	auditCount int       // failures since the last audit row
	auditSince time.Time // the first failure not yet written
}

// NewAuthLimiter returns a limiter of this process alone, on the wall clock.
func NewAuthLimiter() *AuthLimiter {
	l := &AuthLimiter{Now: time.Now, entries: map[string]*list.Element{}}
	_, _ = rand.Read(l.secret[:]) // crypto/rand.Read never fails
	return l
}

// SharedFailures is where a shared limiter counts failures: the database
// every server process uses (sqlstore implements it).
type SharedFailures interface {
	// RecordAuthFailure counts a failure of key at now and returns until
	// when key is blocked (zero when it is not), by this failure or earlier.
	RecordAuthFailure(ctx context.Context, key string, limit int, now time.Time, window, block time.Duration) (time.Time, error)
	// ActiveAuthBlocks returns the keys blocked at now and their ends.
	ActiveAuthBlocks(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// PruneAuthFailures deletes rows outside the window and caps their number.
	PruneAuthFailures(ctx context.Context, now time.Time, window time.Duration, maxRows int) error
}

// SharedRefreshInterval is how often Run reads the blocks other processes
// set; SharedPruneInterval how often it prunes the shared rows to at most
// MaxSharedRows.
const (
	SharedRefreshInterval = time.Second
	SharedPruneInterval   = 10 * time.Second
	MaxSharedRows         = 100000
)

// NewSharedAuthLimiter returns a limiter that counts failures in shared.
// Every process must be given the same secret: it keys the credential
// hashes (CredentialKey), which must be alike for a credential's count to be
// one count across processes.
func NewSharedAuthLimiter(shared SharedFailures, secret []byte) *AuthLimiter {
	l := NewAuthLimiter()
	l.Shared = shared
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("ivrpay auth limiter credential key v1"))
	copy(l.secret[:], mac.Sum(nil))
	return l
}

// Run mirrors the shared blocks into memory every SharedRefreshInterval and
// prunes the shared rows every SharedPruneInterval, until ctx ends. Without
// Shared it returns at once.
func (l *AuthLimiter) Run(ctx context.Context, logger *slog.Logger) {
	if l.Shared == nil {
		return
	}
	t := time.NewTicker(SharedRefreshInterval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
			logger.Error("reading the shared authentication blocks failed", "error", err)
		}
		if now := l.Now(); now.Sub(lastPrune) >= SharedPruneInterval {
			lastPrune = now
			if err := l.Shared.PruneAuthFailures(ctx, now, max(AuthFailureWindow, AuthBlockDuration), MaxSharedRows); err != nil && ctx.Err() == nil {
				logger.Error("pruning the shared authentication failures failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the shared blocks once and mirrors them into memory.
func (l *AuthLimiter) Refresh(ctx context.Context) error {
	blocks, err := l.Shared.ActiveAuthBlocks(ctx, l.Now())
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, until := range blocks {
		if e := l.entry(key, true); until.After(e.blocked) {
			e.blocked = until
		}
	}
	return nil
}

// entry returns key's entry, creating it when create is set (evicting the
// least recently used one beyond MaxEntries), and marks it used.
func (l *AuthLimiter) entry(key string, create bool) *limitEntry {
	if el, ok := l.entries[key]; ok {
		l.order.MoveToBack(el)
		return el.Value.(*limitEntry)
	}
	if !create {
		return nil
	}
	max := l.MaxEntries
	if max <= 0 {
		max = DefaultMaxLimiterEntries
	}
	for len(l.entries) >= max {
		oldest := l.order.Front()
		l.order.Remove(oldest)
		delete(l.entries, oldest.Value.(*limitEntry).key)
	}
	e := &limitEntry{key: key}
	l.entries[key] = l.order.PushBack(e)
	return e
}

// Len is the number of entries held.
func (l *AuthLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Blocked reports whether key is blocked, and for how long still.
func (l *AuthLimiter) Blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[key]
	if !ok {
		return 0, false
	}
	e := el.Value.(*limitEntry)
	if left := e.blocked.Sub(l.Now()); left > 0 {
		l.order.MoveToBack(el) // a block in use is the last thing to evict
		return left, true
	}
	return 0, false
}

// Fail records a failure for key against AuthFailureLimit and reports
// whether key is now blocked.
func (l *AuthLimiter) Fail(key string) bool { return l.FailLimit(key, AuthFailureLimit) }

// FailLimit records a failure for key and blocks it for AuthBlockDuration
// once limit failures fall within AuthFailureWindow; it reports whether key
// is now blocked.
//
// With Shared, the failure is counted in the database; if that fails, it is
// counted in memory instead, so the limit never lapses.
func (l *AuthLimiter) FailLimit(key string, limit int) bool {
	if l.Shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		until, err := l.Shared.RecordAuthFailure(ctx, key, limit, l.Now(), AuthFailureWindow, AuthBlockDuration)
		cancel()
		if err == nil {
			if until.IsZero() {
				return false
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if e := l.entry(key, true); until.After(e.blocked) {
				e.blocked = until
			}
			return true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	e := l.entry(key, true)
	recent := e.failures[:0]
	for _, t := range e.failures {
		if now.Sub(t) < AuthFailureWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	if len(recent) >= limit {
		e.failures = nil
		e.blocked = now.Add(AuthBlockDuration)
		return true
	}
	e.failures = recent
	return false
}

// Succeeded records that a connector credential (a CredentialKey)
// authenticated, so that it keeps working while its address is blocked.
func (l *AuthLimiter) Succeeded(credentialKey string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(credentialKey, true).good = l.Now()
}

// KnownGood reports whether the credential authenticated within the last 24
// hours (in this process).
func (l *AuthLimiter) KnownGood(credentialKey string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[credentialKey]
	if !ok {
		return false
	}
	good := el.Value.(*limitEntry).good
	return !good.IsZero() && l.Now().Sub(good) < knownGoodFor
}

// AuditDue counts an authentication failure from address for the audit
// trail and reports whether a row is due now, and how many failures (since
// when) it stands for. A row is due for the first failure of an address in
// each AuthFailureWindow (carrying any count left from the window before)
// and when the failure blocked something (carrying the failures since the
// previous row); the failures in between are only counted. A flood thus
// writes a few rows per address per window, not one per request.
func (l *AuthLimiter) AuditDue(address string, blocked bool) (n int, since time.Time, due bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	e := l.entry("audit|"+address, true)
	if e.auditCount == 0 {
		e.auditSince = now
	}
	e.auditCount++
	if e.auditStart.IsZero() || now.Sub(e.auditStart) >= AuthFailureWindow {
		e.auditStart = now
		due = true
	}
	if blocked || due {
		n, since = e.auditCount, e.auditSince
		e.auditCount = 0
		return n, since, true
	}
	return 0, time.Time{}, false
}

// CredentialKey scopes connector limits to the client address and the
// presented credential. Basic credentials are keyed by their decoded
// username and password, so that "basic …", "BASIC …" or another base64
// spelling of the same password count as one credential; anything else by
// the header's text. The credential is kept only as an HMAC under a key of
// this process, or under the secret every process shares (NewSharedAuthLimiter).
func (l *AuthLimiter) CredentialKey(address string, r *http.Request) string {
	cred := "raw:" + r.Header.Get("Authorization")
	// net/http matches the Basic scheme name case-insensitively; so must the key.
	if user, password, ok := r.BasicAuth(); ok {
		cred = "basic:" + user + ":" + password
	}
	mac := hmac.New(sha256.New, l.secret[:])
	mac.Write([]byte(cred))
	return address + "|" + hex.EncodeToString(mac.Sum(nil)[:12])
}

// ConnectorAddressKey is the limiter key of a client address on the connector.
func ConnectorAddressKey(address string) string { return "connector|" + address }

// ClientAddress is the peer's IP address. Behind a proxy it is the address
// the proxy saw, taken from the last X-Forwarded-For hop.
func ClientAddress(r *http.Request, behindProxy bool) string {
	if behindProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			hops := strings.Split(xff, ",")
			return strings.TrimSpace(hops[len(hops)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// connectorLimits are the two counts a failed connector authentication adds
// to: its credential from its address (AuthFailureLimit) and its address
// whatever the credential (ConnectorAddressFailureLimit).
func (s *Server) connectorLimits(r *http.Request) (credential, address limit) {
	addr := ClientAddress(r, s.BehindProxy)
	address = limit{ConnectorAddressKey(addr), ConnectorAddressFailureLimit}
	if s.Limiter == nil {
		return limit{}, address
	}
	return limit{s.Limiter.CredentialKey(addr, r), AuthFailureLimit}, address
}
