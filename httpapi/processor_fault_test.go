package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/stripe"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// oneAccount routes every payment to one processor account.
type oneAccount struct {
	ref ivrpay.ProcessorAccountRef
	p   ivrpay.Processor
}

func (r oneAccount) Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	return r.ref, r.p, nil
}

// Account returns the adapter for the account's name only: the reconciler
// must ask the account that made the payin.
func (r oneAccount) Account(ctx context.Context, name string) (ivrpay.Processor, error) {
	if name != r.ref.Name {
		return nil, fmt.Errorf("processor account %q does not exist", name)
	}
	return r.p, nil
}

// double is a real adapter pointed at a local fake of its processor, and
// what the tests read back from the fake.
type double struct {
	router oneAccount
	// hang is the fake's trigger that records the payment and never answers.
	hang int64
	// reverses: the adapter cannot look a payment up, so Resolve reverses
	// whatever the attempt made (Adyen's technical cancel) and reports a
	// refusal; otherwise Resolve finds the charge (Stripe's search).
	reverses bool
	// payment returns the fake's reference of the payment made under
	// payinID ("" when it holds none) and whether it was reversed.
	payment func(payinID string) (ref string, reversed bool)
	// reversals counts the reversals for payinID that reached the fake.
	reversals func(payinID string) int
	// The fake itself (one of them is set).
	stripe *stripetest.Fake
	adyen  *adyentest.Fake
}

func stripeDouble(t *testing.T) double {
	f := stripetest.NewFake(t)
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_4eC39HqLyjWDarjtT1zdp7dcFAKE", APIBase: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	return double{
		router: oneAccount{ivrpay.ProcessorAccountRef{Name: "stripe-test", Kind: ivrpay.ProcessorKindStripe}, p},
		hang:   stripetest.AmountHang,
		stripe: f,
		payment: func(id string) (string, bool) {
			in := f.IntentsFor(id)
			if len(in) == 0 {
				return "", false
			}
			if len(in) > 1 {
				t.Errorf("payin %s made %d PaymentIntents: %v", id, len(in), in)
			}
			last := in[len(in)-1]
			return last.ID, last.Status == "canceled"
		},
		reversals: func(id string) int {
			n := 0
			for _, in := range f.IntentsFor(id) {
				n += len(f.Recorded("POST", "/v1/payment_intents/"+in.ID+"/cancel"))
			}
			return n
		},
	}
}

