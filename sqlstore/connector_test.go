package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// TestVaultRotation rotates the vault key of a store holding cards (one
// tokenized, charged ones, a declined one) and a processor account's secret:
// every ciphertext moves to the new key, the fingerprints stay what they
// were, the old key is retired from the key file (kept as a retired copy),
// and a deployment restarted on the new key file alone charges the stored
// cards and fingerprints a card as before.
func TestVaultRotation(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		keyFile := filepath.Join(t.TempDir(), "vault.key")
		oldKey, err := vault.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := vault.WriteKeyFile(keyFile, oldKey); err != nil {
			t.Fatal(err)
		}
		dsn := paymentstest.DSN(t, engine)
		opts := paymentstest.Options(t)
		s := openDSN(t, dsn, opts)
		keeper, _, err := vault.OpenKeeper(boundedContext(t), s, keyFile, vault.KeeperOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldID := keeper.KeyID()
		opts.Vault = keeper
		b := setupOn(t, s, engine, opts)

		pans := map[string]string{} // payment method id → PAN
		tok := process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, b.pmConfig(t, "").ID, "CA-rot-1", mastercard))
		mustSucceed(t, tok)
		pans[tok.ID] = mastercard
		for i, pan := range []string{visaOK, canaryVisa, "4000000000000002"} { // the last one declines: a FAILED card is re-encrypted too
			res := process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 1000).ID, fmt.Sprint("CA-rot-charge-", i), pan, 1000))
			pans[res.Parameters["payment_method_id"]] = pan
		}
		secret, err := keeper.Encrypt("sk_test_rotationSecret")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateProcessorAccount(boundedContext(t), ivrpay.ProcessorAccount{Name: "stripe-rot", Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: secret}); err != nil {
			t.Fatal(err)
		}
		// An events secret, and the one it replaced (still accepted).
		for _, whsec := range []string{"whsec_rotationOld", "whsec_rotationNew"} {
			ct, err := keeper.Encrypt(whsec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetProcessorEventsSecret(boundedContext(t), "stripe-rot", ct, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		before := readPANColumns(t, s)
		if len(before) != len(pans) {
			t.Fatalf("%d payment methods stored, want %d", len(before), len(pans))
		}

		res, err := keeper.Rotate(boundedContext(t), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.KeyID == oldID || res.KeyID != keeper.KeyID() || !reflect.DeepEqual(res.Retired, []string{oldID}) {
			t.Fatalf("rotation result %+v (old key %s)", res, oldID)
		}
		if want := map[string]int{"payment_methods": len(pans), "processor_accounts": 1, "processor_events_secrets": 1,
			"processor_previous_events_secrets": 1, "vault_secrets": 2}; !reflect.DeepEqual(res.Reencrypted, want) {
			t.Fatalf("re-encrypted %v, want %v", res.Reencrypted, want)
		}
		ring, _, err := vault.ReadKeyRing(keyFile)
		if err != nil || len(ring) != 1 {
			t.Fatalf("key file after the rotation: %d keys, %v; want the new key alone", len(ring), err)
		}
		retired, _ := filepath.Glob(keyFile + vault.RetiredSuffix + "*")
		if len(retired) != 1 {
			t.Fatalf("retired key copies: %v", retired)
		}
		if k, err := vault.ReadKeyFile(retired[0]); err != nil || !reflect.DeepEqual(k, oldKey) {
			t.Fatalf("the retired copy does not hold the old key: %v", err)
		}
		newOnly, err := vault.New(ring[0])
		if err != nil {
			t.Fatal(err)
		}
		after := readPANColumns(t, s)
		for id, pan := range pans {
			a := after[id]
			if a.ciphertext == before[id].ciphertext {
				t.Fatalf("payment method %s: ciphertext unchanged", id)
			}
			if got, err := newOnly.Decrypt(a.ciphertext); err != nil || got != pan {
				t.Fatalf("payment method %s: the new key alone does not open it: %v", id, err)
			}
			if a.fingerprint != before[id].fingerprint {
				t.Fatalf("payment method %s: the fingerprint changed with the rotation", id)
			}
		}
		account, err := s.FindProcessorAccount(boundedContext(t), "stripe-rot")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := newOnly.Decrypt(account.SecretCiphertext); err != nil || got != "sk_test_rotationSecret" {
			t.Fatalf("processor secret after the rotation: %v", err)
		}
		router := &payments.AccountRouter{Store: s, Vault: newOnly}
		if kind, secrets, err := router.EventsSecrets(boundedContext(t), "stripe-rot"); err != nil || kind != ivrpay.ProcessorKindStripe ||
			!reflect.DeepEqual(secrets, []string{"whsec_rotationNew", "whsec_rotationOld"}) {
			t.Fatalf("events secrets after the rotation: %s %d secrets, %v", kind, len(secrets), err)
		}

		// The deployment restarted on the new key file charges the stored
		// cards, and a card stored again has the fingerprint it had.
		rotCfg := b.payinConfig(t, 1234)
		s.Close()
		s2 := openDSN(t, dsn, opts)
		restarted, _, err := vault.OpenKeeper(boundedContext(t), s2, keyFile, vault.KeeperOptions{})
		if err != nil {
			t.Fatal(err)
		}
		opts.Vault = restarted
		admin := authenticate(t, s2, b.admin.Secret)
		ctx := ivrpay.NewContextWithPrincipal(boundedContext(t), admin)
		p, err := opts.Payments(s2).ChargePaymentMethod(ctx, tok.ID, rotCfg.ID)
		if err != nil {
			t.Fatalf("charging a rotated card: %v", err)
		}
		if p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("payin of a rotated card = %+v", p)
		}
		pm, err := s2.FindPaymentMethod(ctx, tok.ID)
		if err != nil || pm.Fingerprint != before[tok.ID].fingerprint || restarted.Fingerprint(mastercard) != pm.Fingerprint {
			t.Fatalf("payment method after rotation: %+v, %v", pm, err)
		}
	})
}

