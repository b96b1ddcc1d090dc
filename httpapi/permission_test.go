package httpapi_test

// Permissions over HTTP (docs/decisions.md): every endpoint against every key shape,
// privilege escalation attempts, and statement validation.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// permFixture is a platform with one key of every shape and objects to act on.
type permFixture struct {
	*bundle
	keys map[string]string // shape → secret

	other     tenant // another platform
	merchantN string // a second merchant of the platform
	targetKey string // an API key to read
	cfgM      string // payin config of merchant M
	cfgN      string // payin config of merchant N
	pmcPlat   string // payment method config without a merchant
	pmcM      string // payment method config of merchant M
	payinM    string // payin of merchant M, made through the key narrowed to payin config M
	pmM       string // ACTIVE payment method of merchant M, stored with payinM
	payinS    string // payin of merchant M, made through the session
	pmS       string // ACTIVE payment method of merchant M, stored with payinS
	refundM   string // a refund of a payin of merchant M
	chbM      string // a chargeback of payinM
	chbN      string // a chargeback of a payin of merchant N
	webhookID string // a webhook endpoint of the platform
	both      string // an IVR key with payin:create and payment_method:create, for fixtures
}

// on returns the fixture reporting to t, for a subtest.
func (f *permFixture) on(t *testing.T) *permFixture {
	c := *f
	c.bundle = f.bundle.on(t)
	return &c
}

// The key shapes, in table order.
const (
	shAdmin    = "admin (group#all)"
	shPayins   = "IVR payins"
	shPMs      = "IVR payment methods"
	shBoth     = "IVR both"
	shMerchant = "IVR merchant-constrained"
	shRead     = "merchant-constrained read"
	shDisabled = "disabled key"
	shNone     = "no key"
	shOther    = "other platform's admin"
	shCfg      = "payment component narrowed to payin config M"
	shPMC      = "payment component narrowed to payment method config M"
	shSession  = "session (OpenEMR's: payment component for merchant M)"
	shCompKey  = "API key with the session's statement"
)

var shapes = []string{shAdmin, shPayins, shPMs, shBoth, shMerchant, shRead, shDisabled, shNone, shOther, shCfg, shPMC, shSession, shCompKey}

// readPerms is what the merchant-constrained read key holds (for merchant M).
var readPerms = []string{"api_key:read", "merchant:read", "payin_config:read", "payment_method_config:read", "payin:read", "payment_method:read",
	"chargeback:read"}

func newPermFixture(t *testing.T, engine string) *permFixture {
	b := setup(t, engine)
	f := &permFixture{bundle: b, keys: map[string]string{}}
	m, err := b.store.CreateMerchantAsOperator(t.Context(), b.platformID, merchantCreate("Merchant N"))
	if err != nil {
		t.Fatal(err)
	}
	f.merchantN = m.ID
	f.other = b.newTenant("Other Platform", true)
	f.keys[shAdmin] = b.admin
	f.keys[shPayins] = b.ivrKey("payin:create")
	f.keys[shPMs] = b.ivrKey("payment_method:create")
	f.keys[shBoth] = b.ivrKey("payin:create", "payment_method:create")
	f.keys[shMerchant], _ = b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, "payin:create"))
	f.keys[shRead], _ = b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, readPerms...))
	disabled, disabledID := b.createKey(b.admin, statementsJSON(b.platformID, "", "payin:read"))
	wantStatus(t, b.api("POST", "/v1/api_keys/"+disabledID+"/disable", b.admin, nil), 200)
	f.keys[shDisabled] = disabled
	f.keys[shNone] = ""
	f.keys[shOther] = f.other.admin
	f.both = f.keys[shBoth]

	_, f.targetKey = b.createKey(b.admin, statementsJSON(b.platformID, "", "payin:read"))
	f.cfgM = b.payinConfig(b.admin, b.merchantID, 1000, nil)
	f.cfgN = b.payinConfig(b.admin, f.merchantN, 1000, nil)
	f.pmcPlat = b.paymentMethodConfig(b.admin, b.platformID, "", nil)
	f.pmcM = b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
	// The object constraints (SPEC §1.1): group#payment_component narrowed to
	// one payin config (with its payin) and to one payment method config.
	f.keys[shCfg], _ = b.createKey(b.admin, objectStatementsJSON(b.platformID, "payin_config", f.cfgM, ivrpay.PermissionPaymentComponent))
	f.keys[shPMC], _ = b.createKey(b.admin, objectStatementsJSON(b.platformID, "payment_method_config", f.pmcM, ivrpay.PermissionPaymentComponent))
	ses := b.createSession(b.admin, openEMRSessionBody(3600, b.merchantID))
	wantStatus(t, ses, 200)
	f.keys[shSession] = ses.data(t)["session_key"].(string)
	f.keys[shCompKey], _ = b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, ivrpay.PermissionPaymentComponent))
	// A payer's browser credential reads only what was made through it: the
	// key narrowed to config M pays it, the session pays a bill of its own.
	charged := b.ivr(f.keys[shCfg], chargeBody(f.cfgM))
	f.payinM = charged.wantOK(t, "charge")
	f.pmM = charged.Params["payment_method_id"]
	wantID(t, f.pmM, "mtd_")
	charged = b.ivr(f.keys[shSession], chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)))
	f.payinS = charged.wantOK(t, "charge")
	f.pmS = charged.Params["payment_method_id"]
	wantID(t, f.pmS, "mtd_")
	f.refundM = f.refundedPayin()
	f.chbM = f.chargeback(f.payinM)
	f.chbN = f.chargeback(f.ivr(f.both, chargeBody(b.payinConfig(b.admin, f.merchantN, 1000, nil))).wantOK(t, "charge"))
	r := b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{"url": "http://127.0.0.1:9/hooks"})
	wantStatus(t, r, 200)
	f.webhookID = r.data(t)["webhook_endpoint_id"].(string)
	return f
}

