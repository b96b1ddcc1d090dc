package httpapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the transport's Prometheus metrics.
type Metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	connector  *prometheus.CounterVec
	rateLimits prometheus.Counter
}

// NewMetrics registers the transport's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpay_http_requests_total",
			Help: "HTTP requests by route and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ivrpay_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15}},
			[]string{"route"}),
		connector: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpay_connector_outcomes_total",
			Help: "Connector answers (Twilio, Telnyx, SignalWire) by error_code (OK for success)."}, []string{"error_code"}),
		rateLimits: prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpay_auth_rate_limited_total",
			Help: "Requests refused because their client reached the authentication failure limit."}),
	}
	reg.MustRegister(m.requests, m.latency, m.connector, m.rateLimits)
	return m
}

func (m *Metrics) observe(route string, status int, d time.Duration, outcome string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, statusLabel(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
	if connectorPlatform(route) != nil && outcome != "" {
		m.connector.WithLabelValues(outcome).Inc()
	}
}

func statusLabel(status int) string {
	if status == 0 {
		status = 200
	}
	const digits = "0123456789"
	return string([]byte{digits[status/100%10], digits[status/10%10], digits[status%10]})
}
