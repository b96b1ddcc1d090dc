package httpapi_test

// Bad input on every POST endpoint that takes a body: 400 naming the field,
// and nothing written.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

type badCase struct {
	name  string
	body  any
	field string
	hdrs  []header
}

// tables whose row counts must not change when a request is refused.
var countedTables = []string{"platforms", "merchants", "api_keys", "payin_configs", "payment_method_configs", "payins", "payment_methods", "connector_transactions"}

func (b *bundle) counts() map[string]int {
	out := map[string]int{}
	for _, tbl := range countedTables {
		out[tbl] = b.count(tbl)
	}
	return out
}

func (b *bundle) wantCounts(t *testing.T, what string, before map[string]int) {
	t.Helper()
	for tbl, n := range b.counts() {
		if n != before[tbl] {
			t.Errorf("%s: table %s has %d rows, had %d: a refused request wrote something", what, tbl, n, before[tbl])
		}
	}
}

// mergeBody returns base with kv set (a nil value deletes the key).
func mergeBody(base map[string]any, kv ...any) map[string]any {
	return with(base, kv...)
}

// commonBadBodies are the body-level failures every endpoint shares.
func commonBadBodies(valid map[string]any) []badCase {
	big := mergeBody(valid, "pad", strings.Repeat("x", 70<<10)) // > 64 KiB, before the unknown field is seen
	return []badCase{
		{"unknown top-level field", mergeBody(valid, "colour", "red"), "colour", nil},
		{"invalid JSON", `{"merchant_id": `, "body", nil},
		{"not JSON", `merchant_id=1`, "body", nil},
		{"trailing data", mustJSON(valid) + ` {}`, "body", nil},
		{"two objects", mustJSON(valid) + mustJSON(valid), "body", nil},
		{"array body", `[]`, "body", nil},
		{"empty body", ``, "body", nil},
		{"body over 64 KiB", mustJSON(big), "body", nil},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		other := b.newTenant("Other Platform", true)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, "", nil)
		pm := b.ivr(b.admin, tokenizeBody(pmc)).wantOK(t, "tokenize")

		bigMetadata := map[string]any{"note": strings.Repeat("m", 8<<10)}
		justUnder := map[string]any{"n": strings.Repeat("m", (8<<10)-20)} // {"n":"…"} is 8 bytes of syntax
		long := strings.Repeat("k", 256)

		validPayinConfig := map[string]any{"merchant_id": b.merchantID, "idempotency_key": "cfg-1", "amount": 1000, "currency_code": "USD"}
		validPMC := map[string]any{"platform_id": b.platformID, "idempotency_key": "pmc-1"}
		validKey := map[string]any{"statements": json.RawMessage(statementsJSON(b.platformID, "", "payin:create"))}
		validMerchant := map[string]any{"name": "Shop"}

		endpoints := []struct {
			path  string
			valid map[string]any
			cases []badCase
		}{
			{"/v1/payin_configs", validPayinConfig, []badCase{
				{"amount with decimals", mergeBody(validPayinConfig, "amount", 10.5), "amount", nil},
				{"amount as a word", mergeBody(validPayinConfig, "amount", "abc"), "amount", nil},
				{"amount as a boolean", mergeBody(validPayinConfig, "amount", true), "amount", nil},
				{"amount zero", mergeBody(validPayinConfig, "amount", 0), "amount", nil},
				{"amount negative", mergeBody(validPayinConfig, "amount", -100), "amount", nil},
				{"amount too large", mergeBody(validPayinConfig, "amount", 100_000_001), "amount", nil},
				{"amount missing", mergeBody(validPayinConfig, "amount", nil), "amount", nil},
				{"merchant_id missing", mergeBody(validPayinConfig, "merchant_id", nil), "merchant_id", nil},
				{"merchant_id a number", mergeBody(validPayinConfig, "merchant_id", 7), "merchant_id", nil},
				{"merchant_id unknown", mergeBody(validPayinConfig, "merchant_id", "sbx_mid_000000000000000000000000000"), "merchant_id", nil},
				{"merchant_id of another platform", mergeBody(validPayinConfig, "merchant_id", other.merchantID), "merchant_id", nil},
				{"idempotency_key missing", mergeBody(validPayinConfig, "idempotency_key", nil), "idempotency_key", nil},
				{"idempotency_key empty", mergeBody(validPayinConfig, "idempotency_key", ""), "idempotency_key", nil},
				{"idempotency_key 256 chars", mergeBody(validPayinConfig, "idempotency_key", long), "idempotency_key", nil},
				{"currency_code missing", mergeBody(validPayinConfig, "currency_code", nil), "currency_code", nil},
				{"currency_code EUR", mergeBody(validPayinConfig, "currency_code", "EUR"), "currency_code", nil},
				{"currency_code lowercase", mergeBody(validPayinConfig, "currency_code", "usd"), "currency_code", nil},
				{"metadata an array", mergeBody(validPayinConfig, "metadata", []any{1}), "metadata", nil},
				{"metadata a string", mergeBody(validPayinConfig, "metadata", "twilio"), "metadata", nil},
				{"metadata a number", mergeBody(validPayinConfig, "metadata", 1), "metadata", nil},
				{"metadata 8 KiB", mergeBody(validPayinConfig, "metadata", bigMetadata), "metadata", nil},
				{"method_metadata an array", mergeBody(validPayinConfig, "method_metadata", []any{}), "method_metadata", nil},
				{"billing_contact a string", mergeBody(validPayinConfig, "billing_contact", "Ada"), "billing_contact", nil},
				{"billing_contact.postal_code a number", mergeBody(validPayinConfig, "billing_contact", map[string]any{"postal_code": 94111}), "billing_contact.postal_code", nil},
				{"billing_contact.postal_code 11 characters", mergeBody(validPayinConfig, "billing_contact", map[string]any{"postal_code": "12345-67890"}), "billing_contact.postal_code", nil},
				{"billing_contact.postal_code punctuation", mergeBody(validPayinConfig, "billing_contact", map[string]any{"postal_code": "<b>941</b>"}), "billing_contact.postal_code", nil},
				{"billing_contact.phone a card number", mergeBody(validPayinConfig, "billing_contact", map[string]any{"phone": "4111-1111-1111-1111"}), "billing_contact.phone", nil},
				{"metadata value a card number in an array", mergeBody(validPayinConfig, "metadata", map[string]any{"notes": []any{"ok", "4111 1111 1111 1111"}}), "metadata.notes[1]", nil},
				{"method_metadata a card number", mergeBody(validPayinConfig, "method_metadata", map[string]any{"n": "4111111111111111"}), "method_metadata.n", nil},
				{"billing_contact.country", mergeBody(validPayinConfig, "billing_contact", map[string]any{"country": "USA"}), "billing_contact.country", nil},
				{"billing_contact unknown field", mergeBody(validPayinConfig, "billing_contact", map[string]any{"zip": "94111"}), "billing_contact.zip", nil},
				{"processing_mode unknown", mergeBody(validPayinConfig, "processing_mode", "CAPTURE_LATER"), "processing_mode", nil},
				{"unknown API version", validPayinConfig, "Rainforest-Api-Version", []header{{"Rainforest-Api-Version", "2025-01-01"}}},
				{"API version older than the platform minimum", validPayinConfig, "Rainforest-Api-Version", []header{{"Rainforest-Api-Version", "2023-12-01"}}},
				{"API version not a date", validPayinConfig, "Rainforest-Api-Version", []header{{"Rainforest-Api-Version", "latest"}}},
			}},
			{"/v1/payment_method_configs", validPMC, []badCase{
				{"platform_id missing", mergeBody(validPMC, "platform_id", nil), "platform_id", nil},
				{"platform_id a number", mergeBody(validPMC, "platform_id", 1), "platform_id", nil},
				{"idempotency_key missing", mergeBody(validPMC, "idempotency_key", nil), "idempotency_key", nil},
				{"idempotency_key 256 chars", mergeBody(validPMC, "idempotency_key", long), "idempotency_key", nil},
				{"merchant_id unknown", mergeBody(validPMC, "merchant_id", "sbx_mid_000000000000000000000000000"), "merchant_id", nil},
				{"metadata an array", mergeBody(validPMC, "metadata", []any{}), "metadata", nil},
				{"metadata 8 KiB", mergeBody(validPMC, "metadata", bigMetadata), "metadata", nil},
				{"billing_contact.email too long", mergeBody(validPMC, "billing_contact", map[string]any{"email": strings.Repeat("e", 101)}), "billing_contact.email", nil},
				{"unknown API version", validPMC, "Rainforest-Api-Version", []header{{"Rainforest-Api-Version", "2024-01-01"}}},
			}},
			{"/v1/api_keys", validKey, []badCase{
				{"statements missing", map[string]any{}, "statements", nil},
				{"statements a string", map[string]any{"statements": "payin:create"}, "statements", nil},
			}},
			{"/v1/merchants", validMerchant, []badCase{
				{"name missing", map[string]any{}, "name", nil},
				{"name empty", map[string]any{"name": ""}, "name", nil},
				{"name a number", map[string]any{"name": 5}, "name", nil},
				{"name too long", map[string]any{"name": strings.Repeat("n", 101)}, "name", nil},
				{"email too long", map[string]any{"name": "Shop", "email": strings.Repeat("e", 101)}, "email", nil},
			}},
			{"/v1/payment_methods/" + pm + "/payin", map[string]any{"payin_config_id": "set below"}, []badCase{
				{"payin_config_id missing", map[string]any{}, "payin_config_id", nil},
				{"payin_config_id a number", map[string]any{"payin_config_id": 1}, "payin_config_id", nil},
				{"payin_config_id unknown", map[string]any{"payin_config_id": "sbx_cfg_000000000000000000000000000"}, "payin_config_id", nil},
			}},
		}
		for _, ep := range endpoints {
			cases := append(commonBadBodies(ep.valid), ep.cases...)
			for _, c := range cases {
				t.Run(ep.path+" "+c.name, func(t *testing.T) {
					b := b.on(t)
					before := b.counts()
					r := b.api("POST", ep.path, b.admin, c.body, c.hdrs...)
					if r.Status != http.StatusBadRequest || r.err().Field != c.field {
						t.Errorf("POST %s, %s: HTTP %d field %q, want 400 naming %q\n%.300s", ep.path, c.name, r.Status, r.err().Field, c.field, r.Raw)
					}
					b.wantCounts(t, "POST "+ep.path+", "+c.name, before)
				})
			}
		}

		// Just under 8 KiB of metadata is accepted.
		r := b.api("POST", "/v1/payin_configs", b.admin, mergeBody(validPayinConfig, "idempotency_key", "under-8k", "metadata", justUnder))
		wantStatus(t, r, 200)
		// 255 characters of idempotency key are accepted.
		r = b.api("POST", "/v1/payin_configs", b.admin, mergeBody(validPayinConfig, "idempotency_key", long[:255]))
		wantStatus(t, r, 200)

		// A 400 does not use up its idempotency key: the keys of the refused
		// requests above ("cfg-1", "pmc-1") work now.
		r = b.api("POST", "/v1/payin_configs", b.admin, validPayinConfig)
		wantStatus(t, r, 200)
		r = b.api("POST", "/v1/payment_method_configs", b.admin, validPMC)
		wantStatus(t, r, 200)
	})
}

