package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestReplayNeedsPermissionOnTheConfig is the attack of a merchant key that
// resends another merchant's Twilio transaction (same body, same
// transaction_id): it used to get that merchant's full answer. A replay is
// answered only to a key that may act on the transaction's config; the
// other merchant's key gets FORBIDDEN and learns nothing of the payin.
func TestReplayNeedsPermissionOnTheConfig(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		var m2 map[string]any
		if r := b.api("POST", "/v1/merchants", b.admin, map[string]any{"name": "Second shop"}); r.Status == 200 {
			m2 = r.data(t)
		} else {
			t.Fatalf("create merchant: %d %s", r.Status, r.Raw)
		}
		m1Key, _ := b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, "payin:create"))
		m2Key, _ := b.createKey(b.admin, statementsJSON(b.platformID, m2["merchant_id"].(string), "payin:create"))
		body := chargeBody(b.payinConfig(b.admin, m2["merchant_id"].(string), 1000, nil))
		first := b.ivr(m2Key, body)
		payinID := first.wantOK(t, "charge")

		stolen := b.ivr(m1Key, body)
		stolen.wantErr(t, "charge", ivrpay.ConnForbidden, 200)
		if strings.Contains(string(stolen.Raw), payinID) || strings.Contains(string(stolen.Raw), "1111") {
			t.Fatalf("the refused replay reveals the payin: %s", stolen.Raw)
		}
		// The owner's retry still gets its answer byte for byte.
		if again := b.ivr(m2Key, body); string(again.Raw) != string(first.Raw) {
			t.Fatalf("the owner's retry answered %s, want %s", again.Raw, first.Raw)
		}
		// A platform-wide key may act on every merchant's config: it gets the replay.
		if all := b.ivr(b.ivrKey("payin:create"), body); string(all.Raw) != string(first.Raw) {
			var v any
			json.Unmarshal(all.Raw, &v)
			t.Fatalf("a platform-wide key's replay answered %v", v)
		}
	})
}

// TestIdempotencyKeysAreTheMerchants is the squatting attack: a merchant's
// key used to take idempotency keys platform-wide, so it could claim another
// merchant's future keys (and the conflict named the other merchant's
// config). Keys of merchant objects are now the merchant's own, and a
// conflict names no object.
func TestIdempotencyKeysAreTheMerchants(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		r := b.api("POST", "/v1/merchants", b.admin, map[string]any{"name": "Second shop"})
		wantStatus(t, r, 200)
		m2 := r.data(t)["merchant_id"].(string)
		m1Key, _ := b.createKey(b.admin, statementsJSON(b.platformID, b.merchantID, "payin_config:create", "refund:create"))
		m2Key, _ := b.createKey(b.admin, statementsJSON(b.platformID, m2, "payin_config:create", "refund:create"))
		config := func(key, merchant string, amount int) apiResp {
			return b.api("POST", "/v1/payin_configs", key, map[string]any{"merchant_id": merchant, "idempotency_key": "order-42",
				"amount": amount, "currency_code": "USD"})
		}
		squat := config(m1Key, b.merchantID, 100)
		wantStatus(t, squat, 200)
		mine := config(m2Key, m2, 2500)
		wantStatus(t, mine, 200)
		if mine.data(t)["payin_config_id"] == squat.data(t)["payin_config_id"] || mine.data(t)["amount"] != float64(2500) {
			t.Fatalf("merchant 2's key order-42 got %v", mine.data(t))
		}
		conflict := config(m1Key, b.merchantID, 200)
		wantStatus(t, conflict, 409)
		if strings.Contains(conflict.err().Message, squat.data(t)["payin_config_id"].(string)) {
			t.Fatalf("the conflict names a config: %s", conflict.err().Message)
		}

		// Voids and refunds: one merchant's key does not replay or block another's.
		key := b.ivrKey("payin:create")
		p1 := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		p2 := b.ivr(key, chargeBody(b.payinConfig(b.admin, m2, 1000, nil))).wantOK(t, "charge")
		void := map[string]any{"idempotency_key": "void-1", "reason": "DUPLICATE"}
		v1 := b.api("POST", "/v1/payins/"+p1+"/void_or_refund", m1Key, void)
		wantStatus(t, v1, 200)
		v2 := b.api("POST", "/v1/payins/"+p2+"/void_or_refund", m2Key, void)
		wantStatus(t, v2, 200)
		if v2.data(t)["payin_id"] != p2 {
			t.Fatalf("merchant 2's void-1 answered %v", v2.data(t))
		}
	})
}
