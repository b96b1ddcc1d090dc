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
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/vault"
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
// refused unchecked, so a guessing run learns nothing more. The REST API's
// address limit lets known-good credentials through alike.
const ConnectorAddressFailureLimit = 50

// DefaultMaxLimiterEntries bounds the limiter's memory (about 300 bytes an
// entry); the least recently used entries are evicted first.
const DefaultMaxLimiterEntries = 20000

// knownGoodFor is how long a credential that authenticated from an address
// stays trusted there while the address is blocked.
const knownGoodFor = 24 * time.Hour

// knownGoodRewrite is how often a process writes a credential's latest
// success to the shared known-good list while the credential keeps
// authenticating from one address: a steady stream of successes costs one
// statement per credential and address an hour, not one per request.
const knownGoodRewrite = time.Hour

// AuthLimiter counts authentication failures (401s; 403s do not count) per
// key — a client address, or on the connector an address and a credential —
// and blocks a key that reached its limit. It also remembers which
// credentials authenticated from which address (the known-good list), and
// aggregates the failures' audit rows (AuditFailure). Its memory holds at
// most MaxEntries entries and evicts the least recently used.
//
// Without Shared, the counts and the known-good list live in this process's
// memory only. With Shared (see NewSharedAuthLimiter), every failure is
// counted in the database, so that every process on it enforces one limit;
// blocks are mirrored into memory (at once in the process that set them,
// within SharedRefreshInterval in the others, see Run), so that checking a
// block and a successful authentication read nothing from the database. The
// known-good list is in the database too, written once per credential and
// address an hour (knownGoodRewrite) and read only for a request from a
// blocked address, so that it is every process's and survives a restart.
type AuthLimiter struct {
	Now func() time.Time
	// MaxEntries bounds the entries held; 0 means DefaultMaxLimiterEntries.
	MaxEntries int
	// Shared, when set, counts failures and keeps the known-good list in
	// the database.
	Shared SharedFailures
	// MaxSharedRows bounds the rows of failure counts in Shared; 0 means
	// DefaultMaxSharedRows. Besides Run's pruning, a process prunes after
	// every MaxSharedRows/100 failures it records, so that a flood from
	// many addresses cannot outgrow the cap between two of Run's passes.
	MaxSharedRows int
	// Audit, when set, receives the failures' auth.failure rows, aggregated
	// per address (see AuditFailure and FlushAudit).
	Audit ivrpay.AuditService
	// MaxAuditRows bounds the rows one FlushAudit writes; 0 means
	// DefaultMaxAuditRows.
	MaxAuditRows int
	// AuditInterval is how often Run writes the aggregated failures; 0
	// means DefaultAuditInterval.
	AuditInterval time.Duration

	mu      sync.Mutex
	entries map[string]*list.Element // of *limitEntry
	order   list.List                // front: least recently used
	secret  *vault.MAC               // keys the credential hashes

	sharedFailures atomic.Uint64 // failures recorded in Shared, for pruning

	audit auditAggregate
}

type limitEntry struct {
	key      string
	failures []time.Time
	blocked  time.Time // blocked until
	good     time.Time // a credential: when it last authenticated, here or in the shared list
	stored   time.Time // a credential: the success this process last wrote to the shared list
}

// NewAuthLimiter returns a limiter of this process alone, on the wall clock.
func NewAuthLimiter() *AuthLimiter {
	var secret [32]byte
	_, _ = rand.Read(secret[:]) // crypto/rand.Read never fails
	return &AuthLimiter{Now: time.Now, entries: map[string]*list.Element{}, secret: vault.NewMAC(secret[:])}
}

