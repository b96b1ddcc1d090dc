package httpapi_test

// A payer's browser credential (SPEC §1.1, issue 23's high finding): a
// session made exactly as OpenEMR makes it (group#payment_component with a
// merchant constraint), or an API key with the same statement, reaches only
// what its payer is paying: the payins and cards made through it. Before,
// Bob's session listed every payin and card of the merchant and charged
// Alice's stored card for Bob's bill.

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
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

		keyCard := b.ivr(componentKey, chargeBody(b.payinConfig(b.admin, M, 1000, nil)))
		keyCard.wantOK(t, "charge")
		checkOutOfReach(t, b, tenant{platformID: b.platformID, merchantID: other.ID, admin: b.admin, adminID: b.adminID},
			[]payer{{"Bob's session", bob, bobCard}, {"a payment component key", componentKey, keyCard.Params["payment_method_id"]}}, bobPayin)
	})
}

// reachSide is one of each kind of object of one merchant: merchant N of
// the payer's platform (beyond its reach), or another platform's merchant.
type reachSide struct {
	tenant
	cfg, pmc, payin, card, refund, chargeback string
}

// newReachSide makes the objects of tn's merchant with tn's admin key: a
// settled payin with its card, a refund and a chargeback of it, and an
// unused payin config and payment method config.
func newReachSide(t *testing.T, b *bundle, tn tenant, name string) reachSide {
	t.Helper()
	s := reachSide{tenant: tn}
	s.cfg = b.payinConfig(tn.admin, tn.merchantID, 1000, nil)
	s.pmc = b.paymentMethodConfig(tn.admin, tn.platformID, tn.merchantID, nil)
	charged := b.ivr(tn.admin, chargeBody(b.payinConfig(tn.admin, tn.merchantID, 1000, nil)))
	s.payin, s.card = charged.wantOK(t, "charge"), charged.Params["payment_method_id"]
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := b.pay.ConfirmSandboxDue(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		if b.api("GET", "/v1/payins/"+s.payin, tn.admin, nil).data(t)["status"] == ivrpay.PayinStatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payin %s did not settle", s.payin)
		}
	}
	r := b.api("POST", "/v1/payins/"+s.payin+"/void_or_refund", tn.admin,
		map[string]any{"idempotency_key": newIdempotencyKey(), "reason": "REQUESTED_BY_CUSTOMER", "amount": 300})
	wantStatus(t, r, 200)
	s.refund = r.data(t)["refund_id"].(string)
	s.chargeback = paymentstest.Receive(t, b.store, disputeEvent(s.payin, "", "du_"+name+randHex(4), ivrpay.ChargebackStatusDisputeActionRequired)).ObjectID
	return s
}

// payer is a payer's browser credential and the card it stored.
type payer struct{ name, key, card string }