// approvedPayin charges a fresh payin config of merchant M with the IVR key
// (mode AUTHORIZE or the default) and returns the payin.
func (f *permFixture) approvedPayin(mode string) string {
	var extra map[string]any
	if mode != "" {
		extra = map[string]any{"processing_mode": mode}
	}
	return f.ivr(f.both, chargeBody(f.payinConfig(f.admin, f.merchantID, 1000, extra))).wantOK(f.t, "charge")
}

// refundedPayin settles a payin of merchant M and refunds part of it; it
// returns the refund's id.
func (f *permFixture) refundedPayin() string {
	payin := f.approvedPayin("")
	paymentstest.Settle(f.t, f.store)
	r := f.api("POST", "/v1/payins/"+payin+"/void_or_refund", f.admin, map[string]any{"idempotency_key": "r-" + randHex(6),
		"reason": "REQUESTED_BY_CUSTOMER", "amount": 100})
	wantStatus(f.t, r, 200)
	id, _ := r.data(f.t)["refund_id"].(string)
	if !strings.HasPrefix(id, "sbx_rfd_") {
		f.t.Fatalf("refund_id %q\n%s", id, r.Raw)
	}
	return id
}

// chargeback opens a dispute of payinID, as the sandbox processor's event
// would, and returns the chargeback's id.
func (f *permFixture) chargeback(payinID string) string {
	f.t.Helper()
	ev := paymentstest.Receive(f.t, f.store, ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: "sandbox",
		ID: "evt_" + randHex(8), Type: "test.dispute", Effect: ivrpay.EffectDispute, Reference: payinID,
		Dispute: &ivrpay.DisputeDetails{Reference: "du_" + randHex(8), Status: ivrpay.ChargebackStatusDisputeActionRequired}})
	if ev.Status != ivrpay.ProcessorEventApplied {
		f.t.Fatalf("dispute event: %s %q", ev.Status, ev.Note)
	}
	return ev.ObjectID
}

// freshWebhookEndpoint makes an endpoint for the delete cells.
func (f *permFixture) freshWebhookEndpoint() string {
	r := f.api("POST", "/v1/webhook_endpoints", f.admin, map[string]any{"url": "http://127.0.0.1:9/hooks/" + randHex(4)})
	wantStatus(f.t, r, 200)
	return r.data(f.t)["webhook_endpoint_id"].(string)
}

// objectStatementsJSON is one statement on platformID narrowed to one object
// with a constraint of kind ("payin_config", "payment_method_config").
func objectStatementsJSON(platformID, kind, id string, perms ...string) string {
	p, _ := json.Marshal(perms)
	return fmt.Sprintf(`[{"permissions":%s,"constraints":{"platform":{"platform_id":%q},%q:{%q:%q}}}]`, p, platformID, kind, kind+"_id", id)
}

// freshKey makes a key for the disable/enable/delete cells.
func (f *permFixture) freshKey(disabled bool) string {
	_, id := f.createKey(f.admin, statementsJSON(f.platformID, "", "payin:read"))
	if disabled {
		wantStatus(f.t, f.api("POST", "/v1/api_keys/"+id+"/disable", f.admin, nil), 200)
	}
	return id
}

// freshPaymentMethod stores a card of merchant M for the deactivate cells.
func (f *permFixture) freshPaymentMethod() string {
	pmc := f.paymentMethodConfig(f.admin, f.platformID, f.merchantID, nil)
	return f.ivr(f.both, tokenizeBody(pmc)).wantOK(f.t, "tokenize")
}

// expect lists the status per key shape. The API key with the session's
// statement answers as the session does (key and session are the same
// credential) unless compKey says otherwise: on what the session made.
type expect struct{ admin, payins, pms, both, merchant, read, disabled, none, other, cfg, pmc, session, compKey int }

func (e expect) of(shape string) int {
	if e.compKey == 0 {
		e.compKey = e.session
	}
	return map[string]int{shAdmin: e.admin, shPayins: e.payins, shPMs: e.pms, shBoth: e.both, shMerchant: e.merchant,
		shRead: e.read, shDisabled: e.disabled, shNone: e.none, shOther: e.other, shCfg: e.cfg, shPMC: e.pmc, shSession: e.session,
		shCompKey: e.compKey}[shape]
}

