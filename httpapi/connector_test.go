package httpapi_test

// The Twilio Generic Pay Connector endpoint over real HTTP (docs/connector.md):
// Twilio's documented bodies, every check in the documented order, tolerance, idempotency,
// card data at rest and in logs, and stored cards charged later.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// connTest runs fn on a fresh bundle on every engine, once for each voice
// platform's connector endpoint (Twilio, Telnyx, SignalWire): the bundle's
// connector helpers speak that platform's format.
func connTest(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Helper()
	t.Parallel()
	for _, w := range wires {
		t.Run(string(w.provider), func(t *testing.T) {
			t.Parallel()
			forEachEngine(t, func(t *testing.T, engine string) {
				b := setup(t, engine)
				b.wire = w
				fn(t, b)
			})
		})
	}
}

// Twilio's documented request bodies (reference §1.3, copied from [GPC]),
// verbatim, shared with the twilio package's parser tests.
var (
	docCharge      = docBody("twilio", "gpc", "charge")
	docACHCharge   = docBody("twilio", "gpc", "ach_charge")
	docTokenize    = docBody("twilio", "gpc", "tokenize")
	docACHTokenize = docBody("twilio", "gpc", "ach_tokenize")
)

// docBody reads a documented body from a package's testdata.
func docBody(pkg string, path ...string) string {
	b, err := os.ReadFile(filepath.Join(append([]string{"..", pkg, "testdata"}, path...)...) + ".json")
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

// parametersRE finds the opening of a body's parameters object.
var parametersRE = regexp.MustCompile(`"parameters"\s*:\s*\{`)

// withConfigParam adds the config parameter as the first custom parameter, as
// a <Parameter> child of <Pay> would; the rest of the body stays verbatim.
func withConfigParam(doc, name, id string) string {
	loc := parametersRE.FindStringIndex(doc)
	if loc == nil {
		panic("no parameters object in the documented body")
	}
	return doc[:loc[1]] + fmt.Sprintf("\n    %q : %q,", name, id) + doc[loc[1]:]
}

// documentedBody is a platform's documented connector request, and what it
// holds: the transaction_id, the amount in cents and the card's expiry.
type documentedBody struct {
	name, body, method string
	ach                bool
	txID               string
	cents              int64
	expMonth, expYear  int
	postalCode         string
}

// documentedBodies are the documented requests of the bundle's platform:
// Twilio's for Twilio and Telnyx (which speaks it field for field),
// SignalWire's own (voice/testdata/signalwire).
func (b *bundle) documentedBodies() []documentedBody {
	if b.wire.provider == ivrpay.ProviderSignalWire {
		return []documentedBody{
			{name: "charge", body: docBody("voice", "signalwire", "charge"), method: "charge", txID: "id", cents: 12345, expMonth: 1, expYear: 2038, postalCode: "12345"},
			{name: "tokenize", body: docBody("voice", "signalwire", "tokenize"), method: "tokenize", txID: "id", expMonth: 1, expYear: 2038, postalCode: "12345"},
		}
	}
	docs := []documentedBody{
		{name: "charge", body: docCharge, method: "charge", cents: 1000},
		{name: "tokenize", body: docTokenize, method: "tokenize"},
		{name: "ACH charge", body: docACHCharge, method: "charge", ach: true, cents: 1000},
		{name: "ACH tokenize", body: docACHTokenize, method: "tokenize", ach: true},
	}
	for i := range docs {
		d := &docs[i]
		d.txID, d.expMonth, d.expYear, d.postalCode = "transaction_id", 8, 2027, "94111"
		// The documented expiry 08/27 is kept while it is in the future.
		if !time.Now().UTC().Before(time.Date(2027, 9, 1, 0, 0, 0, 0, time.UTC)) {
			d.body = strings.Replace(d.body, `"expiry_year":"27"`, `"expiry_year":"`+futureYear()+`"`, 1)
			d.expYear = 2000 + (time.Now().UTC().Year()+3)%100
		}
	}
	return docs
}

func TestConnectorDocumentedBodies(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		for _, ct := range []string{"", "application/x-www-form-urlencoded", "application/json"} {
			for _, doc := range b.documentedBodies() {
				t.Run(fmt.Sprintf("%s/content-type=%q", doc.name, ct), func(t *testing.T) {
					// A platform of its own: every documented body uses the
					// same literal transaction_id.
					tn := b.newTenant("Doc "+doc.name+" "+ct, true)
					key, _ := b.createKey(tn.admin, statementsJSON(tn.platformID, "", "payin:create", "payment_method:create"))
					var body, configID string
					if doc.method == "charge" {
						configID = b.payinConfig(tn.admin, tn.merchantID, doc.cents, nil)
						body = withConfigParam(doc.body, "payin_config_id", configID)
					} else {
						configID = b.paymentMethodConfig(tn.admin, tn.platformID, "", nil)
						body = withConfigParam(doc.body, "payment_method_config_id", configID)
					}
					r := b.connector("api_key", key, []byte(body), ct)
					if doc.ach {
						r.wantErr(t, doc.method, "UNSUPPORTED_PAYMENT_METHOD", 200)
						if len(r.Params) != 0 {
							t.Errorf("parameters %v on an ACH refusal, want {}", r.Params)
						}
						l := b.api("GET", "/v1/payins", tn.admin, nil)
						if total, _ := l.list(t); total != 0 {
							t.Errorf("an ACH request made %d payins", total)
						}
						return
					}
					id := r.wantOK(t, doc.method)
					if doc.method == "charge" {
						wantID(t, id, "pyi_")
						wantParams(t, r, "payin_id", "payin_status", "payment_method_id", "card_brand", "card_last_4")
						if r.Params["payin_id"] != id || r.Params["payin_status"] != "PROCESSING" || r.Params["card_brand"] != "VISA" || r.Params["card_last_4"] != "1111" {
							t.Errorf("parameters %v", r.Params)
						}
						p := b.api("GET", "/v1/payins/"+id, tn.admin, nil)
						wantStatus(t, p, 200)
						d := p.data(t)
						if d["source"] != "IVR" || d["status"] != "PROCESSING" || d["amount"] != float64(doc.cents) || d["payin_config_id"] != configID ||
							d["payment_method_id"] != r.Params["payment_method_id"] || d["currency_code"] != "USD" {
							t.Errorf("payin %s", p.Data)
						}
						if ivr, _ := d["ivr"].(map[string]any); ivr["provider"] != string(b.wire.provider) || ivr["transaction_id"] != doc.txID {
							t.Errorf("payin ivr %v, want provider %s and transaction_id %s", d["ivr"], b.wire.provider, doc.txID)
						}
						if c, _ := d["card"].(map[string]any); c["brand"] != "VISA" || c["last_4"] != "1111" || c["exp_month"] != float64(doc.expMonth) || c["exp_year"] != float64(doc.expYear) {
							t.Errorf("payin card %v", d["card"])
						}
						if bc, _ := d["billing_contact"].(map[string]any); bc["postal_code"] != doc.postalCode {
							t.Errorf("payin billing_contact %v", d["billing_contact"])
						}
					} else {
						wantID(t, id, "mtd_")
						wantParams(t, r, "payment_method_id", "card_brand", "card_last_4")
						if r.Params["payment_method_id"] != id || r.Params["card_brand"] != "VISA" || r.Params["card_last_4"] != "1111" {
							t.Errorf("parameters %v", r.Params)
						}
						pm := b.api("GET", "/v1/payment_methods/"+id, tn.admin, nil)
						wantStatus(t, pm, 200)
						d := pm.data(t)
						if d["status"] != "ACTIVE" || d["payment_method_config_id"] != configID || d["method_type"] != "CARD" || d["fingerprint"] == "" {
							t.Errorf("payment method %s", pm.Data)
						}
						if c, _ := d["card"].(map[string]any); c["brand"] != "VISA" || c["last_4"] != "1111" || c["exp_month"] != float64(doc.expMonth) || c["exp_year"] != float64(doc.expYear) {
							t.Errorf("payment method card %v", d["card"])
						}
						cfg := b.api("GET", "/v1/payment_method_configs/"+configID, tn.admin, nil)
						if ref, _ := cfg.data(t)["payment_method"].(map[string]any); ref["payment_method_id"] != id {
							t.Errorf("payment method config payment_method %v, want %s", cfg.data(t)["payment_method"], id)
						}
					}
					// The platform's retry gets the same bytes.
					again := b.connector("api_key", key, []byte(body), ct)
					if again.Status != r.Status || !bytes.Equal(again.Raw, r.Raw) {
						t.Errorf("retry answered HTTP %d\n%s\nfirst answer HTTP %d\n%s", again.Status, again.Raw, r.Status, r.Raw)
					}
				})
			}
		}
	})
}

// wantParams checks the exact set of parameters keys.
func wantParams(t *testing.T, r connResp, keys ...string) {
	t.Helper()
	var got []string
	for k, v := range r.Params {
		got = append(got, k)
		if v == "" {
			t.Errorf("parameters.%s is empty", k)
		}
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("parameters keys %v, want %v", got, keys)
	}
}

// ---- the checks of docs/connector.md, in order ----

