package payments_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestEventsSecrets: an account's events secrets as the event endpoints
// read them, on the real store: none until one is set (ENOTFOUND, like an
// unknown account); a replaced secret is still accepted until its time is
// over, or not at all when the operator forgets it.
func TestEventsSecrets(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		opts := paymentstest.Options(t)
		store := paymentstest.Open(t, engine, opts)
		v := paymentstest.NewVault(t)
		router := &payments.AccountRouter{Store: store, Vault: v}
		encrypt := func(s string) string {
			ct, err := v.Encrypt(s)
			if err != nil {
				t.Fatal(err)
			}
			return ct
		}
		secrets := func(name string) ([]string, error) {
			t.Helper()
			kind, secrets, err := router.EventsSecrets(ctx, name)
			if err == nil && kind != ivrpay.ProcessorKindAdyen {
				t.Fatalf("kind %q", kind)
			}
			return secrets, err
		}
		if err := store.CreateProcessorAccount(ctx, ivrpay.ProcessorAccount{Name: "adyen-main", Kind: ivrpay.ProcessorKindAdyen,
			MerchantAccount: "AcmeMOTO", SecretCiphertext: encrypt("AQEkey")}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"adyen-main", "nobody", "sandbox"} {
			if _, err := secrets(name); ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
				t.Fatalf("%s without an events secret: %v, want ENOTFOUND", name, err)
			}
		}
		a, err := store.SetProcessorEventsSecret(ctx, "adyen-main", encrypt("AA01"), time.Now().Add(time.Hour))
		if err != nil || !a.EventsSecretSet || a.PreviousEventsSecretCiphertext != "" {
			t.Fatalf("first events secret: %+v, %v", a, err)
		}
		if got, err := secrets("adyen-main"); err != nil || !reflect.DeepEqual(got, []string{"AA01"}) {
			t.Fatalf("after the first secret: %v, %v", got, err)
		}
		if _, err := store.SetProcessorEventsSecret(ctx, "adyen-main", encrypt("BB02"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := secrets("adyen-main"); err != nil || !reflect.DeepEqual(got, []string{"BB02", "AA01"}) {
			t.Fatalf("after replacing it: %v, %v; want the new one and the replaced one", got, err)
		}
		// The replaced secret's time is over.
		if _, err := store.DB().Exec(`UPDATE processor_accounts SET previous_events_secret_until = $1`, ivrpay.FormatTime(time.Now().Add(-time.Second))); err != nil {
			t.Fatal(err)
		}
		if got, err := secrets("adyen-main"); err != nil || !reflect.DeepEqual(got, []string{"BB02"}) {
			t.Fatalf("once the replaced secret's time is over: %v, %v", got, err)
		}
		// Forgotten at once.
		if _, err := store.SetProcessorEventsSecret(ctx, "adyen-main", encrypt("CC03"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.SetProcessorEventsSecret(ctx, "adyen-main", encrypt("DD04"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got, err := secrets("adyen-main"); err != nil || !reflect.DeepEqual(got, []string{"DD04"}) {
			t.Fatalf("after replacing it with --forget-previous: %v, %v", got, err)
		}
		if _, err := store.SetProcessorEventsSecret(ctx, "nobody", encrypt("EE05"), time.Time{}); ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
			t.Fatalf("setting the events secret of no account: %v", err)
		}
		events, err := store.ListAudit(ctx, ivrpay.AuditFilter{Action: "processor_account.set_events_secret", Limit: 10})
		if err != nil || len(events) != 4 || events[0].Detail != "previous=forgotten" || events[0].Target != "adyen-main" {
			t.Fatalf("audit of set_events_secret: %+v, %v", events, err)
		}
	})
}