type endpoint struct {
	name string
	perm string // the permission a 403 must name
	req  func(f *permFixture) (method, path string, body any)
	want expect
	// permFor, when set, names another permission a shape's 403 must name.
	permFor map[string]string
}

func endpoints() []endpoint {
	keyBody := func(f *permFixture) any {
		return `{"statements":` + statementsJSON(f.platformID, "", "payin:read") + `}`
	}
	return []endpoint{
		{"POST /v1/api_keys", "api_key:create",
			func(f *permFixture) (string, string, any) { return "POST", "/v1/api_keys", keyBody(f) },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 403, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/api_keys", "api_key:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/api_keys", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/api_keys/{id}", "api_key:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/api_keys/" + f.targetKey, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/api_keys/{id}/disable", "api_key:update",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/api_keys/" + f.freshKey(false) + "/disable", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/api_keys/{id}/enable", "api_key:update",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/api_keys/" + f.freshKey(true) + "/enable", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"DELETE /v1/api_keys/{id}", "api_key:delete",
			func(f *permFixture) (string, string, any) { return "DELETE", "/v1/api_keys/" + f.freshKey(false), nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/merchants", "merchant:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/merchants", map[string]any{"name": "New merchant"}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/merchants", "merchant:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/merchants", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/merchants/{M}", "merchant:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/merchants/" + f.merchantID, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/merchants/{N} (excluded by the merchant constraint)", "merchant:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/merchants/" + f.merchantN, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/payin_configs", "payin_config:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/payin_configs", map[string]any{"merchant_id": f.merchantID, "idempotency_key": "k-" + randHex(6),
					"amount": 1000, "currency_code": "USD"}
			},
			// The other platform's admin names a merchant it cannot see: 400 on merchant_id.
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 400, cfg: 403, pmc: 403, session: 403}, nil},
		// A payer's browser (group#payment_component alone) reads configs by id
		// within its constraints; anything else it may not read is not found.
		{"GET /v1/payin_configs/{id of M}", "payin_config:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payin_configs/" + f.cfgM, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 200, pmc: 404, session: 200}, nil},
		{"GET /v1/payin_configs/{id of N}", "payin_config:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payin_configs/" + f.cfgN, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/payment_method_configs", "payment_method_config:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/payment_method_configs", map[string]any{"platform_id": f.platformID, "idempotency_key": "k-" + randHex(6)}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 403, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/payment_method_configs/{platform-level}", "payment_method_config:read",
			func(f *permFixture) (string, string, any) {
				return "GET", "/v1/payment_method_configs/" + f.pmcPlat, nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/payment_method_configs/{id of M}", "payment_method_config:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payment_method_configs/" + f.pmcM, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 200, session: 200}, nil},
		// Lists answer every holder of the permission; what they hold is
		// TestListsShowOnlyReadableObjects's.
		{"GET /v1/payins", "payin:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payins", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 200, cfg: 200, pmc: 200, session: 200}, nil},
		// Payins and cards are read by a payer's browser only when made through it.
		{"GET /v1/payins/{made through the key narrowed to config M}", "payin:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payins/" + f.payinM, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 200, pmc: 404, session: 404}, nil},
		{"GET /v1/payins/{made through the session}", "payin:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payins/" + f.payinS, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 200, compKey: 404}, nil},
		{"GET /v1/payment_methods", "payment_method:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payment_methods", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 200, cfg: 200, pmc: 200, session: 200}, nil},
		{"GET /v1/payment_methods/{stored through the key narrowed to config M}", "payment_method:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payment_methods/" + f.pmM, nil },
			// The config constraint matches the config's payins, not the card stored with one.
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/payment_methods/{stored through the session}", "payment_method:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/payment_methods/" + f.pmS, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 200, compKey: 404}, nil},
		// Charging a stored card picks whose card pays: it needs payment_method:read
		// on the card as well as payin:create, so the guide's IVR keys cannot, and
		// a payer's browser charges only a card stored through it.
		{"POST /v1/payment_methods/{stored through the key narrowed to config M}/payin", "payin:create",
			func(f *permFixture) (string, string, any) {
				cfg := f.payinConfig(f.admin, f.merchantID, 1000, nil)
				return "POST", "/v1/payment_methods/" + f.pmM + "/payin", map[string]any{"payin_config_id": cfg}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404},
			map[string]string{shPayins: "payment_method:read", shBoth: "payment_method:read", shMerchant: "payment_method:read"}},
		{"POST /v1/payment_methods/{stored through the session}/payin", "payin:create",
			func(f *permFixture) (string, string, any) {
				cfg := f.payinConfig(f.admin, f.merchantID, 1000, nil)
				return "POST", "/v1/payment_methods/" + f.pmS + "/payin", map[string]any{"payin_config_id": cfg}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 200, compKey: 404},
			map[string]string{shPayins: "payment_method:read", shBoth: "payment_method:read", shMerchant: "payment_method:read"}},
		{"POST /v1/payment_methods/{id}/deactivate", "payment_method:update",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/payment_methods/" + f.freshPaymentMethod() + "/deactivate", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		// Acting on a payin needs a permission outside group#payment_component:
		// refused by name, as for any key that lacks it, except to a payer's
		// browser, for which a payin it did not make is not found (SPEC §1.1).
		{"POST /v1/payins/{id}/capture", "payin:update",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/payins/" + f.approvedPayin(ivrpay.ProcessingModeAuthorize) + "/capture", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/payins/{id}/void_or_refund", "refund:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/payins/" + f.approvedPayin("") + "/void_or_refund",
					map[string]any{"idempotency_key": "v-" + randHex(6), "reason": "REQUESTED_BY_CUSTOMER"}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/refunds/{id}", "refund:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/refunds/" + f.refundM, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		// Chargebacks are read with chargeback:read, which no IVR key and no
		// payer's browser holds (group#payment_component does not include
		// it: a browser is answered as if they did not exist); a merchant
		// constraint and a payin config constraint reach the chargebacks of
		// that merchant's, that config's payins.
		{"GET /v1/chargebacks", "chargeback:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/chargebacks", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/chargebacks/{of payinM}", "chargeback:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/chargebacks/" + f.chbM, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 200, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/chargebacks/{of merchant N}", "chargeback:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/chargebacks/" + f.chbN, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		// Sessions and webhook endpoints are the platform's.
		{"POST /v1/sessions", "session:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/sessions", openEMRSessionBody(600, f.merchantID)
			},
			// The other platform's admin names a merchant it cannot see: 400 on the constraint.
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 400, cfg: 403, pmc: 403, session: 403}, nil},
		{"POST /v1/webhook_endpoints", "webhook_endpoint:create",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/webhook_endpoints", map[string]any{"url": "http://127.0.0.1:9/hooks/" + randHex(4)}
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/webhook_endpoints", "webhook_endpoint:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/webhook_endpoints", nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 200, cfg: 403, pmc: 403, session: 403}, nil},
		{"GET /v1/webhook_endpoints/{id}", "webhook_endpoint:read",
			func(f *permFixture) (string, string, any) { return "GET", "/v1/webhook_endpoints/" + f.webhookID, nil },
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"GET /v1/webhook_endpoints/{id}/deliveries", "webhook_endpoint:read",
			func(f *permFixture) (string, string, any) {
				return "GET", "/v1/webhook_endpoints/" + f.webhookID + "/deliveries", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"DELETE /v1/webhook_endpoints/{id}", "webhook_endpoint:delete",
			func(f *permFixture) (string, string, any) {
				return "DELETE", "/v1/webhook_endpoints/" + f.freshWebhookEndpoint(), nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
		{"POST /v1/webhook_endpoints/{id}/rotate_secret", "webhook_endpoint:update",
			func(f *permFixture) (string, string, any) {
				return "POST", "/v1/webhook_endpoints/" + f.webhookID + "/rotate_secret", nil
			},
			expect{admin: 200, payins: 403, pms: 403, both: 403, merchant: 403, read: 403, disabled: 401, none: 401, other: 404, cfg: 404, pmc: 404, session: 404}, nil},
	}
}

func merchantCreate(name string) ivrpay.MerchantCreate { return ivrpay.MerchantCreate{Name: name} }

func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := newPermFixture(t, engine)
		for _, ep := range endpoints() {
			for _, shape := range shapes {
				t.Run(ep.name+" "+shape, func(t *testing.T) {
					f := f.on(t)
					method, path, body := ep.req(f)
					r := f.api(method, path, f.keys[shape], body)
					want := ep.want.of(shape)
					if r.Status != want {
						t.Errorf("%s with %s: HTTP %d, want %d\n%s", ep.name, shape, r.Status, want, r.Raw)
						return
					}
					switch {
					case want == 403 && shape != shOther:
						perm := ep.perm
						if p, ok := ep.permFor[shape]; ok {
							perm = p
						}
						if !strings.Contains(r.err().Message, "missing permission "+perm+" for ") {
							t.Errorf("%s with %s: 403 message %q does not name %s", ep.name, shape, r.err().Message, perm)
						}
					case want == 404:
						// The other platform's object is not revealed: the answer is the
						// same as for an id that does not exist.
						if strings.Contains(r.err().Message, f.platformID) {
							t.Errorf("%s with %s: 404 message %q names the owning platform", ep.name, shape, r.err().Message)
						}
					case want == 401 && shape == shDisabled:
						if !strings.Contains(strings.ToLower(r.err().Message), "disabled") && !strings.Contains(r.err().Message, "Unauthorized") {
							t.Errorf("%s with %s: 401 message %q", ep.name, shape, r.err().Message)
						}
					}
				})
			}
		}
	})
}

