package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// livePayins counts the payins that hold a config (CREATED, PROCESSING,
// AUTHORIZED or SUCCEEDED).
const livePayins = `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1 AND status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED')`

func TestIVRIdenticalRequestsRace(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := b.payinConfig(t, 1000)
		req := chargeReq(cfg.ID, "CA-identical-30", visaOK, 1000)

		const n = 30
		results := make([]ivrpay.IVRResult, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = b.pay.ProcessIVR(b.ivrCtx, req)
			})
		}
		close(start)
		wg.Wait()

		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if !reflect.DeepEqual(results[i], results[0]) {
				t.Fatalf("request %d answered %+v, request 0 answered %+v", i, results[i], results[0])
			}
		}
		mustSucceed(t, results[0])
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
			t.Fatalf("%d payins for 30 identical requests, want 1", got)
		}
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.platform.ID); got != 1 {
			t.Fatalf("%d payment methods stored for one card payin, want 1", got)
		}
		p, err := b.s.FindPayin(b.adminCtx, results[0].ID)
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
		if again := process(t, b.pay, b.ivrCtx, req); !reflect.DeepEqual(again, results[0]) {
			t.Fatalf("late retry answered %+v, want %+v", again, results[0])
		}
	})
}

func TestIVRConfigRace(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := b.payinConfig(t, 2500)

		const n = 20
		results := make([]ivrpay.IVRResult, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = b.pay.ProcessIVR(b.ivrCtx, chargeReq(cfg.ID, fmt.Sprintf("CA-race-%02d", i), visaOK, 2500))
			})
		}
		close(start)
		wg.Wait()

		var winner string
		for i, res := range results {
			switch {
			case errs[i] != nil:
				t.Fatalf("transaction %d: %v", i, errs[i])
			case res.ErrorCode == "" && res.ID != "":
				if winner != "" {
					t.Fatalf("two transactions succeeded on one payin config: %s and %s", winner, res.ID)
				}
				winner = res.ID
			case res.ErrorCode != ivrpay.ConnConfigAlreadyUsed || res.ID != "":
				t.Fatalf("transaction %d answered %+v, want %s", i, res, ivrpay.ConnConfigAlreadyUsed)
			}
		}
		if winner == "" {
			t.Fatal("no transaction succeeded")
		}
		if got := count(t, b.s.DB(), livePayins, cfg.ID); got != 1 {
			t.Fatalf("%d live payins for one config, want 1", got)
		}
		got, err := b.s.FindPayinConfig(b.adminCtx, cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Payin == nil || got.Payin.PayinID != winner {
			t.Fatalf("config payin = %+v, want %s", got.Payin, winner)
		}
		// Every loser's retry replays its refusal.
		for i, res := range results {
			if res.ID == winner {
				continue
			}
			if again := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, fmt.Sprintf("CA-race-%02d", i), visaOK, 2500)); !reflect.DeepEqual(again, res) {
				t.Fatalf("retry of transaction %d answered %+v, first answer %+v", i, again, res)
			}
		}
	})
}