// SharedFailures is where a shared limiter counts failures and keeps the
// known-good list: the database every server process uses (sqlstore
// implements it).
type SharedFailures interface {
	// RecordAuthFailure counts a failure of key at now and returns until
	// when key is blocked (zero when it is not), by this failure or earlier.
	RecordAuthFailure(ctx context.Context, key string, limit int, now time.Time, window, block time.Duration) (time.Time, error)
	// ActiveAuthBlocks returns the keys blocked at now and their ends.
	ActiveAuthBlocks(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// PruneAuthFailures deletes rows outside the window and caps their number.
	PruneAuthFailures(ctx context.Context, now time.Time, window time.Duration, maxRows int) error
	// RecordKnownGood notes that the credential key authenticated at at.
	RecordKnownGood(ctx context.Context, key string, at time.Time) error
	// KnownGoodSince returns when the credential key last authenticated, if
	// after since, or the zero time.
	KnownGoodSince(ctx context.Context, key string, since time.Time) (time.Time, error)
	// PruneKnownGood deletes the credentials last seen at or before before
	// and caps their number (the least recently seen go first).
	PruneKnownGood(ctx context.Context, before time.Time, maxRows int) error
}

// SharedRefreshInterval is how often Run reads the blocks other processes
// set; SharedPruneInterval how often it prunes the shared rows to at most
// MaxSharedRows.
const (
	SharedRefreshInterval = time.Second
	SharedPruneInterval   = 10 * time.Second
	DefaultMaxSharedRows  = 100000
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
	l.secret = vault.NewMAC(mac.Sum(nil))
	return l
}

// Run mirrors the shared blocks into memory every SharedRefreshInterval,
// prunes the shared rows every SharedPruneInterval, and writes the
// aggregated audit rows every AuditInterval, until ctx ends; then it writes
// the audit rows still pending once more, so that a process stopping loses
// none. Stop it only after the server has stopped serving. Without Shared
// and Audit it returns at once.
func (l *AuthLimiter) Run(ctx context.Context, logger *slog.Logger) {
	if l.Shared == nil && l.Audit == nil {
		return
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := l.FlushAudit(flushCtx); err != nil {
			logger.Error("writing the last authentication failures to the audit trail failed", "error", err)
		}
	}()
	t := time.NewTicker(min(SharedRefreshInterval, l.auditInterval()))
	defer t.Stop()
	lastPrune, lastFlush := time.Time{}, l.Now()
	for {
		now := l.Now()
		if l.Shared != nil {
			if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
				logger.Error("reading the shared authentication blocks failed", "error", err)
			}
			if now.Sub(lastPrune) >= SharedPruneInterval {
				lastPrune = now
				if err := l.prune(ctx, now); err != nil && ctx.Err() == nil {
					logger.Error("pruning the shared authentication failures failed", "error", err)
				}
			}
		}
		if now.Sub(lastFlush) >= l.auditInterval() {
			lastFlush = now
			if err := l.FlushAudit(ctx); err != nil && ctx.Err() == nil {
				logger.Error("writing authentication failures to the audit trail failed; they are kept for the next pass", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *AuthLimiter) maxSharedRows() int {
	if l.MaxSharedRows > 0 {
		return l.MaxSharedRows
	}
	return DefaultMaxSharedRows
}

// prune deletes the shared failure rows whose failures and block are over
// and the known-good credentials not seen for knownGoodFor, each table
// capped at maxSharedRows.
func (l *AuthLimiter) prune(ctx context.Context, now time.Time) error {
	if err := l.Shared.PruneAuthFailures(ctx, now, max(AuthFailureWindow, AuthBlockDuration), l.maxSharedRows()); err != nil {
		return err
	}
	return l.Shared.PruneKnownGood(ctx, now.Add(-knownGoodFor), l.maxSharedRows())
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
		now := l.Now()
		until, err := l.Shared.RecordAuthFailure(ctx, key, limit, now, AuthFailureWindow, AuthBlockDuration)
		if err == nil && l.sharedFailures.Add(1)%uint64(max(l.maxSharedRows()/100, 1)) == 0 {
			// Best effort: Run's next pass prunes (and reports) anyway.
			_ = l.Shared.PruneAuthFailures(ctx, now, max(AuthFailureWindow, AuthBlockDuration), l.maxSharedRows())
		}
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

// Succeeded records that a credential (a CredentialKey) authenticated, so
// that it keeps working while its address is blocked. With Shared, the
// first success of a credential from an address, and then one an hour, is
// written to the shared list; every other success touches memory only.
func (l *AuthLimiter) Succeeded(ctx context.Context, credentialKey string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := l.Now()
	e := l.entry(credentialKey, true)
	e.good = now
	write := l.Shared != nil && now.Sub(e.stored) >= knownGoodRewrite
	if write {
		e.stored = now // claimed, so that concurrent successes do not all write
	}
	l.mu.Unlock()
	if !write {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.Shared.RecordKnownGood(ctx, credentialKey, now); err != nil {
		l.mu.Lock()
		if e.stored.Equal(now) {
			e.stored = time.Time{} // the next success tries again
		}
		l.mu.Unlock()
		return err
	}
	return nil
}

// KnownGood reports whether the credential authenticated within the last 24
// hours: in this process's memory, or else (with Shared) in the shared list,
// which is read only here, for a request from a blocked address. A shared
// list that cannot be read counts as not knowing the credential.
func (l *AuthLimiter) KnownGood(ctx context.Context, credentialKey string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	now := l.Now()
	if el, ok := l.entries[credentialKey]; ok {
		if good := el.Value.(*limitEntry).good; !good.IsZero() && now.Sub(good) < knownGoodFor {
			l.mu.Unlock()
			return true
		}
	}
	l.mu.Unlock()
	if l.Shared == nil {
		return false
	}
	seen, err := l.Shared.KnownGoodSince(ctx, credentialKey, now.Add(-knownGoodFor))
	if err != nil || seen.IsZero() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(credentialKey, true)
	if seen.After(e.good) {
		e.good = seen
	}
	if seen.After(e.stored) {
		e.stored = seen
	}
	return true
}

// CredentialKey scopes connector limits and the known-good list to the
// client address (a LimitAddress) and the presented credential. Basic
// credentials are keyed by their decoded username and password, so that
// "basic …", "BASIC …" or another base64 spelling of the same password count
// as one credential; Bearer ones by the trimmed token, whatever the scheme's
// case; anything else by the header's text. The credential is kept only as
// an HMAC under a key of this process, or under the secret every process
// shares (NewSharedAuthLimiter).
func (l *AuthLimiter) CredentialKey(address string, r *http.Request) string {
	header := r.Header.Get("Authorization")
	cred := "raw:" + header
	// net/http matches the Basic scheme name case-insensitively; so must the key.
	if user, password, ok := r.BasicAuth(); ok {
		cred = "basic:" + user + ":" + password
	} else if scheme, token, ok := strings.Cut(header, " "); ok && strings.EqualFold(scheme, "Bearer") {
		cred = "bearer:" + strings.TrimSpace(token)
	}
	return l.credentialKey(address, cred)
}

// EventsCredentialKey scopes the processor event endpoints' limits and
// known-good list to the client address and the processor account the
// events are posted for (the URL's NAME, whose secret the signature is
// checked with): a processor posts every customer's events from a few
// shared addresses, so one account's wrong secret never blocks another's
// events.
func (l *AuthLimiter) EventsCredentialKey(address, account string) string {
	return l.credentialKey(address, "events:"+account)
}

// credentialKey is the limiter key of a credential from address; the
// credential is kept only as an HMAC.
func (l *AuthLimiter) credentialKey(address, cred string) string {
	var sum [sha256.Size]byte
	return address + "|" + hex.EncodeToString(l.secret.Sum(sum[:0], cred)[:12])
}

// ConnectorAddressKey is the limiter key of a client address on the connector.
func ConnectorAddressKey(address string) string { return "connector|" + address }

// EventsAddressKey is the limiter key of a client address on the processor
// event endpoints.
func EventsAddressKey(address string) string { return "events|" + address }

// ClientAddress is the IP address a request came from, in its canonical
// text: the peer's, or behind a proxy the address the proxy saw, which is
// the last hop of the last X-Forwarded-For header (a proxy appends its peer
// there, to the header's last line or as a line of its own). The hop is used
// only if it parses as an IP address (bare, or with a port); otherwise the
// peer's address is, so no header text ever becomes an address.
func ClientAddress(r *http.Request, behindProxy bool) string {
	if behindProxy {
		if lines := r.Header.Values("X-Forwarded-For"); len(lines) > 0 {
			last := lines[len(lines)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if addr, ok := parseIP(strings.TrimSpace(last)); ok {
				return addr.String()
			}
		}
	}
	if addr, ok := parseIP(r.RemoteAddr); ok {
		return addr.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// parseIP parses an IP address, bare or with a port, without its IPv6 zone
// and with an IPv4-mapped IPv6 address as the IPv4 address it is.
func parseIP(s string) (netip.Addr, bool) {
	// One parse, chosen by the shape ("[v6]:port" or "v4:port" have a port;
	// a bare address never has exactly one colon), so that a request's
	// RemoteAddr is not first refused as a bare address (an error allocated
	// on every request).
	var addr netip.Addr
	var err error
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		addr = ap.Addr()
	} else {
		addr, err = netip.ParseAddr(s)
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// LimitAddress is what authentication limits count a client address
// (ClientAddress) as: an IPv4 address itself, an IPv6 address its /64
// ("2001:db8:1:2::/64"), the smallest network a subscriber is given, in
// which a host picks any address it likes.
func LimitAddress(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return addr
	}
	prefix, err := a.WithZone("").Prefix(64)
	if err != nil {
		return addr
	}
	return prefix.String()
}

// limitAddress is the request's client address as limits count it (the
// request log's middleware has put the address in the context already).
func (s *Server) limitAddress(r *http.Request) string {
	addr := ivrpay.ClientAddressFromContext(r.Context())
	if addr == "" {
		addr = ClientAddress(r, s.BehindProxy)
	}
	return LimitAddress(addr)
}

// connectorLimits are the two counts a failed connector authentication adds
// to: its credential from its address (AuthFailureLimit) and its address
// whatever the credential (ConnectorAddressFailureLimit).
func (s *Server) connectorLimits(r *http.Request, addr string) (credential, address limit) {
	address = limit{ConnectorAddressKey(addr), ConnectorAddressFailureLimit}
	if s.Limiter == nil {
		return limit{}, address
	}
	return limit{s.Limiter.CredentialKey(addr, r), AuthFailureLimit}, address
}