// TestListsShowOnlyReadableObjects: lists hold only what the key may read.
func TestListsShowOnlyReadableObjects(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := newPermFixture(t, engine)
		// A payin and a stored card of merchant N too.
		payinN := f.ivr(f.both, chargeBody(f.cfgN))
		payinN.wantOK(t, "charge")

		for _, c := range []struct {
			path, idKey string
		}{{"/v1/merchants", "merchant_id"}, {"/v1/payins", "payin_id"}, {"/v1/payment_methods", "payment_method_id"}, {"/v1/chargebacks", "chargeback_id"}} {
			// The admin sees both merchants' objects.
			all := f.api("GET", c.path, f.admin, nil)
			wantStatus(t, all, 200)
			total, results := all.list(t)
			if total != len(results) || total < 2 {
				t.Errorf("admin %s: total_results %d, %d results; want both merchants' objects", c.path, total, len(results))
			}
			// The merchant-constrained read key sees merchant M's only.
			r := f.api("GET", c.path, f.keys[shRead], nil)
			wantStatus(t, r, 200)
			total, results = r.list(t)
			if total != len(results) || total == 0 {
				t.Errorf("read key %s: total_results %d, %d results", c.path, total, len(results))
			}
			for _, res := range results {
				if merchant := res["merchant_id"]; merchant != f.merchantID {
					t.Errorf("read key %s lists %v of merchant %v", c.path, res[c.idKey], merchant)
				}
			}
			// The other platform sees none of this platform's objects.
			r = f.api("GET", c.path, f.other.admin, nil)
			wantStatus(t, r, 200)
			_, results = r.list(t)
			for _, res := range results {
				if res["platform_id"] != f.other.platformID {
					t.Errorf("other platform %s lists %v of platform %v", c.path, res[c.idKey], res["platform_id"])
				}
			}
		}
		// A merchant filter cannot widen the read key's view.
		r := f.api("GET", "/v1/payins?merchant_id="+f.merchantN, f.keys[shRead], nil)
		wantStatus(t, r, 200)
		if total, _ := r.list(t); total != 0 {
			t.Errorf("read key filtering on merchant N sees %d payins", total)
		}
		// A payer's browser credential lists what was made through it: the
		// payment component key narrowed to payin config M its payin and
		// nothing else (the card stored with it was not made from a payment
		// method config), the one narrowed to a payment method config nothing,
		// the session its own payin and card, the API key with the session's
		// statement (which made nothing) nothing.
		for _, c := range []struct {
			shape, path string
			want        []string
		}{
			{shCfg, "/v1/payins", []string{f.payinM}},
			{shCfg, "/v1/payment_methods", nil},
			{shPMC, "/v1/payins", nil},
			{shPMC, "/v1/payment_methods", nil},
			{shSession, "/v1/payins", []string{f.payinS}},
			{shSession, "/v1/payment_methods", []string{f.pmS}},
			{shSession, "/v1/payins?merchant_id=" + f.merchantID, []string{f.payinS}},
			{shCompKey, "/v1/payins", nil},
			{shCompKey, "/v1/payment_methods", nil},
		} {
			t.Run(c.shape+" "+c.path, func(t *testing.T) {
				r := f.on(t).api("GET", c.path, f.keys[c.shape], nil)
				wantStatus(t, r, 200)
				total, results := r.list(t)
				var ids []string
				idKey := "payin_id"
				if strings.HasPrefix(c.path, "/v1/payment_methods") {
					idKey = "payment_method_id"
				}
				for _, res := range results {
					ids = append(ids, fmt.Sprint(res[idKey]))
				}
				if total != len(c.want) || fmt.Sprint(ids) != fmt.Sprint(c.want) {
					t.Errorf("%s lists %v (total %d), want %v", c.path, ids, total, c.want)
				}
			})
		}
		// A payer's browser sees the chargebacks of a payin it made in the
		// payin's summary, and nothing more of them (docs/decisions.md).
		r = f.api("GET", "/v1/payins/"+f.payinM, f.keys[shCfg], nil)
		wantStatus(t, r, 200)
		if cbs, _ := r.data(t)["chargebacks"].([]any); len(cbs) != 1 || cbs[0].(map[string]any)["chargeback_id"] != f.chbM {
			t.Errorf("payin %s read by the payment component key lists chargebacks %v", f.payinM, r.data(t)["chargebacks"])
		}
		wantStatus(t, f.api("GET", "/v1/chargebacks/"+f.chbM, f.keys[shCfg], nil), 404)
		wantStatus(t, f.api("GET", "/v1/chargebacks?payin_id="+f.payinM, f.keys[shCfg], nil), 403)
		// The other platform's key list holds only its admin key.
		r = f.api("GET", "/v1/api_keys", f.other.admin, nil)
		if total, results := r.list(t); total != 1 || results[0]["api_key_id"] != f.other.adminID {
			t.Errorf("other platform's key list: %s", r.Data)
		}
	})
}

