package portal_test

// A payer's browser credential in the portal (SPEC §1.1, issue 23): a
// session made as OpenEMR makes it signs in like any key, and its lists hold
// only what was made through it, never another payer's bill, payin or card.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
)

func TestPortalShowsAPayerOnlyItsOwn(t *testing.T) {
	t.Parallel()
	e := setup(t)
	session := func() string {
		ses, err := e.store.CreateSession(e.adminContext(), ivrpay.SessionCreate{TTL: 600, Statements: []ivrpay.Statement{{
			Permissions: []string{ivrpay.PermissionPaymentComponent},
			Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: e.platform.ID}, Merchant: &ivrpay.MerchantConstraint{MerchantID: e.merchant.ID}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return ses.SessionKey
	}
	alice, bob := session(), session()
	aliceCfg := e.payinConfig(t)
	// Alice pays through the connector, her session key as the password.
	body, _ := json.Marshal(map[string]any{"method": "charge", "transaction_id": "alice-" + t.Name(), "cardnumber": "4111111111111111",
		"cvv": "123", "amount": "10.00", "currency_code": "USD", "expiry_month": "08",
		"expiry_year": fmt.Sprintf("%02d", (time.Now().Year()+3)%100), "postal_code": "94111",
		"parameters": map[string]any{"payin_config_id": aliceCfg.ID}})
	req, _ := http.NewRequest("POST", e.srv.URL+"/vendor/twilio/pay_generic", bytes.NewReader(body))
	req.SetBasicAuth("api_key", alice)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ChargeID   *string           `json:"charge_id"`
		Parameters map[string]string `json:"parameters"`
	}
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if answer.ChargeID == nil {
		t.Fatalf("Alice's charge failed: HTTP %d %+v", resp.StatusCode, answer)
	}
	alicePayin, aliceCard := *answer.ChargeID, answer.Parameters["payment_method_id"]

	bobBrowser := e.newClient(t)
	bobBrowser.signIn(bob)
	for _, path := range []string{"/portal/configs", "/portal/payins", "/portal/payment-methods"} {
		t.Run("Bob's session at "+path, func(t *testing.T) {
			p := bobBrowser.on(t).get(path)
			if p.status != http.StatusOK {
				t.Fatalf("status %d:\n%s", p.status, p.text())
			}
			for _, id := range []string{aliceCfg.ID, alicePayin, aliceCard} {
				if strings.Contains(p.body, id) {
					t.Errorf("Bob's session sees Alice's %s", id)
				}
			}
		})
	}
	if p := bobBrowser.get("/portal/payins/" + alicePayin); p.status != http.StatusNotFound || strings.Contains(p.body, aliceCard) {
		t.Errorf("Bob's session opens Alice's payin: status %d", p.status)
	}
	// Alice's own session lists her payin and card.
	aliceBrowser := e.newClient(t)
	aliceBrowser.signIn(alice)
	mustContain(t, aliceBrowser.get("/portal/payins"), alicePayin)
	mustContain(t, aliceBrowser.get("/portal/payment-methods"), aliceCard)
}
