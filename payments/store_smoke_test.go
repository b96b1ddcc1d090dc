package payments_test

import (
	"context"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestChargeOverIVR is the happy path on every engine: a platform, a payin
// config and one IVR charge that makes a PROCESSING payin and a stored card.
func TestChargeOverIVR(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		s := paymentstest.Open(t, engine, opts)
		ctx := context.Background()
		p, admin, err := s.CreatePlatform(ctx, "Acme", true)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		actx := ivrpay.NewContextWithPrincipal(ctx, admin)
		cfg, err := s.CreatePayinConfig(actx, ivrpay.PayinConfigCreate{MerchantID: m.ID, IdempotencyKey: "k", Amount: "1000", CurrencyCode: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := opts.Payments(s).ProcessIVR(actx, ivrpay.IVRRequest{Method: "charge", TransactionID: "tx1", CardNumber: "4111111111111111", CVV: "123",
			ExpiryMonth: "08", ExpiryYear: "39", PostalCode: "94111", Amount: ivrpay.ParseIVRAmount(true, "10.00"), CurrencyCode: "USD",
			Parameters: map[string]string{"payin_config_id": cfg.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if res.ErrorCode != "" || res.ID == "" {
			t.Fatalf("charge failed: %+v", res)
		}
		payin, err := s.FindPayin(actx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if payin.Status != ivrpay.PayinStatusProcessing || payin.Source != ivrpay.PayinSourceIVR || payin.PaymentMethodID == "" {
			t.Fatalf("payin = %+v", payin)
		}
	})
}
