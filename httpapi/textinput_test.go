package httpapi_test

// Text a caller chooses, through the real server: card numbers in the
// identifiers and free text that are stored, echoed or logged, however they
// are written, and NUL characters, which PostgreSQL cannot store (SPEC §9).

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// cardForms are one card number, 4111 1111 1111 1111, as callers have been
// seen to write it where it does not belong.
var cardForms = []struct{ name, value string }{
	{"dots", "4111.1111.1111.1111"},
	{"slashes", "4111/1111/1111/1111"},
	{"underscores", "4111_1111_1111_1111"},
	{"tabs", "4111\t1111\t1111\t1111"},
	{"full-width", "４１１１１１１１１１１１１１１１"},
	{"with expiry and cvv", "41111111111111110827123"},
}

// luhnTimestamp is a Unix time in milliseconds whose digits pass the Luhn
// check: an identifier, not a card number.
const luhnTimestamp = "1767225600124"

func TestCardNumberInIdentifiers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		key := b.ivrKey("payin:create", "payment_method:create")
		payin := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		refundBody := func(k string) map[string]any {
			return map[string]any{"idempotency_key": k, "reason": "REQUESTED_BY_CUSTOMER"}
		}
		for _, form := range cardForms {
			t.Run(form.name, func(t *testing.T) {
				b := b.on(t)
				for _, c := range []struct {
					what, path, field string
					body              map[string]any
				}{
					{"payin config idempotency_key", "/v1/payin_configs", "idempotency_key",
						map[string]any{"merchant_id": b.merchantID, "idempotency_key": form.value, "amount": 1000, "currency_code": "USD"}},
					{"payment method config idempotency_key", "/v1/payment_method_configs", "idempotency_key",
						map[string]any{"platform_id": b.platformID, "idempotency_key": "pmc " + form.value}},
					{"refund idempotency_key", "/v1/payins/" + payin + "/void_or_refund", "idempotency_key", refundBody(form.value)},
					{"webhook URL", "/v1/webhook_endpoints", "url",
						map[string]any{"url": "https://hooks.example.com/in/" + form.value, "events": []string{"payin.processing"}}},
					{"merchant name", "/v1/merchants", "name", map[string]any{"name": "Shop " + form.value}},
					{"metadata", "/v1/payin_configs", "metadata.note",
						map[string]any{"merchant_id": b.merchantID, "idempotency_key": "m-" + form.name, "amount": 1000, "currency_code": "USD", "metadata": map[string]any{"note": form.value}}},
				} {
					before := b.counts()
					hooks, refunds := b.count("webhook_endpoints"), b.count("refunds")
					r := b.api("POST", c.path, b.admin, c.body)
					want400(t, r, c.field)
					if strings.Contains(string(r.Raw), "1111") {
						t.Errorf("%s: the answer echoes the card number: %s", c.what, r.Raw)
					}
					b.wantCounts(t, c.what, before)
					if b.count("webhook_endpoints") != hooks || b.count("refunds") != refunds {
						t.Errorf("%s: a refused request wrote a webhook endpoint or a refund", c.what)
					}
				}

				// The connector: transaction_id and the config parameter are
				// stored with the transaction and echoed in answers.
				before := b.count("connector_transactions")
				cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
				for _, c := range []struct {
					what, method string
					body         map[string]any
				}{
					{"transaction_id", "charge", with(chargeBody(cfg), "transaction_id", form.value)},
					{"payin_config_id", "charge", with(chargeBody(cfg), "parameters", map[string]any{"payin_config_id": form.value})},
					{"payment_method_config_id", "tokenize", with(tokenizeBody("x"), "parameters", map[string]any{"payment_method_config_id": form.value})},
					{"payment_method_id", "tokenize", with(tokenizeBody("x"), "parameters", map[string]any{"payment_method_id": form.value})},
				} {
					r := b.ivr(key, c.body)
					msg := r.wantErr(t, c.method, "INVALID_REQUEST", 200)
					if !strings.Contains(msg, c.what) || strings.Contains(string(r.Raw), "1111") {
						t.Errorf("%s: message %q should name the field and not echo the card", c.what, msg)
					}
				}
				if n := b.count("connector_transactions"); n != before {
					t.Errorf("refused connector requests stored %d transactions", n-before)
				}
			})
		}

		t.Run("X-Request-Id", func(t *testing.T) {
			b := b.on(t)
			for _, form := range cardForms {
				if strings.ContainsAny(form.value, "\t") || !isASCII(form.value) {
					continue // not a header value the server keeps anyway
				}
				r := b.api("GET", "/v1/merchants", b.admin, nil, header{"X-Request-Id", form.value})
				wantStatus(t, r, 200)
				if got := r.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, "1111") {
					t.Errorf("X-Request-Id %q answered as %q: a card number is echoed", form.value, got)
				}
				if strings.Contains(b.log.String(), form.value) {
					t.Errorf("the server log holds X-Request-Id %q", form.value)
				}
			}
			// An id that is not a card number is kept, and echoed.
			uuid := newTxID()
			if got := b.api("GET", "/v1/merchants", b.admin, nil, header{"X-Request-Id", uuid}).Header.Get("X-Request-Id"); got != uuid {
				t.Errorf("X-Request-Id %q answered as %q", uuid, got)
			}
		})

		t.Run("identifiers that are no card numbers", func(t *testing.T) {
			b := b.on(t)
			r := b.api("POST", "/v1/payin_configs", b.admin, map[string]any{"merchant_id": b.merchantID,
				"idempotency_key": "order-" + luhnTimestamp, "amount": 1000, "currency_code": "USD", "metadata": map[string]any{"sent_at": luhnTimestamp}})
			wantStatus(t, r, 200)
			r = b.api("POST", "/v1/webhook_endpoints", b.admin, map[string]any{
				"url": "https://discord.com/api/webhooks/" + "1234567890123456785" + "/t0k3n", "events": []string{"payin.processing"}})
			wantStatus(t, r, 200)
			r = b.api("POST", "/v1/payins/"+payin+"/void_or_refund", b.admin, refundBody("refund-"+newTxID()))
			wantStatus(t, r, 200)
			b.ivr(key, with(chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil)), "transaction_id", "72500aba-328c-445c-a12e-da5700e10b17")).wantOK(t, "charge")
		})
	})
}

