package ivrpay

import (
	"context"
	"time"
)

// AuditEvent is one audit record (PCI DSS 10.2.2): who did what, when, from
// where, and with what outcome. It never holds card data or a key secret.
type AuditEvent struct {
	ID            string    `json:"audit_id"`
	OccurredAt    time.Time `json:"occurred_at"`
	Actor         string    `json:"actor"` // an API key id, "operator" for the admin CLI, or "anonymous"
	PlatformID    string    `json:"platform_id,omitempty"`
	Action        string    `json:"action"` // e.g. api_key.create, platform.enable_ivr, payin.create, auth.failure
	Target        string    `json:"target,omitempty"`
	ClientAddress string    `json:"client_address,omitempty"`
	Outcome       string    `json:"outcome"` // success, denied, failed, or a payin's status
	Detail        string    `json:"detail,omitempty"`
}

// Audit outcomes.
const (
	AuditSuccess = "success"
	AuditDenied  = "denied"
	AuditFailed  = "failed"
)

// Actors that are not API keys.
const (
	ActorOperator  = "operator"
	ActorAnonymous = "anonymous"
)

// AuditFilter selects audit records; empty fields match everything.
type AuditFilter struct {
	Actor, PlatformID, Action, Outcome string
	Since, Until                       time.Time
	Limit                              int
}

// AuditService records and reads audit events.
type AuditService interface {
	RecordAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

type clientAddressKey struct{}

// NewContextWithClientAddress returns ctx carrying the address a request came from, for audit records.
func NewContextWithClientAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddressKey{}, addr)
}

// ClientAddressFromContext returns the request's client address, or "".
func ClientAddressFromContext(ctx context.Context) string {
	s, _ := ctx.Value(clientAddressKey{}).(string)
	return s
}

// ActorFromContext is the key id of the request's principal, or "operator"
// when there is none (the admin CLI calls services without a key).
func ActorFromContext(ctx context.Context) string {
	if k := PrincipalFromContext(ctx); k != nil {
		return k.ID
	}
	return ActorOperator
}
