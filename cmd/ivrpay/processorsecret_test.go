package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// TestProcessorSecretsAreChecked: `admin processor add` refuses a secret
// that cannot be the processor's key (a key file with a second line, a
// space) and an Adyen merchant account with a line break, and `merchant
// set-processor` an account ref with one; nothing is stored, and no error
// quotes the secret.
func TestProcessorSecretsAreChecked(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, string(ivrpay.ModeSandbox))
	p := d.mustAdmin("platform", "create", "--name", "Acme", "--enable-ivr")
	secretFile := filepath.Join(t.TempDir(), "secret.key")
	for _, tc := range []struct {
		name, secret string
		args         []string
		want         string
	}{
		{"stripe key with a second line", "sk_test_51SecondLine\nsk_test_51Other", []string{"--kind", "stripe", "--secret-key-file", secretFile}, "on one line"},
		{"stripe key with a space", "sk_test_51With Space", []string{"--kind", "stripe", "--secret-key-file", secretFile}, "not a Stripe secret"},
		{"adyen key with a line break", "AQEyhmfxSecondLine\r\nAQEother", []string{"--kind", "adyen", "--api-key-file", secretFile, "--merchant-account", "AcmeMOTO"}, "line break"},
		{"adyen merchant account with a line break", "AQEyhmfxGoodKey", []string{"--kind", "adyen", "--api-key-file", secretFile, "--merchant-account", "Acme\nMOTO"}, "merchant-account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(secretFile, []byte(tc.secret), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := d.admin(append([]string{"processor", "add", "--name", "refused"}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("processor add: exit %d, %q; want a refusal saying %q", code, stderr, tc.want)
			}
			if strings.Contains(stderr, "SecondLine") || strings.Contains(stderr, "Space") {
				t.Fatalf("the refusal quotes the secret: %q", stderr)
			}
		})
	}
	if _, list, _ := d.admin("processor", "list"); fmt.Sprint(list) != "[]" {
		t.Fatalf("refused accounts were stored: %v", list)
	}
	os.WriteFile(secretFile, []byte("sk_test_51GoodKey\n"), 0o600)
	d.mustAdmin("processor", "add", "--name", "stripe-test", "--kind", "stripe", "--secret-key-file", secretFile)
	m := d.mustAdmin("merchant", "set-processor", merchantOf(t, d, p["api_key"].(string)), "stripe-test", "--account-ref", "acct_1Good")
	if m["merchant_id"] == nil {
		t.Fatalf("set-processor printed %v", m)
	}
	if code, _, stderr := d.admin("merchant", "set-processor", m["merchant_id"].(string), "stripe-test", "--account-ref", "acct_1Good\nX-Injected: 1"); code != 1 || !strings.Contains(stderr, "account-ref") {
		t.Fatalf("set-processor with a line break in the ref: exit %d, %q", code, stderr)
	}
}