// Check 1: credentials.
func TestConnectorUnauthorized(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		disabled, disabledID := b.createKey(b.admin, statementsJSON(b.platformID, "", "payin:create"))
		wantStatus(t, b.api("POST", "/v1/api_keys/"+disabledID+"/disable", b.admin, nil), 200)
		deleted, deletedID := b.createKey(b.admin, statementsJSON(b.platformID, "", "payin:create"))
		wantStatus(t, b.api("DELETE", "/v1/api_keys/"+deletedID, b.admin, nil), 200)
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		charge := b.body(chargeBody(cfg))
		tokenize := b.body(tokenizeBody(pmc))

		cases := []struct {
			name, user, pass string
			hdr              []header
		}{
			{"no Authorization header", "", "", nil},
			{"wrong username", "apikey", key, nil},
			{"username is the key", key, key, nil},
			{"empty username", "", key, nil},
			{"unknown key", "api_key", "sbx_apikey_" + strings.Repeat("0", 64), nil},
			{"empty password", "api_key", "", nil},
			{"key id instead of the secret", "api_key", disabledID, nil},
			{"disabled key", "api_key", disabled, nil},
			{"deleted key", "api_key", deleted, nil},
			{"Bearer instead of Basic", "", "", []header{{"Authorization", "Bearer " + key}}},
			{"malformed Basic", "", "", []header{{"Authorization", "Basic !!!"}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				r := b.connector(c.user, c.pass, charge, "", c.hdr...)
				r.wantErr(t, "charge", "UNAUTHORIZED", 401)
				r = b.connector(c.user, c.pass, tokenize, "", c.hdr...)
				r.wantErr(t, "tokenize", "UNAUTHORIZED", 401)
				r = b.connector(c.user, c.pass, []byte("not json"), "", c.hdr...)
				r.wantErr(t, "", "UNAUTHORIZED", 401)
			})
		}
		// Nothing was recorded: the same transactions succeed with the right key.
		if n := b.count("connector_transactions"); n != 0 {
			t.Fatalf("401s recorded %d transactions", n)
		}
		b.connector("api_key", key, charge, "").wantOK(t, "charge")
		b.connector("api_key", key, tokenize, "").wantOK(t, "tokenize")
	})
}

// Check 2: the body.
func TestConnectorInvalidRequest(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		valid := chargeBody(cfg)
		enc := func(body map[string]any) string { return string(b.body(body)) }
		type invalid struct {
			name, body, method string // method "" means both id keys
		}
		cases := []invalid{
			{"not JSON", "method=charge&transaction_id=1", ""},
			{"empty body", "", ""},
			{"JSON array", "[]", ""},
			{"JSON string", `"charge"`, ""},
			{"JSON null", "null", ""},
			{"truncated JSON", `{"method":"charge","transaction_id":"t1"`, ""},
			{"trailing brace", enc(valid) + "}", ""},
			{"trailing bracket", enc(valid) + "]", ""},
			{"two objects", enc(valid) + enc(valid), ""},
			{"transaction_id missing", enc(with(valid, "transaction_id", nil)), "charge"},
			{"transaction_id null", enc(with(valid, "transaction_id", jsonNull)), "charge"},
			{"transaction_id empty", enc(with(valid, "transaction_id", "")), "charge"},
			{"transaction_id blank", enc(with(valid, "transaction_id", "   ")), "charge"},
			{"transaction_id 256 characters", enc(with(valid, "transaction_id", strings.Repeat("t", 256))), "charge"},
			{"transaction_id an object", enc(with(valid, "transaction_id", map[string]any{})), "charge"},
			{"tokenize without transaction_id", enc(with(tokenizeBody("sbx_pmc_x"), "transaction_id", nil)), "tokenize"},
			{"cardnumber an object", enc(with(valid, "cardnumber", map[string]any{"n": "4111111111111111"})), "charge"},
			{"amount an array", enc(with(valid, "amount", []any{"10.00"})), "charge"},
			{"parameters an array", enc(with(valid, "parameters", []any{cfg})), "charge"},
			{"parameters a string", enc(with(valid, "parameters", cfg)), "charge"},
			{"parameter value an object", enc(with(valid, "parameters", map[string]any{"payin_config_id": map[string]any{"id": cfg}})), "charge"},
			{"body over 64 KiB", enc(with(valid, "description", strings.Repeat("p", 65<<10))), ""},
		}
		if b.wire.provider == ivrpay.ProviderSignalWire {
			// SignalWire's method is the payment method; chargeAmount says charge or tokenize.
			sw, swTokenize := b.wire.encode(valid), b.wire.encode(tokenizeBody("sbx_pmc_x"))
			cases = append(cases,
				invalid{"method refund", mustJSON(with(sw, "method", "refund")), "charge"},
				invalid{"method charge (Twilio's)", mustJSON(with(sw, "method", "charge")), "charge"},
				invalid{"method a number", mustJSON(with(sw, "method", 1)), "charge"},
				invalid{"method an object", mustJSON(with(sw, "method", map[string]any{"credit-card": true})), "charge"},
				invalid{"chargeAmount an object", mustJSON(with(sw, "chargeAmount", map[string]any{"value": 10})), "charge"},
				invalid{"chargeAmount true", mustJSON(with(sw, "chargeAmount", true)), "charge"},
				invalid{"amount an array on a tokenize", mustJSON(with(swTokenize, "amount", []any{0})), "tokenize"},
				invalid{"token_type a number", mustJSON(with(swTokenize, "token_type", 1)), "tokenize"},
				invalid{"duplicated chargeAmount", strings.Replace(mustJSON(sw), `"chargeAmount":"10.00"`, `"chargeAmount":"10.00","chargeAmount":"0.07"`, 1), "charge"},
			)
		} else {
			cases = append(cases,
				invalid{"method refund", mustJSON(with(valid, "method", "refund")), ""},
				invalid{"method missing", mustJSON(with(valid, "method", nil)), ""},
				invalid{"method null", mustJSON(with(valid, "method", jsonNull)), ""},
				invalid{"method a number", mustJSON(with(valid, "method", 1)), ""},
				invalid{"method an object", mustJSON(with(valid, "method", map[string]any{"charge": true})), ""},
			)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				r := b.connector("api_key", key, []byte(c.body), "")
				msg := r.wantErr(t, c.method, "INVALID_REQUEST", 200)
				if strings.Contains(msg, "4111111111111111") {
					t.Errorf("%s: the message echoes the card number: %q", c.name, msg)
				}
			})
		}
		// An INVALID_REQUEST does not use up its transaction_id or the config.
		bad := with(valid, "cardnumber", map[string]any{})
		b.ivr(key, bad).wantErr(t, "charge", "INVALID_REQUEST", 200)
		b.ivr(key, valid).wantOK(t, "charge")

		// INVALID_REQUEST comes before IVR_NOT_ENABLED.
		off := b.newTenant("No IVR", false)
		offKey, _ := b.createKey(off.admin, statementsJSON(off.platformID, "", "payin:create"))
		b.ivr(offKey, with(valid, "method", "refund")).wantErr(t, b.methodOf(with(valid, "method", "refund")), "INVALID_REQUEST", 200)
	})
}

// Check 3: the platform's feature flag and API version.
func TestConnectorIVRNotEnabled(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		off := b.newTenant("No IVR", false)
		key, _ := b.createKey(off.admin, statementsJSON(off.platformID, "", "payin:create", "payment_method:create"))
		cfg := b.payinConfig(off.admin, off.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(off.admin, off.platformID, "", nil)
		msg := b.ivr(key, chargeBody(cfg)).wantErr(t, "charge", "IVR_NOT_ENABLED", 200)
		if !strings.Contains(msg, off.platformID) {
			t.Errorf("message %q does not name the platform", msg)
		}
		b.ivr(key, tokenizeBody(pmc)).wantErr(t, "tokenize", "IVR_NOT_ENABLED", 200)
		// It comes before every config check.
		b.ivr(key, with(chargeBody(cfg), "parameters", nil)).wantErr(t, "charge", "IVR_NOT_ENABLED", 200)
		b.ivr(key, with(chargeBody("sbx_cfg_unknown"), "currency_code", "EUR")).wantErr(t, "charge", "IVR_NOT_ENABLED", 200)
		// And before the API version check.
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, off.platformID, ivrpay.APIVersion20230101); err != nil {
			t.Fatal(err)
		}
		b.ivr(key, chargeBody(cfg)).wantErr(t, "charge", "IVR_NOT_ENABLED", 200)
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, off.platformID, ivrpay.APIVersion20241016); err != nil {
			t.Fatal(err)
		}
		// Nothing was charged or stored.
		l := b.api("GET", "/v1/payins", off.admin, nil)
		if total, _ := l.list(t); total != 0 {
			t.Fatalf("%d payins on a platform without IVR", total)
		}
		// The operator turns IVR on: new transactions go through at once.
		if _, err := b.store.SetPlatformIVR(ctx, off.platformID, true); err != nil {
			t.Fatal(err)
		}
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		// And off again.
		if _, err := b.store.SetPlatformIVR(ctx, off.platformID, false); err != nil {
			t.Fatal(err)
		}
		b.ivr(key, tokenizeBody(pmc)).wantErr(t, "tokenize", "IVR_NOT_ENABLED", 200)
	})
}

func TestConnectorUnsupportedAPIVersion(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		key := b.ivrKey("payin:create", "payment_method:create")
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, b.platformID, ivrpay.APIVersion20230101); err != nil {
			t.Fatal(err)
		}
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		msg := b.ivr(key, chargeBody(cfg)).wantErr(t, "charge", "UNSUPPORTED_API_VERSION", 200)
		if !strings.Contains(msg, "2023-12-01") || !strings.Contains(msg, "2024-10-16") || !strings.Contains(msg, "2023-01-01") {
			t.Errorf("message %q should name the supported versions and the platform's", msg)
		}
		b.ivr(key, tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil))).wantErr(t, "tokenize", "UNSUPPORTED_API_VERSION", 200)
		// It comes before the config checks.
		b.ivr(key, with(chargeBody(cfg), "parameters", nil)).wantErr(t, "charge", "UNSUPPORTED_API_VERSION", 200)
		for _, v := range []ivrpay.APIVersion{ivrpay.APIVersion20231201, ivrpay.APIVersion20241016} {
			t.Run(string(v), func(t *testing.T) {
				b := b.on(t)
				if _, err := b.store.SetPlatformMinAPIVersion(ctx, b.platformID, v); err != nil {
					t.Fatal(err)
				}
				b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
			})
		}
	})
}

