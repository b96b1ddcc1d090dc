package ivrpay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// PrefixSession is the id prefix of sessions.
const PrefixSession = "ses_"

// Session TTL bounds and default, in seconds (SPEC §3).
const (
	SessionTTLMin     = 60
	SessionTTLMax     = 86400
	SessionTTLDefault = 3600
)

// Session is a short-lived key made by an API key for one browser form or
// one call: its secret (SessionKey, shown once) authenticates like an API key
// until ExpiresAt. Only a hash of the secret is stored.
type Session struct {
	ID         string      `json:"session_id"`
	PlatformID string      `json:"platform_id"`
	SessionKey string      `json:"session_key,omitempty"`
	Statements []Statement `json:"statements"`
	ExpiresAt  time.Time   `json:"expires_at"`
	CreatedAt  time.Time   `json:"created_at"`
	// CreatedBy is the API key that created the session; shown in the portal.
	CreatedBy string `json:"-"`
}

// SessionCreate is the body of POST /v1/sessions, its statements already parsed.
type SessionCreate struct {
	// TTL is the lifetime in seconds; 0 means SessionTTLDefault.
	TTL        int
	Statements []Statement
}

// SessionCreateBody is the body of POST /v1/sessions as sent.
type SessionCreateBody struct {
	TTL        *json.Number    `json:"ttl"`
	Statements json.RawMessage `json:"statements"`
}

// Parse validates the body: ttl (an integer, 60–86400, default 3600) and
// statements, where a statement that names no platform gets platformID's
// (OpenEMR sends only a merchant constraint).
func (b SessionCreateBody) Parse(platformID string) (SessionCreate, error) {
	var in SessionCreate
	if b.TTL != nil {
		n, err := b.TTL.Int64()
		if err != nil || strings.ContainsAny(b.TTL.String(), ".eE") {
			return SessionCreate{}, FieldErrorf("ttl", "must be an integer number of seconds")
		}
		if n < SessionTTLMin || n > SessionTTLMax {
			return SessionCreate{}, FieldErrorf("ttl", "must be between %d and %d seconds", SessionTTLMin, SessionTTLMax)
		}
		in.TTL = int(n)
	}
	st, err := ParseStatementsFor(b.Statements, platformID)
	if err != nil {
		return SessionCreate{}, err
	}
	in.Statements = st
	return in, nil
}

// Lifetime is the session's TTL as a duration.
func (in SessionCreate) Lifetime() time.Duration {
	if in.TTL == 0 {
		return SessionTTLDefault * time.Second
	}
	return time.Duration(in.TTL) * time.Second
}

// SessionService creates sessions for the key in the context and lists the
// platform's active ones. A session cannot create sessions or keys.
type SessionService interface {
	CreateSession(ctx context.Context, in SessionCreate) (*Session, error)
	ListActiveSessions(ctx context.Context, page Page) (*List[*Session], error)
}

// NewSessionSecret returns a fresh session secret: "session_" (or
// "sbx_session_") and 64 hex characters.
func NewSessionSecret(mode Mode) string {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err)
	}
	return mode.IDPrefix() + "session_" + hex.EncodeToString(raw[:])
}

// IsSessionSecret reports whether a presented secret has the shape of a session key.
func IsSessionSecret(secret string) bool {
	return strings.HasPrefix(strings.TrimPrefix(secret, "sbx_"), "session_")
}