// checkOutOfReach (SPEC §1.1): whatever a payer's credential names beyond
// its reach (another merchant's objects of its platform, a config of its
// own merchant outside its constraints) is answered byte for byte as the
// same request naming another platform's real object is, and writes
// nothing; what it reaches still works, and ordinary merchant-constrained
// keys keep their 403 naming the permission.
func checkOutOfReach(t *testing.T, b *bundle, n tenant, payers []payer, bobPayin string) {
	hidden := newReachSide(t, b, n, "n")
	foreign := newReachSide(t, b, b.newTenant("Platform Q", true), "q")
	written := func() map[string]int {
		m := map[string]int{}
		for _, tbl := range []string{"payins", "payment_methods", "refunds", "chargebacks", "events", "void_or_refund_requests",
			"payin_configs", "payment_method_configs", "api_keys", "merchants"} {
			m[tbl] = b.count(tbl)
		}
		return m
	}
	rest := []struct {
		name, method string
		path         func(s reachSide) string
		body         func(s reachSide) any
		id           func(s reachSide) string
		status       int
	}{
		{"read a payin config", "GET", func(s reachSide) string { return "/v1/payin_configs/" + s.cfg }, nil,
			func(s reachSide) string { return s.cfg }, 404},
		{"read a payment method config", "GET", func(s reachSide) string { return "/v1/payment_method_configs/" + s.pmc }, nil,
			func(s reachSide) string { return s.pmc }, 404},
		{"read a payin", "GET", func(s reachSide) string { return "/v1/payins/" + s.payin }, nil,
			func(s reachSide) string { return s.payin }, 404},
		{"read a payment method", "GET", func(s reachSide) string { return "/v1/payment_methods/" + s.card }, nil,
			func(s reachSide) string { return s.card }, 404},
		{"read a refund", "GET", func(s reachSide) string { return "/v1/refunds/" + s.refund }, nil,
			func(s reachSide) string { return s.refund }, 404},
		{"read a chargeback", "GET", func(s reachSide) string { return "/v1/chargebacks/" + s.chargeback }, nil,
			func(s reachSide) string { return s.chargeback }, 404},
		{"read a merchant", "GET", func(s reachSide) string { return "/v1/merchants/" + s.merchantID }, nil,
			func(s reachSide) string { return s.merchantID }, 404},
		{"read an API key", "GET", func(s reachSide) string { return "/v1/api_keys/" + s.adminID }, nil,
			func(s reachSide) string { return s.adminID }, 404},
		{"disable an API key", "POST", func(s reachSide) string { return "/v1/api_keys/" + s.adminID + "/disable" }, nil,
			func(s reachSide) string { return s.adminID }, 404},
		{"capture a payin", "POST", func(s reachSide) string { return "/v1/payins/" + s.payin + "/capture" }, nil,
			func(s reachSide) string { return s.payin }, 404},
		{"refund a payin", "POST", func(s reachSide) string { return "/v1/payins/" + s.payin + "/void_or_refund" },
			func(reachSide) any {
				return map[string]any{"idempotency_key": "reach-refund", "reason": "REQUESTED_BY_CUSTOMER", "amount": 100}
			},
			func(s reachSide) string { return s.payin }, 404},
		{"deactivate a payment method", "POST", func(s reachSide) string { return "/v1/payment_methods/" + s.card + "/deactivate" }, nil,
			func(s reachSide) string { return s.card }, 404},
		{"charge another merchant's card", "POST", func(s reachSide) string { return "/v1/payment_methods/" + s.card + "/payin" },
			func(s reachSide) any { return map[string]any{"payin_config_id": s.cfg} },
			func(s reachSide) string { return s.card }, 404},
		// The config is named in the body: every key that may not see it
		// (none, another platform's) gets the 400 naming payin_config_id.
		{"charge its own card for another merchant's config", "POST", func(reachSide) string { return "/v1/payment_methods/{own card}/payin" },
			func(s reachSide) any { return map[string]any{"payin_config_id": s.cfg} },
			func(s reachSide) string { return s.cfg }, 400},
		{"filter payins by merchant", "GET", func(s reachSide) string { return "/v1/payins?merchant_id=" + s.merchantID }, nil,
			func(s reachSide) string { return s.merchantID }, 200},
		{"filter chargebacks by merchant", "GET", func(s reachSide) string { return "/v1/chargebacks?merchant_id=" + s.merchantID }, nil,
			func(s reachSide) string { return s.merchantID }, 403},
	}
	for _, p := range payers {
		who, key := p.name, p.key
		for _, c := range rest {
			t.Run(who+" may not "+c.name+": answered as for another platform's", func(t *testing.T) {
				b := b.on(t)
				var hb, fb any
				if c.body != nil {
					hb, fb = c.body(hidden), c.body(foreign)
				}
				own := func(path string) string { return strings.Replace(path, "{own card}", p.card, 1) }
				want := b.api(c.method, own(c.path(foreign)), key, fb)
				before := written()
				got := b.api(c.method, own(c.path(hidden)), key, hb)
				if want.Status != c.status {
					t.Fatalf("another platform's object: HTTP %d, want %d\n%s", want.Status, c.status, want.Raw)
				}
				if wantRaw := strings.ReplaceAll(string(want.Raw), c.id(foreign), c.id(hidden)); got.Status != want.Status || string(got.Raw) != wantRaw {
					t.Errorf("HTTP %d %s\nwant HTTP %d %s", got.Status, got.Raw, want.Status, wantRaw)
				}
				if strings.Contains(string(got.Raw), n.merchantID) && c.id(hidden) != n.merchantID {
					t.Errorf("the answer names merchant %s: %s", n.merchantID, got.Raw)
				}
				if after := written(); !maps.Equal(after, before) {
					t.Errorf("a refused request wrote: %v, before %v", after, before)
				}
			})
		}
		for _, c := range []struct {
			name, method, code string
			config             func(s reachSide) string
			body               func(id string) map[string]any
		}{
			{"charge another merchant's config", "charge", "CONFIG_NOT_FOUND", func(s reachSide) string { return s.cfg }, chargeBody},
			{"store a card with another merchant's config", "tokenize", "CONFIG_NOT_FOUND", func(s reachSide) string { return s.pmc }, tokenizeBody},
		} {
			t.Run(who+" may not "+c.name+" over the connector", func(t *testing.T) {
				b := b.on(t)
				want := b.ivr(key, c.body(c.config(foreign)))
				before := written()
				got := b.ivr(key, c.body(c.config(hidden)))
				wantMsg := strings.ReplaceAll(want.wantErr(t, c.method, c.code, 200), c.config(foreign), c.config(hidden))
				if msg := got.wantErr(t, c.method, c.code, 200); msg != wantMsg {
					t.Errorf("message %q, want %q", msg, wantMsg)
				}
				if after := written(); !maps.Equal(after, before) {
					t.Errorf("a refused request wrote: %v, before %v", after, before)
				}
			})
		}
	}
	// Within reach: its own payin is seen, so a permission outside the group
	// is refused by name, as for any key.
	t.Run("Bob's session is refused its own payin's capture by name", func(t *testing.T) {
		r := b.on(t).api("POST", "/v1/payins/"+bobPayin+"/capture", payers[0].key, nil)
		if r.Status != 403 || r.err().Message != "missing permission payin:update for merchant "+b.merchantID {
			t.Errorf("HTTP %d %s, want 403 naming payin:update", r.Status, r.Raw)
		}
	})

	// A session for one bill (a payin config constraint): another config of
	// its own merchant is beyond its reach; its own bill is paid.
	bill := b.payinConfig(b.admin, b.merchantID, 1000, nil)
	r := b.createSession(b.admin, fmt.Sprintf(`{"ttl":600,"statements":[{"permissions":["group#payment_component"],"constraints":{"payin_config":{"payin_config_id":%q}}}]}`, bill))
	wantStatus(t, r, 200)
	billSession := r.data(t)["session_key"].(string)
	sameMerchant := b.payinConfig(b.admin, b.merchantID, 1000, nil)
	t.Run("a bill's session may not read another config of its merchant", func(t *testing.T) {
		want := b.on(t).api("GET", "/v1/payin_configs/"+foreign.cfg, billSession, nil)
		got := b.on(t).api("GET", "/v1/payin_configs/"+sameMerchant, billSession, nil)
		if wantRaw := strings.ReplaceAll(string(want.Raw), foreign.cfg, sameMerchant); got.Status != 404 || string(got.Raw) != wantRaw {
			t.Errorf("HTTP %d %s\nwant 404 %s", got.Status, got.Raw, wantRaw)
		}
	})
	t.Run("a bill's session may not charge another config of its merchant", func(t *testing.T) {
		b := b.on(t)
		want := b.ivr(billSession, chargeBody(foreign.cfg)).wantErr(t, "charge", "CONFIG_NOT_FOUND", 200)
		before := written()
		got := b.ivr(billSession, chargeBody(sameMerchant)).wantErr(t, "charge", "CONFIG_NOT_FOUND", 200)
		if wantMsg := strings.ReplaceAll(want, foreign.cfg, sameMerchant); got != wantMsg {
			t.Errorf("message %q, want %q", got, wantMsg)
		}
		if after := written(); !maps.Equal(after, before) {
			t.Errorf("a refused request wrote: %v, before %v", after, before)
		}
	})
	t.Run("a bill's session reads and pays its own bill", func(t *testing.T) {
		b := b.on(t)
		wantStatus(t, b.api("GET", "/v1/payin_configs/"+bill, billSession, nil), 200)
		wantID(t, b.ivr(billSession, chargeBody(bill)).wantOK(t, "charge"), "pyi_")
	})

	// An ordinary merchant-constrained key keeps its 403 naming the permission.
	merchantKey, _ := b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, "payin:create", "payin:read", "payment_method:read"))
	for _, c := range []struct {
		name, method, path string
		body               any
		want               string
	}{
		{"charge a card of its merchant for merchant N's config", "POST", "/v1/payment_methods/" + payers[0].card + "/payin",
			map[string]any{"payin_config_id": b.payinConfig(b.admin, n.merchantID, 1000, nil)}, "missing permission payin:create for merchant " + n.merchantID},
		{"read merchant N's payin", "GET", "/v1/payins/" + hidden.payin, nil, "missing permission payin:read for merchant " + n.merchantID},
		{"read merchant N's card", "GET", "/v1/payment_methods/" + hidden.card, nil, "missing permission payment_method:read for merchant " + n.merchantID},
	} {
		t.Run("a merchant key may not "+c.name+": 403 naming the permission", func(t *testing.T) {
			b := b.on(t)
			before := written()
			r := b.api(c.method, c.path, merchantKey, c.body)
			if r.Status != 403 || r.err().Message != c.want {
				t.Errorf("HTTP %d %s, want 403 %q", r.Status, r.Raw, c.want)
			}
			if after := written(); !maps.Equal(after, before) {
				t.Errorf("a refused request wrote: %v, before %v", after, before)
			}
		})
	}
	t.Run("a merchant key may not charge merchant N's config over the connector: FORBIDDEN naming it", func(t *testing.T) {
		msg := b.on(t).ivr(merchantKey, chargeBody(b.payinConfig(b.admin, n.merchantID, 1000, nil))).wantErr(t, "charge", "FORBIDDEN", 200)
		if !strings.Contains(msg, "payin:create for merchant "+n.merchantID) {
			t.Errorf("message %q does not name the permission and merchant", msg)
		}
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