// TestNoPrivilegeEscalation: a key can only mint keys it could be itself.
func TestNoPrivilegeEscalation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		other := b.newTenant("Other Platform", true)
		m2, err := b.store.CreateMerchantAsOperator(t.Context(), b.platformID, merchantCreate("Merchant N"))
		if err != nil {
			t.Fatal(err)
		}
		P, M, N := b.platformID, b.merchantID, m2.ID
		create := func(key, statements string) apiResp {
			t.Helper()
			return b.api("POST", "/v1/api_keys", key, `{"statements":`+statements+`}`)
		}
		refused := func(what string, r apiResp, status int, field string) {
			t.Helper()
			if r.Status != status || r.err().Field != field {
				t.Errorf("%s: HTTP %d field %q, want %d naming %q\n%s", what, r.Status, r.err().Field, status, field, r.Raw)
			}
		}
		keysBefore := b.count("api_keys")

		// An IVR key cannot create keys at all.
		ivr := b.ivrKey("payin:create", "payment_method:create")
		r := create(ivr, statementsJSON(P, "", "payin:create"))
		refused("IVR key creating a key", r, 403, "")
		if !strings.Contains(r.err().Message, "missing permission api_key:create for platform "+P) {
			t.Errorf("message %q", r.err().Message)
		}

		// A merchant-constrained statement never grants a platform-level
		// permission such as api_key:create, even when it lists it.
		mkey, _ := b.createKey(b.admin, statementsJSON(P, M, "api_key:create", "payin:create"))
		r = create(mkey, statementsJSON(P, M, "payin:create"))
		refused("merchant-constrained key with api_key:create", r, 403, "")

		// The admin cannot mint a key for another platform, nor can the other
		// platform's admin mint one for this platform.
		refused("admin minting for another platform", create(b.admin, statementsJSON(other.platformID, "", "payin:create")), 403, "statements[0].permissions[0]")
		refused("admin minting group#all for another platform", create(b.admin, statementsJSON(other.platformID, "", "group#all")), 403, "statements[0].permissions[0]")
		refused("other admin minting for this platform", create(other.admin, statementsJSON(P, "", "group#all")), 403, "statements[0].permissions[0]")
		// Two statements: one legitimate, one for another platform.
		two := `[` + strings.Trim(statementsJSON(P, "", "payin:read"), "[]") + `,` + strings.Trim(statementsJSON(other.platformID, "", "payin:read"), "[]") + `]`
		refused("second statement for another platform", create(b.admin, two), 403, "statements[1].permissions[0]")

		// A key holding payin:create and payin:read (and api_key:create, so
		// that it may create keys at all) cannot mint anything broader.
		narrow, _ := b.createKey(b.admin, statementsJSON(P, "", "api_key:create", "payin:create", "payin:read"))
		refused("narrow key minting group#all", create(narrow, statementsJSON(P, "", "group#all")), 403, "statements[0].permissions[0]")
		refused("narrow key minting payin_config:create", create(narrow, statementsJSON(P, "", "payin:read", "payin_config:create")), 403, "statements[0].permissions[1]")
		refused("narrow key minting refund:create", create(narrow, statementsJSON(P, "", "refund:create")), 403, "statements[0].permissions[0]")
		wantStatus(t, create(narrow, statementsJSON(P, "", "payin:read")), 200)
		wantStatus(t, create(narrow, statementsJSON(P, M, "payin:create")), 200) // adding a merchant constraint narrows

		// A key whose payin:create is merchant-constrained cannot drop (or
		// change) the merchant constraint when it mints.
		split := `[{"permissions":["api_key:create","payin:read"],"constraints":{"platform":{"platform_id":"` + P + `"}}},` +
			`{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"merchant":{"merchant_id":"` + M + `"}}}]`
		splitKey, _ := b.createKey(b.admin, split)
		refused("dropping the merchant constraint", create(splitKey, statementsJSON(P, "", "payin:create")), 403, "statements[0].permissions[0]")
		refused("changing the merchant constraint", create(splitKey, statementsJSON(P, N, "payin:create")), 403, "statements[0].permissions[0]")
		wantStatus(t, create(splitKey, statementsJSON(P, M, "payin:create")), 200)
		wantStatus(t, create(splitKey, statementsJSON(P, M, "payin:read")), 200)
		r = create(splitKey, statementsJSON(P, "", "payin:create"))
		if !strings.Contains(r.err().Message, "payin:create") {
			t.Errorf("message %q does not name the permission it cannot grant", r.err().Message)
		}

		// Five keys were created above (mkey, narrow, 2 by narrow, splitKey,
		// 2 by splitKey) plus the IVR key; nothing else.
		if n := b.count("api_keys"); n != keysBefore+8 {
			t.Errorf("%d keys, want %d", n, keysBefore+8)
		}

		// A key that may update keys cannot disable, enable or delete a key
		// holding more than it does (that would be revoking the admin).
		updater, _ := b.createKey(b.admin, statementsJSON(P, "", "api_key:update", "api_key:delete", "api_key:read", "payin:read"))
		for _, path := range []string{"/v1/api_keys/" + b.adminID + "/disable"} {
			r := b.api("POST", path, updater, nil)
			wantStatus(t, r, 403)
		}
		wantStatus(t, b.api("DELETE", "/v1/api_keys/"+b.adminID, updater, nil), 403)
		// The admin key still works.
		wantStatus(t, b.api("GET", "/v1/api_keys/"+b.adminID, b.admin, nil), 200)
		// But it can manage a key within its own reach.
		_, weakID := b.createKey(b.admin, statementsJSON(P, "", "payin:read"))
		wantStatus(t, b.api("POST", "/v1/api_keys/"+weakID+"/disable", updater, nil), 200)
		wantStatus(t, b.api("POST", "/v1/api_keys/"+weakID+"/enable", updater, nil), 200)
		wantStatus(t, b.api("DELETE", "/v1/api_keys/"+weakID, updater, nil), 200)
		wantStatus(t, b.api("GET", "/v1/api_keys/"+weakID, b.admin, nil), 404)
	})
}

