package payments_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// processAtOnce sends n connector requests with the fixture's IVR key, request
// i being req(i), all at the same moment, and returns their answers in that
// order. A request that ends in an error fails the test.
func processAtOnce(t testing.TB, b *paymentstest.Fixture, n int, req func(i int) ivrpay.IVRRequest) []ivrpay.IVRResult {
	t.Helper()
	results := make([]ivrpay.IVRResult, n)
	errs := make([]error, n)
	paymentstest.AllAtOnce(n, func(i int) { results[i], errs[i] = b.Pay.ProcessIVR(b.IVRCtx, req(i)) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return results
}

// onlyWinner fails the test unless exactly one of results succeeded (with
// an id) and every other was refused CONFIG_ALREADY_USED (without one); it
// returns the success.
func onlyWinner(t testing.TB, results []ivrpay.IVRResult) ivrpay.IVRResult {
	t.Helper()
	winner := -1
	for i, res := range results {
		switch {
		case res.ErrorCode == "" && res.ID != "":
			if winner >= 0 {
				t.Fatalf("requests %d and %d both succeeded on one config: %s and %s", winner, i, results[winner].ID, res.ID)
			}
			winner = i
		case res.ErrorCode != ivrpay.ConnConfigAlreadyUsed || res.ID != "":
			t.Fatalf("request %d answered %+v, want %s", i, res, ivrpay.ConnConfigAlreadyUsed)
		}
	}
	if winner < 0 {
		t.Fatal("no request succeeded")
	}
	return results[winner]
}

func TestIVRIdenticalRequestsRace(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		cfg := b.PayinConfig(t, 1000)
		req := paymentstest.ChargeReq(cfg.ID, "CA-identical-30", paymentstest.VisaOK, 1000)

		results := processAtOnce(t, b, 30, func(int) ivrpay.IVRRequest { return req })
		for i := range results {
			if !reflect.DeepEqual(results[i], results[0]) {
				t.Fatalf("request %d answered %+v, request 0 answered %+v", i, results[i], results[0])
			}
		}
		paymentstest.MustSucceed(t, results[0])
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
			t.Fatalf("%d payins for 30 identical requests, want 1", got)
		}
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.Platform.ID); got != 1 {
			t.Fatalf("%d payment methods stored for one card payin, want 1", got)
		}
		p, err := b.Store.FindPayin(b.AdminCtx, results[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Source != ivrpay.PayinSourceIVR || p.IVR == nil || p.IVR.TransactionID != req.TransactionID || p.IVR.Provider != "TWILIO" ||
			string(p.Metadata) != `{"order":"A-1"}` || p.Status != ivrpay.PayinStatusProcessing || p.Amount != 1000 ||
			p.Card == nil || p.Card.Brand != "VISA" || p.Card.Last4 != "1111" || p.Card.ExpMonth != 8 || p.Card.ExpYear != 2039 {
			t.Fatalf("payin = %+v", p)
		}
		wantParams := map[string]string{"payin_id": p.ID, "payin_status": ivrpay.PayinStatusProcessing,
			"payment_method_id": string(p.PaymentMethodID), "card_brand": "VISA", "card_last_4": "1111"}
		if !reflect.DeepEqual(results[0].Parameters, wantParams) {
			t.Fatalf("parameters = %v, want %v", results[0].Parameters, wantParams)
		}
		// One more, later: the same stored answer.
		if again := paymentstest.Process(t, b.Pay, b.IVRCtx, req); !reflect.DeepEqual(again, results[0]) {
			t.Fatalf("late retry answered %+v, want %+v", again, results[0])
		}
	})
}

func TestIVRConfigRace(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		cfg := b.PayinConfig(t, 2500)

		results := processAtOnce(t, b, 20, func(i int) ivrpay.IVRRequest {
			return paymentstest.ChargeReq(cfg.ID, fmt.Sprintf("CA-race-%02d", i), paymentstest.VisaOK, 2500)
		})
		winner := onlyWinner(t, results)
		if got := paymentstest.Count(t, b.Store.DB(), paymentstest.LivePayins, cfg.ID); got != 1 {
			t.Fatalf("%d live payins for one config, want 1", got)
		}
		got, err := b.Store.FindPayinConfig(b.AdminCtx, cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Payin == nil || got.Payin.PayinID != winner.ID {
			t.Fatalf("config payin = %+v, want %s", got.Payin, winner.ID)
		}
		// Every loser's retry replays its refusal.
		for i, res := range results {
			if res.ID == winner.ID {
				continue
			}
			if again := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, fmt.Sprintf("CA-race-%02d", i), paymentstest.VisaOK, 2500)); !reflect.DeepEqual(again, res) {
				t.Fatalf("retry of transaction %d answered %+v, first answer %+v", i, again, res)
			}
		}
	})
}

