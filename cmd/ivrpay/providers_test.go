package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/httpapi"
)

// TestSimulateEachProviderAgainstServe runs the built binary as the server
// and as every voice platform (SPEC §5.6): for Twilio, Telnyx and
// SignalWire, `ivrpay twiml` writes the platform's document, `twiml check`
// accepts it, and `ivrpay simulate --provider` plays the platform's side of
// a call against `ivrpay serve`: a charge and a tokenize complete, and the
// payin records the provider; with a wrong key, the platform's failure result.
func TestSimulateEachProviderAgainstServe(t *testing.T) {
	bin := binaryTest(t, "builds and runs the binary")
	srv := freshInstallation(t, bin).serve(t, nil)
	ws := &whServer{srv}
	admin, ivrKey, merchant := srv.sandboxKeys(t)
	platformID := srv.bootstrap(t, "platform_id")
	caller := []string{"--card", "4111111111111111", "--exp", "12/39", "--cvv", "123", "--postal-code", "94111"}

	run := func(t *testing.T, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "IVRPAY_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		err := cmd.Run()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode(), out.String(), errOut.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errOut.String()
	}
	callback := func(t *testing.T, stdout, stderr string) map[string]string {
		t.Helper()
		var cb map[string]string
		if err := json.Unmarshal([]byte(stdout), &cb); err != nil {
			t.Fatalf("simulate printed no callback JSON: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		return cb
	}

	for _, p := range []struct {
		provider, path string
		// attempts is how many connector requests a refused call makes.
		attempts int
	}{
		{"twilio", httpapi.ConnectorPath, 1},
		{"telnyx", httpapi.TelnyxConnectorPath, 1},
		{"signalwire", httpapi.SignalWireConnectorPath, 1},
	} {
		t.Run(p.provider, func(t *testing.T) {
			endpoint := srv.baseURL + p.path
			// The connector as the platform's document names it.
			connector := "ivrpay_sandbox"
			if p.provider == "signalwire" {
				u, _ := url.Parse(endpoint)
				u.User = url.UserPassword("api_key", ivrKey)
				connector = u.String()
			}

			// A charge, built from flags.
			cfg := ws.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant,
				"idempotency_key": "providers-" + p.provider, "amount": 1000, "currency_code": "USD"})["payin_config_id"].(string)
			code, stdout, stderr := run(t, append([]string{"simulate", "--provider", p.provider, "--endpoint", endpoint, "--api-key", ivrKey,
				"--amount", "10.00", "--payin-config-id", cfg}, caller...)...)
			cb := callback(t, stdout, stderr)
			if code != 0 || cb["Result"] != "success" || !strings.HasPrefix(cb["PaymentConfirmationCode"], "sbx_pyi_") {
				t.Fatalf("charge: exit %d, callback %v\n%s", code, cb, stderr)
			}
			payin := ws.api(t, "GET", "/v1/payins/"+cb["PaymentConfirmationCode"], admin, nil)
			if ivr, _ := payin["ivr"].(map[string]any); ivr["provider"] != strings.ToUpper(p.provider) || payin["payin_config_id"] != cfg {
				t.Fatalf("payin %v", payin)
			}

			// A tokenize, from the platform's document, which twiml check accepts.
			pmc := ws.api(t, "POST", "/v1/payment_method_configs", admin, map[string]any{"platform_id": platformID,
				"idempotency_key": "providers-" + p.provider})["payment_method_config_id"].(string)
			code, doc, stderr := run(t, "twiml", "--provider", p.provider, "--payment-method-config-id", pmc, "--connector", connector)
			if code != 0 {
				t.Fatalf("twiml: exit %d\n%s", code, stderr)
			}
			file := writeTemp(t, "pay-"+p.provider, doc)
			if code, out, _ := run(t, "twiml", "check", file, "--provider", p.provider); code != 0 || !strings.Contains(out, "no problems found") {
				t.Fatalf("twiml check of the generated document: exit %d\n%s\n%s", code, out, doc)
			}
			args := []string{"simulate", "--provider", p.provider, "--twiml", file}
			if p.provider != "signalwire" { // SignalWire's document carries the connector URL and its key
				args = append(args, "--endpoint", endpoint, "--api-key", ivrKey)
			}
			code, stdout, stderr = run(t, append(args, caller...)...)
			cb = callback(t, stdout, stderr)
			if code != 0 || cb["Result"] != "success" || !strings.HasPrefix(cb["PaymentToken"], "sbx_mtd_") {
				t.Fatalf("tokenize: exit %d, callback %v\n%s", code, cb, stderr)
			}
			method := ws.api(t, "GET", "/v1/payment_methods/"+cb["PaymentToken"], admin, nil)
			if method["payment_method_config_id"] != pmc || method["status"] != "ACTIVE" {
				t.Fatalf("payment method %v", method)
			}

			// A wrong key: the platform's failure result, and the 401 said as what it is.
			cfg2 := ws.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant,
				"idempotency_key": "providers-wrong-" + p.provider, "amount": 1000, "currency_code": "USD"})["payin_config_id"].(string)
			code, stdout, stderr = run(t, append([]string{"simulate", "--provider", p.provider, "--endpoint", endpoint,
				"--api-key", "sbx_apikey_" + strings.Repeat("0", 64), "--amount", "10.00", "--payin-config-id", cfg2}, caller...)...)
			cb = callback(t, stdout, stderr)
			if code != 1 || cb["Result"] != "payment-connector-error" || cb["ConnectorError"] != "UNAUTHORIZED" ||
				!strings.Contains(cb["PaymentError"], "HTTP 401") {
				t.Fatalf("wrong key: exit %d, callback %v\n%s", code, cb, stderr)
			}
			if n := strings.Count(stderr, "attempt "); n != p.attempts {
				t.Errorf("wrong key: %d connector attempts, want %d\n%s", n, p.attempts, stderr)
			}
		})
	}
}
