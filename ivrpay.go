// Package ivrpay is the domain of a payments platform API whose headline
// feature is taking card payments over the phone through Twilio's Generic Pay
// Connector. It holds the domain types, the service interfaces the transports
// call, permission evaluation and the error codes; implementations live in
// sub-packages and are wired together in cmd/ivrpay.
package ivrpay

import (
	"context"
	"fmt"
	"time"
)

// Mode is the mode a deployment runs in.
type Mode string

const (
	ModeSandbox    Mode = "sandbox"
	ModeProduction Mode = "production"
)

// ParseMode parses a --mode flag value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeSandbox, ModeProduction:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode must be sandbox or production, not %q", s)
}

// IDPrefix is "sbx_" in sandbox and empty in production.
func (m Mode) IDPrefix() string {
	if m == ModeSandbox {
		return "sbx_"
	}
	return ""
}

// Clock tells the time; tests inject a fixed one.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock in UTC.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// FormatTime formats t as RFC 3339 UTC with microseconds and a fixed width, so
// that stored times sort as strings on every engine. The digits are written
// directly (a charge formats a dozen times, and time.Format interprets its
// layout each time); a year outside 0–9999 goes through time.Format, which
// says the same for the years in between (TestFormatTimeIsTimeFormat).
func FormatTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(timeLayout)
	}
	hour, minute, second := t.Clock()
	var b [len(timeLayout)]byte
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, 4, year)
	b[4] = '-'
	put(5, 2, int(month))
	b[7] = '-'
	put(8, 2, day)
	b[10] = 'T'
	put(11, 2, hour)
	b[13] = ':'
	put(14, 2, minute)
	b[16] = ':'
	put(17, 2, second)
	b[19] = '.'
	put(20, 6, t.Nanosecond()/1000)
	b[26] = 'Z'
	return string(b[:])
}

// timeLayout is FormatTime's layout.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// BillingContact is who pays, as on Rainforest's payin config.
type BillingContact struct {
	Name         string `json:"name,omitempty"`
	AddressLine1 string `json:"address_line_1,omitempty"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	PostalCode   string `json:"postal_code,omitempty"`
	Country      string `json:"country,omitempty"`
	Email        string `json:"email,omitempty"`
	Phone        string `json:"phone,omitempty"`
}

// Validate checks lengths (100 characters, 2 letters for the country),
// postal codes (at most 10 letters, digits, spaces and dashes), and that no
// field holds a card number typed into the wrong place (SPEC §9).
func (b *BillingContact) Validate(field string) error {
	if b == nil {
		return nil
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"name", b.Name, 100}, {"address_line_1", b.AddressLine1, 100}, {"address_line_2", b.AddressLine2, 100},
		{"city", b.City, 100}, {"state", b.State, 100}, {"postal_code", b.PostalCode, 100},
		{"email", b.Email, 100}, {"phone", b.Phone, 100}, {"country", b.Country, 100},
	} {
		if err := checkFreeText(field+"."+f.name, f.value); err != nil {
			return err
		}
		if len(f.value) > f.max {
			return FieldErrorf(field+"."+f.name, "must be at most %d characters", f.max)
		}
	}
	if !ValidPostalCode(b.PostalCode) {
		return FieldErrorf(field+".postal_code", "must be at most %d letters, digits, spaces and dashes", MaxPostalCodeLength)
	}
	if b.Country != "" && (len(b.Country) != 2 || !isUpperAlpha(b.Country)) {
		return FieldErrorf(field+".country", "must be a two-letter ISO country code such as US")
	}
	return nil
}

func isUpperAlpha(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// Page is a cursor: list results whose ids are greater than StartKey.
type Page struct {
	Limit    int
	StartKey string
}

// MaxPageLimit is the largest page a list endpoint returns; DefaultPageLimit is used when none is asked for.
const (
	MaxPageLimit     = 1000
	DefaultPageLimit = 100
)

// List is one page of a list endpoint.
type List[T any] struct {
	TotalResults int    `json:"total_results"`
	LastKey      string `json:"last_key"`
	Results      []T    `json:"results"`
}

type contextKey int

const (
	principalContextKey contextKey = iota
	versionContextKey
)

// NewContextWithPrincipal returns ctx carrying the API key a request authenticated with.
func NewContextWithPrincipal(ctx context.Context, key *APIKey) context.Context {
	return context.WithValue(ctx, principalContextKey, key)
}

// PrincipalFromContext returns the authenticated API key, or nil.
func PrincipalFromContext(ctx context.Context) *APIKey {
	k, _ := ctx.Value(principalContextKey).(*APIKey)
	return k
}

// NewContextWithVersion returns ctx carrying the effective API version.
func NewContextWithVersion(ctx context.Context, v APIVersion) context.Context {
	return context.WithValue(ctx, versionContextKey, v)
}

// VersionFromContext returns the effective API version, or the newest one.
func VersionFromContext(ctx context.Context) APIVersion {
	if v, ok := ctx.Value(versionContextKey).(APIVersion); ok {
		return v
	}
	return LatestAPIVersion
}
