package loadtest

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured.
type Report struct {
	Mode        string         `json:"mode"`
	BaseURL     string         `json:"base_url"`
	Seconds     float64        `json:"seconds"`
	Calls       int            `json:"calls"`
	Charged     int            `json:"charged"`
	ChargesPerS float64        `json:"charges_per_second"`
	Latency     LatencySummary `json:"charge_latency_ms"`
	ConfigLat   LatencySummary `json:"config_latency_ms"`
	Outcomes    map[string]int `json:"outcomes"`
	Retries     int            `json:"retries"`
	Concurrent  int            `json:"concurrent_duplicates"`
	Mismatches  int            `json:"mismatches"`
	// MismatchSamples shows the first few mismatches.
	MismatchSamples []string          `json:"mismatch_samples,omitempty"`
	Audit           *Audit            `json:"audit"`
	AuditError      string            `json:"audit_error,omitempty"`
	acknowledged    map[string]string // charge_id → transaction_id
}

// OK reports whether the run found no duplicate, mismatch or lost charge.
func (r *Report) OK() bool {
	return r.Mismatches == 0 && r.AuditError == "" && (r.Audit == nil || r.Audit.OK())
}

// LatencySummary holds percentiles in milliseconds.
type LatencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(d []time.Duration) LatencySummary {
	if len(d) == 0 {
		return LatencySummary{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	return LatencySummary{N: len(d), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(d[len(d)-1]) / float64(time.Millisecond)}
}

// Print writes the report as text, one measure a line.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "ivrpay loadtest: %s against %s\n", r.Mode, r.BaseURL)
	fmt.Fprintf(w, "  calls            %d in %.1fs, %d charged: %.1f charges/s\n", r.Calls, r.Seconds, r.Charged, r.ChargesPerS)
	lat := func(name string, l LatencySummary) {
		fmt.Fprintf(w, "  %-16s p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)\n", name, l.P50, l.P95, l.P99, l.Max, l.N)
	}
	lat("charge latency", r.Latency)
	lat("config latency", r.ConfigLat)
	var errs []string
	for _, k := range sortedKeys(r.Outcomes) {
		if k != outcomeCharged {
			errs = append(errs, fmt.Sprintf("%s %d", k, r.Outcomes[k]))
		}
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(w, "  errors           %s\n", strings.Join(errs, ", "))
	fmt.Fprintf(w, "  replays          %d retries, %d concurrent duplicates, %d mismatches\n", r.Retries, r.Concurrent, r.Mismatches)
	for _, s := range r.MismatchSamples {
		fmt.Fprintf(w, "    %s\n", s)
	}
	switch {
	case r.AuditError != "":
		fmt.Fprintf(w, "  audit            failed: %s\n", r.AuditError)
	case r.Audit != nil:
		fmt.Fprintf(w, "  audit            %d IVR payins on platform; duplicates per config %d, per transaction_id %d; acknowledged charges missing %d\n",
			r.Audit.IVRPayins, r.Audit.DuplicateConfigs, r.Audit.DuplicateTransactions, r.Audit.MissingCharges)
		for _, s := range r.Audit.Samples {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "  result           OK: no duplicate payin, no mismatched replay, no lost charge")
	} else {
		fmt.Fprintln(w, "  result           FAILED")
	}
}