// Check 4: the config parameter.
func TestConnectorMissingConfigID(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		for _, params := range []any{nil, jsonNull, map[string]any{}, map[string]any{"payin_config_id": ""},
			map[string]any{"payin_config_id": jsonNull}, map[string]any{"payin_config_id": "   "},
			map[string]any{"config_id": cfg}, map[string]any{"PAYIN_CONFIG_ID": cfg}, map[string]any{"payinConfigId": cfg}} {
			t.Run(fmt.Sprint(params), func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, with(chargeBody(cfg), "parameters", params)).wantErr(t, "charge", "MISSING_CONFIG_ID", 200)
				if !strings.Contains(msg, "payin_config_id") {
					t.Errorf("charge message %q does not say which parameter to add", msg)
				}
				msg = b.ivr(key, with(tokenizeBody(pmc), "parameters", params)).wantErr(t, "tokenize", "MISSING_CONFIG_ID", 200)
				if !strings.Contains(msg, "payment_method_config_id") {
					t.Errorf("tokenize message %q does not say which parameter to add", msg)
				}
			})
		}
		// It comes before the card checks.
		b.ivr(key, with(chargeBody(cfg), "parameters", nil, "cardnumber", "1", "currency_code", "EUR")).wantErr(t, "charge", "MISSING_CONFIG_ID", 200)
		// The configs are untouched.
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		b.ivr(key, tokenizeBody(pmc)).wantOK(t, "tokenize")
	})
}

func TestConnectorConfigMethodMismatch(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		cases := []struct {
			name   string
			method string
			body   map[string]any
		}{
			{"tokenize with payin_config_id", "tokenize", with(tokenizeBody(pmc), "parameters", map[string]any{"payin_config_id": cfg})},
			{"tokenize with a payin config id under payment_method_config_id", "tokenize", tokenizeBody(cfg)},
			{"tokenize with a payin config id under payment_method_id", "tokenize", with(tokenizeBody(pmc), "parameters", map[string]any{"payment_method_id": cfg})},
			{"charge with payment_method_config_id", "charge", with(chargeBody(cfg), "parameters", map[string]any{"payment_method_config_id": pmc})},
			{"charge with payment_method_id", "charge", with(chargeBody(cfg), "parameters", map[string]any{"payment_method_id": pmc})},
			{"charge with a payment method config id under payin_config_id", "charge", chargeBody(pmc)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, c.body).wantErr(t, c.method, "CONFIG_METHOD_MISMATCH", 200)
				if !strings.Contains(msg, "chargeAmount") {
					t.Errorf("%s: message %q does not say how to set chargeAmount", c.name, msg)
				}
			})
		}
		// The guide's alias payment_method_id works for tokenize, and the
		// configs were not used by the refused requests.
		b.ivr(key, with(tokenizeBody(pmc), "parameters", map[string]any{"payment_method_id": pmc})).wantOK(t, "tokenize")
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
	})
}

func TestConnectorConfigNotFound(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		other := b.newTenant("Other Platform", true)
		otherCfg := b.payinConfig(other.admin, other.merchantID, 1000, nil)
		otherPMC := b.paymentMethodConfig(other.admin, other.platformID, "", nil)
		for _, id := range []string{"sbx_cfg_000000000000000000000000000", "sbx_cfg_", "cfg_000000000000000000000000000", "nonsense", otherCfg} {
			t.Run(id, func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, chargeBody(id)).wantErr(t, "charge", "CONFIG_NOT_FOUND", 200)
				if strings.Contains(msg, other.platformID) || strings.Contains(msg, other.merchantID) {
					t.Errorf("message %q reveals the other platform", msg)
				}
			})
		}
		for _, id := range []string{"sbx_pmc_000000000000000000000000000", otherPMC} {
			t.Run(id, func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, tokenizeBody(id)).wantErr(t, "tokenize", "CONFIG_NOT_FOUND", 200)
			})
		}
		// It comes before the permission and card checks.
		pmOnly := b.ivrKey("payment_method:create")
		b.ivr(pmOnly, with(chargeBody(otherCfg), "cardnumber", "1")).wantErr(t, "charge", "CONFIG_NOT_FOUND", 200)
		// The other platform's configs are untouched.
		otherKey, _ := b.createKey(other.admin, statementsJSON(other.platformID, "", "payin:create", "payment_method:create"))
		b.ivr(otherKey, chargeBody(otherCfg)).wantOK(t, "charge")
		b.ivr(otherKey, tokenizeBody(otherPMC)).wantOK(t, "tokenize")
	})
}

// Check 5: the key's permission on the config.
func TestConnectorForbidden(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		m, err := b.store.CreateMerchantAsOperator(t.Context(), b.platformID, ivrpay.MerchantCreate{Name: "Merchant N"})
		if err != nil {
			t.Fatal(err)
		}
		cfgM := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		cfgN := b.payinConfig(b.admin, m.ID, 1000, nil)
		pmcPlat := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		pmcM := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		keyN, _ := b.createKey(b.admin, statementsJSON(b.platformID, m.ID, "payin:create", "payment_method:create"))
		keyM, _ := b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, "payin:create", "payment_method:create"))
		pmOnly := b.ivrKey("payment_method:create")
		payinsOnly := b.ivrKey("payin:create")
		readOnly := b.ivrKey("payin:read", "payment_method:read")

		msg := b.ivr(keyN, chargeBody(cfgM)).wantErr(t, "charge", "FORBIDDEN", 200)
		if !strings.Contains(msg, "payin:create") || !strings.Contains(msg, b.merchantID) {
			t.Errorf("message %q should name payin:create and the merchant", msg)
		}
		b.ivr(keyN, tokenizeBody(pmcM)).wantErr(t, "tokenize", "FORBIDDEN", 200)
		msg = b.ivr(pmOnly, chargeBody(cfgM)).wantErr(t, "charge", "FORBIDDEN", 200)
		if !strings.Contains(msg, "payin:create") {
			t.Errorf("message %q does not name payin:create", msg)
		}
		msg = b.ivr(payinsOnly, tokenizeBody(pmcPlat)).wantErr(t, "tokenize", "FORBIDDEN", 200)
		if !strings.Contains(msg, "payment_method:create") {
			t.Errorf("message %q does not name payment_method:create", msg)
		}
		b.ivr(readOnly, chargeBody(cfgM)).wantErr(t, "charge", "FORBIDDEN", 200)
		// A merchant-constrained key never matches a platform-level config.
		b.ivr(keyM, tokenizeBody(pmcPlat)).wantErr(t, "tokenize", "FORBIDDEN", 200)
		// FORBIDDEN comes before the payment method, currency, amount and card checks.
		ach := with(chargeBody(cfgM), "cardnumber", nil, "bankaccountnumber", "4111111111111111", "routingnumber", "12345678")
		b.ivr(pmOnly, ach).wantErr(t, "charge", "FORBIDDEN", 200)
		b.ivr(pmOnly, with(chargeBody(cfgM), "currency_code", "EUR", "amount", "abc", "cardnumber", "1")).wantErr(t, "charge", "FORBIDDEN", 200)
		// The configs were not used: the right keys succeed.
		b.ivr(keyN, chargeBody(cfgN)).wantOK(t, "charge")
		b.ivr(keyM, chargeBody(cfgM)).wantOK(t, "charge")
		b.ivr(keyM, tokenizeBody(pmcM)).wantOK(t, "tokenize")
		b.ivr(pmOnly, tokenizeBody(pmcPlat)).wantOK(t, "tokenize")
	})
}

// Check 6: ACH.
func TestConnectorUnsupportedPaymentMethod(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		ach := func(body map[string]any) map[string]any {
			return with(body, "cardnumber", nil, "cvv", nil, "expiry_month", nil, "expiry_year", nil, "postal_code", nil,
				"bankaccountnumber", "123456789", "routingnumber", "12345678")
		}
		msg := b.ivr(key, ach(chargeBody(cfg))).wantErr(t, "charge", "UNSUPPORTED_PAYMENT_METHOD", 200)
		if !strings.Contains(msg, "credit-card") {
			t.Errorf("message %q should say to use credit-card", msg)
		}
		b.ivr(key, ach(tokenizeBody(pmc))).wantErr(t, "tokenize", "UNSUPPORTED_PAYMENT_METHOD", 200)
		b.ivr(key, with(chargeBody(cfg), "routingnumber", "12345678")).wantErr(t, "charge", "UNSUPPORTED_PAYMENT_METHOD", 200)
		b.ivr(key, with(chargeBody(cfg), "bankaccountnumber", "12345678")).wantErr(t, "charge", "UNSUPPORTED_PAYMENT_METHOD", 200)
		// Before currency and amount.
		b.ivr(key, with(ach(chargeBody(cfg)), "currency_code", "EUR", "amount", "abc")).wantErr(t, "charge", "UNSUPPORTED_PAYMENT_METHOD", 200)
		if b.wire.provider == ivrpay.ProviderSignalWire {
			// SignalWire names the payment method: ach-debit.
			achDebit := with(b.wire.encode(chargeBody(cfg)), "method", "ach-debit")
			b.connector("api_key", key, []byte(mustJSON(achDebit)), "").wantErr(t, "charge", "UNSUPPORTED_PAYMENT_METHOD", 200)
		}
		// Null bank fields are not ACH.
		b.ivr(key, with(chargeBody(cfg), "bankaccountnumber", jsonNull, "routingnumber", jsonNull)).wantOK(t, "charge")
	})
}

// Check 7: currency.
func TestConnectorUnsupportedCurrency(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, cur := range []string{"EUR", "usd ", "US", "USDollar", "840"} {
			t.Run(fmt.Sprintf("%q", cur), func(t *testing.T) {
				b := b.on(t)
				if cur == "usd " {
					return // surrounding spaces are trimmed like every field
				}
				msg := b.ivr(key, with(chargeBody(cfg), "currency_code", cur)).wantErr(t, "charge", "UNSUPPORTED_CURRENCY", 200)
				if !strings.Contains(msg, "USD") {
					t.Errorf("message %q should say only USD is supported", msg)
				}
			})
		}
		b.ivr(key, with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "currency_code", "EUR")).wantErr(t, "tokenize", "UNSUPPORTED_CURRENCY", 200)
		// Before amount and card.
		b.ivr(key, with(chargeBody(cfg), "currency_code", "EUR", "amount", "abc", "cardnumber", "1")).wantErr(t, "charge", "UNSUPPORTED_CURRENCY", 200)
		// USD in any case is accepted, as is a tokenize that sends USD (private-beta sample).
		for _, cur := range []string{"usd", "Usd", "USD"} {
			t.Run(cur, func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "currency_code", cur)).wantOK(t, "charge")
			})
		}
		b.ivr(key, with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "currency_code", "USD", "amount", "0")).wantOK(t, "tokenize")
	})
}