func TestIVRTokenizeRace(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		pmc := b.pmConfig(t, b.merchant.ID)
		const n = 20
		results := make([]ivrpay.IVRResult, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = b.pay.ProcessIVR(b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, fmt.Sprintf("CA-tok-race-%02d", i), visaOK))
			})
		}
		close(start)
		wg.Wait()
		succeeded := 0
		for i, res := range results {
			switch {
			case errs[i] != nil:
				t.Fatalf("transaction %d: %v", i, errs[i])
			case res.ErrorCode == "":
				succeeded++
			case res.ErrorCode != ivrpay.ConnConfigAlreadyUsed:
				t.Fatalf("transaction %d answered %+v, want %s", i, res, ivrpay.ConnConfigAlreadyUsed)
			}
		}
		if succeeded != 1 {
			t.Fatalf("%d tokenizations succeeded on one payment method config, want 1", succeeded)
		}
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payment_methods WHERE payment_method_config_id = $1`, pmc.ID); got != 1 {
			t.Fatalf("%d payment methods for one config, want 1", got)
		}
	})
}

func TestIVRDuplicateTransaction(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := b.payinConfig(t, 1000)
		cfg2 := b.payinConfig(t, 1000)
		pmc := b.pmConfig(t, "")
		const tx = "CA-dup"
		first := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, tx, visaOK, 1000))
		mustSucceed(t, first)

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
			{"other card", func(r *ivrpay.IVRRequest) { r.CardNumber = mastercard }, false},
			{"other amount", func(r *ivrpay.IVRRequest) { r.Amount = ivrpay.ParseIVRAmount(true, "10.01") }, false},
			{"other config", func(r *ivrpay.IVRRequest) { r.Parameters = map[string]string{ivrpay.ParamPayinConfigID: cfg2.ID} }, false},
			{"tokenize instead", func(r *ivrpay.IVRRequest) {
				*r = tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, tx, visaOK)
			}, false},
		} {
			req := chargeReq(cfg.ID, tx, visaOK, 1000)
			tc.change(&req)
			res := process(t, b.pay, b.ivrCtx, req)
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
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE platform_id = $1`, b.platform.ID); got != 1 {
			t.Fatalf("%d payins, want 1", got)
		}

		// The same transaction_id on another platform is another transaction.
		other := setupOn(t, b.s, engine, b.opts)
		ocfg := other.payinConfig(t, 1000)
		mustSucceed(t, process(t, b.pay, other.ivrCtx, chargeReq(ocfg.ID, tx, visaOK, 1000)))

		// A known transaction gets its stored answer even after the platform's settings changed.
		for _, change := range []struct {
			name    string
			apply   func() error
			newCode string
		}{
			{"IVR disabled", func() error { _, err := b.s.SetPlatformIVR(boundedContext(t), b.platform.ID, false); return err }, ivrpay.ConnIVRNotEnabled},
			{"API version too old", func() error {
				if _, err := b.s.SetPlatformIVR(boundedContext(t), b.platform.ID, true); err != nil {
					return err
				}
				_, err := b.s.SetPlatformMinAPIVersion(boundedContext(t), b.platform.ID, ivrpay.APIVersion20230101)
				return err
			}, ivrpay.ConnUnsupportedAPIVersion},
		} {
			if err := change.apply(); err != nil {
				t.Fatal(err)
			}
			key := authenticate(t, b.s, b.ivrKey.Secret)
			ctx := ivrpay.NewContextWithPrincipal(boundedContext(t), key)
			if res := process(t, b.pay, ctx, chargeReq(cfg.ID, tx, visaOK, 1000)); !reflect.DeepEqual(res, first) {
				t.Fatalf("%s: replay answered %+v, want the stored %+v", change.name, res, first)
			}
			if res := process(t, b.pay, ctx, chargeReq(cfg2.ID, "CA-after-"+change.newCode, visaOK, 1000)); res.ErrorCode != change.newCode {
				t.Fatalf("%s: a new transaction answered %+v, want %s", change.name, res, change.newCode)
			}
		}
	})
}

