package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestBannersShowNoTextFromTheURL follows crafted links a phisher could
// send to a signed-in user: the banner must not repeat the URL's text, and
// shows only what the server looked up (SPEC §9).
func TestBannersShowNoTextFromTheURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const spoof = "PLEASE CALL 1-800-555-0199 TO VERIFY YOUR ACCOUNT"
	// A key of another platform: the signed-in key may not read it.
	other, _, err := e.store.CreatePlatform(context.Background(), "Other", true)
	if err != nil {
		t.Fatal(err)
	}
	otherMerchant, err := e.store.CreateMerchantAsOperator(context.Background(), other.ID, ivrpay.MerchantCreate{Name: "Other shop"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.newClient(t)
	c.signIn(e.admin.Secret)
	for _, tc := range []struct{ name, path, absent string }{
		{"key disabled, spoofed id", "/portal/keys?done=disabled&id=" + url.QueryEscape(spoof), spoof},
		{"key enabled, spoofed id", "/portal/keys?done=enabled&id=" + url.QueryEscape(spoof), spoof},
		{"key disabled, but it is enabled", "/portal/keys?done=disabled&id=" + e.ivrKey.ID, "is disabled"},
		{"merchant created, spoofed id", "/portal/merchants?created=" + url.QueryEscape(spoof), spoof},
		{"merchant of another platform", "/portal/merchants?created=" + otherMerchant.ID, otherMerchant.ID},
		{"webhook deleted, spoofed id", "/portal/webhooks?deleted=" + url.QueryEscape(spoof), spoof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := c.get(tc.path)
			if p.status != http.StatusOK {
				t.Fatalf("status %d", p.status)
			}
			if strings.Contains(p.text(), tc.absent) || strings.Contains(p.body, "PLEASE") {
				t.Fatalf("the page shows %q from the URL:\n%s", tc.absent, p.text())
			}
		})
	}
	// The real flows still announce what happened, with the looked-up id.
	token := c.get("/portal/keys").csrf(t)
	p := c.post("/portal/keys/"+e.ivrKey.ID+"/disable", url.Values{"csrf_token": {token}})
	mustContain(t, p, "Key "+e.ivrKey.ID+" is disabled")
	p = c.post("/portal/merchants", url.Values{"csrf_token": {token}, "name": {"New shop"}})
	if !strings.Contains(p.text(), "Merchant ") || !strings.Contains(p.text(), " created.") {
		t.Fatalf("no banner after creating a merchant:\n%s", p.text())
	}
}