func TestIVRTokenizeRace(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		pmc := b.PMConfig(t, b.Merchant.ID)
		onlyWinner(t, processAtOnce(t, b, 20, func(i int) ivrpay.IVRRequest {
			return paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, fmt.Sprintf("CA-tok-race-%02d", i), paymentstest.VisaOK)
		}))
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payment_methods WHERE payment_method_config_id = $1`, pmc.ID); got != 1 {
			t.Fatalf("%d payment methods for one config, want 1", got)
		}
	})
}

func TestIVRDuplicateTransaction(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		cfg := b.PayinConfig(t, 1000)
		cfg2 := b.PayinConfig(t, 1000)
		pmc := b.PMConfig(t, "")
		const tx = "CA-dup"
		first := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, tx, paymentstest.VisaOK, 1000))
		paymentstest.MustSucceed(t, first)

		for _, tc := range []struct {
			name   string
			change func(*ivrpay.IVRRequest)
			same   bool // the same request: replays the first answer
		}{
			{"identical", func(*ivrpay.IVRRequest) {}, true},
			{"other CVV", func(r *ivrpay.IVRRequest) { r.CVV = "999" }, true},
			{"no CVV", func(r *ivrpay.IVRRequest) { r.CVV = "" }, true},
			{"other expiry", func(r *ivrpay.IVRRequest) { r.ExpiryMonth, r.ExpiryYear = "09", "2040" }, true},
			{"other postal code", func(r *ivrpay.IVRRequest) { r.PostalCode = "10001" }, true},
			{"amount written differently", func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(true, "10") }, true},
			{"other card", func(r *ivrpay.IVRRequest) { r.CardNumber = paymentstest.Mastercard }, false},
			{"other amount", func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(true, "10.01") }, false},
			{"other config", func(r *ivrpay.IVRRequest) { r.Parameters = map[string]string{ivrpay.ParamPayinConfigID: cfg2.ID} }, false},
			{"tokenize instead", func(r *ivrpay.IVRRequest) {
				*r = paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, tx, paymentstest.VisaOK)
			}, false},
		} {
			req := paymentstest.ChargeReq(cfg.ID, tx, paymentstest.VisaOK, 1000)
			tc.change(&req)
			res := paymentstest.Process(t, b.Pay, b.IVRCtx, req)
			if tc.same {
				if !reflect.DeepEqual(res, first) {
					t.Errorf("%s: answered %+v, want the first answer %+v", tc.name, res, first)
				}
				continue
			}
			if res.ErrorCode != ivrpay.ConnDuplicateTransaction || res.ID != "" {
				t.Errorf("%s: answered %+v, want %s", tc.name, res, ivrpay.ConnDuplicateTransaction)
			}
		}
		// No second payin was made, and cfg2 is untouched.
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE platform_id = $1`, b.Platform.ID); got != 1 {
			t.Fatalf("%d payins, want 1", got)
		}

		// The same transaction_id on another platform is another transaction.
		other := paymentstest.SetupOn(t, b.Store, engine, b.Opts)
		ocfg := other.PayinConfig(t, 1000)
		paymentstest.MustSucceed(t, paymentstest.Process(t, b.Pay, other.IVRCtx, paymentstest.ChargeReq(ocfg.ID, tx, paymentstest.VisaOK, 1000)))

		// A known transaction gets its stored answer even after the platform's settings changed.
		for _, change := range []struct {
			name    string
			apply   func() error
			newCode string
		}{
			{"IVR disabled", func() error {
				_, err := b.Store.SetPlatformIVR(paymentstest.BoundedContext(t), b.Platform.ID, false)
				return err
			}, ivrpay.ConnIVRNotEnabled},
			{"API version too old", func() error {
				if _, err := b.Store.SetPlatformIVR(paymentstest.BoundedContext(t), b.Platform.ID, true); err != nil {
					return err
				}
				_, err := b.Store.SetPlatformMinAPIVersion(paymentstest.BoundedContext(t), b.Platform.ID, ivrpay.APIVersion20230101)
				return err
			}, ivrpay.ConnUnsupportedAPIVersion},
		} {
			if err := change.apply(); err != nil {
				t.Fatal(err)
			}
			key := paymentstest.Authenticate(t, b.Store, b.IVRKey.Secret)
			ctx := ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), key)
			if res := paymentstest.Process(t, b.Pay, ctx, paymentstest.ChargeReq(cfg.ID, tx, paymentstest.VisaOK, 1000)); !reflect.DeepEqual(res, first) {
				t.Fatalf("%s: replay answered %+v, want the stored %+v", change.name, res, first)
			}
			if res := paymentstest.Process(t, b.Pay, ctx, paymentstest.ChargeReq(cfg2.ID, "CA-after-"+change.newCode, paymentstest.VisaOK, 1000)); res.ErrorCode != change.newCode {
				t.Fatalf("%s: a new transaction answered %+v, want %s", change.name, res, change.newCode)
			}
		}
	})
}

// TestIVRSlowProcessorRetry is Twilio's retry after its 10 s timeout: the
// retry arrives while the first attempt still waits for the processor, waits
// for it, and gets the same answer; no second payin is made.
func TestIVRSlowProcessorRetry(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		entered := make(chan struct{}, 4)
		release := make(chan struct{})
		var sleeps atomic.Int32
		clock := paymentstest.NewFakeClock(time.Date(2026, 3, 15, 10, 20, 30, 0, time.UTC))
		b := paymentstest.Setup(t, engine, func(o *paymentstest.Config) {
			o.Clock = clock
			o.Processor = &sandbox.Processor{Sleep: func(ctx context.Context, d time.Duration) error {
				sleeps.Add(1)
				entered <- struct{}{}
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
		})
		cfg := b.PayinConfig(t, sandbox.SlowAmount)
		req := paymentstest.ChargeReq(cfg.ID, "CA-slow", paymentstest.VisaOK, sandbox.SlowAmount)

		// The first attempt's caller hangs up while the processor works:
		// the charge still runs to completion.
		ctx1, hangUp := context.WithCancel(b.IVRCtx)
		var res1, res2 ivrpay.IVRResult
		var err1, err2 error
		done1, done2 := make(chan struct{}), make(chan struct{})
		go func() { defer close(done1); res1, err1 = b.Pay.ProcessIVR(ctx1, req) }()
		<-entered

		// From now on only the retry reads the clock: its second reading is
		// the lease check of a transaction it saw RUNNING.
		var reads atomic.Int32
		waiting := make(chan struct{})
		clock.SetHook(func() {
			if reads.Add(1) == 2 {
				close(waiting)
			}
		})
		go func() { defer close(done2); res2, err2 = b.Pay.ProcessIVR(b.IVRCtx, req) }()
		select {
		case <-waiting:
		case <-done2:
			t.Fatalf("the retry returned %+v, %v while the first attempt was still running", res2, err2)
		case <-time.After(30 * time.Second):
			hangUp()
			close(release)
			t.Fatal("the retry was not seen waiting for the running attempt within 30 s")
		}
		clock.SetHook(nil)
		hangUp()
		close(release)
		<-done1
		<-done2

		if err1 != nil || err2 != nil {
			t.Fatalf("errors: first %v, retry %v", err1, err2)
		}
		paymentstest.MustSucceed(t, res1)
		if !reflect.DeepEqual(res1, res2) {
			t.Fatalf("first answered %+v, retry answered %+v", res1, res2)
		}
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
			t.Fatalf("%d payins, want 1", got)
		}
		if n := sleeps.Load(); n != 1 {
			t.Fatalf("the processor was asked %d times, want once", n)
		}
		p, err := b.Store.FindPayin(b.AdminCtx, res1.ID)
		if err != nil || p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("payin after a hang-up: %+v, %v; want PROCESSING", p, err)
		}
	})
}