// TestIVRSlowProcessorRetry is Twilio's retry after its 10 s timeout: the
// retry arrives while the first attempt still waits for the processor, waits
// for it, and gets the same answer; no second payin is made.
func TestIVRSlowProcessorRetry(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		entered := make(chan struct{}, 4)
		release := make(chan struct{})
		var sleeps atomic.Int32
		clock := newFakeClock(time.Date(2026, 3, 15, 10, 20, 30, 0, time.UTC))
		b := setup(t, engine, func(o *paymentstest.Config) {
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
		cfg := b.payinConfig(t, sandbox.SlowAmount)
		req := chargeReq(cfg.ID, "CA-slow", visaOK, sandbox.SlowAmount)

		// The first attempt's caller hangs up while the processor works:
		// the charge still runs to completion.
		ctx1, hangUp := context.WithCancel(b.ivrCtx)
		var res1, res2 ivrpay.IVRResult
		var err1, err2 error
		done1, done2 := make(chan struct{}), make(chan struct{})
		go func() { defer close(done1); res1, err1 = b.pay.ProcessIVR(ctx1, req) }()
		<-entered

		// From now on only the retry reads the clock: its second reading is
		// the lease check of a transaction it saw RUNNING.
		var reads atomic.Int32
		waiting := make(chan struct{})
		clock.setHook(func() {
			if reads.Add(1) == 2 {
				close(waiting)
			}
		})
		go func() { defer close(done2); res2, err2 = b.pay.ProcessIVR(b.ivrCtx, req) }()
		select {
		case <-waiting:
		case <-done2:
			t.Fatalf("the retry returned %+v, %v while the first attempt was still running", res2, err2)
		case <-time.After(30 * time.Second):
			hangUp()
			close(release)
			t.Fatal("the retry was not seen waiting for the running attempt within 30 s")
		}
		clock.setHook(nil)
		hangUp()
		close(release)
		<-done1
		<-done2

		if err1 != nil || err2 != nil {
			t.Fatalf("errors: first %v, retry %v", err1, err2)
		}
		mustSucceed(t, res1)
		if !reflect.DeepEqual(res1, res2) {
			t.Fatalf("first answered %+v, retry answered %+v", res1, res2)
		}
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
			t.Fatalf("%d payins, want 1", got)
		}
		if n := sleeps.Load(); n != 1 {
			t.Fatalf("the processor was asked %d times, want once", n)
		}
		p, err := b.s.FindPayin(b.adminCtx, res1.ID)
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
	forEngine(t, func(t *testing.T, engine string) {
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
				b := setup(t, engine)
				cfg := b.payinConfig(t, 1000, func(c *ivrpay.PayinConfigCreate) {
					c.BillingContact = &ivrpay.BillingContact{Name: "Ada"}
				})
				const tx = "CA-crashed"
				req := chargeReq(cfg.ID, tx, visaOK, 1000)
				db := b.s.DB()
				now := time.Now().UTC()

				// The store itself computes the request hash: a probe with the
				// same request under another transaction_id, by a principal whose
				// platform has IVR off, stores it and stops there.
				probeKey := *b.ivrKey
				probePlatform := *probeKey.Platform
				probePlatform.IVRPayments = false
				probeKey.Platform = &probePlatform
				probeReq := req
				probeReq.TransactionID = "probe"
				if res := process(t, b.pay, ivrpay.NewContextWithPrincipal(boundedContext(t), &probeKey), probeReq); res.ErrorCode != ivrpay.ConnIVRNotEnabled {
					t.Fatalf("probe answered %+v", res)
				}
				var hash string
				if err := db.QueryRow(`SELECT request_hash FROM connector_transactions WHERE platform_id = $1 AND transaction_id = 'probe'`, b.platform.ID).Scan(&hash); err != nil {
					t.Fatal(err)
				}

				if _, err := db.Exec(`INSERT INTO connector_transactions (platform_id, provider, transaction_id, request_hash, status, lease_until, created_at, updated_at)
					VALUES ($1, 'TWILIO', $2, $3, 'RUNNING', $4, $5, $5)`, b.platform.ID, tx, hash, ivrpay.FormatTime(now.Add(-time.Minute)), ivrpay.FormatTime(now.Add(-2*time.Minute))); err != nil {
					t.Fatal(err)
				}
				var payinID string
				if tc.withPayin {
					payinID = ivrpay.NewID(ivrpay.ModeSandbox, ivrpay.PrefixPayin, now)
					if _, err := db.Exec(`INSERT INTO payins (id, platform_id, merchant_id, payin_config_id, amount, currency_code, status,
						brand, last4, exp_month, exp_year, billing_contact, metadata, source, ivr_provider, ivr_transaction_id, created_at, updated_at)
						VALUES ($1, $2, $3, $4, 1000, 'USD', 'CREATED', 'VISA', '1111', 8, 2039, $5, $6, 'IVR', 'TWILIO', $7, $8, $8)`,
						payinID, b.platform.ID, b.merchant.ID, cfg.ID, `{"name":"Ada","postal_code":"94111"}`, `{"order":"A-1"}`, tx,
						ivrpay.FormatTime(now.Add(-2*time.Minute))); err != nil {
						t.Fatal(err)
					}
					// The reserved config refuses another transaction meanwhile.
					if res := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, "CA-intruder", visaOK, 1000)); res.ErrorCode != ivrpay.ConnConfigAlreadyUsed {
						t.Fatalf("another transaction on the reserved config answered %+v, want %s", res, ivrpay.ConnConfigAlreadyUsed)
					}
				}

				res := process(t, b.pay, b.ivrCtx, req)
				mustSucceed(t, res)
				if tc.withPayin && res.ID != payinID {
					t.Fatalf("the retry made payin %s instead of resuming %s", res.ID, payinID)
				}
				if got := count(t, db, `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
					t.Fatalf("%d payins after the resume, want 1", got)
				}
				p, err := b.s.FindPayin(b.adminCtx, res.ID)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != ivrpay.PayinStatusProcessing || p.PaymentMethodID == "" || p.IVR == nil || p.IVR.TransactionID != tx {
					t.Fatalf("resumed payin = %+v", p)
				}
				if c, _ := b.s.FindPayinConfig(b.adminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != res.ID {
					t.Fatalf("config payin = %+v, want %s", c.Payin, res.ID)
				}
				if again := process(t, b.pay, b.ivrCtx, req); !reflect.DeepEqual(again, res) {
					t.Fatalf("replay after the resume answered %+v, want %+v", again, res)
				}
			})
		}

		// The same, with a real crash: the processor panics mid-charge, the
		// retry waits while the dead attempt's lease runs, then takes over.
		t.Run("processor crash, lease expiry", func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(time.Date(2026, 3, 15, 10, 20, 30, 0, time.UTC))
			proc := &crashingProcessor{}
			b := setup(t, engine, func(o *paymentstest.Config) { o.Clock, o.Processor = clock, proc })
			cfg := b.payinConfig(t, 1000)
			req := chargeReq(cfg.ID, "CA-crash-real", visaOK, 1000)

			proc.crash.Store(true)
			func() {
				defer func() {
					if r := recover(); r != (crashed{}) {
						t.Fatalf("recovered %v, want the simulated crash", r)
					}
				}()
				b.pay.ProcessIVR(b.ivrCtx, req)
				t.Fatal("ProcessIVR returned although the processor crashed")
			}()
			proc.crash.Store(false)
			var reserved string
			if err := b.s.DB().QueryRow(`SELECT id FROM payins WHERE payin_config_id = $1 AND status = 'CREATED'`, cfg.ID).Scan(&reserved); err != nil {
				t.Fatalf("no CREATED payin after the crash: %v", err)
			}

			var reads atomic.Int32
			waiting := make(chan struct{})
			clock.setHook(func() {
				if reads.Add(1) == 2 {
					close(waiting)
				}
			})
			var res ivrpay.IVRResult
			var err error
			done := make(chan struct{})
			go func() { defer close(done); res, err = b.pay.ProcessIVR(b.ivrCtx, req) }()
			select {
			case <-waiting:
			case <-done:
				t.Fatalf("the retry returned %+v, %v before the crashed attempt's lease ended", res, err)
			case <-time.After(30 * time.Second):
				clock.Advance(time.Minute)
				t.Fatal("the retry was not seen waiting for the crashed attempt's lease within 30 s")
			}
			clock.setHook(nil)
			clock.Advance(time.Minute)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			mustSucceed(t, res)
			if res.ID != reserved {
				t.Fatalf("the retry made payin %s instead of resuming %s", res.ID, reserved)
			}
			if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
				t.Fatalf("%d payins, want 1", got)
			}
		})
	})
}

func TestIVRTokenize(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
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
				b := setup(t, engine)
				merchantID := ""
				if tc.merchant {
					merchantID = b.merchant.ID
				}
				pmc := b.pmConfig(t, merchantID)
				res := process(t, b.pay, b.ivrCtx, tokenizeReq(tc.param, pmc.ID, "CA-tok-1", mastercard))
				mustSucceed(t, res)
				if !strings.HasPrefix(res.ID, "sbx_mtd_") {
					t.Fatalf("token id %s", res.ID)
				}
				want := map[string]string{"payment_method_id": res.ID, "card_brand": "MASTERCARD", "card_last_4": "4444"}
				if !reflect.DeepEqual(res.Parameters, want) {
					t.Fatalf("parameters = %v, want %v", res.Parameters, want)
				}
				got, err := b.s.FindPaymentMethodConfig(b.adminCtx, pmc.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.PaymentMethod == nil || got.PaymentMethod.PaymentMethodID != res.ID {
					t.Fatalf("config payment_method = %+v, want %s", got.PaymentMethod, res.ID)
				}
				pm, err := b.s.FindPaymentMethod(b.adminCtx, res.ID)
				if err != nil {
					t.Fatal(err)
				}
				if pm.Status != ivrpay.PaymentMethodStatusActive || string(pm.PaymentMethodConfigID) != pmc.ID || string(pm.MerchantID) != merchantID ||
					pm.Card == nil || pm.Card.Brand != "MASTERCARD" || pm.Card.Last4 != "4444" || pm.Card.ExpYear != 2039 ||
					pm.Fingerprint != b.opts.Vault.Fingerprint(mastercard) || pm.BillingContact == nil || pm.BillingContact.PostalCode != goodPostal {
					t.Fatalf("payment method = %+v", pm)
				}
				// The config stores one card only.
				again := process(t, b.pay, b.ivrCtx, tokenizeReq(tc.param, pmc.ID, "CA-tok-2", visaOK))
				if again.ErrorCode != ivrpay.ConnConfigAlreadyUsed || again.ID != "" {
					t.Fatalf("second tokenize answered %+v, want %s", again, ivrpay.ConnConfigAlreadyUsed)
				}
				if n := count(t, b.s.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.platform.ID); n != 1 {
					t.Fatalf("%d payment methods, want 1", n)
				}
				// A charge request naming a payment method config is the wrong kind.
				mismatch := tokenizeReq(tc.param, pmc.ID, "CA-tok-3", visaOK)
				mismatch.Method, mismatch.Amount = ivrpay.IVRMethodCharge, ivrpay.ParseIVRAmount(true, "10.00")
				if r := process(t, b.pay, b.ivrCtx, mismatch); r.ErrorCode != ivrpay.ConnConfigMethodMismatch {
					t.Fatalf("charge with a payment method config answered %+v, want %s", r, ivrpay.ConnConfigMethodMismatch)
				}
			})
		}
	})
}

func TestChargePaymentMethod(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s := b.s
		// One card stored by an IVR tokenize, one by an IVR charge.
		pmc := b.pmConfig(t, b.merchant.ID)
		tok := process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-store", visaOK))
		mustSucceed(t, tok)
		charged := process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 700).ID, "CA-first-charge", mastercard, 700))
		mustSucceed(t, charged)

		for _, tc := range []struct {
			name, pmID, last4 string
		}{
			{"tokenized card", tok.ID, "1111"},
			{"card of an IVR payin", charged.Parameters["payment_method_id"], "4444"},
		} {
			cfg := b.payinConfig(t, 4200)
			p, err := b.pay.ChargePaymentMethod(b.adminCtx, tc.pmID, cfg.ID)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if p.Source != ivrpay.PayinSourceAPIStoredPaymentMethod || string(p.PaymentMethodID) != tc.pmID || p.PayinConfigID != cfg.ID ||
				p.Status != ivrpay.PayinStatusProcessing || p.Amount != 4200 || p.IVR != nil || p.Card == nil || p.Card.Last4 != tc.last4 {
				t.Fatalf("%s: payin = %+v", tc.name, p)
			}
			if c, _ := s.FindPayinConfig(b.adminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != p.ID {
				t.Fatalf("%s: config payin = %+v, want %s", tc.name, c.Payin, p.ID)
			}
			// The config now has a payin: another charge conflicts, with either card.
			for _, pmID := range []string{tok.ID, charged.Parameters["payment_method_id"]} {
				_, err = b.pay.ChargePaymentMethod(b.adminCtx, pmID, cfg.ID)
				wantCode(t, err, ivrpay.ECONFLICT)
			}
			// So does an IVR charge of it.
			if r := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, "CA-late-"+tc.last4, visaOK, 4200)); r.ErrorCode != ivrpay.ConnConfigAlreadyUsed {
				t.Fatalf("%s: IVR charge of a used config answered %+v", tc.name, r)
			}
			if got := count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 1 {
				t.Fatalf("%s: %d payins, want 1", tc.name, got)
			}
		}
		// No new payment method is stored for a stored card's payin.
		if got := count(t, s.DB(), `SELECT COUNT(*) FROM payment_methods WHERE platform_id = $1`, b.platform.ID); got != 2 {
			t.Fatalf("%d payment methods, want 2", got)
		}

		// Concurrent charges of stored cards on one config: one payin.
		raced := b.payinConfig(t, 1500)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			pmID := tok.ID
			if i%2 == 1 {
				pmID = charged.Parameters["payment_method_id"]
			}
			wg.Go(func() {
				_, err := b.pay.ChargePaymentMethod(b.adminCtx, pmID, raced.ID)
				switch ivrpay.ErrorCode(err) {
				case "":
					wins.Add(1)
				case ivrpay.ECONFLICT:
				default:
					t.Errorf("concurrent ChargePaymentMethod: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, raced.ID) != 1 {
			t.Fatalf("%d of 10 concurrent charges of one config succeeded, want 1", wins.Load())
		}

		// Refusals.
		cfg := b.payinConfig(t, 1000)
		_, err := b.pay.ChargePaymentMethod(b.adminCtx, "sbx_mtd_doesnotexist", cfg.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, "sbx_cfg_doesnotexist")
		wantCode(t, err, ivrpay.EINVALID)
		_, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, "")
		wantCode(t, err, ivrpay.EINVALID)
		// An IVR key's payin:create is not enough: charging a stored card
		// needs payment_method:read on the card too.
		_, err = b.pay.ChargePaymentMethod(b.ivrCtx, tok.ID, cfg.ID)
		wantCode(t, err, ivrpay.EFORBIDDEN)
		if !strings.Contains(ivrpay.ErrorMessage(err), "payment_method:read") {
			t.Fatalf("IVR key charging a stored card: %v, want a 403 naming payment_method:read", err)
		}
		if _, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, cfg.ID); err != nil {
			t.Fatalf("admin charging a stored card: %v", err)
		}
		other := setupOn(t, s, engine, b.opts)
		_, err = b.pay.ChargePaymentMethod(other.adminCtx, tok.ID, other.payinConfig(t, 1000).ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, other.payinConfig(t, 1000).ID)
		wantCode(t, err, ivrpay.EINVALID)
		readOnly := createKey(t, s, b.adminCtx, platformStatement(b.platform.ID, "", "payin:read"))
		_, err = b.pay.ChargePaymentMethod(ivrpay.NewContextWithPrincipal(boundedContext(t), readOnly), tok.ID, b.payinConfig(t, 1000).ID)
		wantCode(t, err, ivrpay.EFORBIDDEN)

		// A deactivated card cannot be charged.
		pm, err := s.DeactivatePaymentMethod(b.adminCtx, tok.ID)
		if err != nil || pm.Status != ivrpay.PaymentMethodStatusDeactivated {
			t.Fatalf("DeactivatePaymentMethod: %+v, %v", pm, err)
		}
		fresh := b.payinConfig(t, 1000)
		_, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, fresh.ID)
		wantCode(t, err, ivrpay.EINVALID)
		if c, _ := s.FindPayinConfig(b.adminCtx, fresh.ID); c.Payin != nil {
			t.Fatalf("a refused charge used the config: %+v", c.Payin)
		}
		if got := count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, fresh.ID); got != 0 {
			t.Fatalf("a refused charge made %d payins", got)
		}
	})
}

// TestChargePaymentMethodMerchantScope: a key limited to one merchant must not
// charge a card stored for another merchant of the platform (docs/decisions.md: an
// object of the same platform that the key's merchant constraint excludes
// answers 403).
func TestChargePaymentMethodMerchantScope(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		m2, err := b.s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: "Second Shop"})
		if err != nil {
			t.Fatal(err)
		}
		pmc := b.pmConfig(t, b.merchant.ID)
		tok := process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-m1-card", visaOK))
		mustSucceed(t, tok)
		m2Key := createKey(t, b.s, b.adminCtx, platformStatement(b.platform.ID, m2.ID, "payin:create", "payin:read"))
		m2Cfg, err := b.s.CreatePayinConfig(b.adminCtx, ivrpay.PayinConfigCreate{MerchantID: m2.ID, IdempotencyKey: "m2", Amount: "1000", CurrencyCode: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.pay.ChargePaymentMethod(ivrpay.NewContextWithPrincipal(boundedContext(t), m2Key), tok.ID, m2Cfg.ID)
		if ivrpay.ErrorCode(err) != ivrpay.EFORBIDDEN {
			var made string
			if p != nil {
				made = " (made payin " + p.ID + ")"
			}
			t.Fatalf("a key limited to merchant %s charged a card of merchant %s: err %v%s; want %s",
				m2.ID, b.merchant.ID, err, made, ivrpay.EFORBIDDEN)
		}
		// Not even a platform key pays one merchant's config with another merchant's card.
		_, err = b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, m2Cfg.ID)
		wantCode(t, err, ivrpay.EINVALID)
		if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, m2Cfg.ID); got != 0 {
			t.Fatalf("refused charges made %d payins", got)
		}
		// A card stored without a merchant (platform level) pays any merchant's config for a platform key.
		platformCard := process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, b.pmConfig(t, "").ID, "CA-platform-card", mastercard))
		mustSucceed(t, platformCard)
		if _, err := b.pay.ChargePaymentMethod(b.adminCtx, platformCard.ID, m2Cfg.ID); err != nil {
			t.Fatalf("platform key charging a platform-level card: %v", err)
		}
	})
}

func TestIVRDeclines(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			name           string
			pan, cvv, zip  string
			amount         int64
			code           string
			declineByAmout bool
		}{
			{"card declined", "4000000000000002", goodCVV, goodPostal, 1000, ivrpay.RefusalDeclined, false},
			{"insufficient funds", "4000000000009995", goodCVV, goodPostal, 1000, ivrpay.RefusalInsufficientFunds, false},
			{"expired card", "4000000000000069", goodCVV, goodPostal, 1000, ivrpay.RefusalExpiredCard, false},
			{"bad CVC card", "4000000000000127", goodCVV, goodPostal, 1000, ivrpay.RefusalInvalidCardSecurityCode, false},
			{"processing error card", "4000000000000119", goodCVV, goodPostal, 1000, ivrpay.RefusalProcessingError, false},
			{"risk decline", "4100000000000019", goodCVV, goodPostal, 1000, ivrpay.RefusalRiskDecline, false},
			{"CVC 000", visaOK, "000", goodPostal, 1000, ivrpay.RefusalInvalidCardSecurityCode, false},
			{"postal code 00000", visaOK, goodCVV, "00000", 1000, ivrpay.RefusalIncorrectPaymentInformation, false},
			{"amount 51.01", visaOK, goodCVV, goodPostal, 5101, ivrpay.RefusalDeclined, true},
			{"amount 51.02", visaOK, goodCVV, goodPostal, 5102, ivrpay.RefusalInsufficientFunds, true},
			{"amount 51.03", visaOK, goodCVV, goodPostal, 5103, ivrpay.RefusalDoNotHonor, true},
			{"amount 51.05", visaOK, goodCVV, goodPostal, 5105, ivrpay.RefusalProcessingError, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, engine)
				cfg := b.payinConfig(t, tc.amount)
				req := chargeReq(cfg.ID, "CA-decline", tc.pan, tc.amount)
				req.CVV, req.PostalCode = tc.cvv, tc.zip
				res := process(t, b.pay, b.ivrCtx, req)
				if res.ErrorCode != tc.code || res.ID != "" || res.ErrorMessage == "" {
					t.Fatalf("answer = %+v, want error_code %s", res, tc.code)
				}
				failedID := res.Parameters["payin_id"]
				if failedID == "" || res.Parameters["payin_status"] != ivrpay.PayinStatusFailed || res.Parameters["card_last_4"] != card.Last4(tc.pan) {
					t.Fatalf("parameters of a decline = %v", res.Parameters)
				}
				p, err := b.s.FindPayin(b.adminCtx, failedID)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != ivrpay.PayinStatusFailed || string(p.RefusalCode) != tc.code || p.RefusalDesc == "" || p.CapturedAmount != 0 {
					t.Fatalf("declined payin = %+v", p)
				}
				if c, _ := b.s.FindPayinConfig(b.adminCtx, cfg.ID); c.Payin != nil {
					t.Fatalf("a declined payin holds the config: %+v", c.Payin)
				}
				// The retry of the declined transaction replays the decline.
				if again := process(t, b.pay, b.ivrCtx, req); !reflect.DeepEqual(again, res) {
					t.Fatalf("replay of the decline = %+v, want %+v", again, res)
				}

				// The config stays usable: the caller tries again (a new transaction).
				next := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, "CA-after-decline", visaOK, tc.amount))
				if tc.declineByAmout {
					// The sandbox declines this amount whatever the card: the
					// config is charged again, not refused as used.
					if next.ErrorCode != tc.code || next.Parameters["payin_id"] == "" || next.Parameters["payin_id"] == failedID {
						t.Fatalf("second attempt answered %+v, want a new %s payin", next, tc.code)
					}
				} else {
					mustSucceed(t, next)
					if c, _ := b.s.FindPayinConfig(b.adminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != next.ID {
						t.Fatalf("config payin = %+v, want %s", c.Payin, next.ID)
					}
				}
				if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, cfg.ID); got != 2 {
					t.Fatalf("%d payins, want 2", got)
				}
			})
		}
	})
}

func TestIVRAuthorizeMode(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := b.payinConfig(t, 3000, func(c *ivrpay.PayinConfigCreate) { c.ProcessingMode = ivrpay.ProcessingModeAuthorize })
		if cfg.ProcessingMode != ivrpay.ProcessingModeAuthorize {
			t.Fatalf("processing mode = %s", cfg.ProcessingMode)
		}
		res := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, "CA-auth", visaOK, 3000))
		mustSucceed(t, res)
		if res.Parameters["payin_status"] != ivrpay.PayinStatusAuthorized {
			t.Fatalf("payin_status = %s, want AUTHORIZED", res.Parameters["payin_status"])
		}
		p, err := b.s.FindPayin(b.adminCtx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != ivrpay.PayinStatusAuthorized || p.AuthorizedAmount != 3000 || p.CapturedAmount != 0 || p.RefundableAmount != 0 {
			t.Fatalf("payin = %+v", p)
		}
		old := ivrpay.NewContextWithVersion(b.adminCtx, ivrpay.APIVersion20231201)
		p, err = b.s.FindPayin(old, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("status at 2023-12-01 = %s, want PROCESSING", p.Status)
		}
		l, err := b.s.ListPayins(old, ivrpay.PayinFilter{Status: ivrpay.PayinStatusProcessing})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Results) != 1 || l.Results[0].Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("PROCESSING payins at 2023-12-01 = %+v", l.Results)
		}
		if l, err := b.s.ListPayins(b.adminCtx, ivrpay.PayinFilter{Status: ivrpay.PayinStatusProcessing}); err != nil || len(l.Results) != 0 {
			t.Fatalf("PROCESSING payins at 2024-10-16 = %v, %v; want none", l, err)
		}
		// The config counts as used.
		if c, _ := b.s.FindPayinConfig(b.adminCtx, cfg.ID); c.Payin == nil || c.Payin.PayinID != res.ID {
			t.Fatalf("config payin = %+v", c.Payin)
		}
		// AUTHORIZE is refused at 2023-12-01.
		_, err = b.s.CreatePayinConfig(old, ivrpay.PayinConfigCreate{MerchantID: b.merchant.ID, IdempotencyKey: "old-auth", Amount: "100",
			CurrencyCode: "USD", ProcessingMode: ivrpay.ProcessingModeAuthorize})
		wantCode(t, err, ivrpay.EINVALID)
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
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s := b.s
		other := setupOn(t, s, engine, b.opts)
		m2, err := s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: "Second Shop"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.payinConfig(t, 1000)
		zipCfg := b.payinConfig(t, 1000, func(c *ivrpay.PayinConfigCreate) {
			c.BillingContact = &ivrpay.BillingContact{PostalCode: "10001"}
		})
		pmc := b.pmConfig(t, "")
		otherCfg := other.payinConfig(t, 1000)
		m2Key := createKey(t, s, b.adminCtx, platformStatement(b.platform.ID, m2.ID, "payin:create"))
		tokOnly := createKey(t, s, b.adminCtx, platformStatement(b.platform.ID, "", "payment_method:create"))
		noIVR := *b.ivrKey
		noIVRPlatform := *noIVR.Platform
		noIVRPlatform.IVRPayments = false
		noIVR.Platform = &noIVRPlatform
		oldVersion := *b.ivrKey
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
				*r = tokenizeReq(ivrpay.ParamPayinConfigID, cfg.ID, r.TransactionID, visaOK)
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
			req := chargeReq(cfg.ID, fmt.Sprintf("CA-check-%02d", i), visaOK, 1000)
			if tc.change != nil {
				tc.change(&req)
			}
			key := tc.key
			if key == nil {
				key = b.ivrKey
			}
			res := process(t, b.pay, ivrpay.NewContextWithPrincipal(boundedContext(t), key), req)
			if res.ErrorCode != tc.code || res.ID != "" || res.ErrorMessage == "" {
				t.Errorf("%s: answered %+v, want %s", tc.name, res, tc.code)
			}
			if strings.Contains(res.ErrorMessage, req.CardNumber) && req.CardNumber != "" {
				t.Errorf("%s: the error message contains the card number", tc.name)
			}
		}
		if got := count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE platform_id = $1`, b.platform.ID); got != 0 {
			t.Fatalf("refused requests made %d payins", got)
		}
		// The config's postal code stands in for the caller's.
		req := chargeReq(zipCfg.ID, "CA-config-zip", visaOK, 1000)
		req.PostalCode = ""
		mustSucceed(t, process(t, b.pay, b.ivrCtx, req))
		// The refused requests used up nothing.
		mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, "CA-checks-ok", visaOK, 1000)))
		mustSucceed(t, process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-checks-tok", visaOK)))
	})
}

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

