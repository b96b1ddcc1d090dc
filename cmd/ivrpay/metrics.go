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
// connector metrics, recent payins by status (read from the database, so true
// across every process, but cheaply: see payinCollector), the database pool
// and the Go runtime, and any further collectors.
func newMetrics(store *sqlstore.Store, more ...prometheus.Collector) (*httpapi.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(more...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(store.DB(), "ivrpay"), newPayinCollector(store.RecentPayinStatusCounts, time.Now))
	return httpapi.NewMetrics(reg), promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Payin gauge bounds: the gauge covers payins created in the last
// payinWindow and is refreshed at most once per payinRefresh, whatever the
// scrape rate.
const (
	payinWindow  = 24 * time.Hour
	payinRefresh = time.Minute
)

var payinsDesc = prometheus.NewDesc("ivrpay_payins_recent", "Payins created in the last 24 hours, by status (refreshed at most once a minute).", []string{"status"}, nil)

// payinCollector serves a cached count of recent payins by status. The
// count is a range of the payins' primary key (the last 24 hours of ids),
// never a scan of every payin, and a scrape inside payinRefresh of the last
// one reads no database at all.
type payinCollector struct {
	count func(ctx context.Context, since time.Time) (map[string]int, error)
	now   func() time.Time

	mu      sync.Mutex
	read    time.Time
	counts  map[string]int
	lastErr error
}

func newPayinCollector(count func(context.Context, time.Time) (map[string]int, error), now func() time.Time) *payinCollector {
	return &payinCollector{count: count, now: now}
}

func (c *payinCollector) Describe(ch chan<- *prometheus.Desc) { ch <- payinsDesc }

func (c *payinCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.read.IsZero() || now.Sub(c.read) >= payinRefresh {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.count(ctx, now.Add(-payinWindow))
		cancel()
		c.read, c.lastErr = now, err
		if err == nil {
			c.counts = counts
		}
	}
	if c.lastErr != nil {
		ch <- prometheus.NewInvalidMetric(payinsDesc, c.lastErr)
		return
	}
	for status, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(payinsDesc, prometheus.GaugeValue, float64(n), status)
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