// crashingProcessor is the sandbox processor, except that while crash is set
// it panics, as a process dying while waiting for the card network would.
type crashingProcessor struct {
	sandbox.Processor
	crash atomic.Bool
}

type crashed struct{}

func (p *crashingProcessor) Authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	if p.crash.Load() {
		panic(crashed{})
	}
	return p.Processor.Authorize(ctx, a)
}

// TestIVRCrashResume: an attempt that claimed its transaction and reserved
// the config with a CREATED payin, then died, is resumed by Twilio's retry
// once its lease has ended: the same payin completes and no second is made.
func TestIVRCrashResume(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			name string
			// withPayin: the dead attempt had inserted its CREATED payin.
			withPayin bool
		}{
			{"claimed, payin CREATED", true},
			{"claimed, no payin yet", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := paymentstest.Setup(t, engine)
				cfg := b.PayinConfig(t, 1000, func(c *ivrpay.PayinConfigCreate) {
					c.BillingContact = &ivrpay.BillingContact{Name: "Ada"}
				})
				const tx = "CA-crashed"
				req := paymentstest.ChargeReq(cfg.ID, tx, paymentstest.VisaOK, 1000)
				db := b.Store.DB()
				now := time.Now().UTC()

				// The store itself computes the request hash: a probe with the
				// same request under another transaction_id, by a principal whose
				// platform has IVR off, stores it and stops there.
				probeKey := *b.IVRKey
				probePlatform := *probeKey.Platform
				probePlatform.IVRPayments = false
				probeKey.Platform = &probePlatform
				probeReq := req
				probeReq.TransactionID = "probe"
				if res := paymentstest.Process(t, b.Pay, ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), &probeKey), probeReq); res.ErrorCode != ivrpay.ConnIVRNotEnabled {
					t.Fatalf("probe answered %+v", res)
				}
				var hash string
				storedID := func(txID string) string {
					return sqlstore.ConnectorTransactionID(ivrpay.ConnectorTransactionKey{PlatformID: b.Platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: txID})
				}
				if err := db.QueryRow(`SELECT request_hash FROM connector_transactions WHERE platform_id = $1 AND transaction_id = $2`, b.Platform.ID, storedID("probe")).Scan(&hash); err != nil {
					t.Fatal(err)
				}

				if _, err := db.Exec(`INSERT INTO connector_transactions (platform_id, transaction_id, request_hash, status, lease_until, created_at, updated_at)
					VALUES ($1, $2, $3, 'RUNNING', $4, $5, $5)`, b.Platform.ID, storedID(tx), hash, ivrpay.FormatTime(now.Add(-time.Minute)), ivrpay.FormatTime(now.Add(-2*time.Minute))); err != nil {
					t.Fatal(err)
				}
				var payinID string
				if tc.withPayin {
					payinID = ivrpay.NewID(ivrpay.ModeSandbox, ivrpay.PrefixPayin, now)
					if _, err := db.Exec(`INSERT INTO payins (id, platform_id, merchant_id, payin_config_id, amount, currency_code, status,
						brand, last4, exp_month, exp_year, billing_contact, metadata, source, ivr_provider, ivr_transaction_id, created_at, updated_at)
						VALUES ($1, $2, $3, $4, 1000, 'USD', 'CREATED', 'VISA', '1111', 8, 2039, $5, $6, 'IVR', 'TWILIO', $7, $8, $8)`,
						payinID, b.Platform.ID, b.Merchant.ID, cfg.ID, `{"name":"Ada","postal_code":"94111"}`, `{"order":"A-1"}`, tx,
						ivrpay.FormatTime(now.Add(-2*time.Minute))); err != nil {
						t.Fatal(err)
					}
					// The reserved config refuses another transaction meanwhile.
					if res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-intruder", paymentstest.VisaOK, 1000)); res.ErrorCode != ivrpay.ConnConfigAlreadyUsed {
						t.Fatalf("another transaction on the reserved config answered %+v, want %s", res, ivrpay.ConnConfigAlreadyUsed)
					}
				}

				res := paymentstest.Process(t, b.Pay, b.IVRCtx, req)
				paymentstest.MustSucceed(t, res)
				if tc.withPayin && res.ID != payinID {
					t.Fatalf("the retry made payin %s instead of resuming %s", res.ID, payinID)
				}
				if got := paymentstest.Count(t, db, `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
					t.Fatalf("%d payins after the resume, want 1", got)
				}
				p, err := b.Store.FindPayin(b.AdminCtx, res.ID)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != ivrpay.PayinStatusProcessing || p.PaymentMethodID == "" || p.IVR == nil || p.IVR.TransactionID != tx {
					t.Fatalf("resumed payin = %+v", p)
				}
				if c, _ := b.Store.FindPayinConfig(b.AdminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != res.ID {
					t.Fatalf("config payin = %+v, want %s", c.Payin, res.ID)
				}
				if again := paymentstest.Process(t, b.Pay, b.IVRCtx, req); !reflect.DeepEqual(again, res) {
					t.Fatalf("replay after the resume answered %+v, want %+v", again, res)
				}
			})
		}

		// The same, with a real crash: the processor panics mid-charge, the
		// retry waits while the dead attempt's lease runs, then takes over.
		t.Run("processor crash, lease expiry", func(t *testing.T) {
			t.Parallel()
			clock := paymentstest.NewFakeClock(time.Date(2026, 3, 15, 10, 20, 30, 0, time.UTC))
			proc := &crashingProcessor{}
			b := paymentstest.Setup(t, engine, func(o *paymentstest.Config) { o.Clock, o.Processor = clock, proc })
			cfg := b.PayinConfig(t, 1000)
			req := paymentstest.ChargeReq(cfg.ID, "CA-crash-real", paymentstest.VisaOK, 1000)

			proc.crash.Store(true)
			func() {
				defer func() {
					if r := recover(); r != (crashed{}) {
						t.Fatalf("recovered %v, want the simulated crash", r)
					}
				}()
				b.Pay.ProcessIVR(b.IVRCtx, req)
				t.Fatal("ProcessIVR returned although the processor crashed")
			}()
			proc.crash.Store(false)
			var reserved string
			if err := b.Store.DB().QueryRow(`SELECT id FROM payins WHERE payin_config_id = $1 AND status = 'CREATED'`, cfg.ID).Scan(&reserved); err != nil {
				t.Fatalf("no CREATED payin after the crash: %v", err)
			}

			var reads atomic.Int32
			waiting := make(chan struct{})
			clock.SetHook(func() {
				if reads.Add(1) == 2 {
					close(waiting)
				}
			})
			var res ivrpay.IVRResult
			var err error
			done := make(chan struct{})
			go func() { defer close(done); res, err = b.Pay.ProcessIVR(b.IVRCtx, req) }()
			select {
			case <-waiting:
			case <-done:
				t.Fatalf("the retry returned %+v, %v before the crashed attempt's lease ended", res, err)
			case <-time.After(30 * time.Second):
				clock.Advance(time.Minute)
				t.Fatal("the retry was not seen waiting for the crashed attempt's lease within 30 s")
			}
			clock.SetHook(nil)
			clock.Advance(time.Minute)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			paymentstest.MustSucceed(t, res)
			if res.ID != reserved {
				t.Fatalf("the retry made payin %s instead of resuming %s", res.ID, reserved)
			}
			if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
				t.Fatalf("%d payins, want 1", got)
			}
		})
	})
}

func TestIVRTokenize(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			param    string
			merchant bool
		}{
			{ivrpay.ParamPaymentMethodConfigID, true},
			{ivrpay.ParamPaymentMethodConfigID, false},
			{ivrpay.ParamPaymentMethodIDAlias, true},
			{ivrpay.ParamPaymentMethodIDAlias, false},
		} {
			t.Run(fmt.Sprintf("%s merchant=%v", tc.param, tc.merchant), func(t *testing.T) {
				t.Parallel()
				b := paymentstest.Setup(t, engine)
				merchantID := ""
				if tc.merchant {
					merchantID = b.Merchant.ID
				}
				pmc := b.PMConfig(t, merchantID)
				res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(tc.param, pmc.ID, "CA-tok-1", paymentstest.Mastercard))
				paymentstest.MustSucceed(t, res)
				if !strings.HasPrefix(res.ID, "sbx_mtd_") {
					t.Fatalf("token id %s", res.ID)
				}
				want := map[string]string{"payment_method_id": res.ID, "card_brand": "MASTERCARD", "card_last_4": "4444"}
				if !reflect.DeepEqual(res.Parameters, want) {
					t.Fatalf("parameters = %v, want %v", res.Parameters, want)
				}
				got, err := b.Store.FindPaymentMethodConfig(b.AdminCtx, pmc.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.PaymentMethod == nil || got.PaymentMethod.PaymentMethodID != res.ID {
					t.Fatalf("config payment_method = %+v, want %s", got.PaymentMethod, res.ID)
				}
				pm, err := b.Store.FindPaymentMethod(b.AdminCtx, res.ID)
				if err != nil {
					t.Fatal(err)
				}
				if pm.Status != ivrpay.PaymentMethodStatusActive || string(pm.PaymentMethodConfigID) != pmc.ID || string(pm.MerchantID) != merchantID ||
					pm.Card == nil || pm.Card.Brand != "MASTERCARD" || pm.Card.Last4 != "4444" || pm.Card.ExpYear != 2039 ||
					pm.Fingerprint != b.Opts.Vault.Fingerprint(paymentstest.Mastercard) || pm.BillingContact == nil || pm.BillingContact.PostalCode != paymentstest.GoodPostal {
					t.Fatalf("payment method = %+v", pm)
				}
				// The config stores one card only.
				again := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(tc.param, pmc.ID, "CA-tok-2", paymentstest.VisaOK))
				if again.ErrorCode != ivrpay.ConnConfigAlreadyUsed || again.ID != "" {
					t.Fatalf("second tokenize answered %+v, want %s", again, ivrpay.ConnConfigAlreadyUsed)
				}
				if n := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.Platform.ID); n != 1 {
					t.Fatalf("%d payment methods, want 1", n)
				}
				// A charge request naming a payment method config is the wrong kind.
				mismatch := paymentstest.TokenizeReq(tc.param, pmc.ID, "CA-tok-3", paymentstest.VisaOK)
				mismatch.Method, mismatch.Amount = ivrpay.IVRMethodCharge, ivrpay.ParseIVRAmount(true, "10.00")
				if r := paymentstest.Process(t, b.Pay, b.IVRCtx, mismatch); r.ErrorCode != ivrpay.ConnConfigMethodMismatch {
					t.Fatalf("charge with a payment method config answered %+v, want %s", r, ivrpay.ConnConfigMethodMismatch)
				}
			})
		}
	})
}

func TestChargePaymentMethod(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		s := b.Store
		// One card stored by an IVR tokenize, one by an IVR charge.
		pmc := b.PMConfig(t, b.Merchant.ID)
		tok := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-store", paymentstest.VisaOK))
		paymentstest.MustSucceed(t, tok)
		charged := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(b.PayinConfig(t, 700).ID, "CA-first-charge", paymentstest.Mastercard, 700))
		paymentstest.MustSucceed(t, charged)

		for _, tc := range []struct {
			name, pmID, last4 string
		}{
			{"tokenized card", tok.ID, "1111"},
			{"card of an IVR payin", charged.Parameters["payment_method_id"], "4444"},
		} {
			cfg := b.PayinConfig(t, 4200)
			p, err := b.Pay.ChargePaymentMethod(b.AdminCtx, tc.pmID, cfg.ID)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if p.Source != ivrpay.PayinSourceAPIStoredPaymentMethod || string(p.PaymentMethodID) != tc.pmID || p.PayinConfigID != cfg.ID ||
				p.Status != ivrpay.PayinStatusProcessing || p.Amount != 4200 || p.IVR != nil || p.Card == nil || p.Card.Last4 != tc.last4 {
				t.Fatalf("%s: payin = %+v", tc.name, p)
			}
			if c, _ := s.FindPayinConfig(b.AdminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != p.ID {
				t.Fatalf("%s: config payin = %+v, want %s", tc.name, c.Payin, p.ID)
			}
			// The config now has a payin: another charge conflicts, with either card.
			for _, pmID := range []string{tok.ID, charged.Parameters["payment_method_id"]} {
				_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, pmID, cfg.ID)
				paymentstest.WantCode(t, err, ivrpay.ECONFLICT)
			}
			// So does an IVR charge of it.
			if r := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-late-"+tc.last4, paymentstest.VisaOK, 4200)); r.ErrorCode != ivrpay.ConnConfigAlreadyUsed {
				t.Fatalf("%s: IVR charge of a used config answered %+v", tc.name, r)
			}
			if got := paymentstest.Count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
				t.Fatalf("%s: %d payins, want 1", tc.name, got)
			}
		}
		// No new payment method is stored for a stored card's payin.
		if got := paymentstest.Count(t, s.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.Platform.ID); got != 2 {
			t.Fatalf("%d payment methods, want 2", got)
		}

		// Concurrent charges of stored cards on one config: one payin.
		raced := b.PayinConfig(t, 1500)
		var wins atomic.Int32
		paymentstest.AllAtOnce(10, func(i int) {
			pmID := tok.ID
			if i%2 == 1 {
				pmID = charged.Parameters["payment_method_id"]
			}
			_, err := b.Pay.ChargePaymentMethod(b.AdminCtx, pmID, raced.ID)
			switch ivrpay.ErrorCode(err) {
			case "":
				wins.Add(1)
			case ivrpay.ECONFLICT:
			default:
				t.Errorf("concurrent ChargePaymentMethod: %v", err)
			}
		})
		if wins.Load() != 1 || paymentstest.Count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, raced.ID) != 1 {
			t.Fatalf("%d of 10 concurrent charges of one config succeeded, want 1", wins.Load())
		}

		// Refusals.
		cfg := b.PayinConfig(t, 1000)
		_, err := b.Pay.ChargePaymentMethod(b.AdminCtx, "sbx_mtd_doesnotexist", cfg.ID)
		paymentstest.WantCode(t, err, ivrpay.ENOTFOUND)
		_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, "sbx_cfg_doesnotexist")
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
		_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, "")
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
		// An IVR key's payin:create is not enough: charging a stored card
		// needs payment_method:read on the card too.
		_, err = b.Pay.ChargePaymentMethod(b.IVRCtx, tok.ID, cfg.ID)
		paymentstest.WantCode(t, err, ivrpay.EFORBIDDEN)
		if !strings.Contains(ivrpay.ErrorMessage(err), "payment_method:read") {
			t.Fatalf("IVR key charging a stored card: %v, want a 403 naming payment_method:read", err)
		}
		if _, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, cfg.ID); err != nil {
			t.Fatalf("admin charging a stored card: %v", err)
		}
		other := paymentstest.SetupOn(t, s, engine, b.Opts)
		_, err = b.Pay.ChargePaymentMethod(other.AdminCtx, tok.ID, other.PayinConfig(t, 1000).ID)
		paymentstest.WantCode(t, err, ivrpay.ENOTFOUND)
		_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, other.PayinConfig(t, 1000).ID)
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
		readOnly := paymentstest.CreateKey(t, s, b.AdminCtx, paymentstest.PlatformStatement(b.Platform.ID, "", "payin:read"))
		_, err = b.Pay.ChargePaymentMethod(ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), readOnly), tok.ID, b.PayinConfig(t, 1000).ID)
		paymentstest.WantCode(t, err, ivrpay.EFORBIDDEN)

		// A deactivated card cannot be charged.
		pm, err := s.DeactivatePaymentMethod(b.AdminCtx, tok.ID)
		if err != nil || pm.Status != ivrpay.PaymentMethodStatusDeactivated {
			t.Fatalf("DeactivatePaymentMethod: %+v, %v", pm, err)
		}
		fresh := b.PayinConfig(t, 1000)
		_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, fresh.ID)
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
		if c, _ := s.FindPayinConfig(b.AdminCtx, fresh.ID); c.Payin != nil {
			t.Fatalf("a refused charge used the config: %+v", c.Payin)
		}
		if got := paymentstest.Count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, fresh.ID); got != 0 {
			t.Fatalf("a refused charge made %d payins", got)
		}
	})
}

// TestChargePaymentMethodMerchantScope: a key limited to one merchant must not
// charge a card stored for another merchant of the platform (docs/decisions.md: an
// object of the same platform that the key's merchant constraint excludes
// answers 403).
func TestChargePaymentMethodMerchantScope(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		m2, err := b.Store.CreateMerchant(b.AdminCtx, ivrpay.MerchantCreate{Name: "Second Shop"})
		if err != nil {
			t.Fatal(err)
		}
		pmc := b.PMConfig(t, b.Merchant.ID)
		tok := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-m1-card", paymentstest.VisaOK))
		paymentstest.MustSucceed(t, tok)
		m2Key := paymentstest.CreateKey(t, b.Store, b.AdminCtx, paymentstest.PlatformStatement(b.Platform.ID, m2.ID, "payin:create", "payin:read"))
		m2Cfg, err := b.Store.CreatePayinConfig(b.AdminCtx, ivrpay.PayinConfigCreate{MerchantID: m2.ID, IdempotencyKey: "m2", Amount: "1000", CurrencyCode: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.Pay.ChargePaymentMethod(ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), m2Key), tok.ID, m2Cfg.ID)
		if ivrpay.ErrorCode(err) != ivrpay.EFORBIDDEN {
			var made string
			if p != nil {
				made = " (made payin " + p.ID + ")"
			}
			t.Fatalf("a key limited to merchant %s charged a card of merchant %s: err %v%s; want %s",
				m2.ID, b.Merchant.ID, err, made, ivrpay.EFORBIDDEN)
		}
		// Not even a platform key pays one merchant's config with another merchant's card.
		_, err = b.Pay.ChargePaymentMethod(b.AdminCtx, tok.ID, m2Cfg.ID)
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
		if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, m2Cfg.ID); got != 0 {
			t.Fatalf("refused charges made %d payins", got)
		}
		// A card stored without a merchant (platform level) pays any merchant's config for a platform key.
		platformCard := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, b.PMConfig(t, "").ID, "CA-platform-card", paymentstest.Mastercard))
		paymentstest.MustSucceed(t, platformCard)
		if _, err := b.Pay.ChargePaymentMethod(b.AdminCtx, platformCard.ID, m2Cfg.ID); err != nil {
			t.Fatalf("platform key charging a platform-level card: %v", err)
		}
	})
}

func TestIVRDeclines(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			name           string
			pan, cvv, zip  string
			amount         int64
			code           string
			declineByAmout bool
		}{
			{"card declined", "4000000000000002", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalDeclined, false},
			{"insufficient funds", "4000000000009995", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalInsufficientFunds, false},
			{"expired card", "4000000000000069", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalExpiredCard, false},
			{"bad CVC card", "4000000000000127", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalInvalidCardSecurityCode, false},
			{"processing error card", "4000000000000119", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalProcessingError, false},
			{"risk decline", "4100000000000019", paymentstest.GoodCVV, paymentstest.GoodPostal, 1000, ivrpay.RefusalRiskDecline, false},
			{"CVC 000", paymentstest.VisaOK, "000", paymentstest.GoodPostal, 1000, ivrpay.RefusalInvalidCardSecurityCode, false},
			{"postal code 00000", paymentstest.VisaOK, paymentstest.GoodCVV, "00000", 1000, ivrpay.RefusalIncorrectPaymentInformation, false},
			{"amount 51.01", paymentstest.VisaOK, paymentstest.GoodCVV, paymentstest.GoodPostal, 5101, ivrpay.RefusalDeclined, true},
			{"amount 51.02", paymentstest.VisaOK, paymentstest.GoodCVV, paymentstest.GoodPostal, 5102, ivrpay.RefusalInsufficientFunds, true},
			{"amount 51.03", paymentstest.VisaOK, paymentstest.GoodCVV, paymentstest.GoodPostal, 5103, ivrpay.RefusalDoNotHonor, true},
			{"amount 51.05", paymentstest.VisaOK, paymentstest.GoodCVV, paymentstest.GoodPostal, 5105, ivrpay.RefusalProcessingError, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := paymentstest.Setup(t, engine)
				cfg := b.PayinConfig(t, tc.amount)
				req := paymentstest.ChargeReq(cfg.ID, "CA-decline", tc.pan, tc.amount)
				req.CVV, req.PostalCode = tc.cvv, tc.zip
				res := paymentstest.Process(t, b.Pay, b.IVRCtx, req)
				if res.ErrorCode != tc.code || res.ID != "" || res.ErrorMessage == "" {
					t.Fatalf("answer = %+v, want error_code %s", res, tc.code)
				}
				failedID := res.Parameters["payin_id"]
				if failedID == "" || res.Parameters["payin_status"] != ivrpay.PayinStatusFailed || res.Parameters["card_last_4"] != card.Last4(tc.pan) {
					t.Fatalf("parameters of a decline = %v", res.Parameters)
				}
				p, err := b.Store.FindPayin(b.AdminCtx, failedID)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != ivrpay.PayinStatusFailed || string(p.RefusalCode) != tc.code || p.RefusalDesc == "" || p.CapturedAmount != 0 {
					t.Fatalf("declined payin = %+v", p)
				}
				if c, _ := b.Store.FindPayinConfig(b.AdminCtx, cfg.ID); c.Payin != nil {
					t.Fatalf("a declined payin holds the config: %+v", c.Payin)
				}
				// The retry of the declined transaction replays the decline.
				if again := paymentstest.Process(t, b.Pay, b.IVRCtx, req); !reflect.DeepEqual(again, res) {
					t.Fatalf("replay of the decline = %+v, want %+v", again, res)
				}

				// The config stays usable: the caller tries again (a new transaction).
				next := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-after-decline", paymentstest.VisaOK, tc.amount))
				if tc.declineByAmout {
					// The sandbox declines this amount whatever the card: the
					// config is charged again, not refused as used.
					if next.ErrorCode != tc.code || next.Parameters["payin_id"] == "" || next.Parameters["payin_id"] == failedID {
						t.Fatalf("second attempt answered %+v, want a new %s payin", next, tc.code)
					}
				} else {
					paymentstest.MustSucceed(t, next)
					if c, _ := b.Store.FindPayinConfig(b.AdminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != next.ID {
						t.Fatalf("config payin = %+v, want %s", c.Payin, next.ID)
					}
				}
				if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 2 {
					t.Fatalf("%d payins, want 2", got)
				}
			})
		}
	})
}

func TestIVRAuthorizeMode(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		cfg := b.PayinConfig(t, 3000, func(c *ivrpay.PayinConfigCreate) { c.ProcessingMode = ivrpay.ProcessingModeAuthorize })
		if cfg.ProcessingMode != ivrpay.ProcessingModeAuthorize {
			t.Fatalf("processing mode = %s", cfg.ProcessingMode)
		}
		res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-auth", paymentstest.VisaOK, 3000))
		paymentstest.MustSucceed(t, res)
		if res.Parameters["payin_status"] != ivrpay.PayinStatusAuthorized {
			t.Fatalf("payin_status = %s, want AUTHORIZED", res.Parameters["payin_status"])
		}
		p, err := b.Store.FindPayin(b.AdminCtx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != ivrpay.PayinStatusAuthorized || p.AuthorizedAmount != 3000 || p.CapturedAmount != 0 || p.RefundableAmount != 0 {
			t.Fatalf("payin = %+v", p)
		}
		old := ivrpay.NewContextWithVersion(b.AdminCtx, ivrpay.APIVersion20231201)
		p, err = b.Store.FindPayin(old, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("status at 2023-12-01 = %s, want PROCESSING", p.Status)
		}
		l, err := b.Store.ListPayins(old, ivrpay.PayinFilter{Status: ivrpay.PayinStatusProcessing})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Results) != 1 || l.Results[0].Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("PROCESSING payins at 2023-12-01 = %+v", l.Results)
		}
		if l, err := b.Store.ListPayins(b.AdminCtx, ivrpay.PayinFilter{Status: ivrpay.PayinStatusProcessing}); err != nil || len(l.Results) != 0 {
			t.Fatalf("PROCESSING payins at 2024-10-16 = %v, %v; want none", l, err)
		}
		// The config counts as used.
		if c, _ := b.Store.FindPayinConfig(b.AdminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != res.ID {
			t.Fatalf("config payin = %+v", c.Payin)
		}
		// AUTHORIZE is refused at 2023-12-01.
		_, err = b.Store.CreatePayinConfig(old, ivrpay.PayinConfigCreate{MerchantID: b.Merchant.ID, IdempotencyKey: "old-auth", Amount: "100",
			CurrencyCode: "USD", ProcessingMode: ivrpay.ProcessingModeAuthorize})
		paymentstest.WantCode(t, err, ivrpay.EINVALID)
	})
}

// luhnComplete appends the check digit that makes prefix Luhn-valid.
func luhnComplete(prefix string) string {
	for d := '0'; d <= '9'; d++ {
		if card.Luhn(prefix + string(d)) {
			return prefix + string(d)
		}
	}
	panic("unreachable")
}

// TestIVRChecks runs the connector's checks of docs/connector.md after the
// transaction claim: each refusal makes no payin and leaves the config usable.
func TestIVRChecks(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		s := b.Store
		other := paymentstest.SetupOn(t, s, engine, b.Opts)
		m2, err := s.CreateMerchant(b.AdminCtx, ivrpay.MerchantCreate{Name: "Second Shop"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.PayinConfig(t, 1000)
		zipCfg := b.PayinConfig(t, 1000, func(c *ivrpay.PayinConfigCreate) {
			c.BillingContact = &ivrpay.BillingContact{PostalCode: "10001"}
		})
		pmc := b.PMConfig(t, "")
		otherCfg := other.PayinConfig(t, 1000)
		m2Key := paymentstest.CreateKey(t, s, b.AdminCtx, paymentstest.PlatformStatement(b.Platform.ID, m2.ID, "payin:create"))
		tokOnly := paymentstest.CreateKey(t, s, b.AdminCtx, paymentstest.PlatformStatement(b.Platform.ID, "", "payment_method:create"))
		noIVR := *b.IVRKey
		noIVRPlatform := *noIVR.Platform
		noIVRPlatform.IVRPayments = false
		noIVR.Platform = &noIVRPlatform
		oldVersion := *b.IVRKey
		oldPlatform := *oldVersion.Platform
		oldPlatform.MinAPIVersion = ivrpay.APIVersion20230101
		oldVersion.Platform = &oldPlatform

		unionPay := luhnComplete("625094100652859")
		expired := time.Now().UTC().AddDate(0, -2, 0)
		tests := []struct {
			name   string
			key    *ivrpay.APIKey
			change func(*ivrpay.IVRRequest)
			code   string
		}{
			{"IVR off", &noIVR, nil, ivrpay.ConnIVRNotEnabled},
			{"API version 2023-01-01", &oldVersion, nil, ivrpay.ConnUnsupportedAPIVersion},
			{"no config parameter", nil, func(r *ivrpay.IVRRequest) { r.Parameters = map[string]string{"other": "x"} }, ivrpay.ConnMissingConfigID},
			{"charge with a payment method config", nil, func(r *ivrpay.IVRRequest) {
				r.Parameters = map[string]string{ivrpay.ParamPaymentMethodConfigID: pmc.ID}
			}, ivrpay.ConnConfigMethodMismatch},
			{"tokenize with a payin config", nil, func(r *ivrpay.IVRRequest) {
				*r = paymentstest.TokenizeReq(ivrpay.ParamPayinConfigID, cfg.ID, r.TransactionID, paymentstest.VisaOK)
			}, ivrpay.ConnConfigMethodMismatch},
			{"unknown config", nil, func(r *ivrpay.IVRRequest) { r.Parameters[ivrpay.ParamPayinConfigID] = "sbx_cfg_doesnotexist" }, ivrpay.ConnConfigNotFound},
			{"another platform's config", nil, func(r *ivrpay.IVRRequest) { r.Parameters[ivrpay.ParamPayinConfigID] = otherCfg.ID }, ivrpay.ConnConfigNotFound},
			{"key of another merchant", m2Key, nil, ivrpay.ConnForbidden},
			{"key without payin:create", tokOnly, nil, ivrpay.ConnForbidden},
			{"ACH", nil, func(r *ivrpay.IVRRequest) { r.ACH, r.CardNumber = true, "" }, ivrpay.ConnUnsupportedPaymentMethod},
			{"EUR", nil, func(r *ivrpay.IVRRequest) { r.CurrencyCode = "EUR" }, ivrpay.ConnUnsupportedCurrency},
			{"no amount", nil, func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(false, "") }, ivrpay.ConnInvalidAmount},
			{"three decimals", nil, func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(true, "10.000") }, ivrpay.ConnInvalidAmount},
			{"other amount", nil, func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(true, "10.50") }, ivrpay.ConnAmountMismatch},
			{"Luhn", nil, func(r *ivrpay.IVRRequest) { r.CardNumber = "4111111111111112" }, ivrpay.ConnInvalidCardNumber},
			{"short", nil, func(r *ivrpay.IVRRequest) { r.CardNumber = "41111" }, ivrpay.ConnInvalidCardNumber},
			{"UnionPay", nil, func(r *ivrpay.IVRRequest) { r.CardNumber = unionPay }, ivrpay.ConnUnsupportedCardBrand},
			{"month 13", nil, func(r *ivrpay.IVRRequest) { r.ExpiryMonth = "13" }, ivrpay.ConnInvalidExpirationDate},
			{"expired", nil, func(r *ivrpay.IVRRequest) {
				r.ExpiryMonth, r.ExpiryYear = fmt.Sprintf("%02d", int(expired.Month())), fmt.Sprint(expired.Year())
			}, ivrpay.ConnExpiredCard},
			{"4-digit CVV on Visa", nil, func(r *ivrpay.IVRRequest) { r.CVV = "1234" }, ivrpay.ConnInvalidCardSecurityCode},
			{"3-digit CID on Amex", nil, func(r *ivrpay.IVRRequest) { r.CardNumber, r.CVV = "378282246310005", "123" }, ivrpay.ConnInvalidCardSecurityCode},
			{"no postal code", nil, func(r *ivrpay.IVRRequest) { r.PostalCode = "" }, ivrpay.ConnMissingPostalCode},
		}
		for i, tc := range tests {
			req := paymentstest.ChargeReq(cfg.ID, fmt.Sprintf("CA-check-%02d", i), paymentstest.VisaOK, 1000)
			if tc.change != nil {
				tc.change(&req)
			}
			key := tc.key
			if key == nil {
				key = b.IVRKey
			}
			res := paymentstest.Process(t, b.Pay, ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), key), req)
			if res.ErrorCode != tc.code || res.ID != "" || res.ErrorMessage == "" {
				t.Errorf("%s: answered %+v, want %s", tc.name, res, tc.code)
			}
			if strings.Contains(res.ErrorMessage, req.CardNumber) && req.CardNumber != "" {
				t.Errorf("%s: the error message contains the card number", tc.name)
			}
		}
		if got := paymentstest.Count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE platform_id = $1`, b.Platform.ID); got != 0 {
			t.Fatalf("refused requests made %d payins", got)
		}
		// The config's postal code stands in for the caller's.
		req := paymentstest.ChargeReq(zipCfg.ID, "CA-config-zip", paymentstest.VisaOK, 1000)
		req.PostalCode = ""
		paymentstest.MustSucceed(t, paymentstest.Process(t, b.Pay, b.IVRCtx, req))
		// The refused requests used up nothing.
		paymentstest.MustSucceed(t, paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-checks-ok", paymentstest.VisaOK, 1000)))
		paymentstest.MustSucceed(t, paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.TokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-checks-tok", paymentstest.VisaOK)))
	})
}

