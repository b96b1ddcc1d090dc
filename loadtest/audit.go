package loadtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Audit is what GET /v1/payins?source=IVR shows after a run.
type Audit struct {
	IVRPayins int `json:"ivr_payins"`
	// DuplicateConfigs counts configs with more than one approved (live) payin.
	DuplicateConfigs int `json:"duplicate_configs"`
	// DuplicateTransactions counts transaction_ids with more than one payin.
	DuplicateTransactions int `json:"duplicate_transactions"`
	// MissingCharges counts acknowledged charge_ids with no payin, or with a
	// payin of another transaction_id.
	MissingCharges int      `json:"missing_charges"`
	Samples        []string `json:"samples,omitempty"`
}

// OK reports whether the audit found nothing wrong.
func (a *Audit) OK() bool {
	return a.DuplicateConfigs == 0 && a.DuplicateTransactions == 0 && a.MissingCharges == 0
}

func (a *Audit) sample(format string, args ...any) {
	if len(a.Samples) < 10 {
		a.Samples = append(a.Samples, fmt.Sprintf(format, args...))
	}
}

// AuditReport audits the payins after a run and records the result (or
// why the audit failed) in r. The audit gets up to two minutes of its own,
// so that a run ended by ctx is still audited.
func (t *Target) AuditReport(ctx context.Context, r *Report) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var err error
	r.Audit, err = t.AuditIVRPayins(ctx, r.acknowledged)
	if err != nil {
		r.AuditError = err.Error()
	}
}

// AuditIVRPayins pages through every IVR payin of the platform and counts
// configs with two approved payins, transaction_ids with two payins, and
// acknowledged charges (charge_id → transaction_id) that have no payin.
func (t *Target) AuditIVRPayins(ctx context.Context, acknowledged map[string]string) (*Audit, error) {
	a := &Audit{}
	live := map[string][]string{}
	byTx := map[string][]string{}
	txOf := map[string]string{}
	filter := ivrpay.PayinFilter{Source: ivrpay.PayinSourceIVR, Page: ivrpay.Page{Limit: ivrpay.MaxPageLimit}}
	for {
		page, err := t.AdminClient().ListPayins(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("list IVR payins: %w", err)
		}
		for _, p := range page.Results {
			a.IVRPayins++
			switch p.Status {
			case ivrpay.PayinStatusFailed, ivrpay.PayinStatusCanceled:
			default:
				live[p.PayinConfigID] = append(live[p.PayinConfigID], p.ID)
			}
			if p.IVR != nil {
				byTx[p.IVR.TransactionID] = append(byTx[p.IVR.TransactionID], p.ID)
				txOf[p.ID] = p.IVR.TransactionID
			}
		}
		if len(page.Results) < filter.Limit || page.LastKey == "" {
			break
		}
		filter.StartKey = page.LastKey
	}
	for _, k := range sortedKeys(live) {
		if ids := live[k]; len(ids) > 1 {
			a.DuplicateConfigs++
			a.sample("payin config %s has %d approved payins: %s", k, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, k := range sortedKeys(byTx) {
		if ids := byTx[k]; len(ids) > 1 {
			a.DuplicateTransactions++
			a.sample("transaction_id %s has %d payins: %s", k, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, id := range sortedKeys(acknowledged) {
		if tx, ok := txOf[id]; !ok || tx != acknowledged[id] {
			a.MissingCharges++
			a.sample("charge %s acknowledged to transaction_id %s has no such payin", id, acknowledged[id])
		}
	}
	return a, nil
}

// sortedKeys returns m's keys in order, so that reports list samples in
// the same order on every run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
