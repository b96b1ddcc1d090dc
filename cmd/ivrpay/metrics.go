package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// newMetrics builds the registry behind /metrics: the transport's request and
// connector metrics, recent payins and unapplied processor events by status
// (read from the database, so true across every process, but cheaply: see
// countCollector), the database pool and the Go runtime, and any further
// collectors.
func newMetrics(store *sqlstore.Store, more ...prometheus.Collector) (*httpapi.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(more...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(store.DB(), "ivrpay"),
		newPayinCollector(store.RecentPayinStatusCounts, time.Now),
		newCountCollector(processorEventsDesc, func(ctx context.Context, _ time.Time) (map[string]int, error) {
			return store.UnappliedProcessorEventCounts(ctx)
		}, time.Now))
	return httpapi.NewMetrics(reg), promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// The counted gauges' bounds: the payin gauge covers payins created in the
// last payinWindow, and each gauge is refreshed at most once per
// countRefresh, whatever the scrape rate.
const (
	payinWindow  = 24 * time.Hour
	countRefresh = time.Minute
)

var (
	payinsDesc = prometheus.NewDesc("ivrpay_payins_recent", "Payins created in the last 24 hours, by status (refreshed at most once a minute).", []string{"status"}, nil)
	// An operator alerts on FAILED (ivrpay admin events list --failed) and
	// watches UNMATCHED and PENDING grow.
	processorEventsDesc = prometheus.NewDesc("ivrpay_processor_events_unapplied",
		"Processor events not applied, by status: PENDING (to apply, or waiting for their object), UNMATCHED, FAILED (refreshed at most once a minute).",
		[]string{"status"}, nil)
)

// countCollector serves a cached count by status read from the database:
// each count reads an index (a range of the payins' primary key, the
// processor events' status index), and a scrape inside countRefresh of the
// last read reads no database at all.
type countCollector struct {
	desc  *prometheus.Desc
	count func(ctx context.Context, now time.Time) (map[string]int, error)
	now   func() time.Time

	mu      sync.Mutex
	read    time.Time
	counts  map[string]int
	lastErr error
}

func newCountCollector(desc *prometheus.Desc, count func(context.Context, time.Time) (map[string]int, error), now func() time.Time) *countCollector {
	return &countCollector{desc: desc, count: count, now: now}
}

// newPayinCollector counts the payins created in the last payinWindow.
func newPayinCollector(count func(ctx context.Context, since time.Time) (map[string]int, error), now func() time.Time) *countCollector {
	return newCountCollector(payinsDesc, func(ctx context.Context, now time.Time) (map[string]int, error) {
		return count(ctx, now.Add(-payinWindow))
	}, now)
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.read.IsZero() || now.Sub(c.read) >= countRefresh {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.count(ctx, now)
		cancel()
		c.read, c.lastErr = now, err
		if err == nil {
			c.counts = counts
		}
	}
	if c.lastErr != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, c.lastErr)
		return
	}
	for status, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
}

// riskMetrics are the risk rules' counters (docs/risk.md), one series per rule.
type riskMetrics struct {
	refused, blocked *prometheus.CounterVec
}

func newRiskMetrics() *riskMetrics {
	m := &riskMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpay_risk_refusals_total",
			Help: "Charge attempts a risk rule refused before the processor (rule 5: approvals voided), by rule."}, []string{"rule"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpay_risk_blocks_total",
			Help: "Risk blocks started (a card, config, caller or merchant refused from then on), by rule."}, []string{"rule"}),
	}
	for _, rule := range ivrpay.RiskRules {
		// Every series exists from the start, so that an alert on a rate sees 0, not nothing.
		m.refused.WithLabelValues(rule)
		m.blocked.WithLabelValues(rule)
	}
	return m
}

func (m *riskMetrics) Refused(rule string) { m.refused.WithLabelValues(rule).Inc() }
func (m *riskMetrics) Blocked(rule string) { m.blocked.WithLabelValues(rule).Inc() }
