package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
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

// TestChargeReadIsTheReadsItReplaces: the one read a charge starts with
// (ReserveConnectorCharge's) returns what the three reads it replaces
// return, whether the transaction, the config, both or neither exist, and
// whichever processor account serves the config's merchant.
func TestChargeReadIsTheReadsItReplaces(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		ctx := boundedContext(t)
		answered := b.payinConfig(t, 1000)
		mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(answered.ID, "CA-find-done", visaOK, 1000)))
		unused := b.payinConfig(t, 1000)
		check := func(t *testing.T, txID, configID string, wantTx, wantCfg bool) ivrpay.ProcessorRoute {
			key := ivrpay.ConnectorTransactionKey{PlatformID: b.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: txID}
			read := chargeRead(t, b.s, key, configID, nil)
			tx, found, cfg, route := read.Transaction, read.Found, read.Config, read.Route
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

// chargeRead is ReserveConnectorCharge's read, with a decide that reserves
// nothing; it fails the test when decide is called for a transaction that
// exists, or not called for one that does not.
func chargeRead(t testing.TB, s *sqlstore.Store, key ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup) ivrpay.ChargeRead {
	t.Helper()
	var decided *ivrpay.ChargeRead
	read, reserved, holder, err := s.ReserveConnectorCharge(context.Background(), key, configID, risk, func(r ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
		decided = &r
		return nil, nil
	})
	if err != nil || reserved != nil || holder != nil {
		t.Fatalf("ReserveConnectorCharge with nothing to reserve: reserved %v, holder %v, %v", reserved, holder, err)
	}
	if (decided == nil) != read.Found || (decided != nil && !reflect.DeepEqual(*decided, read)) {
		t.Fatalf("decide saw %+v for the read %+v; want it called with the read exactly when the transaction does not exist", decided, read)
	}
	return read
}

// TestReserveConnectorCharge: the reservation decide returns is written with
// its claim, or, when the config's live payin refuses it, neither is and the
// holder comes back; a decide that refuses (nil) or fails writes nothing.
func TestReserveConnectorCharge(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		ctx := boundedContext(t)
		key := func(txID string) ivrpay.ConnectorTransactionKey {
			return ivrpay.ConnectorTransactionKey{PlatformID: b.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: txID}
		}
		reservation := func(read ivrpay.ChargeRead, k ivrpay.ConnectorTransactionKey, payinID string) *ivrpay.PayinReservation {
			return &ivrpay.PayinReservation{ID: payinID, Config: read.Config, Card: ivrpay.Card{Brand: "VISA", Last4: "4242", ExpMonth: 12, ExpYear: 2040},
				Source: ivrpay.PayinSourceIVR, IVRProvider: k.Provider, IVRTransactionID: k.TransactionID,
				Processor: ivrpay.ProcessorAccountRef{Name: payments.SandboxAccount, Kind: ivrpay.ProcessorKindSandbox}, CreatedAt: time.Now(),
				Claim: &ivrpay.ConnectorClaim{ConnectorTransactionKey: k, RequestHash: "hash", ConfigID: read.Config.ID, Lease: time.Minute}}
		}
		claimed := func(t *testing.T, k ivrpay.ConnectorTransactionKey) bool {
			t.Helper()
			_, found, err := b.s.FindConnectorTransaction(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			return found
		}
		payins := func(t *testing.T, cfgID string) int {
			t.Helper()
			return paymentstest.Count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfgID)
		}
		cfg := b.payinConfig(t, 1000)
		t.Run("a new transaction on an unused config", func(t *testing.T) {
			k := key("CA-reserve-new")
			read, reserved, holder, err := b.s.ReserveConnectorCharge(ctx, k, cfg.ID, nil, func(read ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
				return reservation(read, k, "sbx_pay_reservenew"), nil
			})
			if err != nil || holder != nil || reserved == nil || reserved.ID != "sbx_pay_reservenew" || reserved.Status != ivrpay.PayinStatusCreated {
				t.Fatalf("reserved %+v, holder %+v, %v", reserved, holder, err)
			}
			if read.Found || read.Config == nil || read.Config.ID != cfg.ID {
				t.Fatalf("read %+v", read)
			}
			stored, err := b.s.LoadPayin(ctx, reserved.ID)
			if err != nil || stored.Status != ivrpay.PayinStatusCreated || stored.IVR == nil || stored.IVR.TransactionID != k.TransactionID {
				t.Fatalf("stored payin %+v, %v", stored, err)
			}
			if !claimed(t, k) {
				t.Fatal("the claim was not written with the reservation")
			}
		})
		t.Run("a config another payin holds", func(t *testing.T) {
			k := key("CA-reserve-held")
			_, reserved, holder, err := b.s.ReserveConnectorCharge(ctx, k, cfg.ID, nil, func(read ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
				return reservation(read, k, "sbx_pay_reserveheld"), nil
			})
			if err != nil || reserved != nil || holder == nil || holder.ID != "sbx_pay_reservenew" {
				t.Fatalf("reserved %+v, holder %+v, %v; want the first payin as holder", reserved, holder, err)
			}
			if claimed(t, k) {
				t.Fatal("the claim was written without its reservation")
			}
			if n := payins(t, cfg.ID); n != 1 {
				t.Fatalf("the config has %d payins, want 1", n)
			}
		})
		for _, row := range []struct {
			name string
			err  error
		}{
			{"decide refuses", nil},
			{"decide fails", errors.New("decide failed")},
		} {
			t.Run(row.name, func(t *testing.T) {
				unused := b.payinConfig(t, 1000)
				k := key("CA-reserve-" + strings.ReplaceAll(row.name, " ", "-"))
				_, reserved, holder, err := b.s.ReserveConnectorCharge(ctx, k, unused.ID, nil, func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
					return nil, row.err
				})
				if !errors.Is(err, row.err) || reserved != nil || holder != nil {
					t.Fatalf("reserved %+v, holder %+v, %v; want %v", reserved, holder, err, row.err)
				}
				if claimed(t, k) || payins(t, unused.ID) != 0 {
					t.Fatal("a decide that reserved nothing wrote something")
				}
			})
		}
	})
}