// TestDisabledAndDeletedKeysStopAtOnce: 401 right after disable or delete.
func TestDisabledAndDeletedKeysStopAtOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		secret, id := b.createKey(b.admin, statementsJSON(b.platformID, "", "merchant:read"))
		wantStatus(t, b.api("GET", "/v1/merchants", secret, nil), 200)
		r := b.api("POST", "/v1/api_keys/"+id+"/disable", b.admin, nil)
		wantStatus(t, r, 200)
		if d := r.data(t); d["status"] != "DISABLED" || d["api_key_id"] != id {
			t.Errorf("disable answered %s", r.Data)
		}
		wantStatus(t, b.api("GET", "/v1/merchants", secret, nil), 401)
		r = b.api("POST", "/v1/api_keys/"+id+"/enable", b.admin, nil)
		if d := r.data(t); d["status"] != "ENABLED" {
			t.Errorf("enable answered %s", r.Data)
		}
		wantStatus(t, b.api("GET", "/v1/merchants", secret, nil), 200)
		wantStatus(t, b.api("DELETE", "/v1/api_keys/"+id, b.admin, nil), 200)
		wantStatus(t, b.api("GET", "/v1/merchants", secret, nil), 401)
		wantStatus(t, b.api("POST", "/v1/api_keys/"+id+"/enable", b.admin, nil), 404)
		wantStatus(t, b.api("GET", "/v1/merchants", secret, nil), 401)
		// Bad Authorization headers are 401 too.
		for _, h := range []string{"Bearer", "Bearer ", "Basic " + secret, "Bearer sbx_apikey_" + strings.Repeat("0", 64), "Bearer " + b.admin + "x"} {
			t.Run(fmt.Sprintf("%q", h), func(t *testing.T) {
				b := b.on(t)
				req := b.api("GET", "/v1/merchants", "", nil, header{"Authorization", h})
				if req.Status != http.StatusUnauthorized {
					t.Errorf("Authorization %q: HTTP %d, want 401", h, req.Status)
				}
			})
		}
		// Unknown routes answer the envelope too.
		wantStatus(t, b.api("GET", "/v1/nothing", b.admin, nil), 404)
	})
}

