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