func adyenDouble(t *testing.T) double {
	f := adyentest.NewFake(t)
	p, err := adyen.New(adyen.Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	return double{
		router:   oneAccount{ivrpay.ProcessorAccountRef{Name: "adyen-test", Kind: ivrpay.ProcessorKindAdyen}, p},
		hang:     adyentest.AmountHang,
		reverses: true,
		adyen:    f,
		payment: func(id string) (string, bool) {
			pay, ok := f.Payment(id)
			if !ok {
				return "", false
			}
			return pay.PSPReference, pay.Reversed
		},
		reversals: func(id string) int {
			n := 0
			for _, r := range f.Received("/cancels") {
				if adyentest.Str(r.Body, "paymentReference") == id {
					n++
				}
			}
			return n
		},
	}
}

// TestProcessorFaultTriggers: the unknown-outcome triggers with the real
// Stripe and Adyen adapters against their fakes, through the connector. A
// lost answer or a 503 is PAYMENT_PENDING, never a refusal; the reconciler
// then finds the charge (Stripe) or reverses it (Adyen's technical cancel,
// which must reach the fake), and fails the payin when no money moved. A
// hung call leaves time inside Twilio's 10 s, so the processor is asked
// once (Resolve) before the first answer, which is then the charge or the
// reversal.
func TestProcessorFaultTriggers(t *testing.T) {
	t.Parallel()
	for _, adapter := range []struct {
		name string
		open func(t *testing.T) double
	}{
		{"stripe", stripeDouble},
		{"adyen", adyenDouble},
	} {
		t.Run(adapter.name, func(t *testing.T) {
			t.Parallel()
			forEachEngine(t, func(t *testing.T, engine string) {
				d := adapter.open(t)
				b := setup(t, engine, func(c *paymentstest.Config) {
					c.Router = d.router
					c.ProcessorTimeout, c.ReconcileAfter = faultTimeout, time.Millisecond
				})
				key := b.ivrKey("payin:create")
				for _, tc := range []struct {
					name    string
					amount  int64
					charges bool // the fake holds a payment after the attempt
					retry   bool // Twilio's retry of the transaction, before the reconciler
					// inCall: the call timed out with time left, so the
					// processor was asked once more (Resolve) before the answer.
					inCall bool
				}{
					{"5121: charged, every answer lost", processortest.AmountLostAnswers, true, true, false},
					{"5122: 503 without a charge", processortest.AmountUnavailable, false, false, false},
					{fmt.Sprintf("%d: charged, the call hangs past the timeout, Resolve asked in the call", d.hang), d.hang, true, false, true},
				} {
					t.Run(tc.name, func(t *testing.T) {
						cfg := b.payinConfig(b.admin, b.merchantID, tc.amount, nil)
						body := with(chargeBody(cfg), "amount", ivrpay.FormatDollars(tc.amount))
						start := time.Now()
						first := b.ivr(key, body)
						if el := time.Since(start); el > 10*faultTimeout {
							t.Errorf("the connector answered after %v; the processor timeout is %v", el, faultTimeout)
						}
						var id string
						switch {
						case !tc.inCall:
							id = b.wantPending(first)
						case d.reverses:
							first.wantErr(t, "charge", ivrpay.RefusalProcessingError, 200)
							id = first.Params["payin_id"]
						default:
							id = first.wantOK(t, "charge")
						}
						if ref, _ := d.payment(id); (ref != "") != tc.charges {
							t.Fatalf("the fake holds payment %q for payin %s; want one: %v", ref, id, tc.charges)
						}
						if tc.retry {
							if again := b.wantPending(b.ivr(key, body)); again != id {
								t.Fatalf("the retry made payin %s, want %s", again, id)
							}
						}
						if !tc.inCall {
							if n := b.reconcile(); n < 1 {
								t.Fatalf("the reconciler resolved %d payins", n)
							}
						}
						p := b.payin(id)
						ref, reversed := d.payment(id)
						if tc.charges && !d.reverses {
							// The reconciler found the charge.
							pr := p["processor"].(map[string]any)
							if p["status"] != ivrpay.PayinStatusProcessing || processorOutcome(p) != ivrpay.ProcessorOutcomeApproved || pr["reference"] != ref {
								t.Fatalf("payin after reconciliation: %v / %v / reference %v, want PROCESSING / APPROVED / %s",
									p["status"], processorOutcome(p), pr["reference"], ref)
							}
							if reversed || d.reversals(id) != 0 {
								t.Fatalf("the found charge %s was reversed", ref)
							}
							if got := b.ivr(key, body).wantOK(t, "charge"); got != id {
								t.Fatalf("late retry answered payin %s, want %s", got, id)
							}
							return
						}
						if p["status"] != ivrpay.PayinStatusFailed || p["refusal_code"] != ivrpay.RefusalProcessingError {
							t.Fatalf("payin after reconciliation: %v %v, want FAILED %s", p["status"], p["refusal_code"], ivrpay.RefusalProcessingError)
						}
						if d.reverses {
							// The refusal stands for a reversal that really reached the processor.
							if n := d.reversals(id); n != 1 {
								t.Fatalf("%d technical cancels for payin %s reached the fake, want 1", n, id)
							}
							if tc.charges && !reversed {
								t.Fatalf("payin %s is FAILED but its payment %s at the fake was not reversed", id, ref)
							}
						}
						if c := b.api("GET", "/v1/payin_configs/"+cfg, b.admin, nil).data(t); c["payin"] != nil {
							t.Fatalf("the config still holds a payin: %v", c["payin"])
						}
						b.ivr(key, body).wantErr(t, "charge", ivrpay.RefusalProcessingError, 200)
					})
				}
				if !d.reverses {
					b.checkNoLostMoney()
				}
				b.checkMoneyMatches(d)
			})
		})
	}
}

// checkMoneyMatches is checkNoLostMoney against the fake itself: every
// payin is resolved; a FAILED payin left no unreversed payment at the fake,
// and a live one is the fake's unreversed payment; no config has two live
// payins.
func (b *bundle) checkMoneyMatches(d double) {
	b.t.Helper()
	rows, err := b.store.DB().Query(`SELECT id, status FROM payins`)
	if err != nil {
		b.t.Fatal(err)
	}
	type payin struct{ id, status string }
	var payins []payin
	for rows.Next() {
		var p payin
		if err := rows.Scan(&p.id, &p.status); err != nil {
			b.t.Fatal(err)
		}
		payins = append(payins, p)
	}
	if err := rows.Close(); err != nil {
		b.t.Fatal(err)
	}
	if len(payins) == 0 {
		b.t.Fatal("no payins to check")
	}
	for _, p := range payins {
		ref, reversed := d.payment(p.id)
		switch p.status {
		case ivrpay.PayinStatusFailed:
			if ref != "" && !reversed {
				b.t.Errorf("payin %s is FAILED but the fake holds its unreversed payment %s", p.id, ref)
			}
		case ivrpay.PayinStatusProcessing, ivrpay.PayinStatusAuthorized, ivrpay.PayinStatusSucceeded:
			got := b.payin(p.id)["processor"].(map[string]any)["reference"]
			if ref == "" || reversed || got != ref {
				b.t.Errorf("payin %s is %s with reference %v; the fake holds %q (reversed %v)", p.id, p.status, got, ref, reversed)
			}
		default:
			b.t.Errorf("payin %s is still %s", p.id, p.status)
		}
	}
	var n int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM (SELECT payin_config_id FROM payins
		WHERE status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED') GROUP BY payin_config_id HAVING COUNT(*) > 1) twice`).Scan(&n); err != nil || n != 0 {
		b.t.Fatalf("%d configs have two live payins (%v)", n, err)
	}
}
