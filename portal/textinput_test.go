package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestPortalRefusesNUL: a NUL character in a form field, a JSON text field
// (metadata, statements), a path id or a query parameter is a 400 page that
// says so, and nothing is written, on both engines (PostgreSQL answered 500).
func TestPortalRefusesNUL(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		e := setupWith(t, envOptions{engine: engine, ivrEnabled: true})
		_, payin := e.chargedConfig(t, 2000, "")
		c := e.newClient(t)
		token := c.signIn(e.admin.Secret)
		counts := func() map[string]int {
			out := map[string]int{}
			for _, table := range []string{"merchants", "payin_configs", "api_keys", "webhook_endpoints", "refunds"} {
				var n int
				if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				out[table] = n
			}
			return out
		}
		for _, tc := range []struct {
			name, path, field string
			form              url.Values // nil: a GET
		}{
			{"merchant name", "/portal/merchants", "The field name", url.Values{"name": {"Corner\x00Shop"}}},
			{"config metadata", "/portal/configs/payin", "metadata.note", url.Values{"merchant_id": {e.merchant.ID},
				"amount": {"5.00"}, "idempotency_key": {"nul-1"}, "metadata": {`{"note":"a\u0000b"}`}}},
			{"config idempotency key", "/portal/configs/payin", "The field idempotency_key", url.Values{"merchant_id": {e.merchant.ID},
				"amount": {"5.00"}, "idempotency_key": {"nul\x00"}}},
			{"key statements", "/portal/keys", "statements[0].permissions[0]", url.Values{"mode": {"advanced"},
				"statements": {`[{"permissions":["payin:read\u0000"],"constraints":{"platform":{"platform_id":"` + e.platform.ID + `"}}}]`}}},
			{"webhook URL", "/portal/webhooks", "The field url", url.Values{"url": {"https://hooks.example.com/\x00"}, "events": {"payin.processing"}}},
			{"refund reason", "/portal/payins/" + payin + "/refund", "The field reason", url.Values{"idempotency_key": {"nul-2"}, "reason": {"DUPLICATE\x00"}}},
			{"payin page", "/portal/payins/" + payin + "%00", "The field id", nil},
			{"payins filter", "/portal/payins?merchant_id=" + e.merchant.ID + "%00", "The field merchant_id", nil},
			{"config page", "/portal/configs/payin/%00", "The field id", nil},
			{"a query name from the URL is not shown", "/portal/payins?Call+555-0100+now%00=1", "A field holds", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := c.on(t)
				before := counts()
				var p page
				if tc.form == nil {
					p = c.get(tc.path)
				} else {
					tc.form.Set("csrf_token", token)
					p = c.post(tc.path, tc.form)
				}
				if p.status != http.StatusBadRequest || !strings.Contains(p.text(), "NUL") || !strings.Contains(p.text(), tc.field) {
					t.Errorf("status %d, want 400 naming %q and saying NUL:\n%.600s", p.status, tc.field, p.text())
				}
				if strings.Contains(p.text(), "555-0100") {
					t.Errorf("the page shows text taken from the URL")
				}
				for table, n := range counts() {
					if n != before[table] {
						t.Errorf("%s: %d rows, had %d", table, n, before[table])
					}
				}
			})
		}
	})
}

// TestPortalRefundOfZero: a refund of 0.00 from the payin page is refused,
// and refunds nothing; an empty amount still refunds the whole payin.
func TestPortalRefundOfZero(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, payin := e.chargedConfig(t, 2000, "")
	paymentstest.Settle(t, e.store)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	refunds := func() int {
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM refunds WHERE payin_id = $1`, payin).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, amount := range []string{"0.00", "0", "$0"} {
		p := c.post("/portal/payins/"+payin+"/refund", url.Values{"csrf_token": {token}, "idempotency_key": {"zero-" + amount},
			"reason": {"REQUESTED_BY_CUSTOMER"}, "amount": {amount}})
		if p.status != http.StatusBadRequest || !strings.Contains(p.text(), "amount") {
			t.Errorf("refund of %q: status %d, want 400 naming amount:\n%.600s", amount, p.status, p.text())
		}
		if n := refunds(); n != 0 {
			t.Fatalf("a refund of %q made %d refunds", amount, n)
		}
	}
	p := c.post("/portal/payins/"+payin+"/refund", url.Values{"csrf_token": {token}, "idempotency_key": {"all"}, "reason": {"REQUESTED_BY_CUSTOMER"}})
	if p.status != http.StatusOK || refunds() != 1 {
		t.Errorf("refund without amount: status %d, %d refunds:\n%.600s", p.status, refunds(), p.text())
	}
}
