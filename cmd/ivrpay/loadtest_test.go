package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLoadtestCommand drives a sandbox with both loops for a second each and
// checks the report: charges made, replays identical, no duplicate payin,
// exit 0, and a progress line on stderr.
func TestLoadtestCommand(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	base, admin := srv.baseURL, srv.bootstrap(t, "admin api_key")
	for _, loop := range [][]string{{"--concurrency", "4"}, {"--rate", "40"}} {
		t.Run(loop[0], func(t *testing.T) {
			args := append([]string{"loadtest", "--base-url", base, "--api-key", admin, "--duration", "1s", "--json",
				"--retry-fraction", "0.5", "--duplicate-fraction", "0.2"}, loop...)
			code, stdout, stderr := runCLI(run, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			var r loadReport
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, stdout)
			}
			if r.Charged == 0 || r.Charged != r.Calls || r.Latency.N != r.Calls || r.Latency.P99 <= 0 || r.ChargesPerS <= 0 {
				t.Errorf("report = %+v, want every call charged with its latency", r)
			}
			if r.Retries == 0 || r.Concurrent == 0 || r.Mismatches != 0 {
				t.Errorf("retries %d, concurrent duplicates %d, mismatches %d: want replays, all identical", r.Retries, r.Concurrent, r.Mismatches)
			}
			if r.Audit == nil || !r.Audit.OK() || r.Audit.IVRPayins < r.Charged {
				t.Errorf("audit = %+v", r.Audit)
			}
			if !strings.Contains(stderr, "\r") || !strings.Contains(stderr, "charges/s") {
				t.Errorf("no progress line on stderr: %q", stderr)
			}
		})
	}
}

func TestLoadtestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--api-key", "k"},
		{"--base-url", "http://127.0.0.1:1"},
		{"--base-url", "ftp://127.0.0.1:1", "--api-key", "k"},
		{"--base-url", "http://127.0.0.1:1", "--api-key", "k", "--rate", "5", "--concurrency", "2"},
		{"--base-url", "http://127.0.0.1:1", "--api-key", "k", "--retry-fraction", "2"},
	} {
		if code, _, stderr := runCLI(run, append([]string{"loadtest"}, args...)...); code != 2 || !strings.Contains(stderr, "ivrpay loadtest:") {
			t.Errorf("loadtest %v: exit %d, stderr %q; want 2 with a reason", args, code, stderr)
		}
	}
}

// TestLoadtestFindsDuplicates runs the loadtest against a fake deployment
// that answers every connector request with a new charge and lists two
// payins for one config: the report must show the mismatches and the
// duplicates, and the exit status must be 1.
func TestLoadtestFindsDuplicates(t *testing.T) {
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
	code, stdout, stderr := runCLI(run, "loadtest", "--base-url", srv.URL, "--api-key", "sbx_apikey_admin", "--concurrency", "2",
		"--duration", "300ms", "--retry-fraction", "1")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"mismatches", "duplicates per config 1, per transaction_id 1", "result           FAILED"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}