// merchantOf creates a merchant with the platform's admin key (through the
// store, as the server would) and returns its id.
func merchantOf(t *testing.T, d *deployment, adminKey string) string {
	t.Helper()
	s := d.store()
	k, err := s.Authenticate(context.Background(), adminKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.CreateMerchant(ivrpay.NewContextWithPrincipal(context.Background(), k), ivrpay.MerchantCreate{Name: "Corner Bakery"})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// store opens the deployment's database in the test, for what an earlier
// release could have stored (the operator's tools refuse it today).
func (d *deployment) store() *sqlstore.Store {
	d.t.Helper()
	s, err := sqlstore.Open(context.Background(), d.db, sqlstore.Options{Mode: ivrpay.Mode(d.mode)})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { s.Close() })
	return s
}

// TestChargeNeverSentIsNotPending: a request that cannot leave this process
// is not an unknown outcome. An account whose stored secret has a line break
// (stored by an earlier release) refuses payments before anything is
// reserved or sent (PROCESSOR_NOT_CONFIGURED, not PAYMENT_PENDING); a
// merchant whose stored account ref has one gets a FAILED payin with
// PROCESSING_ERROR at once, and its config charges once the ref is fixed.
// Stripe (the replaying fake) sees none of the refused requests.
func TestChargeNeverSentIsNotPending(t *testing.T) {
	t.Parallel()
	fake := stripetest.NewFake(t)
	d := newDeployment(t, string(ivrpay.ModeSandbox))
	p := d.mustAdmin("platform", "create", "--name", "Acme", "--enable-ivr")
	platformID, admin := p["platform_id"].(string), p["api_key"].(string)
	secretFile := filepath.Join(t.TempDir(), "stripe.key")
	os.WriteFile(secretFile, []byte("sk_test_51GoodKey"), 0o600)
	d.mustAdmin("processor", "add", "--name", "stripe-test", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", fake.URL)
	d.mustAdmin("processor", "add", "--name", "stripe-old", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", fake.URL)
	v, err := vault.Load(d.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := v.Encrypt("sk_test_51Earlier\nRelease")
	if err != nil {
		t.Fatal(err)
	}
	s := d.store()
	if _, err := s.DB().Exec(`UPDATE processor_accounts SET secret_ciphertext = $1 WHERE name = 'stripe-old'`, bad); err != nil {
		t.Fatal(err)
	}
	d.mustAdmin("platform", "set-processor", platformID, "stripe-test")
	d.serve()
	ivrKey := d.mustAPI("POST", "/v1/api_keys", admin, ivrKeyRequest(platformID))["api_key"].(string)
	merchant := func(name string) string {
		return d.mustAPI("POST", "/v1/merchants", admin, map[string]any{"name": name})["merchant_id"].(string)
	}
	config := func(m string) string {
		return d.mustAPI("POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": m, "idempotency_key": fmt.Sprint("k", time.Now().UnixNano()),
			"amount": 1000, "currency_code": "USD"})["payin_config_id"].(string)
	}
	sent := func() int {
		return len(fake.Recorded("POST", "/v1/payment_methods")) + len(fake.Recorded("POST", "/v1/payment_intents"))
	}

	t.Run("stored secret with a line break", func(t *testing.T) {
		m := merchant("Old Account Bakery")
		d.mustAdmin("merchant", "set-processor", m, "stripe-old")
		cfg := config(m)
		a := d.charge(ivrKey, cfg, 1000)
		if a.ErrorCode == nil || *a.ErrorCode != ivrpay.ConnProcessorNotConfigured || a.ChargeID != nil {
			t.Fatalf("charge through an account whose secret cannot be sent: %+v; want PROCESSOR_NOT_CONFIGURED", a)
		}
		if c := d.mustAPI("GET", "/v1/payin_configs/"+cfg, admin, nil); c["payin"] != nil {
			t.Fatalf("the refused charge holds the config: %v", c["payin"])
		}
		if n := sent(); n != 0 {
			t.Fatalf("Stripe received %d requests", n)
		}
	})

	t.Run("stored account ref with a line break", func(t *testing.T) {
		m := merchant("Bad Ref Bakery")
		d.mustAdmin("merchant", "set-processor", m, "stripe-test", "--account-ref", "acct_1Good")
		if _, err := s.DB().Exec(`UPDATE merchants SET processor_account_ref = $1 WHERE id = $2`, "acct_1Good\nX-Injected: 1", m); err != nil {
			t.Fatal(err)
		}
		cfg := config(m)
		a := d.charge(ivrKey, cfg, 1000)
		if a.ErrorCode == nil || *a.ErrorCode != ivrpay.RefusalProcessingError || a.Parameters["payin_id"] == "" {
			t.Fatalf("charge whose request Go refuses to send: %+v; want PROCESSING_ERROR with a FAILED payin", a)
		}
		payin := d.mustAPI("GET", "/v1/payins/"+a.Parameters["payin_id"], admin, nil)
		if payin["status"] != ivrpay.PayinStatusFailed || payin["refusal_code"] != ivrpay.RefusalProcessingError {
			t.Fatalf("payin of a request never sent: %v %v", payin["status"], payin["refusal_code"])
		}
		if n := sent(); n != 0 {
			t.Fatalf("Stripe received %d requests", n)
		}
		d.mustAdmin("merchant", "set-processor", m, "stripe-test", "--account-ref", "acct_1Good")
		if a := d.charge(ivrKey, cfg, 1000); a.ChargeID == nil {
			t.Fatalf("the config did not charge once the ref was fixed: %+v", a)
		}
	})
}

// TestProcessorEventsSecrets: `admin processor add --events-secret-file`
// and `admin processor set-events-secret` take the secret that signs an
// account's events from a file, refuse one that is not the kind's (Stripe
// whsec_…, Adyen a hex HMAC key) or a file others may read in production,
// store it vault-encrypted, and `processor list` says whether one is set,
// never the secret.
func TestProcessorEventsSecrets(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, string(ivrpay.ModeProduction))
	dir := t.TempDir()
	file := func(name, content string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, perm)
		return p
	}
	const whsec, hmacKey = "whsec_IvrpayDistinctiveEventsSecret01", "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90"
	stripeKey := file("stripe.key", "sk_live_51IvrpayEventsTest", 0o600)
	adyenKey := file("adyen.key", "AQEyhmfxEventsTest", 0o600)
	good := file("whsec", whsec+"\n", 0o600)
	for _, tc := range []struct {
		name, content string
		perm          os.FileMode
		want          string
	}{
		{"an API key as the events secret", "sk_live_51IvrpayEventsTest", 0o600, "not a Stripe endpoint signing secret"},
		{"a second line", whsec + "\nwhsec_Other", 0o600, "on one line"},
		{"a file others can read", whsec, 0o644, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := file("bad-"+strings.ReplaceAll(tc.name, " ", "-"), tc.content, tc.perm)
			code, _, stderr := d.admin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", stripeKey,
				"--api-base", "https://127.0.0.1:9", "--events-secret-file", f)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "Distinctive") {
				t.Fatalf("processor add: exit %d, %q; want a refusal saying %q that does not quote the secret", code, stderr, tc.want)
			}
		})
	}
	if _, list, _ := d.admin("processor", "list"); fmt.Sprint(list) != "[]" {
		t.Fatalf("refused accounts were stored: %v", list)
	}
	added := d.mustAdmin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", stripeKey,
		"--api-base", "https://127.0.0.1:9", "--events-secret-file", good)
	if added["events_secret_set"] != true {
		t.Fatalf("processor add printed %v", added)
	}
	d.mustAdmin("processor", "add", "--name", "adyen-main", "--kind", "adyen", "--api-key-file", adyenKey, "--merchant-account", "AcmeMOTO",
		"--api-base", "https://acme-checkout-live.adyenpayments.com/checkout/v71")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"adyen-main"}, "--events-secret-file is required"},
		{"a Stripe secret for Adyen", []string{"adyen-main", "--events-secret-file", good}, "HMAC key"},
		{"an odd-length HMAC key", []string{"adyen-main", "--events-secret-file", file("odd", hmacKey[1:], 0o600)}, "even number"},
		{"no such account", []string{"adyen-other", "--events-secret-file", good}, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := d.admin(append([]string{"processor", "set-events-secret"}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("set-events-secret: exit %d, %q; want a refusal saying %q", code, stderr, tc.want)
			}
		})
	}
	set := d.mustAdmin("processor", "set-events-secret", "adyen-main", "--events-secret-file", file("hmac", hmacKey, 0o600))
	if set["name"] != "adyen-main" || set["events_secret_set"] != true {
		t.Fatalf("set-events-secret printed %v", set)
	}
	_, list, _ := d.admin("processor", "list")
	out, _ := json.Marshal(list)
	if !strings.Contains(string(out), `"events_secret_set":true`) || strings.Contains(string(out), "false") {
		t.Fatalf("processor list: %s", out)
	}
	for _, f := range []string{d.db, d.db + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && (bytes.Contains(b, []byte(whsec)) || bytes.Contains(b, []byte(hmacKey))) {
			t.Fatalf("%s holds an events secret in clear", f)
		}
	}
	if logs := d.logs.String(); strings.Contains(logs, "Distinctive") || strings.Contains(logs, hmacKey) {
		t.Fatalf("the output holds an events secret: %.300s", logs)
	}
}
