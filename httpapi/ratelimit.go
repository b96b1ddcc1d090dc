package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
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

// AuthLimiter counts authentication failures (401s; 403s do not count) per
// key — a client address, or on the connector an address and a credential —
// and blocks a key that reached the limit. It lives in each process's
// memory: several processes each enforce the limit on their own share.
type AuthLimiter struct {
	Now func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
	blocked  map[string]time.Time
	calls    int
}

// NewAuthLimiter returns a limiter on the wall clock.
func NewAuthLimiter() *AuthLimiter {
	return &AuthLimiter{Now: time.Now, failures: map[string][]time.Time{}, blocked: map[string]time.Time{}}
}

// Blocked reports whether key is blocked, and for how long still.
func (l *AuthLimiter) Blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocked[key]
	if !ok {
		return 0, false
	}
	if left := until.Sub(l.Now()); left > 0 {
		return left, true
	}
	delete(l.blocked, key)
	return 0, false
}

// Fail records a failure for key and reports whether it is now blocked.
func (l *AuthLimiter) Fail(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	l.calls++
	if l.calls%1024 == 0 {
		l.sweep(now)
	}
	recent := l.failures[key][:0]
	for _, t := range l.failures[key] {
		if now.Sub(t) < AuthFailureWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	if len(recent) >= AuthFailureLimit {
		delete(l.failures, key)
		l.blocked[key] = now.Add(AuthBlockDuration)
		return true
	}
	l.failures[key] = recent
	return false
}

// sweep drops stale entries so that the maps stay bounded by recent traffic.
func (l *AuthLimiter) sweep(now time.Time) {
	for k, ts := range l.failures {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= AuthFailureWindow {
			delete(l.failures, k)
		}
	}
	for k, until := range l.blocked {
		if !now.Before(until) {
			delete(l.blocked, k)
		}
	}
}

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

// credentialKey scopes connector limits to a presented credential (hashed,
// never kept), so that one misconfigured connector behind Twilio's shared
// addresses never locks out another platform's valid key.
func credentialKey(address, credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return address + "|" + hex.EncodeToString(sum[:8])
}
