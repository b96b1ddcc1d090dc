// Package httpapi serves ivrpay over HTTP: the REST API under /v1, the Twilio
// Generic Pay Connector endpoint and /health. Handlers read as decode →
// authenticate → call a domain service → respond; storage is reached only
// through the domain's service interfaces.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/voice"
)

// Services are the domain services the handlers call.
type Services struct {
	Auth                 ivrpay.AuthService
	APIKeys              ivrpay.APIKeyService
	Merchants            ivrpay.MerchantService
	PayinConfigs         ivrpay.PayinConfigService
	PaymentMethodConfigs ivrpay.PaymentMethodConfigService
	Payins               ivrpay.PayinService
	PaymentMethods       ivrpay.PaymentMethodService
	Connector            ivrpay.ConnectorService
	Lifecycle            ivrpay.PayinLifecycleService
	Chargebacks          ivrpay.ChargebackService
	WebhookEndpoints     ivrpay.WebhookEndpointService
	Sessions             ivrpay.SessionService
	// Audit, when set, records authentication failures.
	Audit ivrpay.AuditService
	// EventSecrets and ProcessorEvents, when both are set, serve the
	// processor event endpoints (SPEC §4.2): the accounts' events secrets,
	// and the inbox that takes the verified events.
	EventSecrets    ivrpay.ProcessorEventSecrets
	ProcessorEvents ivrpay.ProcessorEventReceiver
	// Health reports whether the database answers.
	Health func(ctx context.Context) error
}

// Store is what the REST API reads and writes outside the money path
// (sqlstore implements it).
type Store interface {
	ivrpay.AuthService
	ivrpay.APIKeyService
	ivrpay.MerchantService
	ivrpay.PayinConfigService
	ivrpay.PaymentMethodConfigService
	ivrpay.PaymentMethodService
	ivrpay.ChargebackService
	ivrpay.WebhookEndpointService
	ivrpay.SessionService
	ivrpay.AuditService
	Ping(ctx context.Context) error
}

// Payments is the money path (the payments service implements it).
type Payments interface {
	ivrpay.PayinService
	ivrpay.ConnectorService
	ivrpay.PayinLifecycleService
}

// NewServices wires every service: the money path to pay, the rest to store.
func NewServices(store Store, pay Payments) Services {
	return Services{Auth: store, APIKeys: store, Merchants: store, PayinConfigs: store, PaymentMethodConfigs: store,
		Payins: pay, PaymentMethods: store, Connector: pay, Lifecycle: pay, Chargebacks: store, WebhookEndpoints: store, Sessions: store, Audit: store, Health: store.Ping}
}

// Server is the HTTP transport.
type Server struct {
	Services
	Logger *slog.Logger
	// Metrics, when set, records requests and connector outcomes.
	Metrics *Metrics
	// Limiter blocks clients after repeated authentication failures; nil disables it.
	Limiter *AuthLimiter
	// BehindProxy takes the client address from X-Forwarded-For.
	BehindProxy bool
	// MetricsHandler, when set, serves GET /metrics on this listener.
	MetricsHandler http.Handler
	// Portal, when set, serves the web portal under /portal.
	Portal http.Handler
}

// Where each voice platform posts connector requests (SPEC §5, §5.6).
var (
	ConnectorPath           = voice.Twilio.Path()
	TelnyxConnectorPath     = voice.Telnyx.Path()
	SignalWireConnectorPath = voice.SignalWire.Path()
)

// connectorPlatform returns the voice platform whose connector route pattern
// is, or nil for any other route.
func connectorPlatform(pattern string) voice.Platform {
	for _, p := range voice.Platforms() {
		if pattern == "POST "+p.Path() {
			return p
		}
	}
	return nil
}