// Check 8: amount.
func TestConnectorInvalidAmount(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, amount := range []any{"10.005", "-1", "-10.00", "abc", "", "1e3", "10.", ".5", "10,00", "$10.00", "0x10", "10.00 USD",
			"1000000000.00", 10.005, -10, jsonNull, nil} {
			t.Run(fmt.Sprintf("%#v", amount), func(t *testing.T) {
				b := b.on(t)
				body := with(chargeBody(cfg), "amount", amount)
				if amount == nil {
					body = with(chargeBody(cfg), "amount", nil) // absent on a charge
				}
				if b.methodOf(body) == "tokenize" {
					// SignalWire: no chargeAmount means storing a card, which the payin config is not for.
					b.ivr(key, body).wantErr(t, "tokenize", "CONFIG_METHOD_MISMATCH", 200)
					return
				}
				msg := b.ivr(key, body).wantErr(t, "charge", "INVALID_AMOUNT", 200)
				if msg == "" {
					t.Errorf("amount %v: no message", amount)
				}
			})
		}
		// Before the card checks.
		b.ivr(key, with(chargeBody(cfg), "amount", "abc", "cardnumber", "4111111111111112")).wantErr(t, "charge", "INVALID_AMOUNT", 200)
		// A tokenize takes no amount: 0 or absent is fine, anything else is not.
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		for _, amount := range []any{"5.00", "0.01", "abc", "-1"} {
			t.Run(fmt.Sprintf("%#v", amount), func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, with(tokenizeBody(pmc), "amount", amount)).wantErr(t, "tokenize", "INVALID_AMOUNT", 200)
			})
		}
		for _, amount := range []any{"0", "0.00", "0.0", "", jsonNull, 0} {
			t.Run(fmt.Sprintf("%#v", amount), func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "amount", amount)).wantOK(t, "tokenize")
			})
		}
		// The refused charges did not use the config.
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
	})
}

func TestConnectorAmountMismatch(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		msg := b.ivr(key, with(chargeBody(cfg), "amount", "10.50")).wantErr(t, "charge", "AMOUNT_MISMATCH", 200)
		if !strings.Contains(msg, "amount 10.50 does not match payin config amount 10.00") {
			t.Errorf("message %q", msg)
		}
		for _, amount := range []string{"10.01", "9.99", "0", "100.00", "1000", "1", "10.1"} {
			t.Run(amount, func(t *testing.T) {
				b := b.on(t)
				body := with(chargeBody(cfg), "amount", amount)
				if b.methodOf(body) == "tokenize" {
					// SignalWire: chargeAmount 0 stores a card, which the payin config is not for.
					b.ivr(key, body).wantErr(t, "tokenize", "CONFIG_METHOD_MISMATCH", 200)
					return
				}
				b.ivr(key, body).wantErr(t, "charge", "AMOUNT_MISMATCH", 200)
			})
		}
		// Before the card checks.
		b.ivr(key, with(chargeBody(cfg), "amount", "10.50", "cardnumber", "4111111111111112", "expiry_month", "13")).wantErr(t, "charge", "AMOUNT_MISMATCH", 200)
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
	})
}

func TestConnectorAmountForms(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		// "10", "10.0", "10.00" (and numbers) all match a 1000-cent config.
		for _, amount := range []any{"10", "10.0", "10.00", "010.00", " 10.00 ", 10, 10.0, json.Number("10.00")} {
			t.Run(fmt.Sprintf("%#v", amount), func(t *testing.T) {
				b := b.on(t)
				cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
				r := b.ivr(key, with(chargeBody(cfg), "amount", amount))
				id := r.wantOK(t, "charge")
				p := b.api("GET", "/v1/payins/"+id, b.admin, nil)
				if p.data(t)["amount"] != float64(1000) {
					t.Errorf("amount %v: payin amount %v", amount, p.data(t)["amount"])
				}
			})
		}
		for cents, amount := range map[int64]string{1: "0.01", 5: "0.05", 10: "0.1", 123456: "1234.56", 100_000_000: "1000000.00"} {
			t.Run(amount, func(t *testing.T) {
				b := b.on(t)
				cfg := b.payinConfig(b.admin, b.merchantID, cents, nil)
				b.ivr(key, with(chargeBody(cfg), "amount", amount)).wantOK(t, "charge")
			})
		}
	})
}

// Check 9: the card.
func TestConnectorInvalidCardNumber(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, pan := range []any{"4111111111111112", "3065930009020004", "4111 1111 1111 1111", "4111-1111-1111-1111", "411111111111111a",
			"41111111111", "41111111111111111111", "", jsonNull, nil, luhnComplete("41111111111111"), "０４111111111111111"} {
			t.Run(fmt.Sprintf("%#v", pan), func(t *testing.T) {
				b := b.on(t)
				body := with(chargeBody(cfg), "cardnumber", pan)
				msg := b.ivr(key, body).wantErr(t, "charge", "INVALID_CARD_NUMBER", 200)
				if s, ok := pan.(string); ok && len(s) > 8 && strings.Contains(msg, s) {
					t.Errorf("message %q echoes the card number", msg)
				}
			})
		}
		b.ivr(key, with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "cardnumber", "3065930009020004")).
			wantErr(t, "tokenize", "INVALID_CARD_NUMBER", 200)
		// Before the expiry, CVV and postal checks.
		b.ivr(key, with(chargeBody(cfg), "cardnumber", "4111111111111112", "expiry_month", "13", "cvv", "1", "postal_code", nil)).wantErr(t, "charge", "INVALID_CARD_NUMBER", 200)
		// Every supported brand's test card goes through, with the API's brand enum.
		for pan, brand := range map[string]string{"4111111111111111": "VISA", "5555555555554444": "MASTERCARD", "378282246310005": "AMERICAN_EXPRESS",
			"6011111111111117": "DISCOVER", "3566002020360505": "JCB", "3056930009020004": "DINERS_CLUB"} {
			t.Run(brand, func(t *testing.T) {
				b := b.on(t)
				cvv := "123"
				if brand == "AMERICAN_EXPRESS" {
					cvv = "1234"
				}
				r := b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", pan, "cvv", cvv))
				r.wantOK(t, "charge")
				if r.Params["card_brand"] != brand || r.Params["card_last_4"] != pan[len(pan)-4:] {
					t.Errorf("%s: parameters %v, want brand %s", pan, r.Params, brand)
				}
			})
		}
	})
}

func TestConnectorUnsupportedCardBrand(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, pan := range []string{"6200000000000005", "6771798021000008"} { // UnionPay and Maestro test cards
			t.Run(pan, func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, with(chargeBody(cfg), "cardnumber", pan)).wantErr(t, "charge", "UNSUPPORTED_CARD_BRAND", 200)
				if !strings.Contains(msg, "Visa") {
					t.Errorf("message %q should list the accepted brands", msg)
				}
				b.ivr(key, with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "cardnumber", pan)).wantErr(t, "tokenize", "UNSUPPORTED_CARD_BRAND", 200)
			})
		}
		// Before the expiry check.
		b.ivr(key, with(chargeBody(cfg), "cardnumber", "6200000000000005", "expiry_month", "13")).wantErr(t, "charge", "UNSUPPORTED_CARD_BRAND", 200)
	})
}

func TestConnectorInvalidExpirationDate(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, exp := range [][2]any{{"13", futureYear()}, {"00", futureYear()}, {"0", futureYear()}, {"1a", futureYear()}, {"", futureYear()},
			{"-1", futureYear()}, {"08", "2"}, {"08", "202"}, {"08", "abc"}, {"08", ""}, {"08", "1999"}, {"08", "2100"}, {jsonNull, futureYear()}, {"08", jsonNull}} {
			t.Run(fmt.Sprint(exp), func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, with(chargeBody(cfg), "expiry_month", exp[0], "expiry_year", exp[1])).wantErr(t, "charge", "INVALID_EXPIRATION_DATE", 200)
			})
		}
		// Before the CVV check.
		b.ivr(key, with(chargeBody(cfg), "expiry_month", "13", "cvv", "1")).wantErr(t, "charge", "INVALID_EXPIRATION_DATE", 200)
		// One-digit months and four-digit years are fine.
		year4 := fmt.Sprint(time.Now().UTC().Year() + 3)
		b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "expiry_month", "8", "expiry_year", year4)).wantOK(t, "charge")
	})
}

func TestConnectorExpiredCard(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		now := time.Now().UTC()
		last := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
		for _, exp := range [][2]string{
			{fmt.Sprintf("%02d", last.Month()), fmt.Sprintf("%02d", last.Year()%100)},
			{fmt.Sprintf("%02d", last.Month()), fmt.Sprint(last.Year())},
			{"12", "20"},
		} {
			t.Run(fmt.Sprint(exp), func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, with(chargeBody(cfg), "expiry_month", exp[0], "expiry_year", exp[1])).wantErr(t, "charge", "EXPIRED_CARD", 200)
				if !strings.Contains(msg, "expired") {
					t.Errorf("message %q", msg)
				}
			})
		}
		// Before the CVV check.
		b.ivr(key, with(chargeBody(cfg), "expiry_month", "12", "expiry_year", "20", "cvv", "1")).wantErr(t, "charge", "EXPIRED_CARD", 200)
		// A card is good through the end of its month.
		b.ivr(key, with(chargeBody(cfg), "expiry_month", fmt.Sprintf("%02d", now.Month()), "expiry_year", fmt.Sprintf("%02d", now.Year()%100))).wantOK(t, "charge")
	})
}

func TestConnectorInvalidCardSecurityCode(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, c := range [][2]string{{"4111111111111111", "12"}, {"4111111111111111", "1234"}, {"4111111111111111", "12a"},
			{"378282246310005", "123"}, {"378282246310005", "12345"}} {
			t.Run(fmt.Sprint(c), func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, with(chargeBody(cfg), "cardnumber", c[0], "cvv", c[1])).wantErr(t, "charge", "INVALID_CARD_SECURITY_CODE", 200)
				if strings.Contains(msg, c[1]) {
					t.Errorf("message %q echoes the CVV", msg)
				}
			})
		}
		// Before the postal code check.
		b.ivr(key, with(chargeBody(cfg), "cvv", "12", "postal_code", jsonNull)).wantErr(t, "charge", "INVALID_CARD_SECURITY_CODE", 200)
		// Four digits on Amex, and no CVV at all (securityCode="false"), are fine.
		b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", "378282246310005", "cvv", "1234")).wantOK(t, "charge")
		for _, cvv := range []any{jsonNull, nil, ""} {
			t.Run(fmt.Sprintf("%#v", cvv), func(t *testing.T) {
				b := b.on(t)
				b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cvv", cvv)).wantOK(t, "charge")
			})
		}
	})
}

