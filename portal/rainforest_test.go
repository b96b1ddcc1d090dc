package portal_test

// The portal's part of issue 14: object constraints in the Advanced editor,
// and the platform's active sessions on the keys page.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// adminContext is a context signed in as the env's admin key.
func (e *env) adminContext() context.Context {
	return ivrpay.NewContextWithPrincipal(context.Background(), e.admin)
}

// payinConfig creates a 10.00 USD payin config of the env's merchant.
func (e *env) payinConfig(t *testing.T) *ivrpay.PayinConfig {
	t.Helper()
	cfg, err := e.store.CreatePayinConfig(e.adminContext(), ivrpay.PayinConfigCreate{MerchantID: e.merchant.ID,
		IdempotencyKey: "portal-" + t.Name() + "-" + ivrpay.NewID(ivrpay.ModeSandbox, "k_", ivrpay.SystemClock{}.Now()), Amount: "1000", CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestAdvancedEditorObjectConstraints(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cfg := e.payinConfig(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	plt := e.platform.ID

	narrow := `[{"permissions":["group#payment_component"],"constraints":{"platform":{"platform_id":"` + plt + `"},"payin_config":{"payin_config_id":"` + cfg.ID + `"}}}]`
	p := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"advanced"}, "statements": {narrow}})
	if p.status != http.StatusOK {
		t.Fatalf("advanced with a payin_config constraint: status %d:\n%s", p.status, p.text())
	}
	if got := createdStatements(t, p); got != narrow {
		t.Errorf("statements %s, want %s", got, narrow)
	}
	// The key list says what the key is narrowed to.
	mustContain(t, c.get("/portal/keys"), "group#payment_component · payin config "+cfg.ID)

	for _, tc := range []struct{ name, statements, field, message string }{
		{"unknown payin config", `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"payin_config":{"payin_config_id":"sbx_cfg_nope"}}}]`,
			"statements[0].constraints.payin_config.payin_config_id", "not found"},
		{"payment method config without its id", `[{"permissions":["payment_method:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"payment_method_config":{}}}]`,
			"statements[0].constraints.payment_method_config.payment_method_config_id", "non-empty string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := c.on(t).post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"advanced"}, "statements": {tc.statements}})
			if p.status != http.StatusBadRequest || !strings.Contains(p.text(), tc.field) || !strings.Contains(p.text(), tc.message) {
				t.Errorf("status %d, want 400 naming %s with %q:\n%s", p.status, tc.field, tc.message, p.text())
			}
		})
	}
}

func TestKeysPageShowsActiveSessions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ses, err := e.store.CreateSession(e.adminContext(), ivrpay.SessionCreate{TTL: 600, Statements: []ivrpay.Statement{{
		Permissions: []string{ivrpay.PermissionPaymentComponent},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: e.platform.ID}, Merchant: &ivrpay.MerchantConstraint{MerchantID: e.merchant.ID}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	admin := e.newClient(t)
	admin.signIn(e.admin.Secret)
	p := admin.get("/portal/keys")
	mustContain(t, p, "Active sessions", ses.ID, e.admin.ID, "group#payment_component · merchant "+e.merchant.ID)
	if strings.Contains(p.body, ses.SessionKey) {
		t.Error("the keys page shows a session's secret")
	}
	// A key that may not read keys sees the section as unavailable.
	ivr := e.newClient(t)
	ivr.signIn(e.ivrKey.Secret)
	p = ivr.get("/portal/keys")
	if strings.Contains(p.body, ses.ID) {
		t.Error("a key without api_key:read sees the platform's sessions")
	}
	mustContain(t, p, "lacks the permission api_key:read")
}
