package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFindsDuplicates runs the load against a fake deployment that answers
// every connector request with a new charge and lists two payins for one
// config: the report must show the mismatches and the duplicates, and fail.
func TestFindsDuplicates(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	mux := http.NewServeMux()
	data := func(w http.ResponseWriter, v any) {
		json.NewEncoder(w).Encode(map[string]any{"status": "SUCCESS", "data": v, "errors": nil})
	}
	mux.HandleFunc("GET /v1/merchants", func(w http.ResponseWriter, r *http.Request) {
		data(w, map[string]any{"total_results": 1, "last_key": "sbx_mid_1", "results": []any{
			map[string]any{"merchant_id": "sbx_mid_1", "platform_id": "sbx_plt_1", "status": "ACTIVE"}}})
	})
	mux.HandleFunc("POST /v1/api_keys", func(w http.ResponseWriter, r *http.Request) {
		data(w, map[string]any{"api_key": "sbx_apikey_ivr"})
	})
	mux.HandleFunc("POST /v1/payin_configs", func(w http.ResponseWriter, r *http.Request) {
		data(w, map[string]any{"payin_config_id": fmt.Sprintf("sbx_cfg_%d", n.Add(1))})
	})
	mux.HandleFunc("POST /vendor/twilio/pay_generic", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"charge_id":"sbx_pyi_%d","error_code":null,"error_message":null,"parameters":{}}`, n.Add(1))
	})
	mux.HandleFunc("GET /v1/payins", func(w http.ResponseWriter, r *http.Request) {
		data(w, map[string]any{"total_results": 2, "last_key": "sbx_pyi_b", "results": []any{
			map[string]any{"payin_id": "sbx_pyi_a", "payin_config_id": "sbx_cfg_1", "status": "PROCESSING", "ivr": map[string]any{"transaction_id": "t1"}},
			map[string]any{"payin_id": "sbx_pyi_b", "payin_config_id": "sbx_cfg_1", "status": "SUCCEEDED", "ivr": map[string]any{"transaction_id": "t1"}},
		}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	target, err := Prepare(ctx, NewHTTPClient(4), []string{srv.URL}, "sbx_apikey_admin", 1000)
	if err != nil {
		t.Fatal(err)
	}
	report := Run(ctx, target, Options{Concurrency: 2, Duration: 300 * time.Millisecond, MaxCalls: 100000, RetryFraction: 1, Timeout: 10 * time.Second})
	target.AuditReport(ctx, report)
	if report.OK() {
		t.Errorf("report OK, want FAILED: %+v", report)
	}
	var out strings.Builder
	report.Print(&out)
	stdout := out.String()
	for _, want := range []string{"mismatches", "duplicates per config 1, per transaction_id 1", "result           FAILED"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}
