package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
)

// stubConfigs answers every payin config creation with the same config: the
// HTTP side of the request alone, without a store.
type stubConfigs struct {
	ivrpay.PayinConfigService
	cfg *ivrpay.PayinConfig
}

func (s stubConfigs) CreatePayinConfig(context.Context, ivrpay.PayinConfigCreate) (*ivrpay.PayinConfig, error) {
	return s.cfg, nil
}

type stubAuth struct{ key *ivrpay.APIKey }

func (s stubAuth) Authenticate(context.Context, string) (*ivrpay.APIKey, error) {
	k := *s.key
	return &k, nil
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkConfigRequest runs POST /v1/payin_configs through the real
// middleware, authentication wrapper, decoding and answer, against services
// that answer at once, with a text request log (discarded):
//
//	go test ./httpapi -run '^$' -bench ConfigRequest -benchmem
func BenchmarkConfigRequest(b *testing.B) {
	at := time.Date(2026, 12, 7, 13, 0, 0, 123456000, time.UTC)
	key := &ivrpay.APIKey{ID: "sbx_key_1", PlatformID: "sbx_plt_1", Platform: &ivrpay.Platform{ID: "sbx_plt_1"}}
	cfg := &ivrpay.PayinConfig{ID: "sbx_pic_3MvqXkjRynkN5661vpwCm1M2gtj", PlatformID: "sbx_plt_1", MerchantID: "sbx_mid_1",
		Merchant: ivrpay.MerchantRef{ID: "sbx_mid_1", Name: "Acme Shop"}, IdempotencyKey: "loadtest-1", Amount: 1000, CurrencyCode: "USD",
		Metadata: json.RawMessage(`{"source":"ivrpay loadtest"}`), CreatedAt: at}
	s := &Server{Services: Services{Auth: stubAuth{key}, PayinConfigs: stubConfigs{cfg: cfg}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := s.Handler()
	const body = `{"merchant_id":"sbx_mid_1","idempotency_key":"loadtest-1","amount":1000,"currency_code":"USD","metadata":{"source":"ivrpay loadtest"}}`
	request := func() *http.Request {
		r, _ := http.NewRequest("POST", "/v1/payin_configs", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer sbx_apikey_x")
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "127.0.0.1:54321"
		return r
	}
	rec := httptest.NewRecorder()
	if h.ServeHTTP(rec, request()); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"status":"SUCCESS"`) {
		b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, request())
	}
}

// stubConnector approves every charge with the same answer.
type stubConnector struct{ res ivrpay.IVRResult }

func (s stubConnector) ProcessIVR(context.Context, ivrpay.IVRRequest) (ivrpay.IVRResult, error) {
	return s.res, nil
}

// BenchmarkConnectorRequest runs a Twilio charge through the real
// middleware, the connector handler (with an authentication limiter) and
// its answer, against services that answer at once:
//
//	go test ./httpapi -run '^$' -bench ConnectorRequest -benchmem
func BenchmarkConnectorRequest(b *testing.B) {
	key := &ivrpay.APIKey{ID: "sbx_key_2", PlatformID: "sbx_plt_1", Platform: &ivrpay.Platform{ID: "sbx_plt_1"}}
	res := ivrpay.IVRResult{ID: "sbx_pyi_3MvqXkjRynkN5661vpwCm1M2gtj", Parameters: map[string]string{
		"payin_id": "sbx_pyi_3MvqXkjRynkN5661vpwCm1M2gtj", "payin_status": "PROCESSING", "payment_method_id": "sbx_mtd_3MvqXkjRynkN5661vpwCm1M2gtk",
		"card_brand": "VISA", "card_last_4": "1111"}}
	s := &Server{Services: Services{Auth: stubAuth{key}, Connector: stubConnector{res}}, Limiter: NewAuthLimiter(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := s.Handler()
	const body = `{"method":"charge","transaction_id":"CA-bench-1","cardnumber":"4111111111111111","cvv":"123","expiry_month":"12","expiry_year":"39","postal_code":"94111","amount":"10.00","currency_code":"usd","description":"ivrpay loadtest","parameters":{"payin_config_id":"sbx_pic_3MvqXkjRynkN5661vpwCm1M2gtj"}}`
	request := func() *http.Request {
		r, _ := http.NewRequest("POST", ConnectorPath, strings.NewReader(body))
		r.SetBasicAuth("api_key", "sbx_apikey_x")
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "127.0.0.1:54321"
		return r
	}
	rec := httptest.NewRecorder()
	if h.ServeHTTP(rec, request()); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"charge_id":"sbx_pyi_`) {
		b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, request())
	}
}
