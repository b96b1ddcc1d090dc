package httpapi_test

// Acceptance test of the IVR guide (reference/ivr-payments-guide.txt), done as
// a new platform developer would: paste the guide's statements into the API,
// create configs with the admin key, and check that the IVR keys can run step
// 2 only.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The statements of the guide, verbatim (line breaks included).
const (
	guidePayinsOnly = `[
{
"permissions": [
"payin:create"
],
"constraints": {
"platform": {
"platform_id": "{{platform_id}}"
}
}
}
]`
	guidePaymentMethodsOnly = `[
{
"permissions": [
"payment_method:create"
],
"constraints": {
"platform": {
"platform_id": "{{platform_id}}"
}
}
}
]`
	guideBoth = `[
{
"permissions": [
"payin:create",
"payment_method:create"
],
"constraints": {
"platform": {
"platform_id": "{{platform_id}}"
}
}
}
]`
	// The guide's merchant variant has a trailing comma after the merchant
	// constraint, which is not JSON.
	guideMerchant = `[
{
"permissions": [
"payin:create"
],
"constraints": {
"platform": {
"platform_id": "{{platform_id}}"
},
"merchant": {
"merchant_id": "{{merchant_id}}"
},
}
}
]`
)

func fillGuide(s, platformID, merchantID string) string {
	return strings.NewReplacer("{{platform_id}}", platformID, "{{merchant_id}}", merchantID).Replace(s)
}

