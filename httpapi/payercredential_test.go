package httpapi_test

// A payer's browser credential (SPEC §1.1, issue 23's high finding): a
// session made exactly as OpenEMR makes it (group#payment_component with a
// merchant constraint), or an API key with the same statement, reaches only
// what its payer is paying: the payins and cards made through it. Before,
// Bob's session listed every payin and card of the merchant and charged
// Alice's stored card for Bob's bill.

import (
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

func TestPaymentComponentReachesOnlyItsPayer(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		M := b.merchantID
		newSession := func() string {
			r := b.createSession(b.admin, openEMRSessionBody(3600, M))
			wantStatus(t, r, 200)
			return r.data(t)["session_key"].(string)
		}
		alice, bob := newSession(), newSession()
		componentKey, _ := b.createKey(b.admin, statementsJSON(b.platformID, M, ivrpay.PermissionPaymentComponent))

		// Alice pays her bill in her browser; the config carries who she is.
		aliceCfg := b.payinConfig(b.admin, M, 1000, map[string]any{"metadata": map[string]any{"patientId": "alice-12346"},
			"billing_contact": map[string]any{"name": "Alice Payer", "email": "alice@example.com"}})
		charged := b.ivr(alice, chargeBody(aliceCfg))
		alicePayin := charged.wantOK(t, "charge")
		aliceCard := charged.Params["payment_method_id"]
		wantID(t, aliceCard, "mtd_")
		aliceToken := b.ivr(alice, tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, M, nil))).wantOK(t, "tokenize")
		bobCfg := b.payinConfig(b.admin, M, 1000, nil)

		// Bob's session, and a payment component API key: Alice's payin and
		// cards are not found, read or charged, as another platform's would be.
		for _, who := range []struct{ name, key string }{{"Bob's session", bob}, {"a payment component key", componentKey}} {
			for _, c := range []struct {
				name, method, path string
				body               any
			}{
				{"read Alice's payin", "GET", "/v1/payins/" + alicePayin, nil},
				{"read Alice's card", "GET", "/v1/payment_methods/" + aliceCard, nil},
				{"read Alice's tokenized card", "GET", "/v1/payment_methods/" + aliceToken, nil},
				{"charge Alice's card for Bob's bill", "POST", "/v1/payment_methods/" + aliceCard + "/payin", map[string]any{"payin_config_id": bobCfg}},
				{"charge Alice's tokenized card for Bob's bill", "POST", "/v1/payment_methods/" + aliceToken + "/payin", map[string]any{"payin_config_id": bobCfg}},
			} {
				t.Run(who.name+" may not "+c.name, func(t *testing.T) {
					r := b.on(t).api(c.method, c.path, who.key, c.body)
					if r.Status != 404 || r.err().Code != ivrpay.ENOTFOUND {
						t.Fatalf("HTTP %d %s, want 404 EntityNotFound\n%s", r.Status, r.err().Code, r.Raw)
					}
					if strings.Contains(string(r.Raw), "Alice") || strings.Contains(string(r.Raw), M) {
						t.Errorf("the 404 tells something of the object: %s", r.Raw)
					}
				})
			}
			for _, path := range []string{"/v1/payins", "/v1/payment_methods", "/v1/payins?merchant_id=" + M} {
				t.Run(who.name+" lists nothing of Alice's at "+path, func(t *testing.T) {
					r := b.on(t).api("GET", path, who.key, nil)
					wantStatus(t, r, 200)
					if total, results := r.list(t); total != 0 || len(results) != 0 {
						t.Errorf("lists %d (total %d): %s", len(results), total, r.Data)
					}
				})
			}
		}
		if cfg := b.api("GET", "/v1/payin_configs/"+bobCfg, b.admin, nil).data(t); cfg["payin"] != nil {
			t.Fatalf("Bob's bill was paid: %v", cfg["payin"])
		}
		if n := b.count("payins"); n != 1 {
			t.Fatalf("%d payins, want Alice's alone", n)
		}

		// Bob pays his own bill, stores his card, and reads back exactly that;
		// his stored card pays his next bill.
		charged = b.ivr(bob, chargeBody(bobCfg))
		bobPayin := charged.wantOK(t, "charge")
		bobCard := charged.Params["payment_method_id"]
		wantStatus(t, b.api("GET", "/v1/payins/"+bobPayin, bob, nil), 200)
		wantStatus(t, b.api("GET", "/v1/payment_methods/"+bobCard, bob, nil), 200)
		nextBill := b.payinConfig(b.admin, M, 400, nil)
		r := b.api("POST", "/v1/payment_methods/"+bobCard+"/payin", bob, map[string]any{"payin_config_id": nextBill})
		wantStatus(t, r, 200)
		bobSecond := r.data(t)["payin_id"].(string)
		wantStatus(t, b.api("GET", "/v1/payins/"+bobSecond, bob, nil), 200)

		// Each list holds its own payer's objects, in id order; the platform's
		// admin sees every one.
		for _, c := range []struct {
			who, key, path, idKey string
			want                  []string
		}{
			{"Bob", bob, "/v1/payins", "payin_id", []string{bobPayin, bobSecond}},
			{"Bob", bob, "/v1/payment_methods", "payment_method_id", []string{bobCard}},
			{"Alice", alice, "/v1/payins", "payin_id", []string{alicePayin}},
			{"Alice", alice, "/v1/payment_methods", "payment_method_id", []string{aliceCard, aliceToken}},
			{"the payment component key", componentKey, "/v1/payins", "payin_id", nil},
			{"the admin", b.admin, "/v1/payins", "payin_id", []string{alicePayin, bobPayin, bobSecond}},
		} {
			t.Run(c.who+" lists "+c.path, func(t *testing.T) {
				r := b.on(t).api("GET", c.path, c.key, nil)
				wantStatus(t, r, 200)
				total, results := r.list(t)
				var got []string
				for _, res := range results {
					got = append(got, res[c.idKey].(string))
				}
				if total != len(c.want) || strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Errorf("lists %v (total %d), want %v", got, total, c.want)
				}
			})
		}
		// Alice in turn cannot reach Bob's.
		wantStatus(t, b.api("GET", "/v1/payins/"+bobPayin, alice, nil), 404)
		wantStatus(t, b.api("POST", "/v1/payment_methods/"+bobCard+"/payin", alice,
			map[string]any{"payin_config_id": b.payinConfig(b.admin, M, 400, nil)}), 404)

		// Configs are read by id, the way the component gets its bill; the
		// merchant's other configs are not found.
		wantStatus(t, b.api("GET", "/v1/payin_configs/"+bobCfg, bob, nil), 200)
		other, err := b.store.CreateMerchantAsOperator(t.Context(), b.platformID, merchantCreate("Merchant N"))
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, b.api("GET", "/v1/payin_configs/"+b.payinConfig(b.admin, other.ID, 100, nil), bob, nil), 404)
	})
}

// TestPaymentComponentCannotMintBroaderReads: a key holding the group and
// api_key:create cannot pass on a member by name (payin:read by name reads
// every payer's payins); it may pass on the group itself.
func TestPaymentComponentCannotMintBroaderReads(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		P, M := b.platformID, b.merchantID
		creator, _ := b.createKey(b.admin, `[`+strings.Trim(statementsJSON(P, "", "api_key:create"), "[]")+`,`+
			strings.Trim(statementsJSON(P, M, ivrpay.PermissionPaymentComponent), "[]")+`]`)
		r := b.api("POST", "/v1/api_keys", creator, `{"statements":`+statementsJSON(P, M, "payin:read")+`}`)
		if r.Status != 403 || r.err().Field != "statements[0].permissions[0]" {
			t.Errorf("payin:read by name from a payment component grant: HTTP %d %q\n%s", r.Status, r.err().Field, r.Raw)
		}
		wantStatus(t, b.api("POST", "/v1/api_keys", creator, `{"statements":`+statementsJSON(P, M, ivrpay.PermissionPaymentComponent)+`}`), 200)
	})
}