// TestReserveConnectorChargeDecidesAgainWhenItsBatchRunsAgain: on SQLite a
// group commit runs a batch again after one of its writes failed, so decide
// runs twice; the reservation of its last run is the one written, once.
func TestReserveConnectorChargeDecidesAgainWhenItsBatchRunsAgain(t *testing.T) {
	b := setup(t, sqlstore.EngineSQLite)
	cfg := b.payinConfig(t, 1000)
	k := ivrpay.ConnectorTransactionKey{PlatformID: b.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: "CA-reserve-again"}
	var decided []string
	var reserved *ivrpay.Payin
	var err error
	batchmate := b.s.RunInAFailingBatch(func() {
		_, reserved, _, err = b.s.ReserveConnectorCharge(context.Background(), k, cfg.ID, nil, func(read ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) {
			id := fmt.Sprintf("sbx_pay_again%d", len(decided))
			decided = append(decided, id)
			return &ivrpay.PayinReservation{ID: id, Config: read.Config, Source: ivrpay.PayinSourceIVR, IVRProvider: k.Provider, IVRTransactionID: k.TransactionID,
				Processor: ivrpay.ProcessorAccountRef{Name: payments.SandboxAccount, Kind: ivrpay.ProcessorKindSandbox}, CreatedAt: time.Now(),
				Claim: &ivrpay.ConnectorClaim{ConnectorTransactionKey: k, RequestHash: "hash", ConfigID: cfg.ID, Lease: time.Minute}}, nil
		})
	})
	if batchmate == nil {
		t.Fatal("the batchmate did not fail: the batch was not run again")
	}
	if err != nil || len(decided) != 2 || reserved == nil || reserved.ID != decided[1] {
		t.Fatalf("decided %v, reserved %+v, %v; want two runs and the last one's payin", decided, reserved, err)
	}
	_, rows := paymentstest.ReadRows(t, b.s.DB(), `SELECT id FROM payins WHERE payin_config_id = $1`, cfg.ID)
	if len(rows) != 1 || fmt.Sprint(rows[0][0]) != decided[1] {
		t.Fatalf("the config's payins: %v, want only %s", rows, decided[1])
	}
}
