package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// newMetrics builds the registry behind /metrics: the transport's request and
// connector metrics, payins by status (read from the database at scrape time,
// so it is true across every process), the database pool and the Go runtime.
func newMetrics(store *sqlstore.Store) (*httpapi.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(store.DB(), "ivrpay"), payinCollector{store})
	return httpapi.NewMetrics(reg), promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

var payinsDesc = prometheus.NewDesc("ivrpay_payins", "Payins in the database by status.", []string{"status"}, nil)

type payinCollector struct{ store *sqlstore.Store }

func (c payinCollector) Describe(ch chan<- *prometheus.Desc) { ch <- payinsDesc }

func (c payinCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.PayinStatusCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(payinsDesc, err)
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(payinsDesc, prometheus.GaugeValue, float64(n), status)
	}
}