func TestGuideAcceptance(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)

		// The admin key itself is a sandbox key.
		if !secretRE.MatchString(b.admin) {
			t.Fatalf("admin key %q is not sbx_apikey_ + 64 hex", b.admin)
		}
		wantID(t, b.platformID, "plt_")
		wantID(t, b.merchantID, "mid_")

		type ivrKey struct {
			name, statements, secret, id string
		}
		keys := []*ivrKey{
			{name: "payins only", statements: guidePayinsOnly},
			{name: "payment methods only", statements: guidePaymentMethodsOnly},
			{name: "both", statements: guideBoth},
		}
		for _, k := range keys {
			text := fillGuide(k.statements, b.platformID, b.merchantID)
			r := b.api("POST", "/v1/api_keys", b.admin, `{"statements": `+text+`}`)
			wantStatus(t, r, 200)
			d := r.data(t)
			k.id = wantID(t, d["api_key_id"], "api_")
			k.secret, _ = d["api_key"].(string)
			checkCreatedKey(t, d, b.platformID, text)
		}

		// The merchant variant, pasted as printed, is refused as bad JSON
		// without creating anything; the corrected JSON works.
		before := b.count("api_keys")
		text := fillGuide(guideMerchant, b.platformID, b.merchantID)
		r := b.api("POST", "/v1/api_keys", b.admin, `{"statements": `+text+`}`)
		want400(t, r, "body")
		if !strings.Contains(r.err().Message, "JSON") {
			t.Errorf("message %q should say the body is not valid JSON", r.err().Message)
		}
		if n := b.count("api_keys"); n != before {
			t.Fatalf("a refused key creation wrote a key: %d keys, had %d", n, before)
		}
		fixed := strings.Replace(text, "},\n}\n}\n]", "}\n}\n}\n]", 1)
		if fixed == text {
			t.Fatal("could not remove the guide's trailing comma")
		}
		r = b.api("POST", "/v1/api_keys", b.admin, `{"statements": `+fixed+`}`)
		wantStatus(t, r, 200)
		d := r.data(t)
		checkCreatedKey(t, d, b.platformID, fixed)
		merchantKey := &ivrKey{name: "merchant", statements: fixed, secret: d["api_key"].(string), id: d["api_key_id"].(string)}
		keys = append(keys, merchantKey)

		// Step 1 with the admin key.
		cfgReq := map[string]any{"merchant_id": b.merchantID, "idempotency_key": "order-1001", "amount": 1000,
			"currency_code": "USD", "billing_contact": map[string]any{"name": "Ada", "postal_code": "94111"},
			"metadata": map[string]any{"source": "twilio-ivr"}}
		r = b.api("POST", "/v1/payin_configs", b.admin, cfgReq)
		wantStatus(t, r, 200)
		cfg := r.data(t)
		cfgID := wantID(t, cfg["payin_config_id"], "cfg_")
		if cfg["amount"] != float64(1000) || cfg["currency_code"] != "USD" || cfg["payin"] != nil {
			t.Errorf("payin config = %s", r.Data)
		}
		if m, _ := cfg["merchant"].(map[string]any); m["id"] != b.merchantID || m["name"] != "Acme Platform merchant" {
			t.Errorf("payin config merchant = %v, want {id,name} of the merchant", cfg["merchant"])
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(cfg["created_at"])); err != nil || !strings.HasSuffix(fmt.Sprint(cfg["created_at"]), "Z") {
			t.Errorf("created_at %v is not RFC 3339 UTC", cfg["created_at"])
		}
		pmcID := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		wantID(t, pmcID, "pmc_")

		// No IVR key can do step 1: 403 naming the missing permission, and nothing written.
		cfgs, pmcs := b.count("payin_configs"), b.count("payment_method_configs")
		for _, k := range keys {
			req := map[string]any{"merchant_id": b.merchantID, "idempotency_key": "ivr-" + k.id, "amount": 1000, "currency_code": "USD"}
			r := b.api("POST", "/v1/payin_configs", k.secret, req)
			wantStatus(t, r, 403)
			if want := "missing permission payin_config:create for merchant " + b.merchantID; r.err().Message != want {
				t.Errorf("%s key: message %q, want %q", k.name, r.err().Message, want)
			}
			r = b.api("POST", "/v1/payment_method_configs", k.secret, map[string]any{"platform_id": b.platformID, "idempotency_key": "ivr-" + k.id})
			wantStatus(t, r, 403)
			if want := "missing permission payment_method_config:create for platform " + b.platformID; r.err().Message != want {
				t.Errorf("%s key: message %q, want %q", k.name, r.err().Message, want)
			}
			r = b.api("POST", "/v1/payment_method_configs", k.secret, map[string]any{"platform_id": b.platformID, "merchant_id": b.merchantID, "idempotency_key": "ivr-m-" + k.id})
			wantStatus(t, r, 403)
			if !strings.Contains(r.err().Message, "payment_method_config:create") {
				t.Errorf("%s key: message %q does not name payment_method_config:create", k.name, r.err().Message)
			}
		}
		if b.count("payin_configs") != cfgs || b.count("payment_method_configs") != pmcs {
			t.Fatal("a refused config creation wrote a config")
		}

		// The secret is shown once: GET and list show the masked secret only.
		for _, k := range keys {
			r := b.api("GET", "/v1/api_keys/"+k.id, b.admin, nil)
			wantStatus(t, r, 200)
			d := r.data(t)
			if _, ok := d["api_key"]; ok {
				t.Errorf("GET /v1/api_keys/%s shows api_key", k.id)
			}
			if d["masked_api_key"] != mask(k.secret) {
				t.Errorf("masked_api_key %v, want %s", d["masked_api_key"], mask(k.secret))
			}
			if strings.Contains(string(r.Raw), k.secret) || strings.Contains(string(r.Raw), k.secret[len(k.secret)-40:]) {
				t.Errorf("GET /v1/api_keys/%s reveals the secret", k.id)
			}
		}
		r = b.api("GET", "/v1/api_keys", b.admin, nil)
		wantStatus(t, r, 200)
		total, results := r.list(t)
		if total != 5 || len(results) != 5 { // the admin key and the four IVR keys
			t.Errorf("total_results %d, %d results, want 5", total, len(results))
		}
		for _, k := range append(keys, &ivrKey{secret: b.admin}) {
			if strings.Contains(string(r.Raw), k.secret[len("sbx_apikey_"):]) {
				t.Errorf("the key list reveals a secret")
			}
		}
		for _, res := range results {
			if _, ok := res["api_key"]; ok {
				t.Errorf("the key list shows api_key: %v", res)
			}
		}

		// Step 2 works with the IVR keys over the connector.
		payinsKey, pmKey := keys[0].secret, keys[1].secret
		resp := b.ivr(payinsKey, with(chargeBody(cfgID), "postal_code", jsonNull))
		payinID := resp.wantOK(t, "charge")
		wantID(t, payinID, "pyi_")
		r = b.api("GET", "/v1/payins/"+payinID, b.admin, nil)
		wantStatus(t, r, 200)
		p := r.data(t)
		if p["source"] != "IVR" || p["status"] != "PROCESSING" || p["amount"] != float64(1000) || p["payin_config_id"] != cfgID {
			t.Errorf("payin = %s", r.Data)
		}
		if md, _ := p["metadata"].(map[string]any); md["source"] != "twilio-ivr" {
			t.Errorf("payin metadata %v, want the config's", p["metadata"])
		}
		r = b.api("GET", "/v1/payin_configs/"+cfgID, b.admin, nil)
		if ref, _ := r.data(t)["payin"].(map[string]any); ref["payin_id"] != payinID {
			t.Errorf("config payin = %v, want {payin_id: %s}", r.data(t)["payin"], payinID)
		}
		resp = b.ivr(pmKey, tokenizeBody(pmcID))
		wantID(t, resp.wantOK(t, "tokenize"), "mtd_")
		cfg2 := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		b.ivr(merchantKey.secret, chargeBody(cfg2)).wantOK(t, "charge")
		cfg3 := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		b.ivr(keys[2].secret, chargeBody(cfg3)).wantOK(t, "charge")
		b.ivr(keys[2].secret, tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil))).wantOK(t, "tokenize")

		// And an IVR key can read nothing it created.
		r = b.api("GET", "/v1/payins/"+payinID, payinsKey, nil)
		wantStatus(t, r, http.StatusForbidden)
		if !strings.Contains(r.err().Message, "payin:read") {
			t.Errorf("message %q does not name payin:read", r.err().Message)
		}
	})
}

// checkCreatedKey checks the create answer of POST /v1/api_keys.
func checkCreatedKey(t *testing.T, d map[string]any, platformID, statements string) {
	t.Helper()
	secret, _ := d["api_key"].(string)
	if !secretRE.MatchString(secret) {
		t.Fatalf("api_key %q is not sbx_apikey_ + 64 hex characters", secret)
	}
	if d["masked_api_key"] != mask(secret) {
		t.Errorf("masked_api_key %v, want %s", d["masked_api_key"], mask(secret))
	}
	if d["platform_id"] != platformID || d["status"] != "ENABLED" {
		t.Errorf("key platform_id %v status %v", d["platform_id"], d["status"])
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(d["created_at"])); err != nil {
		t.Errorf("created_at %v: %v", d["created_at"], err)
	}
	var want any
	if err := json.Unmarshal([]byte(statements), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d["statements"], want) {
		t.Errorf("statements %v, want %v", d["statements"], want)
	}
}

// mask is the documented masked form: the first and last 8 hex characters.
func mask(secret string) string {
	h := strings.TrimPrefix(secret, "sbx_apikey_")
	return "sbx_apikey_" + h[:8] + "****" + h[len(h)-8:]
}
