package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore/sqlstoretest"
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
		b := setup(t, engine, func(c *sqlstoretest.Config) {
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
		if _, err := b.store.SettleDue(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		r = b.api("POST", "/v1/payins/"+id+"/void_or_refund", b.admin, map[string]any{"idempotency_key": "refund-1", "reason": "DUPLICATE", "amount": 300})
		wantStatus(t, r, 409)
		if p := b.api("GET", "/v1/payins/"+id, b.admin, nil).data(t); p["refundable_amount"] != float64(1000) || len(p["refunds"].([]any)) != 0 {
			t.Fatalf("a refused refund reserved something: refundable %v, refunds %v", p["refundable_amount"], p["refunds"])
		}
	})
}