// TestStatementValidation: malformed statements are 400 naming the field, and create nothing.
func TestStatementValidation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		other := b.newTenant("Other Platform", true)
		otherCfg := b.payinConfig(other.admin, other.merchantID, 1000, nil)
		P, M := b.platformID, b.merchantID
		plat := fmt.Sprintf(`{"platform":{"platform_id":%q}}`, P)
		cases := []struct{ name, body, field string }{
			{"unknown permission", `{"statements":[{"permissions":["payin:explode"],"constraints":` + plat + `}]}`, "statements[0].permissions[0]"},
			{"unknown resource", `{"statements":[{"permissions":["payin:create","wallet:read"],"constraints":` + plat + `}]}`, "statements[0].permissions[1]"},
			{"permission without action", `{"statements":[{"permissions":["payin"],"constraints":` + plat + `}]}`, "statements[0].permissions[0]"},
			{"permission case", `{"statements":[{"permissions":["Payin:Create"],"constraints":` + plat + `}]}`, "statements[0].permissions[0]"},
			{"permission not a string", `{"statements":[{"permissions":[1],"constraints":` + plat + `}]}`, "statements[0].permissions[0]"},
			{"empty permissions", `{"statements":[{"permissions":[],"constraints":` + plat + `}]}`, "statements[0].permissions"},
			{"permissions missing", `{"statements":[{"constraints":` + plat + `}]}`, "statements[0].permissions"},
			{"unknown constraint kind", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"region":{"id":"eu"}}}]}`, "statements[0].constraints.region"},
			{"missing platform constraint", `{"statements":[{"permissions":["payin:create"],"constraints":{"merchant":{"merchant_id":"` + M + `"}}}]}`, "statements[0].constraints.platform"},
			{"empty constraints", `{"statements":[{"permissions":["payin:create"],"constraints":{}}]}`, "statements[0].constraints.platform"},
			{"constraints missing", `{"statements":[{"permissions":["payin:create"]}]}`, "statements[0].constraints"},
			{"unknown field in a statement", `{"statements":[{"permissions":["payin:create"],"constraints":` + plat + `,"effect":"allow"}]}`, "statements[0].effect"},
			{"unknown field in a constraint", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `","region":"eu"}}}]}`, "statements[0].constraints.platform.region"},
			{"empty platform_id", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":""}}}]}`, "statements[0].constraints.platform.platform_id"},
			{"platform not an object", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":"` + P + `"}}]}`, "statements[0].constraints.platform"},
			{"second statement bad", `{"statements":[{"permissions":["payin:create"],"constraints":` + plat + `},{"permissions":["payin:make"],"constraints":` + plat + `}]}`, "statements[1].permissions[0]"},
			{"statement not an object", `{"statements":["payin:create"]}`, "statements[0]"},
			{"statements missing", `{}`, "statements"},
			{"statements null", `{"statements":null}`, "statements"},
			{"statements empty", `{"statements":[]}`, "statements"},
			{"statements not an array", `{"statements":{"permissions":["payin:create"]}}`, "statements"},
			{"unknown merchant", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"merchant":{"merchant_id":"sbx_mid_000000000000000000000000000"}}}]}`, "statements[0].constraints.merchant.merchant_id"},
			{"merchant of another platform", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"merchant":{"merchant_id":"` + other.merchantID + `"}}}]}`, "statements[0].constraints.merchant.merchant_id"},
			{"unknown payin config", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"payin_config":{"payin_config_id":"sbx_cfg_000000000000000000000000000"}}}]}`, "statements[0].constraints.payin_config.payin_config_id"},
			{"payin config of another platform", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"payin_config":{"payin_config_id":"` + otherCfg + `"}}}]}`, "statements[0].constraints.payin_config.payin_config_id"},
			{"payin config constraint with a wrong key", `{"statements":[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"payin_config":{"id":"x"}}}]}`, "statements[0].constraints.payin_config.id"},
			{"unknown payment method config", `{"statements":[{"permissions":["payment_method:create"],"constraints":{"platform":{"platform_id":"` + P + `"},"payment_method_config":{"payment_method_config_id":"sbx_pmc_000000000000000000000000000"}}}]}`, "statements[0].constraints.payment_method_config.payment_method_config_id"},
			{"unknown group", `{"statements":[{"permissions":["group#everything"],"constraints":` + plat + `}]}`, "statements[0].permissions[0]"},
			{"unknown top-level field", `{"statements":[{"permissions":["payin:create"],"constraints":` + plat + `}],"name":"ivr"}`, "name"},
		}
		before := b.count("api_keys")
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				r := b.api("POST", "/v1/api_keys", b.admin, c.body)
				if r.Status != 400 || r.err().Field != c.field {
					t.Errorf("%s: HTTP %d field %q, want 400 naming %q\n%s", c.name, r.Status, r.err().Field, c.field, r.Raw)
				}
			})
		}
		if n := b.count("api_keys"); n != before {
			t.Errorf("refused key creations wrote %d keys", n-before)
		}
	})
}

