package httpapi_test

// Object constraints (SPEC §1.1) through the real connector: a key narrowed
// to one payin config or one payment method config acts on that config and
// on nothing else.

import (
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

func TestConfigNarrowedKeyChargesOnlyItsConfig(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfgA := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		cfgB := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmcA := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		pmcB := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		cfgKey, _ := b.createKey(b.admin, objectStatementsJSON(b.platformID, "payin_config", cfgA, "payin:create"))
		pmcKey, _ := b.createKey(b.admin, objectStatementsJSON(b.platformID, "payment_method_config", pmcA, "payment_method:create"))

		// The other config, first: FORBIDDEN, and nothing is charged.
		t.Run("another payin config", func(t *testing.T) {
			msg := b.on(t).ivr(cfgKey, chargeBody(cfgB)).wantErr(t, "charge", ivrpay.ConnForbidden, 200)
			if !strings.Contains(msg, "payin:create") {
				t.Errorf("FORBIDDEN message %q does not name the permission", msg)
			}
		})
		t.Run("a payment method config", func(t *testing.T) {
			b.on(t).ivr(cfgKey, tokenizeBody(pmcA)).wantErr(t, "tokenize", ivrpay.ConnForbidden, 200)
		})
		t.Run("its own payin config", func(t *testing.T) {
			b.on(t).ivr(cfgKey, chargeBody(cfgA)).wantOK(t, "charge")
		})
		t.Run("the other payment method config", func(t *testing.T) {
			b.on(t).ivr(pmcKey, tokenizeBody(pmcB)).wantErr(t, "tokenize", ivrpay.ConnForbidden, 200)
		})
		t.Run("its own payment method config", func(t *testing.T) {
			b.on(t).ivr(pmcKey, tokenizeBody(pmcA)).wantOK(t, "tokenize")
		})
		t.Run("a payin config with the payment method key", func(t *testing.T) {
			b.on(t).ivr(pmcKey, chargeBody(cfgB)).wantErr(t, "charge", ivrpay.ConnForbidden, 200)
		})
		if n := b.count("payins"); n != 1 {
			t.Errorf("%d payins, want only the one of config A", n)
		}
		// A replayed transaction of config A is answered only to a key that may
		// still act on config A: the key narrowed to config B gets FORBIDDEN.
		t.Run("replay by a key narrowed to another config", func(t *testing.T) {
			b := b.on(t)
			cfgC := b.payinConfig(b.admin, b.merchantID, 1000, nil)
			keyC, _ := b.createKey(b.admin, objectStatementsJSON(b.platformID, "payin_config", cfgC, "payin:create"))
			body := chargeBody(cfgB)
			b.ivr(b.admin, body).wantOK(t, "charge")
			b.ivr(keyC, body).wantErr(t, "charge", ivrpay.ConnForbidden, 200)
		})
	})
}