// staleLookup is the store as a request sees it when another request's
// claim commits between its look-up and its first write: the look-up finds
// nothing. It counts the writes refused as claimed by another.
type staleLookup struct {
	payments.Store
	taken atomic.Int32
}

func (s *staleLookup) FindConnectorTransaction(context.Context, ivrpay.ConnectorTransactionKey) (ivrpay.ConnectorTransaction, bool, error) {
	return ivrpay.ConnectorTransaction{}, false, nil
}

// ReserveConnectorCharge reads as a store whose read and write are not one
// transaction would: the transaction not found, then the reservation
// written apart.
func (s *staleLookup) ReserveConnectorCharge(ctx context.Context, k ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup,
	decide func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error)) (ivrpay.ChargeRead, *ivrpay.Payin, *ivrpay.Payin, error) {
	read, _, _, err := s.Store.ReserveConnectorCharge(ctx, k, configID, risk, func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) { return nil, nil })
	if err != nil {
		return read, nil, nil, err
	}
	read.Transaction, read.Found = ivrpay.ConnectorTransaction{}, false
	r, err := decide(read)
	if err != nil || r == nil {
		return read, nil, nil, err
	}
	p, holder, err := s.ReservePayin(ctx, *r)
	return read, p, holder, err
}

func (s *staleLookup) ReservePayin(ctx context.Context, r ivrpay.PayinReservation) (*ivrpay.Payin, *ivrpay.Payin, error) {
	p, holder, err := s.Store.ReservePayin(ctx, r)
	if errors.Is(err, ivrpay.ErrClaimTaken) {
		s.taken.Add(1)
	}
	return p, holder, err
}