func TestListLimits(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		for _, path := range []string{"/v1/api_keys", "/v1/merchants", "/v1/payins", "/v1/payment_methods"} {
			for _, limit := range []string{"0", "2000", "1001", "-1", "abc", "1.5"} {
				t.Run(path+"?limit="+limit, func(t *testing.T) {
					b := b.on(t)
					r := b.api("GET", path+"?limit="+limit, b.admin, nil)
					want400(t, r, "limit")
				})
			}
			wantStatus(t, b.api("GET", path+"?limit=1000", b.admin, nil), 200)
			wantStatus(t, b.api("GET", path+"?limit=1", b.admin, nil), 200)
		}
		want400(t, b.api("GET", "/v1/payins?status=PAID", b.admin, nil), "status")
		want400(t, b.api("GET", "/v1/payins?source=PHONE", b.admin, nil), "source")
		want400(t, b.api("GET", "/v1/merchants", b.admin, nil, header{"Rainforest-Api-Version", "2023-01-01"}), "Rainforest-Api-Version")

		// Pagination walks every merchant exactly once.
		for i := range 4 {
			wantStatus(t, b.api("POST", "/v1/merchants", b.admin, map[string]any{"name": fmt.Sprintf("Shop %d", i)}), 200)
		}
		seen := map[string]bool{}
		start := ""
		for range 10 {
			r := b.api("GET", "/v1/merchants?limit=2&start_key="+start, b.admin, nil)
			wantStatus(t, r, 200)
			total, results := r.list(t)
			if total != 5 {
				t.Fatalf("total_results %d, want 5", total)
			}
			if len(results) == 0 {
				break
			}
			for _, m := range results {
				id := m["merchant_id"].(string)
				if seen[id] {
					t.Fatalf("merchant %s listed twice", id)
				}
				seen[id] = true
			}
			var l struct {
				LastKey string `json:"last_key"`
			}
			json.Unmarshal(r.Data, &l)
			start = l.LastKey
		}
		if len(seen) != 5 {
			t.Fatalf("pagination saw %d merchants, want 5", len(seen))
		}
	})
}

