package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// TestProductionProcessorNeedsHTTPS runs the binary in production: `admin
// processor add` refuses a live Stripe key at a plain-http --api-base, and
// takes the same test double serving TLS. `serve` then charges through it
// when the double's certificate is trusted through SSL_CERT_FILE, and not
// when it is not (the certificate is verified: the charge's outcome is
// unknown, nothing reached Stripe).
func TestProductionProcessorNeedsHTTPS(t *testing.T) {
	t.Parallel()
	inst := freshInstallation(t, buildIvrpay(t))
	fake := stripetest.NewTLSFake(t)
	secretFile := filepath.Join(t.TempDir(), "stripe.key")
	paymentstest.WriteVaultKey(t, inst.vaultKey)
	if err := os.WriteFile(secretFile, []byte("sk_live_51IvrpayProductionKey"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) (int, map[string]any, string) {
		t.Helper()
		code, stdout, stderr := inst.admin(t, "production", args...)
		var out map[string]any
		json.Unmarshal([]byte(stdout), &out)
		return code, out, stderr
	}
	plain := "http://" + strings.TrimPrefix(fake.URL, "https://")
	if code, _, stderr := admin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", plain); code != 1 || !strings.Contains(stderr, "https") {
		t.Fatalf("production processor add at %s: exit %d, %q; want a refusal asking for https", plain, code, stderr)
	}
	if code, _, stderr := admin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", fake.URL); code != 0 {
		t.Fatalf("production processor add at %s: exit %d, %s", fake.URL, code, stderr)
	}
	_, p, _ := admin("platform", "create", "--name", "Acme", "--enable-ivr")
	platformID, adminKey := p["platform_id"].(string), p["api_key"].(string)
	if code, _, stderr := admin("platform", "set-processor", platformID, "stripe-main"); code != 0 {
		t.Fatal(stderr)
	}

	serve := func(certFile string) *whServer {
		return &whServer{inst.serve(t, []string{"SSL_CERT_FILE=" + certFile}, "--mode", "production",
			"--base-url", "https://pay.example.com", "--behind-proxy")}
	}
	srv := serve(os.Getenv("SSL_CERT_FILE")) // httptest's certificate (TestMain)
	merchant := srv.api(t, "POST", "/v1/merchants", adminKey, map[string]any{"name": "Corner Bakery"})["merchant_id"].(string)
	admin("merchant", "activate", merchant)
	ivrKey := srv.api(t, "POST", "/v1/api_keys", adminKey, ivrKeyRequest(platformID))["api_key"].(string)
	charge := func(s *whServer) connectorAnswer {
		cfg := s.api(t, "POST", "/v1/payin_configs", adminKey, map[string]any{"merchant_id": merchant, "idempotency_key": fmt.Sprint("k", time.Now().UnixNano()),
			"amount": 1000, "currency_code": "USD"})["payin_config_id"].(string)
		return s.connector(t, ivrKey, chargeBody(cfg, fmt.Sprint("CA", time.Now().UnixNano()), "10.00"))
	}
	if a := charge(srv); a.ChargeID == nil {
		t.Fatalf("production charge through the TLS double: %+v\n%s", a, srv.logTail())
	}
	if n := len(fake.Recorded("POST", "/v1/payment_intents")); n != 1 {
		t.Fatalf("Stripe saw %d payment intents, want 1", n)
	}
	srv.kill()

	untrusting := serve(os.DevNull)
	if a := charge(untrusting); a.ChargeID != nil || a.ErrorCode == nil || *a.ErrorCode != ivrpay.ConnPaymentPending {
		t.Fatalf("a charge to a double whose certificate is not trusted: %+v; want PAYMENT_PENDING", a)
	}
	if n := len(fake.Recorded("POST", "/v1/payment_intents")); n != 1 {
		t.Fatalf("Stripe saw %d payment intents, want still 1", n)
	}
}
