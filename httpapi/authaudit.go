package httpapi

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Audit rows of authentication failures are aggregated per client address
// (a LimitAddress) and written by Run every AuditInterval and when it stops,
// so that every failure reaches the audit trail within a minute and at
// shutdown, and a flood writes a bounded number of rows: at most MaxAuditRows
// per pass, one per address for the first MaxAuditRows-1 addresses and one
// for all the others together.
const (
	DefaultAuditInterval = 30 * time.Second
	DefaultMaxAuditRows  = 100
)

// auditAggregate holds the failures not yet written.
type auditAggregate struct {
	mu      sync.Mutex
	pending map[string]*pendingAudit // by address
	others  pendingAudit             // the addresses beyond the cap
}

// pendingAudit is one address's failures since its last row.
type pendingAudit struct {
	address  string
	route    string // the first failure's
	failures int
	since    time.Time
	blocked  bool // one of them blocked a credential or the address
	others   bool // the row of the addresses beyond the cap
}

func (l *AuthLimiter) auditInterval() time.Duration {
	if l.AuditInterval > 0 {
		return l.AuditInterval
	}
	return DefaultAuditInterval
}

func (l *AuthLimiter) maxAuditRows() int {
	if l.MaxAuditRows > 1 {
		return l.MaxAuditRows
	}
	return DefaultMaxAuditRows
}

// AuditFailure counts an authentication failure from address (a
// LimitAddress) on route for the audit trail, and whether it blocked
// something. It reports false, and keeps nothing, when the limiter has no
// Audit to write to: the caller then writes the row itself.
func (l *AuthLimiter) AuditFailure(address, route string, blocked bool) bool {
	if l == nil || l.Audit == nil {
		return false
	}
	a := &l.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	a.add(pendingAudit{address: address, route: route, failures: 1, since: l.Now(), blocked: blocked}, l.maxAuditRows()-1)
	return true
}

// add merges p into the pending rows, or into the others' row once
// maxAddresses addresses are pending.
func (a *auditAggregate) add(p pendingAudit, maxAddresses int) {
	if a.pending == nil {
		a.pending = map[string]*pendingAudit{}
	}
	into := a.pending[p.address]
	if into == nil && !p.others && len(a.pending) < maxAddresses {
		into = &pendingAudit{address: p.address}
		a.pending[p.address] = into
	}
	if into == nil {
		into = &a.others
		into.address, into.others = "", true
	}
	if into.failures == 0 || p.since.Before(into.since) {
		into.since = p.since
	}
	if into.route == "" {
		into.route = p.route
	}
	into.failures += p.failures
	into.blocked = into.blocked || p.blocked
}

// FlushAudit writes the pending failures, one auth.failure row per address
// (oldest first) and one for the addresses beyond the cap. Rows it could not
// write stay pending for the next call.
func (l *AuthLimiter) FlushAudit(ctx context.Context) error {
	if l == nil || l.Audit == nil {
		return nil
	}
	a := &l.audit
	a.mu.Lock()
	rows := make([]pendingAudit, 0, len(a.pending)+1)
	for _, p := range a.pending {
		rows = append(rows, *p)
	}
	slices.SortFunc(rows, func(x, y pendingAudit) int { return x.since.Compare(y.since) })
	if a.others.failures > 0 {
		rows = append(rows, a.others)
	}
	a.pending, a.others = nil, pendingAudit{}
	a.mu.Unlock()
	for i, p := range rows {
		if err := l.Audit.RecordAudit(ctx, p.event()); err != nil {
			a.mu.Lock()
			for _, q := range rows[i:] {
				a.add(q, l.maxAuditRows()-1)
			}
			a.mu.Unlock()
			return err
		}
	}
	return nil
}

// event is the audit row of p.
func (p pendingAudit) event() ivrpay.AuditEvent {
	detail := "route=" + p.route + " failures=" + strconv.Itoa(p.failures) + " since=" + ivrpay.FormatTime(p.since)
	if p.others {
		detail += " addresses=others"
	}
	if p.blocked {
		detail += " blocked_for=" + AuthBlockDuration.String()
	}
	return ivrpay.AuditEvent{Actor: ivrpay.ActorAnonymous, Action: "auth.failure", ClientAddress: p.address,
		Outcome: ivrpay.AuditDenied, Detail: detail}
}