func TestAPIVersions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		authorize := func(idem string) map[string]any {
			return map[string]any{"merchant_id": b.merchantID, "idempotency_key": idem, "amount": 1000,
				"currency_code": "USD", "processing_mode": "AUTHORIZE"}
		}
		// At the platform's minimum (2024-10-16) AUTHORIZE is available.
		r := b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-1"))
		wantStatus(t, r, 200)
		if got := r.Header.Get("Rainforest-Api-Version"); got != "2024-10-16" {
			t.Errorf("effective version header %q, want the platform minimum 2024-10-16", got)
		}
		if _, err := b.store.SetPlatformMinAPIVersion(t.Context(), b.platformID, "2023-12-01"); err != nil {
			t.Fatal(err)
		}
		before := b.counts()
		// At 2023-12-01, by header or by the platform's minimum, it is refused.
		want400(t, b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-2"), header{"Rainforest-Api-Version", "2023-12-01"}), "processing_mode")
		want400(t, b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-3")), "processing_mode")
		want400(t, b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-4"), header{"Rainforest-Api-Version", "2023-01-01"}), "Rainforest-Api-Version")
		want400(t, b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-5"), header{"Rainforest-Api-Version", "2024-10-17"}), "Rainforest-Api-Version")
		b.wantCounts(t, "refused versions", before)
		// A newer version by header still works, and the key auth-2 was not used up.
		r = b.api("POST", "/v1/payin_configs", b.admin, authorize("auth-2"), header{"Rainforest-Api-Version", "2024-10-16"})
		wantStatus(t, r, 200)
		if got := r.Header.Get("Rainforest-Api-Version"); got != "2024-10-16" {
			t.Errorf("effective version header %q, want 2024-10-16", got)
		}
		// AUTHORIZE_AND_CAPTURE is fine at 2023-12-01.
		wantStatus(t, b.api("POST", "/v1/payin_configs", b.admin, map[string]any{"merchant_id": b.merchantID, "idempotency_key": "cap-1",
			"amount": 1000, "currency_code": "USD", "processing_mode": "AUTHORIZE_AND_CAPTURE"}), 200)
	})
}

func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		body := map[string]any{"merchant_id": b.merchantID, "idempotency_key": "order-42", "amount": 1000, "currency_code": "USD",
			"billing_contact": map[string]any{"postal_code": "94111"}, "metadata": map[string]any{"order": 42}}
		first := b.api("POST", "/v1/payin_configs", b.admin, body)
		wantStatus(t, first, 200)
		id := first.data(t)["payin_config_id"]
		// The same body: the same config, nothing new written.
		before := b.counts()
		again := b.api("POST", "/v1/payin_configs", b.admin, body)
		wantStatus(t, again, 200)
		if again.data(t)["payin_config_id"] != id {
			t.Fatalf("a repeat made config %v, want %v", again.data(t)["payin_config_id"], id)
		}
		b.wantCounts(t, "a repeat", before)
		// The same key with a different body: 409 naming idempotency_key.
		for name, changed := range map[string]map[string]any{
			"amount":          mergeBody(body, "amount", 1001),
			"metadata":        mergeBody(body, "metadata", map[string]any{"order": 43}),
			"billing_contact": mergeBody(body, "billing_contact", map[string]any{"postal_code": "94112"}),
			"processing_mode": mergeBody(body, "processing_mode", "AUTHORIZE"),
		} {
			t.Run(name, func(t *testing.T) {
				b := b.on(t)
				r := b.api("POST", "/v1/payin_configs", b.admin, changed)
				if r.Status != http.StatusConflict || r.err().Field != "idempotency_key" {
					t.Errorf("same key, different %s: HTTP %d field %q, want 409 naming idempotency_key\n%s", name, r.Status, r.err().Field, r.Raw)
				}
			})
		}
		b.wantCounts(t, "conflicting repeats", before)
		// The same key on another platform is another config.
		other := b.newTenant("Other Platform", true)
		r := b.api("POST", "/v1/payin_configs", other.admin, mergeBody(body, "merchant_id", other.merchantID))
		wantStatus(t, r, 200)
		if r.data(t)["payin_config_id"] == id {
			t.Fatal("another platform's idempotency key returned this platform's config")
		}

		// Payment method configs behave the same.
		pmcBody := map[string]any{"platform_id": b.platformID, "idempotency_key": "card-7", "metadata": map[string]any{"x": 1}}
		p1 := b.api("POST", "/v1/payment_method_configs", b.admin, pmcBody)
		wantStatus(t, p1, 200)
		p2 := b.api("POST", "/v1/payment_method_configs", b.admin, pmcBody)
		wantStatus(t, p2, 200)
		if p1.data(t)["payment_method_config_id"] != p2.data(t)["payment_method_config_id"] {
			t.Fatal("a repeated payment method config made a second config")
		}
		r = b.api("POST", "/v1/payment_method_configs", b.admin, mergeBody(pmcBody, "metadata", map[string]any{"x": 2}))
		if r.Status != http.StatusConflict || r.err().Field != "idempotency_key" {
			t.Errorf("same pmc key, different body: HTTP %d field %q, want 409\n%s", r.Status, r.err().Field, r.Raw)
		}
		if strings.Contains(r.err().Message, p1.data(t)["payment_method_config_id"].(string)) {
			t.Errorf("the conflict names the first config: %s", r.err().Message)
		}
		// A merchant's keys are its own: the same key for a merchant's config is another config.
		r = b.api("POST", "/v1/payment_method_configs", b.admin, mergeBody(pmcBody, "merchant_id", b.merchantID))
		wantStatus(t, r, 200)
		if r.data(t)["payment_method_config_id"] == p1.data(t)["payment_method_config_id"] {
			t.Error("a merchant's config took the platform-level config of the same key")
		}
	})
}

