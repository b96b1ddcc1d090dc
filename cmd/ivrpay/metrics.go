package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// newMetrics builds the registry behind /metrics: the transport's request and
// connector metrics, recent payins by status (read from the database, so true
// across every process, but cheaply: see payinCollector), the database pool
// and the Go runtime.
func newMetrics(store *sqlstore.Store) (*httpapi.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
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