func (s *staleLookup) FindConnectorTransactionAndPayinConfig(ctx context.Context, k ivrpay.ConnectorTransactionKey, configID string, risk *ivrpay.RiskLookup) (ivrpay.ConnectorTransaction, bool, *ivrpay.PayinConfig, ivrpay.ProcessorRoute, error) {
	_, _, cfg, route, err := s.Store.FindConnectorTransactionAndPayinConfig(ctx, k, configID, risk)
	return ivrpay.ConnectorTransaction{}, false, cfg, route, err
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
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		stale := &staleLookup{Store: b.s}
		late := b.opts.PaymentsOn(stale)
		for _, row := range []struct {
			name  string
			req   func() ivrpay.IVRRequest
			check func(t *testing.T, first ivrpay.IVRResult)
		}{
			{name: "approved charge (claim with the reservation)", req: func() ivrpay.IVRRequest {
				return chargeReq(b.payinConfig(t, 1000).ID, "CA-stale-approved", visaOK, 1000)
			}, check: func(t *testing.T, first ivrpay.IVRResult) { mustSucceed(t, first) }},
			{name: "refusal (claim with the answer)", req: func() ivrpay.IVRRequest {
				return chargeReq("sbx_payin_config_missing", "CA-stale-refused", visaOK, 1000)
			}, check: func(t *testing.T, first ivrpay.IVRResult) {
				if first.ErrorCode == "" {
					t.Fatalf("a missing config was answered %+v, want a refusal", first)
				}
			}},
		} {
			t.Run(row.name, func(t *testing.T) {
				req := row.req()
				first := process(t, b.pay, b.ivrCtx, req)
				row.check(t, first)
				payins := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins`)
				takenBefore := stale.taken.Load()
				again := process(t, late, b.ivrCtx, req)
				if stale.taken.Load() != takenBefore+1 {
					t.Fatal("the late request's first write was not refused as claimed: the test does not reach the path")
				}
				if !reflect.DeepEqual(again, first) {
					t.Fatalf("the late request answered %+v, the first %+v", again, first)
				}
				if got := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins`); got != payins {
					t.Fatalf("%d payins after the late request, %d before: its refused write left a payin", got, payins)
				}
			})
		}
	})
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