// TestObjectConstraintEscalation: payin_config and payment_method_config
// constraints and group#payment_component obey the no-escalation rule: a
// statement may add an object constraint, never drop or change one, and a
// group is granted only when each of its members is.
func TestObjectConstraintEscalation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		P := b.platformID
		cfgA := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		cfgB := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, P, b.merchantID, nil)
		create := func(key, statements string) apiResp {
			t.Helper()
			return b.api("POST", "/v1/api_keys", key, `{"statements":`+statements+`}`)
		}
		// A key that may create keys and holds payin:read only on config A.
		creator, _ := b.createKey(b.admin, `[`+strings.Trim(statementsJSON(P, "", "api_key:create", "payin:create"), "[]")+`,`+
			strings.Trim(objectStatementsJSON(P, "payin_config", cfgA, "payin:read"), "[]")+`]`)
		cases := []struct {
			name, statements string
			status           int
			message          string
		}{
			{"narrowing payin:create to a config", objectStatementsJSON(P, "payin_config", cfgA, "payin:create"), 200, ""},
			{"narrowing payin:create to a payment method config", objectStatementsJSON(P, "payment_method_config", pmc, "payin:create"), 200, ""},
			{"payin:read on its config", objectStatementsJSON(P, "payin_config", cfgA, "payin:read"), 200, ""},
			{"dropping the config constraint", statementsJSON(P, "", "payin:read"), 403, "cannot grant payin:read"},
			{"changing the config", objectStatementsJSON(P, "payin_config", cfgB, "payin:read"), 403, "cannot grant payin:read for platform " + P + " and payin config " + cfgB},
			{"a group it only partly holds", objectStatementsJSON(P, "payin_config", cfgA, ivrpay.PermissionPaymentComponent), 403, "cannot grant payin_config:read (in group#payment_component)"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := b.on(t).api("POST", "/v1/api_keys", creator, `{"statements":`+c.statements+`}`)
				if r.Status != c.status || (c.message != "" && !strings.Contains(r.err().Message, c.message)) {
					t.Errorf("HTTP %d %q, want %d with %q\n%s", r.Status, r.err().Message, c.status, c.message, r.Raw)
				}
			})
		}
		// The admin holds the whole group, so it may grant it narrowed.
		wantStatus(t, create(b.admin, objectStatementsJSON(P, "payin_config", cfgA, ivrpay.PermissionPaymentComponent)), 200)
		// A config-narrowed statement never grants a platform-level permission.
		narrowAdmin, _ := b.createKey(b.admin, objectStatementsJSON(P, "payin_config", cfgA, "group#all"))
		r := create(narrowAdmin, objectStatementsJSON(P, "payin_config", cfgA, "payin:read"))
		if r.Status != 403 || !strings.Contains(r.err().Message, "missing permission api_key:create for platform "+P) {
			t.Errorf("config-narrowed group#all creating a key: HTTP %d %q", r.Status, r.err().Message)
		}
	})
}