// TestProductionMode: production ids and secrets carry no sbx_ prefix, new
// merchants are PENDING until the operator activates them, and payin configs
// need an ACTIVE merchant.
func TestProductionMode(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		opts.Mode = ivrpay.ModeProduction
		log := &paymentstest.LockedBuffer{}
		opts.Logger = slog.New(slog.NewJSONHandler(log, nil))
		b := serve(t, engine, paymentstest.Open(t, engine, opts), opts, log)
		prodID := regexp.MustCompile(`^(plt|mid|api|cfg|pmc)_[0-9A-Za-z]{27}$`)
		if !prodID.MatchString(b.platformID) || !regexp.MustCompile(`^apikey_[0-9a-f]{64}$`).MatchString(b.admin) {
			t.Fatalf("production platform %q / key %q carry a sandbox prefix", b.platformID, b.admin)
		}
		r := b.api("GET", "/v1/merchants/"+b.merchantID, b.admin, nil)
		wantStatus(t, r, 200)
		if r.data(t)["status"] != "PENDING" {
			t.Errorf("a production merchant starts %v, want PENDING", r.data(t)["status"])
		}
		r = b.api("POST", "/v1/merchants", b.admin, map[string]any{"name": "New shop"})
		wantStatus(t, r, 200)
		if d := r.data(t); d["status"] != "PENDING" || !prodID.MatchString(d["merchant_id"].(string)) {
			t.Errorf("created merchant %s", r.Data)
		}
		body := map[string]any{"merchant_id": b.merchantID, "idempotency_key": "p-1", "amount": 1000, "currency_code": "USD"}
		before := b.counts()
		want400(t, b.api("POST", "/v1/payin_configs", b.admin, body), "merchant_id")
		b.wantCounts(t, "a config for a PENDING merchant", before)
		if _, err := b.store.ActivateMerchant(t.Context(), b.merchantID); err != nil {
			t.Fatal(err)
		}
		r = b.api("POST", "/v1/payin_configs", b.admin, body)
		wantStatus(t, r, 200)
		if id, _ := r.data(t)["payin_config_id"].(string); !prodID.MatchString(id) {
			t.Errorf("production config id %q", id)
		}
		secret, _ := b.createKey(b.admin, statementsJSON(b.platformID, "", "payin:create"))
		if !regexp.MustCompile(`^apikey_[0-9a-f]{64}$`).MatchString(secret) {
			t.Errorf("production key secret %q", secret)
		}
	})
}