type panColumns struct{ ciphertext, fingerprint string }

func readPANColumns(t *testing.T, s *sqlstore.Store) map[string]panColumns {
	t.Helper()
	rows, err := s.DB().Query(`SELECT id, pan_ciphertext, fingerprint FROM payment_methods`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]panColumns{}
	for rows.Next() {
		var id string
		var c panColumns
		if err := rows.Scan(&id, &c.ciphertext, &c.fingerprint); err != nil {
			t.Fatal(err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openDSN opens the store at dsn and closes it at cleanup.
func openDSN(t *testing.T, dsn string, opts paymentstest.Config) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, dsn, opts.StoreOptions())
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFindConnectorTransactionAndPayinConfig: the one read a charge starts
// with returns what the three reads it replaces return, whether the
// transaction, the config, both or neither exist, and whichever processor
// account serves the config's merchant.
func TestFindConnectorTransactionAndPayinConfig(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		ctx := boundedContext(t)
		answered := b.payinConfig(t, 1000)
		mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(answered.ID, "CA-find-done", visaOK, 1000)))
		unused := b.payinConfig(t, 1000)
		check := func(t *testing.T, txID, configID string, wantTx, wantCfg bool) ivrpay.ProcessorRoute {
			key := ivrpay.ConnectorTransactionKey{PlatformID: b.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: txID}
			tx, found, cfg, route, err := b.s.FindConnectorTransactionAndPayinConfig(ctx, key, configID, nil)
			if err != nil {
				t.Fatal(err)
			}
			aloneTx, aloneFound, err := b.s.FindConnectorTransaction(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if found != wantTx || found != aloneFound || !reflect.DeepEqual(tx, aloneTx) {
				t.Fatalf("transaction = %+v (found %v), a read of it alone gives %+v (found %v); want found %v", tx, found, aloneTx, aloneFound, wantTx)
			}
			if wantTx && !tx.Done {
				t.Fatalf("the answered transaction reads as not done: %+v", tx)
			}
			aloneCfg, err := b.s.LoadPayinConfig(ctx, configID)
			if !wantCfg {
				wantCode(t, err, ivrpay.ENOTFOUND)
				if cfg != nil || route != (ivrpay.ProcessorRoute{}) {
					t.Fatalf("config = %+v, route %+v; want neither", cfg, route)
				}
				return route
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, aloneCfg) {
				t.Fatalf("config = %+v\nalone   %+v", cfg, aloneCfg)
			}
			aloneRoute, err := b.s.ProcessorRoute(ctx, cfg.PlatformID, cfg.MerchantID)
			if err != nil {
				t.Fatal(err)
			}
			if route != aloneRoute {
				t.Fatalf("route = %+v, a read of it alone gives %+v", route, aloneRoute)
			}
			return route
		}
		for _, row := range []struct {
			name, txID, configID string
			wantTx, wantCfg      bool
		}{
			{"an answered transaction and its config", "CA-find-done", answered.ID, true, true},
			{"a new transaction and an unused config", "CA-find-new", unused.ID, false, true},
			{"an answered transaction and no such config", "CA-find-done", "sbx_cfg_doesnotexist", true, false},
			{"neither", "CA-find-none", "sbx_cfg_doesnotexist", false, false},
		} {
			t.Run(row.name, func(t *testing.T) { check(t, row.txID, row.configID, row.wantTx, row.wantCfg) })
		}
		for _, a := range []string{"platform-default", "merchant-own"} {
			if err := b.s.CreateProcessorAccount(ctx, ivrpay.ProcessorAccount{Name: a, Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: "unused"}); err != nil {
				t.Fatal(err)
			}
		}
		for _, row := range []struct {
			name string
			set  func() error
			want ivrpay.ProcessorRoute
		}{
			{"no account: the sandbox's", func() error { return nil }, ivrpay.ProcessorRoute{}},
			{"the platform's default", func() error {
				_, err := b.s.SetPlatformProcessor(ctx, b.platform.ID, "platform-default")
				return err
			}, ivrpay.ProcessorRoute{Account: "platform-default"}},
			{"the merchant's own, with its sub-account", func() error {
				_, err := b.s.SetMerchantProcessor(ctx, b.merchant.ID, "merchant-own", "acct_bakery")
				return err
			}, ivrpay.ProcessorRoute{Account: "merchant-own", AccountRef: "acct_bakery"}},
		} {
			t.Run(row.name, func(t *testing.T) {
				if err := row.set(); err != nil {
					t.Fatal(err)
				}
				if got := check(t, "CA-find-new", unused.ID, false, true); got != row.want {
					t.Fatalf("route = %+v, want %+v", got, row.want)
				}
			})
		}
	})
}