// Handler returns the routed handler with its middleware.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /openapi.json", s.handleOpenAPI)
	for _, p := range voice.Platforms() {
		mux.HandleFunc("POST "+p.Path(), s.connectorHandler(p))
	}
	mux.HandleFunc("POST /vendor/stripe/events/{name}", s.processorEventsHandler(stripeEvents))
	mux.HandleFunc("POST /vendor/adyen/notifications/{name}", s.processorEventsHandler(adyenNotifications))
	if s.MetricsHandler != nil {
		mux.Handle("GET /metrics", s.MetricsHandler)
	}

	mux.Handle("POST /v1/api_keys", s.api(s.handleCreateAPIKey))
	mux.Handle("GET /v1/api_keys", s.api(s.handleListAPIKeys))
	mux.Handle("GET /v1/api_keys/{id}", s.api(s.handleGetAPIKey))
	mux.Handle("POST /v1/api_keys/{id}/disable", s.api(s.handleSetAPIKeyStatus(ivrpay.APIKeyStatusDisabled)))
	mux.Handle("POST /v1/api_keys/{id}/enable", s.api(s.handleSetAPIKeyStatus(ivrpay.APIKeyStatusEnabled)))
	mux.Handle("DELETE /v1/api_keys/{id}", s.api(s.handleDeleteAPIKey))

	mux.Handle("POST /v1/sessions", s.api(s.handleCreateSession))

	mux.Handle("POST /v1/merchants", s.api(s.handleCreateMerchant))
	mux.Handle("GET /v1/merchants", s.api(s.handleListMerchants))
	mux.Handle("GET /v1/merchants/{id}", s.api(s.handleGetMerchant))

	mux.Handle("POST /v1/payin_configs", s.api(s.handleCreatePayinConfig))
	mux.Handle("GET /v1/payin_configs/{id}", s.api(s.handleGetPayinConfig))
	mux.Handle("POST /v1/payment_method_configs", s.api(s.handleCreatePaymentMethodConfig))
	mux.Handle("GET /v1/payment_method_configs/{id}", s.api(s.handleGetPaymentMethodConfig))

	mux.Handle("GET /v1/payins", s.api(s.handleListPayins))
	mux.Handle("GET /v1/payins/{id}", s.api(s.handleGetPayin))
	mux.Handle("GET /v1/payment_methods", s.api(s.handleListPaymentMethods))
	mux.Handle("GET /v1/payment_methods/{id}", s.api(s.handleGetPaymentMethod))
	mux.Handle("POST /v1/payment_methods/{id}/payin", s.api(s.handleChargePaymentMethod))
	mux.Handle("POST /v1/payment_methods/{id}/deactivate", s.api(s.handleDeactivatePaymentMethod))

	mux.Handle("POST /v1/payins/{id}/capture", s.api(s.handleCapturePayin))
	mux.Handle("POST /v1/payins/{id}/void_or_refund", s.api(s.handleVoidOrRefund))
	mux.Handle("GET /v1/refunds/{id}", s.api(s.handleGetRefund))
	mux.Handle("GET /v1/chargebacks", s.api(s.handleListChargebacks))
	mux.Handle("GET /v1/chargebacks/{id}", s.api(s.handleGetChargeback))
	mux.Handle("POST /v1/webhook_endpoints", s.api(s.handleCreateWebhookEndpoint))
	mux.Handle("GET /v1/webhook_endpoints", s.api(s.handleListWebhookEndpoints))
	mux.Handle("GET /v1/webhook_endpoints/{id}", s.api(s.handleGetWebhookEndpoint))
	mux.Handle("DELETE /v1/webhook_endpoints/{id}", s.api(s.handleDeleteWebhookEndpoint))
	mux.Handle("POST /v1/webhook_endpoints/{id}/rotate_secret", s.api(s.handleRotateWebhookSecret))
	mux.Handle("GET /v1/webhook_endpoints/{id}/deliveries", s.api(s.handleListWebhookDeliveries))

	if s.Portal != nil {
		mux.Handle("/portal", s.Portal)
		mux.Handle("/portal/", s.Portal)
	}

	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, ivrpay.Errorf(ivrpay.ENOTFOUND, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s.logRequests(mux)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Health(r.Context()); err != nil {
		s.Logger.Error("health check failed", "error", err)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("ERROR"))
		return
	}
	w.Write([]byte("OK"))
}