func TestConnectorMissingPostalCode(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for _, postal := range []any{jsonNull, nil, "", "  "} {
			t.Run(fmt.Sprintf("%#v", postal), func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, with(chargeBody(cfg), "postal_code", postal)).wantErr(t, "charge", "MISSING_POSTAL_CODE", 200)
				if !strings.Contains(msg, "postalCode") || !strings.Contains(msg, "billing_contact.postal_code") {
					t.Errorf("message %q should name both ways to provide one", msg)
				}
			})
		}
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		b.ivr(key, with(tokenizeBody(pmc), "postal_code", jsonNull)).wantErr(t, "tokenize", "MISSING_POSTAL_CODE", 200)
		// A config with billing_contact.postal_code needs none from the caller.
		withPostal := b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"billing_contact": map[string]any{"name": "Ada", "postal_code": "10001"}})
		id := b.ivr(key, with(chargeBody(withPostal), "postal_code", jsonNull)).wantOK(t, "charge")
		p := b.api("GET", "/v1/payins/"+id, b.admin, nil)
		if bc, _ := p.data(t)["billing_contact"].(map[string]any); bc["postal_code"] != "10001" || bc["name"] != "Ada" {
			t.Errorf("payin billing_contact %v, want the config's", p.data(t)["billing_contact"])
		}
		pmcPostal := b.paymentMethodConfig(b.admin, b.platformID, "", map[string]any{"billing_contact": map[string]any{"postal_code": "10001"}})
		b.ivr(key, with(tokenizeBody(pmcPostal), "postal_code", nil)).wantOK(t, "tokenize")
		// The refused requests did not use the configs.
		b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		b.ivr(key, tokenizeBody(pmc)).wantOK(t, "tokenize")
	})
}

// Check 10: a config is used once.
func TestConnectorConfigAlreadyUsed(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		first := b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		msg := b.ivr(key, chargeBody(cfg)).wantErr(t, "charge", "CONFIG_ALREADY_USED", 200)
		if !strings.Contains(msg, first) {
			t.Errorf("message %q does not name the payin %s", msg, first)
		}
		b.ivr(key, with(chargeBody(cfg), "cardnumber", "5555555555554444")).wantErr(t, "charge", "CONFIG_ALREADY_USED", 200)
		// The card and amount checks come first.
		b.ivr(key, with(chargeBody(cfg), "cardnumber", "4111111111111112")).wantErr(t, "charge", "INVALID_CARD_NUMBER", 200)
		b.ivr(key, with(chargeBody(cfg), "amount", "10.50")).wantErr(t, "charge", "AMOUNT_MISMATCH", 200)
		l := b.api("GET", "/v1/payins", b.admin, nil)
		total, results := l.list(t)
		if total != 1 || results[0]["payin_id"] != first {
			t.Fatalf("payins %s, want only %s", l.Data, first)
		}

		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		pm := b.ivr(key, tokenizeBody(pmc)).wantOK(t, "tokenize")
		msg = b.ivr(key, tokenizeBody(pmc)).wantErr(t, "tokenize", "CONFIG_ALREADY_USED", 200)
		if !strings.Contains(msg, pm) {
			t.Errorf("message %q does not name the payment method %s", msg, pm)
		}
		l = b.api("GET", "/v1/payment_methods", b.admin, nil)
		if total, _ := l.list(t); total != 2 { // the charge's card and the stored one
			t.Errorf("%d payment methods, want 2", total)
		}
	})
}

// Check 11: processor declines.
func TestConnectorDeclines(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		body := with(chargeBody(cfg), "cardnumber", "4000000000000002")
		r := b.ivr(key, body)
		msg := r.wantErr(t, "charge", "DECLINED", 200)
		wantParams(t, r, "payin_id", "payin_status", "payment_method_id", "card_brand", "card_last_4")
		if r.Params["payin_status"] != "FAILED" || r.Params["card_brand"] != "VISA" || r.Params["card_last_4"] != "0002" {
			t.Errorf("parameters %v", r.Params)
		}
		payinID := wantID(t, r.Params["payin_id"], "pyi_")
		p := b.api("GET", "/v1/payins/"+payinID, b.admin, nil)
		wantStatus(t, p, 200)
		d := p.data(t)
		if d["status"] != "FAILED" || d["refusal_code"] != "DECLINED" || d["refusal_desc"] != msg || d["source"] != "IVR" ||
			d["payment_method_id"] != r.Params["payment_method_id"] || d["payin_config_id"] != cfg {
			t.Errorf("declined payin %s (message %q)", p.Data, msg)
		}
		if ivr, _ := d["ivr"].(map[string]any); ivr["transaction_id"] != body["transaction_id"] {
			t.Errorf("payin ivr %v", d["ivr"])
		}
		// A decline leaves the config usable.
		c := b.api("GET", "/v1/payin_configs/"+cfg, b.admin, nil)
		if c.data(t)["payin"] != nil {
			t.Errorf("a declined payin used the config: %v", c.data(t)["payin"])
		}
		ok := b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		c = b.api("GET", "/v1/payin_configs/"+cfg, b.admin, nil)
		if ref, _ := c.data(t)["payin"].(map[string]any); ref["payin_id"] != ok {
			t.Errorf("config payin %v, want %s", c.data(t)["payin"], ok)
		}

		// Every documented decline trigger, by card and by amount.
		cases := []struct {
			name, code string
			cents      int64
			kv         []any
		}{
			{"insufficient funds card", "INSUFFICIENT_FUNDS", 1000, []any{"cardnumber", "4000000000009995"}},
			{"expired card card", "EXPIRED_CARD", 1000, []any{"cardnumber", "4000000000000069"}},
			{"bad CVC card", "INVALID_CARD_SECURITY_CODE", 1000, []any{"cardnumber", "4000000000000127"}},
			{"processing error card", "PROCESSING_ERROR", 1000, []any{"cardnumber", "4000000000000119"}},
			{"risk card", "RISK_DECLINE", 1000, []any{"cardnumber", "4100000000000019"}},
			{"CVV 000", "INVALID_CARD_SECURITY_CODE", 1000, []any{"cvv", "000"}},
			{"postal 00000", "INCORRECT_PAYMENT_INFORMATION", 1000, []any{"postal_code", "00000"}},
			{"amount 51.01", "DECLINED", 5101, []any{"amount", "51.01"}},
			{"amount 51.02", "INSUFFICIENT_FUNDS", 5102, []any{"amount", "51.02"}},
			{"amount 51.03", "DO_NOT_HONOR", 5103, []any{"amount", "51.03"}},
			{"amount 51.05", "PROCESSING_ERROR", 5105, []any{"amount", "51.05"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				cfg := b.payinConfig(b.admin, b.merchantID, c.cents, nil)
				// A card of its own unless the row names one: the risk rules
				// refuse a card's fourth decline within the hour (docs/risk.md).
				r := b.ivr(key, with(with(chargeBody(cfg), "cardnumber", freshCard()), c.kv...))
				r.wantErr(t, "charge", c.code, 200)
				p := b.api("GET", "/v1/payins/"+r.Params["payin_id"], b.admin, nil)
				if d := p.data(t); d["status"] != "FAILED" || d["refusal_code"] != c.code {
					t.Errorf("%s: payin %s", c.name, p.Data)
				}
			})
		}

		// A declined tokenize stores nothing.
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		r = b.ivr(key, with(tokenizeBody(pmc), "cardnumber", "4000000000000002"))
		r.wantErr(t, "tokenize", "DECLINED", 200)
		if _, ok := r.Params["payment_method_id"]; ok {
			t.Errorf("a declined tokenize answered payment_method_id %v", r.Params)
		}
		if cf := b.api("GET", "/v1/payment_method_configs/"+pmc, b.admin, nil); cf.data(t)["payment_method"] != nil {
			t.Errorf("a declined tokenize stored %v", cf.data(t)["payment_method"])
		}
		b.ivr(key, tokenizeBody(pmc)).wantOK(t, "tokenize")
	})
}