// TestFixtureIdempotencyKeys: the fixtures' random idempotency keys are
// never refused as card numbers. Keys of 16 random hexadecimal characters
// were, when all 16 came out decimal digits that pass the Luhn check and
// start like a card: the one 400 of TestStoredCardChargedLater/TWILIO/postgres.
// The fixtures' keys hold a UUID, an id whatever its digits.
func TestFixtureIdempotencyKeys(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		// Random bytes whose hexadecimal is decimal digits: 3452750096083446 passes the Luhn check.
		digits := [16]byte{0x34, 0x52, 0x75, 0x00, 0x96, 0x08, 0x34, 0x46, 0x34, 0x52, 0x75, 0x00, 0x96, 0x08, 0x34, 0x46}
		payinConfig := func(key string) apiResp {
			return b.api("POST", "/v1/payin_configs", b.admin, map[string]any{"merchant_id": b.merchantID,
				"idempotency_key": key, "amount": 1000, "currency_code": "USD"})
		}
		want400(t, payinConfig("idem-"+hex.EncodeToString(digits[:8])), "idempotency_key") // a key as the fixtures made them
		wantStatus(t, payinConfig(idempotencyKeyOf(digits)), 200)
		wantStatus(t, b.api("POST", "/v1/payment_method_configs", b.admin,
			map[string]any{"platform_id": b.platformID, "idempotency_key": idempotencyKeyOf(digits)}), 200)
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TestNULCharacterRefused: a NUL character in a body, a path id, a query
// parameter or a connector field is a 400 (the connector's INVALID_REQUEST)
// naming the field, on both engines; PostgreSQL answered 500.
func TestNULCharacterRefused(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		key := b.ivrKey("payin:create", "payment_method:create")
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		payin := b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		pm := b.ivr(key, tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil))).wantOK(t, "tokenize")
		config := func(kv ...any) map[string]any {
			return with(map[string]any{"merchant_id": b.merchantID, "idempotency_key": "nul-" + newTxID(), "amount": 1000, "currency_code": "USD"}, kv...)
		}
		const nul = "a\x00b"
		for _, c := range []struct {
			name, method, path, field string
			body                      any
		}{
			{"merchant name", "POST", "/v1/merchants", "name", map[string]any{"name": nul}},
			{"metadata value", "POST", "/v1/payin_configs", "metadata.note", config("metadata", map[string]any{"note": nul})},
			{"metadata key", "POST", "/v1/payin_configs", "metadata.(key not shown)", config("metadata", map[string]any{nul: "x"})},
			{"billing contact", "POST", "/v1/payin_configs", "billing_contact.city", config("billing_contact", map[string]any{"city": nul})},
			{"payment method config metadata", "POST", "/v1/payment_method_configs", "metadata.n",
				map[string]any{"platform_id": b.platformID, "idempotency_key": "nul-pmc", "metadata": map[string]any{"n": nul}}},
			{"stored card's config id", "POST", "/v1/payment_methods/" + pm + "/payin", "payin_config_id", map[string]any{"payin_config_id": "sbx_cfg_" + nul}},
			{"api key statement", "POST", "/v1/api_keys", "statements[0].constraints.merchant.merchant_id",
				`{"statements":[{"permissions":["payin:read"],"constraints":{"platform":{"platform_id":"` + b.platformID + `"},"merchant":{"merchant_id":"sbx_mid_\u0000"}}}]}`},
			{"refund reason", "POST", "/v1/payins/" + payin + "/void_or_refund", "reason", map[string]any{"idempotency_key": "nul-refund", "reason": nul}},
			{"payin id", "GET", "/v1/payins/sbx_pyi_%00", "id", nil},
			{"config id", "GET", "/v1/payin_configs/" + cfg + "%00", "id", nil},
			{"refund id", "GET", "/v1/refunds/%00", "id", nil},
			{"payin id of a refund", "POST", "/v1/payins/%00/void_or_refund", "id", map[string]any{"idempotency_key": "nul-2", "reason": "DUPLICATE"}},
			{"list filter", "GET", "/v1/payins?merchant_id=" + b.merchantID + "%00", "merchant_id", nil},
			{"list cursor", "GET", "/v1/payins?start_key=%00", "start_key", nil},
			{"webhook endpoint list", "GET", "/v1/webhook_endpoints?start_key=x%00", "start_key", nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				before := b.counts()
				r := b.api(c.method, c.path, b.admin, c.body)
				want400(t, r, c.field)
				b.wantCounts(t, c.name, before)
			})
		}

		for _, c := range []struct {
			name, method string
			body         map[string]any
		}{
			{"transaction_id", "charge", with(chargeBody(cfg), "transaction_id", "t"+nul)},
			{"parameters.payin_config_id", "charge", with(chargeBody(cfg), "parameters", map[string]any{"payin_config_id": cfg + "\x00"})},
			{"parameters.(key not shown)", "charge", with(chargeBody(cfg), "parameters", map[string]any{"payin_config_id": cfg, nul: "x"})},
			{"currency_code", "charge", with(chargeBody(cfg), "currency_code", "US\x00D")},
			{"cardnumber", "tokenize", with(tokenizeBody("x"), "cardnumber", "4111111111111111\x00")},
		} {
			t.Run("connector "+c.name, func(t *testing.T) {
				b := b.on(t)
				before := b.count("connector_transactions")
				msg := b.ivr(key, c.body).wantErr(t, c.method, "INVALID_REQUEST", http.StatusOK)
				if !strings.Contains(msg, c.name) || !strings.Contains(msg, "NUL") {
					t.Errorf("message %q should name %s and say why", msg, c.name)
				}
				if n := b.count("connector_transactions"); n != before {
					t.Errorf("a refused request stored %d transactions", n-before)
				}
			})
		}
	})
}
