package httpapi_test

import (
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// TestRefusalDescNormalized: what the real Stripe and Adyen adapters read
// from their processor reaches tenants only as a normalized refusal_desc
// with the processor's code (SPEC §9), in the connector's answer and on the
// payin; the processor's own text, which names the operator's account,
// goes to the operator's log.
func TestRefusalDescNormalized(t *testing.T) {
	t.Parallel()
	for _, adapter := range []struct {
		name    string
		open    func(t *testing.T) double
		amount  int64
		code    string
		desc    string
		private []string // what the processor's message says of the operator
	}{
		{"stripe account error", stripeDouble, stripetest.AmountAccountError, ivrpay.RefusalProcessingError,
			"Processing error (stripe invalid_request_error, HTTP 403)", []string{stripetest.AccountErrorAccount, "sk_test_", "provided key"}},
		{"stripe card decline", stripeDouble, stripetest.AmountIncorrectZip, ivrpay.RefusalIncorrectPaymentInformation,
			"Postal code or card details do not match (stripe incorrect_zip)", []string{"zip code"}},
		{"adyen account error", adyenDouble, adyentest.AmountAccountError, ivrpay.RefusalProcessingError,
			"Processing error (adyen 901)", []string{adyentest.MerchantAccount, "ws@Company", "API credential"}},
		{"adyen decline", adyenDouble, 5102, ivrpay.RefusalInsufficientFunds,
			"Insufficient funds (adyen 12, scheme 51)", []string{"Not enough balance", "over credit limit"}},
	} {
		t.Run(adapter.name, func(t *testing.T) {
			t.Parallel()
			forEachEngine(t, func(t *testing.T, engine string) {
				d := adapter.open(t)
				b := setup(t, engine, func(c *paymentstest.Config) { c.Router = d.router })
				key := b.ivrKey("payin:create")
				cfg := b.payinConfig(b.admin, b.merchantID, adapter.amount, nil)
				r := b.ivr(key, with(chargeBody(cfg), "amount", ivrpay.FormatDollars(adapter.amount)))
				msg := r.wantErr(t, "charge", adapter.code, 200)
				p := b.payin(r.Params["payin_id"])
				if msg != adapter.desc || p["refusal_desc"] != adapter.desc || p["refusal_code"] != adapter.code {
					t.Errorf("error_message %q, payin refusal %v %q; want %s %q", msg, p["refusal_code"], p["refusal_desc"], adapter.code, adapter.desc)
				}
				// What tenants read: the connector's answer, the payin, and its webhook events.
				shown := string(r.Raw) + string(b.api("GET", "/v1/payins/"+r.Params["payin_id"], b.admin, nil).Raw)
				var events string
				rows, err := b.store.DB().Query(`SELECT payload FROM events`)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var payload string
					if err := rows.Scan(&payload); err != nil {
						t.Fatal(err)
					}
					events += payload
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(events, `"refusal_desc":"`+adapter.desc) {
					t.Errorf("no payin.failed event carries the refusal_desc %q", adapter.desc)
				}
				shown += events
				for _, s := range adapter.private {
					if strings.Contains(shown, s) {
						t.Errorf("a tenant reads %q of the processor's own text", s)
					}
				}
				if log := b.log.String(); !strings.Contains(log, `"processor_detail"`) || !strings.Contains(log, adapter.private[0]) {
					t.Errorf("the operator's log lacks the processor's text %q:\n%s", adapter.private[0], log)
				}
			})
		})
	}
}