// TestConnectorCheckOrder walks docs/connector.md's checks from the first to the last: a
// request wrong in every way is fixed one fault at a time, and each answer
// names the next check.
func TestConnectorCheckOrder(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		x := b.newTenant("Ladder", false)
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, x.platformID, ivrpay.APIVersion20230101); err != nil {
			t.Fatal(err)
		}
		pmOnly, _ := b.createKey(x.admin, statementsJSON(x.platformID, "", "payment_method:create"))
		full, _ := b.createKey(x.admin, statementsJSON(x.platformID, "", "payin:create", "payment_method:create"))
		used := b.payinConfig(x.admin, x.merchantID, 1000, nil)
		fresh := b.payinConfig(x.admin, x.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(x.admin, x.platformID, "", nil)

		body := chargeBody(used)
		step := func(user, pass, code string, setup func()) {
			t.Helper()
			if setup != nil {
				setup()
			}
			body = with(body, "transaction_id", newTxID())
			r := b.connector(user, pass, b.body(body), "")
			if code == "" {
				r.wantOK(t, "charge")
				return
			}
			status := 200
			if code == "UNAUTHORIZED" {
				status = 401
			}
			r.wantErr(t, b.methodOf(body), code, status)
		}
		set := func(kv ...any) func() { return func() { body = with(body, kv...) } }

		// Make `used` used.
		b.ivr(full, chargeBody(used)) // IVR is off: refused, and recorded as such
		if _, err := b.store.SetPlatformIVR(ctx, x.platformID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, x.platformID, ivrpay.APIVersion20241016); err != nil {
			t.Fatal(err)
		}
		b.ivr(full, chargeBody(used)).wantOK(t, "charge")
		b.store.SetPlatformIVR(ctx, x.platformID, false)
		b.store.SetPlatformMinAPIVersion(ctx, x.platformID, ivrpay.APIVersion20230101)

		body = with(body, "method", "refund", "parameters", nil, "bankaccountnumber", "123456789", "currency_code", "EUR",
			"amount", "abc", "cardnumber", "4111111111111112", "expiry_month", "13", "cvv", "12", "postal_code", jsonNull)
		step("api_key", "sbx_apikey_"+strings.Repeat("f", 64), "UNAUTHORIZED", nil)
		step("api_key", pmOnly, "INVALID_REQUEST", nil)
		step("api_key", pmOnly, "IVR_NOT_ENABLED", set("method", "charge"))
		step("api_key", pmOnly, "UNSUPPORTED_API_VERSION", func() { b.store.SetPlatformIVR(ctx, x.platformID, true) })
		step("api_key", pmOnly, "MISSING_CONFIG_ID", func() { b.store.SetPlatformMinAPIVersion(ctx, x.platformID, ivrpay.APIVersion20231201) })
		step("api_key", pmOnly, "CONFIG_METHOD_MISMATCH", set("parameters", map[string]any{"payment_method_config_id": pmc}))
		step("api_key", pmOnly, "CONFIG_NOT_FOUND", set("parameters", map[string]any{"payin_config_id": "sbx_cfg_000000000000000000000000000"}))
		step("api_key", pmOnly, "FORBIDDEN", set("parameters", map[string]any{"payin_config_id": used}))
		step("api_key", full, "UNSUPPORTED_PAYMENT_METHOD", nil)
		step("api_key", full, "UNSUPPORTED_CURRENCY", set("bankaccountnumber", nil))
		step("api_key", full, "INVALID_AMOUNT", set("currency_code", "usd"))
		step("api_key", full, "AMOUNT_MISMATCH", set("amount", "10.50"))
		step("api_key", full, "INVALID_CARD_NUMBER", set("amount", "10.0"))
		step("api_key", full, "UNSUPPORTED_CARD_BRAND", set("cardnumber", "6200000000000005"))
		step("api_key", full, "INVALID_EXPIRATION_DATE", set("cardnumber", "4000000000000002"))
		step("api_key", full, "EXPIRED_CARD", set("expiry_month", "12", "expiry_year", "20"))
		step("api_key", full, "INVALID_CARD_SECURITY_CODE", set("expiry_year", futureYear()))
		step("api_key", full, "MISSING_POSTAL_CODE", set("cvv", "123"))
		step("api_key", full, "CONFIG_ALREADY_USED", set("postal_code", "94111"))
		step("api_key", full, "DECLINED", set("parameters", map[string]any{"payin_config_id": fresh}))
		step("api_key", full, "", set("cardnumber", "4111111111111111"))
	})
}

// TestConnectorTolerance: what Twilio (or its older versions) may send.
func TestConnectorTolerance(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		cfgWithPostal := func() string {
			return b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"billing_contact": map[string]any{"postal_code": "94111"}})
		}
		charges := map[string]func(cfg string) map[string]any{
			"null description": func(cfg string) map[string]any { return with(chargeBody(cfg), "description", jsonNull) },
			"no description":   func(cfg string) map[string]any { return with(chargeBody(cfg), "description", nil) },
			"description an object": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "description", map[string]any{"text": "pizza", "n": 1})
			},
			"description an array": func(cfg string) map[string]any { return with(chargeBody(cfg), "description", []any{"pizza"}) },
			"description a number": func(cfg string) map[string]any { return with(chargeBody(cfg), "description", 7) },
			"null postal_code":     func(cfg string) map[string]any { return with(chargeBody(cfg), "postal_code", jsonNull) },
			"null custom parameter": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "parameters", map[string]any{"payin_config_id": cfg, "order": jsonNull})
			},
			"number custom parameter": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "parameters", map[string]any{"payin_config_id": cfg, "order": 42})
			},
			"amount a number":         func(cfg string) map[string]any { return with(chargeBody(cfg), "amount", 10) },
			"amount a decimal number": func(cfg string) map[string]any { return with(chargeBody(cfg), "amount", json.Number("10.00")) },
			"numbers everywhere": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "cardnumber", json.Number("4111111111111111"), "cvv", 123, "expiry_month", 8, "expiry_year", json.Number(futureYear()), "postal_code", 94111, "amount", 10.0)
			},
			"unknown fields": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "token_type", "reusable", "chargeAmount", "10.00", "request", map[string]any{"a": []any{1, nil}},
					"call_sid", "CA123", "payment_method", "credit-card", "bankaccounttype", jsonNull)
			},
			"null optional fields": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "bankaccountnumber", jsonNull, "routingnumber", jsonNull, "cvv", jsonNull, "currency_code", jsonNull)
			},
			"method in capitals": func(cfg string) map[string]any { return with(chargeBody(cfg), "method", "CHARGE") },
			"padded values": func(cfg string) map[string]any {
				return with(chargeBody(cfg), "cardnumber", " 4111111111111111 ", "currency_code", " USD")
			},
			"transaction_id numeric": func(cfg string) map[string]any { return with(chargeBody(cfg), "transaction_id", time.Now().UnixNano()) },
		}
		for name, mk := range charges {
			cfg := cfgWithPostal()
			r := b.ivr(key, mk(cfg))
			if r.Status != 200 || string(r.Vals["error_code"]) != "null" {
				t.Errorf("%s: %s", name, r.Raw)
				continue
			}
			r.wantOK(t, "charge")
		}
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", map[string]any{"billing_contact": map[string]any{"postal_code": "94111"}})
		if b.wire.provider == ivrpay.ProviderSignalWire {
			// SWML's request (pay.payment_connector_url): chargeAmount a
			// string, token_type on a charge too, currency in lower case;
			// and a tokenize sent as chargeAmount "0".
			swml := fmt.Sprintf(`{"transaction_id":%q,"method":"credit-card","cardnumber":"4111111111111111","cvv":"123","postal_code":"94111",
"description":"Payment description","chargeAmount":"10.00","token_type":"reusable","expiry_month":"12","expiry_year":%q,"currency_code":"usd",
"parameters":{"payin_config_id":%q}}`, newTxID(), futureYear(), cfgWithPostal())
			b.connector("api_key", key, []byte(swml), "").wantOK(t, "charge")
			tokenize := fmt.Sprintf(`{"transaction_id":%q,"method":"credit-card","cardnumber":"4111111111111111","cvv":"123","postal_code":null,
"chargeAmount":"0","token_type":"reusable","expiry_month":"12","expiry_year":%q,"currency_code":"usd","parameters":{"payment_method_config_id":%q}}`,
				newTxID(), futureYear(), pmc)
			b.connector("api_key", key, []byte(tokenize), "application/json").wantOK(t, "tokenize")
			return
		}
		// The private-beta tokenize sample: amount "0", currency USD, null description and postal code.
		sample := fmt.Sprintf(`{ "method": "tokenize", "transaction_id": "81e3c0b7-7680-4d3c-b22b-f3974925c4d1", "cardnumber": "4444333322221111",
  "cvv": "123", "expiry_month": "12", "expiry_year": %q, "description": null,
  "amount": "0", "currency_code": "USD", "postal_code": null, "parameters": {"payment_method_config_id": %q} }`, futureYear(), pmc)
		r := b.connector("api_key", key, []byte(sample), "")
		r.wantOK(t, "tokenize")
		// The tutorial's tokenize and charge, which log description and request as objects.
		cfg := cfgWithPostal()
		tut := fmt.Sprintf(`{"request":{"headers":{}},"transaction_id":"72500aba-328c-445c-a12e-da5700e10b17","cardnumber":"4111111111111111","cvv":"333",
"expiry_month":"12","expiry_year":%q,"description":{},"amount":"10.00","currency_code":"USD","postal_code":"94150","method":"charge",
"parameters":{"payin_config_id":%q}}`, futureYear(), cfg)
		b.connector("api_key", key, []byte(tut), "text/plain").wantOK(t, "charge")
	})
}

// ---- idempotency ----