func (s *staleLookup) FinishConnectorTransaction(ctx context.Context, a ivrpay.ConnectorAnswer) error {
	err := s.Store.FinishConnectorTransaction(ctx, a)
	if errors.Is(err, ivrpay.ErrClaimTaken) {
		s.taken.Add(1)
	}
	return err
}

// TestIVRClaimWrittenWithFirstChange: a new charge's claim is written with
// its reservation, or with its refusal. When another request claimed the
// transaction after this one looked it up, the write is refused whole
// (nothing of it kept) and the request answers as a retry: the first
// answer, byte for byte, with no second payin.
func TestIVRClaimWrittenWithFirstChange(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b := paymentstest.Setup(t, engine)
		stale := &staleLookup{Store: b.Store}
		late := b.Opts.PaymentsOn(stale)
		for _, row := range []struct {
			name  string
			req   func() ivrpay.IVRRequest
			check func(t *testing.T, first ivrpay.IVRResult)
		}{
			{name: "approved charge (claim with the reservation)", req: func() ivrpay.IVRRequest {
				return paymentstest.ChargeReq(b.PayinConfig(t, 1000).ID, "CA-stale-approved", paymentstest.VisaOK, 1000)
			}, check: func(t *testing.T, first ivrpay.IVRResult) { paymentstest.MustSucceed(t, first) }},
			{name: "refusal (claim with the answer)", req: func() ivrpay.IVRRequest {
				return paymentstest.ChargeReq("sbx_payin_config_missing", "CA-stale-refused", paymentstest.VisaOK, 1000)
			}, check: func(t *testing.T, first ivrpay.IVRResult) {
				if first.ErrorCode == "" {
					t.Fatalf("a missing config was answered %+v, want a refusal", first)
				}
			}},
		} {
			t.Run(row.name, func(t *testing.T) {
				req := row.req()
				first := paymentstest.Process(t, b.Pay, b.IVRCtx, req)
				row.check(t, first)
				payins := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins`)
				takenBefore := stale.taken.Load()
				again := paymentstest.Process(t, late, b.IVRCtx, req)
				if stale.taken.Load() != takenBefore+1 {
					t.Fatal("the late request's first write was not refused as claimed: the test does not reach the path")
				}
				if !reflect.DeepEqual(again, first) {
					t.Fatalf("the late request answered %+v, the first %+v", again, first)
				}
				if got := paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM payins`); got != payins {
					t.Fatalf("%d payins after the late request, %d before: its refused write left a payin", got, payins)
				}
			})
		}
	})
}
