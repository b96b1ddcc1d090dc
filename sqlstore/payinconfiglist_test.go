package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestListPayinConfigs: the portal's list of payin configs, on every engine:
// filtered by merchant and by use, and scoped to what the key may read
// (a merchant constraint, a payin_config constraint).
func TestListPayinConfigs(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		s := paymentstest.Open(t, engine, opts)
		ctx := context.Background()
		p, admin, err := s.CreatePlatform(ctx, "Acme", true)
		if err != nil {
			t.Fatal(err)
		}
		actx := ivrpay.NewContextWithPrincipal(ctx, admin)
		var cfgs []string // M used, M unused, N unused
		var merchants []string
		for i, name := range []string{"M", "N"} {
			m, err := s.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			merchants = append(merchants, m.ID)
			for j := 0; j < 2-i; j++ {
				cfg, err := s.CreatePayinConfig(actx, ivrpay.PayinConfigCreate{MerchantID: m.ID, IdempotencyKey: fmt.Sprintf("k%d%d", i, j), Amount: "1000", CurrencyCode: "USD"})
				if err != nil {
					t.Fatal(err)
				}
				cfgs = append(cfgs, cfg.ID)
			}
		}
		res, err := opts.Payments(s).ProcessIVR(actx, ivrpay.IVRRequest{Method: "charge", TransactionID: "tx1", CardNumber: "4111111111111111", CVV: "123",
			ExpiryMonth: "08", ExpiryYear: "39", PostalCode: "94111", Amount: ivrpay.ParseIVRAmount(true, "10.00"), CurrencyCode: "USD",
			Parameters: map[string]string{"payin_config_id": cfgs[0]}})
		if err != nil || res.ErrorCode != "" {
			t.Fatalf("charge: %+v %v", res, err)
		}
		st := func(c ivrpay.Constraints) *ivrpay.APIKey {
			c.Platform = &ivrpay.PlatformConstraint{PlatformID: p.ID}
			k, err := s.CreateAPIKey(actx, []ivrpay.Statement{{Permissions: []string{"payin_config:read"}, Constraints: c}})
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		mKey := st(ivrpay.Constraints{Merchant: &ivrpay.MerchantConstraint{MerchantID: merchants[0]}})
		cfgKey := st(ivrpay.Constraints{PayinConfig: &ivrpay.PayinConfigConstraint{PayinConfigID: cfgs[2]}})
		for _, c := range []struct {
			name   string
			key    *ivrpay.APIKey
			filter ivrpay.PayinConfigFilter
			want   []string
		}{
			{"all", admin, ivrpay.PayinConfigFilter{}, cfgs},
			{"merchant N", admin, ivrpay.PayinConfigFilter{MerchantID: merchants[1]}, cfgs[2:]},
			{"used", admin, ivrpay.PayinConfigFilter{Used: ivrpay.PayinConfigUsed}, cfgs[:1]},
			{"unused", admin, ivrpay.PayinConfigFilter{Used: ivrpay.PayinConfigUnused}, cfgs[1:]},
			{"unused of M", admin, ivrpay.PayinConfigFilter{MerchantID: merchants[0], Used: ivrpay.PayinConfigUnused}, cfgs[1:2]},
			{"merchant-constrained key", mKey, ivrpay.PayinConfigFilter{}, cfgs[:2]},
			{"merchant-constrained key filtering on N", mKey, ivrpay.PayinConfigFilter{MerchantID: merchants[1]}, nil},
			{"config-constrained key", cfgKey, ivrpay.PayinConfigFilter{}, cfgs[2:]},
		} {
			t.Run(c.name, func(t *testing.T) {
				l, err := s.ListPayinConfigs(ivrpay.NewContextWithPrincipal(ctx, c.key), c.filter)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, cfg := range l.Results {
					got = append(got, cfg.ID)
				}
				// Ids made within one second sort in no set order: compare as sets.
				want := slices.Clone(c.want)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) || l.TotalResults != len(c.want) {
					t.Errorf("got %v (total %d), want %v", got, l.TotalResults, c.want)
				}
			})
		}
		l, _ := s.ListPayinConfigs(actx, ivrpay.PayinConfigFilter{Used: ivrpay.PayinConfigUsed})
		if len(l.Results) != 1 || l.Results[0].Payin == nil || l.Results[0].Payin.PayinID != res.ID || l.Results[0].Merchant.Name != "M" {
			t.Errorf("the used config lists without its payin or merchant: %+v", l.Results)
		}
		_, err = s.ListPayinConfigs(actx, ivrpay.PayinConfigFilter{Used: "maybe"})
		if ivrpay.ErrorCode(err) != ivrpay.EINVALID {
			t.Errorf("used=maybe: %v", err)
		}
	})
}
