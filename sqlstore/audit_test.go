package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestAuditRecords checks that key and platform changes, refused escalations
// and every payin leave an audit record with who, what, from where and the
// outcome — and that no record holds a key secret or a card number.
func TestAuditRecords(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		s := paymentstest.Open(t, engine, opts)
		ctx := ivrpay.NewContextWithClientAddress(context.Background(), "203.0.113.7")
		p, admin, err := s.CreatePlatform(ctx, "Audited", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetPlatformIVR(ctx, p.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetPlatformIVR(ctx, p.ID, true); err != nil {
			t.Fatal(err)
		}
		m, err := s.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		actx := ivrpay.NewContextWithPrincipal(ctx, admin)
		ivrKey, err := s.CreateAPIKey(actx, []ivrpay.Statement{{Permissions: []string{"payin:create"},
			Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: p.ID}}}})
		if err != nil {
			t.Fatal(err)
		}
		ivrKey, err = s.Authenticate(ctx, ivrKey.Secret)
		if err != nil {
			t.Fatal(err)
		}
		ictx := ivrpay.NewContextWithPrincipal(ctx, ivrKey)
		// An escalation attempt is refused and audited as denied.
		if _, err := s.CreateAPIKey(ictx, ivrpay.AdminStatements(p.ID)); ivrpay.ErrorCode(err) != ivrpay.EFORBIDDEN {
			t.Fatalf("escalation: %v", err)
		}
		cfg, err := s.CreatePayinConfig(actx, ivrpay.PayinConfigCreate{MerchantID: m.ID, IdempotencyKey: "a1", Amount: "1000", CurrencyCode: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := opts.Payments(s).ProcessIVR(ictx, ivrpay.IVRRequest{Method: "charge", TransactionID: "audit-1", CardNumber: "4111111111111111",
			CVV: "123", ExpiryMonth: "12", ExpiryYear: "39", PostalCode: "94111", Amount: ivrpay.ParseIVRAmount(true, "10.00"),
			Parameters: map[string]string{"payin_config_id": cfg.ID}})
		if err != nil || res.ID == "" {
			t.Fatalf("charge: %+v %v", res, err)
		}
		if _, err := s.SetAPIKeyStatus(actx, ivrKey.ID, ivrpay.APIKeyStatusDisabled); err != nil {
			t.Fatal(err)
		}

		events, err := s.ListAudit(ctx, ivrpay.AuditFilter{PlatformID: p.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		type want struct{ actor, action, target, outcome string }
		for _, w := range []want{
			{ivrpay.ActorOperator, "platform.create", p.ID, ivrpay.AuditSuccess},
			{ivrpay.ActorOperator, "platform.disable_ivr", p.ID, ivrpay.AuditSuccess},
			{ivrpay.ActorOperator, "platform.enable_ivr", p.ID, ivrpay.AuditSuccess},
			{admin.ID, "api_key.create", ivrKey.ID, ivrpay.AuditSuccess},
			{ivrKey.ID, "api_key.create", "", ivrpay.AuditDenied},
			{ivrKey.ID, "payin.create", res.ID, ivrpay.PayinStatusProcessing},
			{admin.ID, "api_key.set_status", ivrKey.ID, ivrpay.AuditSuccess},
		} {
			t.Run(w.action+" "+w.outcome, func(t *testing.T) {
				found := false
				for _, e := range events {
					if e.Actor == w.actor && e.Action == w.action && e.Target == w.target && e.Outcome == w.outcome {
						found = true
						if e.ClientAddress != "203.0.113.7" || e.OccurredAt.IsZero() {
							t.Errorf("%s: from %q at %v", w.action, e.ClientAddress, e.OccurredAt)
						}
					}
				}
				if !found {
					t.Errorf("no audit record %+v in %+v", w, events)
				}
			})
		}
		for _, e := range events {
			if strings.Contains(e.Detail, admin.Secret) || strings.Contains(e.Detail, "4111111111111111") {
				t.Errorf("audit record leaks a secret or card: %+v", e)
			}
		}
		// Filters narrow the list.
		denied, err := s.ListAudit(ctx, ivrpay.AuditFilter{Outcome: ivrpay.AuditDenied, Action: "api_key."})
		if err != nil || len(denied) != 1 || denied[0].Actor != ivrKey.ID {
			t.Fatalf("denied api_key events = %+v, %v", denied, err)
		}
	})
}