func TestConnectorIdempotency(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		charge := chargeBody(cfg)
		first := b.ivr(key, charge)
		first.wantOK(t, "charge")
		// A retry gets the same bytes, also with a different CVV, expiry or postal code.
		for i, retry := range []map[string]any{charge, with(charge, "cvv", "999"), with(charge, "expiry_month", "09"),
			with(charge, "postal_code", "10001"), with(charge, "description", "another"), with(charge, "amount", "10.0"), with(charge, "amount", 10)} {
			t.Run(fmt.Sprint("row ", i), func(t *testing.T) {
				b := b.on(t)
				r := b.ivr(key, retry)
				if !bytes.Equal(r.Raw, first.Raw) {
					t.Errorf("retry answered\n%s\nwant\n%s", r.Raw, first.Raw)
				}
			})
		}
		// A different request under the same transaction_id.
		other := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		for name, changed := range map[string]map[string]any{
			"card":   with(charge, "cardnumber", "5555555555554444"),
			"amount": with(charge, "amount", "10.50"),
			"config": with(charge, "parameters", map[string]any{"payin_config_id": other}),
			"ACH":    with(charge, "bankaccountnumber", "123456789"),
		} {
			t.Run(name, func(t *testing.T) {
				b := b.on(t)
				msg := b.ivr(key, changed).wantErr(t, "charge", "DUPLICATE_TRANSACTION", 200)
				if !strings.Contains(msg, "transaction_id") {
					t.Errorf("%s: message %q", name, msg)
				}
			})
		}
		b.ivr(key, with(charge, "method", "tokenize", "parameters", map[string]any{"payment_method_config_id": b.paymentMethodConfig(b.admin, b.platformID, "", nil)})).
			wantErr(t, "tokenize", "DUPLICATE_TRANSACTION", 200)
		// The original still replays, and only one payin exists.
		if r := b.ivr(key, charge); !bytes.Equal(r.Raw, first.Raw) {
			t.Errorf("replay after duplicates answered %s", r.Raw)
		}
		var n int
		if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d payins for the config (%v), want 1", n, err)
		}

		// Declines and refusals replay byte for byte too.
		for i, body := range []map[string]any{
			with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", "4000000000000002"),
			with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "amount", "10.50"),
			with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", "4111111111111112"),
			tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)),
			with(tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil)), "postal_code", "00000"),
		} {
			t.Run(fmt.Sprint("row ", i), func(t *testing.T) {
				b := b.on(t)
				r1, r2 := b.ivr(key, body), b.ivr(key, body)
				if !bytes.Equal(r1.Raw, r2.Raw) {
					t.Errorf("retry answered\n%s\nwant\n%s", r2.Raw, r1.Raw)
				}
			})
		}
		// A decline's retry does not make a second FAILED payin.
		declined := with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", "4000000000000002")
		b.ivr(key, declined)
		b.ivr(key, declined)
		if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM payins WHERE ivr_transaction_id = $1`, declined["transaction_id"]).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d payins for a retried decline (%v), want 1", n, err)
		}

		// A known transaction replays even after the platform's settings changed.
		if _, err := b.store.SetPlatformIVR(ctx, b.platformID, false); err != nil {
			t.Fatal(err)
		}
		if r := b.ivr(key, charge); !bytes.Equal(r.Raw, first.Raw) {
			t.Errorf("replay with IVR off answered %s", r.Raw)
		}
		b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantErr(t, "charge", "IVR_NOT_ENABLED", 200)
		if _, err := b.store.SetPlatformIVR(ctx, b.platformID, true); err != nil {
			t.Fatal(err)
		}
		// And with another key of the same platform.
		if r := b.ivr(b.ivrKey("payin:create"), charge); !bytes.Equal(r.Raw, first.Raw) {
			t.Errorf("replay with another key answered %s", r.Raw)
		}

		// transaction_id is scoped to the platform.
		tn := b.newTenant("Other Platform", true)
		tnKey, _ := b.createKey(tn.admin, statementsJSON(tn.platformID, "", "payin:create"))
		r := b.ivr(tnKey, with(charge, "parameters", map[string]any{"payin_config_id": b.payinConfig(tn.admin, tn.merchantID, 1000, nil)}))
		if id := r.wantOK(t, "charge"); bytes.Equal(r.Raw, first.Raw) || id == first.Params["payin_id"] {
			t.Errorf("another platform's transaction with the same id replayed this one")
		}
	})
}

// TestConnectorTransactionPerProvider: a transaction_id is unique per
// platform and provider (SPEC §5.6). The same id posted to the Twilio,
// Telnyx and SignalWire endpoints is three transactions, each charging its
// config and recording its provider; each replays its own answer, and a
// different request under the id on one endpoint is that endpoint's
// DUPLICATE_TRANSACTION.
func TestConnectorTransactionPerProvider(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		key := b.ivrKey("payin:create")
		txID := newTxID()
		first := map[ivrpay.IVRProvider]connResp{}
		bodies := map[ivrpay.IVRProvider]map[string]any{}
		for _, w := range wires {
			b := b.on(t)
			b.wire = w
			bodies[w.provider] = with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "transaction_id", txID)
			r := b.ivr(key, bodies[w.provider])
			id := r.wantOK(t, "charge")
			first[w.provider] = r
			p := b.api("GET", "/v1/payins/"+id, b.admin, nil)
			if ivr, _ := p.data(t)["ivr"].(map[string]any); ivr["provider"] != string(w.provider) || ivr["transaction_id"] != txID {
				t.Errorf("%s payin ivr %v", w.provider, p.data(t)["ivr"])
			}
		}
		for _, w := range wires {
			t.Run(string(w.provider), func(t *testing.T) {
				b := b.on(t)
				b.wire = w
				if r := b.ivr(key, bodies[w.provider]); !bytes.Equal(r.Raw, first[w.provider].Raw) {
					t.Errorf("replay answered\n%s\nwant\n%s", r.Raw, first[w.provider].Raw)
				}
				other := with(bodies[w.provider], "parameters", map[string]any{"payin_config_id": b.payinConfig(b.admin, b.merchantID, 1000, nil)})
				b.ivr(key, other).wantErr(t, "charge", "DUPLICATE_TRANSACTION", 200)
			})
		}
		if n := b.count("payins"); n != len(wires) {
			t.Fatalf("%d payins, want one per provider", n)
		}
	})
}

// TestConnectorAnswersInsideProviderTimeout: Telnyx and SignalWire wait 5 s
// for the connector (Twilio 10 s), so a processor call of their requests
// gets at most 4 s instead of the 6 s a Twilio one gets: a slow processor
// is answered PAYMENT_PENDING before the platform gives up, and the payin
// is left to the reconciler as for Twilio.
func TestConnectorAnswersInsideProviderTimeout(t *testing.T) {
	t.Parallel()
	for _, w := range wires {
		t.Run(string(w.provider), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var budget time.Duration
			b := setup(t, sqlstore.EngineSQLite, func(c *paymentstest.Config) {
				// The sandbox's slow amount asks to wait: note the deadline
				// the call got, and give up at once as a timed-out call would.
				c.Processor = &sandbox.Processor{Sleep: func(ctx context.Context, _ time.Duration) error {
					deadline, _ := ctx.Deadline()
					mu.Lock()
					budget = time.Until(deadline)
					mu.Unlock()
					return context.DeadlineExceeded
				}}
			})
			b.wire = w
			key := b.ivrKey("payin:create")
			r := b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, sandbox.SlowAmount, nil)), "amount", "51.10"))
			r.wantErr(t, "charge", "PAYMENT_PENDING", 200)
			mu.Lock()
			defer mu.Unlock()
			limit := 4 * time.Second
			if w.provider == ivrpay.ProviderTwilio {
				limit = payments.DefaultProcessorTimeout
			}
			if budget <= limit-time.Second || budget > limit {
				t.Fatalf("the processor call got %s, want just under %s", budget, limit)
			}
		})
	}
}

// post sends a connector request to the bundle's platform without touching
// testing.T (for goroutines).
func (b *bundle) post(key string, body []byte) (int, []byte, error) {
	base, client := b.server()
	req, err := http.NewRequest("POST", base+b.wire.path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("api_key", key)
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

func TestConnectorConcurrentRetries(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		body := b.body(chargeBody(cfg))
		const n = 8
		var wg sync.WaitGroup
		answers := make([][]byte, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				var status int
				status, answers[i], errs[i] = b.post(key, body)
				if errs[i] == nil && status != 200 {
					errs[i] = fmt.Errorf("HTTP %d: %s", status, answers[i])
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !bytes.Equal(answers[i], answers[0]) {
				t.Fatalf("concurrent retries answered differently:\n%s\n%s", answers[0], answers[i])
			}
		}
		r := connResp{wire: b.wire, Raw: answers[0], ContentType: "application/json", Status: 200}
		b.parseConn(&r)
		r.wantOK(t, "charge")
		var count int
		if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg).Scan(&count); err != nil || count != 1 {
			t.Fatalf("%d payins (%v), want exactly 1", count, err)
		}
	})
}

func TestConnectorRaceOnOneConfig(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		for _, method := range []string{"charge", "tokenize"} {
			t.Run(method, func(t *testing.T) {
				b := b.on(t)
				var mk func() []byte
				if method == "charge" {
					cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
					mk = func() []byte { return b.body(chargeBody(cfg)) }
				} else {
					pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
					mk = func() []byte { return b.body(tokenizeBody(pmc)) }
				}
				const n = 6
				var wg sync.WaitGroup
				answers := make([][]byte, n)
				statuses := make([]int, n)
				errs := make([]error, n)
				for i := range n {
					body := mk()
					wg.Go(func() { statuses[i], answers[i], errs[i] = b.post(key, body) })
				}
				wg.Wait()
				ok, used := 0, 0
				for i := range n {
					if errs[i] != nil {
						t.Fatal(errs[i])
					}
					r := connResp{wire: b.wire, Raw: answers[i], ContentType: "application/json", Status: statuses[i]}
					b.parseConn(&r)
					switch code, _ := r.str("error_code"); code {
					case "":
						r.wantOK(t, method)
						ok++
					case "CONFIG_ALREADY_USED":
						r.wantErr(t, method, "CONFIG_ALREADY_USED", 200)
						used++
					default:
						t.Errorf("%s race answered %s", method, answers[i])
					}
				}
				if ok != 1 || used != n-1 {
					t.Fatalf("%s race: %d successes and %d CONFIG_ALREADY_USED, want 1 and %d", method, ok, used, n-1)
				}
			})
		}
	})
}

// TestConnectorVersionShaping: IVR runs at the platform's minimum API version.
func TestConnectorVersionShaping(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		key := b.ivrKey("payin:create")
		auth1 := b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"processing_mode": "AUTHORIZE"})
		auth2 := b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"processing_mode": "AUTHORIZE"})
		body := chargeBody(auth1)
		first := b.ivr(key, body)
		id := first.wantOK(t, "charge")
		if first.Params["payin_status"] != "AUTHORIZED" {
			t.Errorf("payin_status %q at 2024-10-16, want AUTHORIZED", first.Params["payin_status"])
		}
		if _, err := b.store.SetPlatformMinAPIVersion(ctx, b.platformID, ivrpay.APIVersion20231201); err != nil {
			t.Fatal(err)
		}
		// 2023-12-01 has no AUTHORIZED: the payin reads PROCESSING there.
		r := b.ivr(key, chargeBody(auth2))
		r.wantOK(t, "charge")
		if r.Params["payin_status"] != "PROCESSING" {
			t.Errorf("payin_status %q at 2023-12-01, want PROCESSING", r.Params["payin_status"])
		}
		if p := b.api("GET", "/v1/payins/"+id, b.admin, nil); p.data(t)["status"] != "PROCESSING" {
			t.Errorf("GET at 2023-12-01: status %v", p.data(t)["status"])
		}
		if p := b.api("GET", "/v1/payins/"+id, b.admin, nil, header{"Rainforest-Api-Version", "2024-10-16"}); p.data(t)["status"] != "AUTHORIZED" {
			t.Errorf("GET at 2024-10-16: status %v", p.data(t)["status"])
		}
		l := b.api("GET", "/v1/payins?status=PROCESSING", b.admin, nil)
		if total, _ := l.list(t); total != 2 {
			t.Errorf("status=PROCESSING at 2023-12-01 lists %d payins, want 2", total)
		}
		// The first transaction still replays its original answer.
		if again := b.ivr(key, body); !bytes.Equal(again.Raw, first.Raw) {
			t.Errorf("replay answered %s, want %s", again.Raw, first.Raw)
		}
	})
}

// ---- stored cards ----

func TestStoredCardChargedLater(t *testing.T) {
	connTest(t, func(t *testing.T, b *bundle) {
		key := b.ivrKey("payin:create", "payment_method:create")
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", map[string]any{"metadata": map[string]any{"customer": "c-1"}})
		pm := b.ivr(key, with(tokenizeBody(pmc), "cardnumber", "5555555555554444")).wantOK(t, "tokenize")
		r := b.api("GET", "/v1/payment_methods/"+pm, b.admin, nil)
		wantStatus(t, r, 200)
		d := r.data(t)
		if d["status"] != "ACTIVE" || d["merchant_id"] != nil || d["platform_id"] != b.platformID {
			t.Errorf("payment method %s", r.Data)
		}
		if c, _ := d["card"].(map[string]any); c["brand"] != "MASTERCARD" || c["last_4"] != "4444" {
			t.Errorf("card %v", d["card"])
		}
		if strings.Contains(string(r.Raw), "5555555555554444") || strings.Contains(string(r.Raw), `"cvv"`) {
			t.Errorf("the payment method shows card data: %s", r.Raw)
		}

		cfg := b.payinConfig(b.admin, b.merchantID, 2500, map[string]any{"billing_contact": map[string]any{"postal_code": "94111"}})
		r = b.api("POST", "/v1/payment_methods/"+pm+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
		wantStatus(t, r, 200)
		p := r.data(t)
		payinID := wantID(t, p["payin_id"], "pyi_")
		if p["source"] != "API_STORED_PAYMENT_METHOD" || p["payment_method_id"] != pm || p["status"] != "PROCESSING" ||
			p["amount"] != float64(2500) || p["ivr"] != nil || p["payin_config_id"] != cfg {
			t.Errorf("stored-card payin %s", r.Data)
		}
		if c, _ := p["card"].(map[string]any); c["brand"] != "MASTERCARD" || c["last_4"] != "4444" {
			t.Errorf("payin card %v", p["card"])
		}
		g := b.api("GET", "/v1/payins/"+payinID, b.admin, nil)
		if g.data(t)["source"] != "API_STORED_PAYMENT_METHOD" {
			t.Errorf("GET payin %s", g.Data)
		}
		c := b.api("GET", "/v1/payin_configs/"+cfg, b.admin, nil)
		if ref, _ := c.data(t)["payin"].(map[string]any); ref["payin_id"] != payinID {
			t.Errorf("config payin %v", c.data(t)["payin"])
		}
		// The config is used: 409 over REST, CONFIG_ALREADY_USED over IVR.
		r = b.api("POST", "/v1/payment_methods/"+pm+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
		wantStatus(t, r, http.StatusConflict)
		b.ivr(key, with(chargeBody(cfg), "amount", "25.00")).wantErr(t, "charge", "CONFIG_ALREADY_USED", 200)

		// The card an IVR charge stored is reusable too, but not with the IVR
		// key: charging a stored card needs payment_method:read as well.
		charged := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)))
		charged.wantOK(t, "charge")
		reuse := map[string]any{"payin_config_id": b.payinConfig(b.admin, b.merchantID, 1000, nil)}
		r = b.api("POST", "/v1/payment_methods/"+charged.Params["payment_method_id"]+"/payin", key, reuse)
		wantStatus(t, r, http.StatusForbidden)
		r = b.api("POST", "/v1/payment_methods/"+charged.Params["payment_method_id"]+"/payin", b.admin, reuse)
		wantStatus(t, r, 200)
		if r.data(t)["source"] != "API_STORED_PAYMENT_METHOD" {
			t.Errorf("payin %s", r.Data)
		}
		l := b.api("GET", "/v1/payins?source=API_STORED_PAYMENT_METHOD", b.admin, nil)
		if total, _ := l.list(t); total != 2 {
			t.Errorf("source=API_STORED_PAYMENT_METHOD lists %d payins, want 2", total)
		}
		l = b.api("GET", "/v1/payins?source=IVR", b.admin, nil)
		if total, _ := l.list(t); total != 1 {
			t.Errorf("source=IVR lists %d payins, want 1", total)
		}

		// A card the issuer refused, or a deactivated one, cannot be charged.
		declined := b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "cardnumber", "4000000000000002"))
		declined.wantErr(t, "charge", "DECLINED", 200)
		r = b.api("POST", "/v1/payment_methods/"+declined.Params["payment_method_id"]+"/payin", b.admin,
			map[string]any{"payin_config_id": b.payinConfig(b.admin, b.merchantID, 1000, nil)})
		want400(t, r, "payment_method_id")
		r = b.api("POST", "/v1/payment_methods/"+pm+"/deactivate", b.admin, nil)
		wantStatus(t, r, 200)
		if r.data(t)["status"] != "DEACTIVATED" {
			t.Errorf("deactivate answered %s", r.Data)
		}
		r = b.api("POST", "/v1/payment_methods/"+pm+"/payin", b.admin, map[string]any{"payin_config_id": b.payinConfig(b.admin, b.merchantID, 1000, nil)})
		want400(t, r, "payment_method_id")
	})
}

// luhnComplete appends the Luhn check digit to prefix.
func luhnComplete(prefix string) string {
	for d := byte('0'); d <= '9'; d++ {
		s := prefix + string(d)
		if luhnValid(s) {
			return s
		}
	}
	panic("unreachable")
}

func luhnValid(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// TestConnectorHangUpAndRetry: Twilio gives up after 10 s and retries with
// the same transaction_id (docs/connector.md, "Retries and idempotency"). An attempt whose client hung up runs
// to completion on its own; a retry arriving while it still runs waits for
// it and gets its answer; either way there is one payin. The sandbox's slow
// amount (51.10) keeps the attempts running: here it answers after 3 s,
// inside the 6 s a processor call gets (its real 12 s would make the outcome
// unknown, which TestFaultTriggers covers).
func TestConnectorHangUpAndRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the sandbox's slow answer")
	}
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, func(c *paymentstest.Config) {
			c.Processor = &sandbox.Processor{Sleep: func(ctx context.Context, d time.Duration) error {
				select {
				case <-time.After(3 * time.Second):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
		})
		key := b.ivrKey("payin:create")
		count := func(query string, args ...any) int {
			t.Helper()
			var n int
			if err := b.store.DB().QueryRow(query, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// waitFor polls the database for a state the server reaches on its own.
		waitFor := func(what string, within time.Duration, done func() bool) {
			t.Helper()
			deadline := time.Now().Add(within)
			for !done() {
				if time.Now().After(deadline) {
					t.Fatalf("%s did not happen within %s", what, within)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// hangUp starts a charge and hangs up once it waits on the processor.
		hangUp := func(body []byte, cfg string) {
			t.Helper()
			base, client := b.server()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", base+httpapi.ConnectorPath, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("api_key", key)
			first := make(chan error, 1)
			go func() {
				res, err := client.Do(req)
				if err == nil {
					res.Body.Close()
				}
				first <- err
			}()
			// The payin is CREATED while the processor thinks.
			waitFor("reaching the processor", 10*time.Second, func() bool {
				return count(`SELECT COUNT(*) FROM payins WHERE payin_config_id = $1 AND status = 'CREATED'`, cfg) == 1
			})
			cancel()
			if err := <-first; err == nil {
				t.Fatal("the attempt answered although its client hung up")
			}
		}
		check := func(status int, raw []byte, cfg string) {
			t.Helper()
			if status != 200 {
				t.Fatalf("retry: HTTP %d %s", status, raw)
			}
			r := connResp{Status: status, ContentType: "application/json", Raw: raw}
			b.parseConn(&r)
			id := r.wantOK(t, "charge")
			if n := count(`SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg); n != 1 {
				t.Fatalf("%d payins for the config, want exactly 1", n)
			}
			if p := b.api("GET", "/v1/payins/"+id, b.admin, nil); p.data(t)["status"] != "PROCESSING" {
				t.Errorf("payin %s", p.Data)
			}
		}

		// A: hang up, no retry yet.
		cfgA := b.payinConfig(b.admin, b.merchantID, 5110, nil)
		bodyA := with(chargeBody(cfgA), "amount", "51.10")
		rawA := []byte(mustJSON(bodyA))
		hangUp(rawA, cfgA)
		// B: hang up, and Twilio's retry comes at once, while B still runs.
		cfgB := b.payinConfig(b.admin, b.merchantID, 5110, nil)
		rawB := []byte(mustJSON(with(chargeBody(cfgB), "amount", "51.10")))
		hangUp(rawB, cfgB)
		type answer struct {
			status int
			raw    []byte
			err    error
		}
		retryB := make(chan answer, 1)
		go func() {
			status, raw, err := b.post(key, rawB)
			retryB <- answer{status, raw, err}
		}()

		// A completes without any retry (after the processor's 3 s, well
		// before its 30 s lease would let a retry take it over).
		waitFor("the abandoned charge completing on its own", 25*time.Second, func() bool {
			key := ivrpay.ConnectorTransactionKey{Provider: ivrpay.ProviderTwilio, TransactionID: bodyA["transaction_id"].(string)}
			return count(`SELECT COUNT(*) FROM connector_transactions WHERE transaction_id = $1 AND status = 'DONE'`, sqlstore.ConnectorTransactionID(key)) == 1
		})
		statusA, answerA, err := b.post(key, rawA)
		if err != nil {
			t.Fatal(err)
		}
		check(statusA, answerA, cfgA)
		if _, again, _ := b.post(key, rawA); !bytes.Equal(again, answerA) {
			t.Errorf("a later retry answered %s, want %s", again, answerA)
		}

		a := <-retryB
		if a.err != nil {
			t.Fatal(a.err)
		}
		check(a.status, a.raw, cfgB)
		if _, again, _ := b.post(key, rawB); !bytes.Equal(again, a.raw) {
			t.Errorf("a later retry answered %s, want %s", again, a.raw)
		}
	})
}
