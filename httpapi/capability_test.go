package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// limitedProcessor is the sandbox processor declaring only some capabilities.
type limitedProcessor struct {
	*sandbox.Processor
	caps ivrpay.ProcessorCapabilities
}

func (p limitedProcessor) Capabilities() ivrpay.ProcessorCapabilities { return p.caps }

// TestProcessorCapabilities: an operation the merchant's processor lacks is
// refused before anything reaches it (connector PROCESSOR_NOT_CONFIGURED,
// REST 409 saying what it cannot do), and nothing is reserved or recorded.
func TestProcessorCapabilities(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, func(c *paymentstest.Config) {
			c.Router = payments.SandboxRouter{Processor: limitedProcessor{Processor: sandbox.New()}}
		})
		key := b.ivrKey("payin:create", "payment_method:create")
		for _, tc := range []struct {
			name string
			body map[string]any
			want string
		}{
			{"tokenize without verification", tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)), ivrpay.OpVerify},
			{"authorize-only without manual capture", chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"processing_mode": "AUTHORIZE"})), ivrpay.OpAuthorizeOnly},
		} {
			t.Run(tc.name, func(t *testing.T) {
				method := tc.body["method"].(string)
				msg := b.on(t).ivr(key, tc.body).wantErr(t, method, ivrpay.ConnProcessorNotConfigured, 200)
				if !strings.Contains(msg, tc.want) {
					t.Fatalf("message %q does not say it cannot %s", msg, tc.want)
				}
			})
		}
		// A charge captured at once is what every processor does.
		id := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		r := b.api("POST", "/v1/payins/"+id+"/void_or_refund", b.admin, map[string]any{"idempotency_key": "void-1", "reason": "DUPLICATE"})
		wantStatus(t, r, 409)
		if !strings.Contains(r.err().Message, ivrpay.OpVoid) {
			t.Fatalf("void refusal %q", r.err().Message)
		}
		paymentstest.Settle(t, b.store)
		r = b.api("POST", "/v1/payins/"+id+"/void_or_refund", b.admin, map[string]any{"idempotency_key": "refund-1", "reason": "DUPLICATE", "amount": 300})
		wantStatus(t, r, 409)
		if p := b.api("GET", "/v1/payins/"+id, b.admin, nil).data(t); p["refundable_amount"] != float64(1000) || len(p["refunds"].([]any)) != 0 {
			t.Fatalf("a refused refund reserved something: refundable %v, refunds %v", p["refundable_amount"], p["refunds"])
		}
	})
}

// noAccountFor routes like the built-in sandbox, except that no processor
// account serves one merchant (a production merchant nobody routed).
type noAccountFor struct {
	payments.SandboxRouter
	merchantID *string
}

func (r noAccountFor) Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	if merchantID == *r.merchantID {
		return ivrpay.ProcessorAccountRef{}, nil, &ivrpay.ProcessorNotConfiguredError{MerchantID: merchantID}
	}
	return r.SandboxRouter.Route(ctx, platformID, merchantID)
}

// TestProcessorNotConfigured: a payin for a merchant no processor account
// serves is refused before any card data leaves: the connector answers
// PROCESSOR_NOT_CONFIGURED, the REST charge of a stored card 409 naming the
// merchant and the command that fixes it.
func TestProcessorNotConfigured(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		var unrouted string
		b := setup(t, engine, func(c *paymentstest.Config) {
			c.Router = noAccountFor{SandboxRouter: payments.SandboxRouter{Processor: sandbox.New()}, merchantID: &unrouted}
		})
		r := b.api("POST", "/v1/merchants", b.admin, map[string]any{"name": "Unrouted shop"})
		wantStatus(t, r, 200)
		unrouted = r.data(t)["merchant_id"].(string)
		key := b.ivrKey("payin:create", "payment_method:create")
		msg := b.ivr(key, chargeBody(b.payinConfig(b.admin, unrouted, 1000, nil))).wantErr(t, "charge", ivrpay.ConnProcessorNotConfigured, 200)
		if !strings.Contains(msg, unrouted) || !strings.Contains(msg, "set-processor") {
			t.Fatalf("connector message %q does not name the merchant and the command", msg)
		}
		// A platform-level stored card, charged for the unrouted merchant's config.
		pm := b.ivr(key, tokenizeBody(b.paymentMethodConfig(b.admin, b.platformID, "", nil))).wantOK(t, "tokenize")
		r = b.api("POST", "/v1/payment_methods/"+pm+"/payin", b.admin, map[string]any{"payin_config_id": b.payinConfig(b.admin, unrouted, 1000, nil)})
		wantStatus(t, r, 409)
		if m := r.err().Message; !strings.Contains(m, unrouted) || !strings.Contains(m, "ivrpay admin merchant set-processor") {
			t.Fatalf("REST 409 %q does not name the merchant and the command", m)
		}
		if n := b.count("payins"); n != 0 {
			t.Fatalf("%d payins were made for a merchant without a processor", n)
		}
	})
}
