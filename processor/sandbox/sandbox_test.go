package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"pgregory.net/rapid"
)

// sleepRecorder is an injected Sleep that returns at once and remembers what
// it was asked to wait, so no test ever really waits 12 s.
type sleepRecorder struct {
	mu    sync.Mutex
	calls []time.Duration
	err   error
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, d)
	return s.err
}

func setup(t *testing.T) (*Processor, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	return &Processor{Sleep: rec.Sleep}, rec
}

func auth(pan string, amount int64) ivrpay.CardPayment {
	return ivrpay.CardPayment{
		IdempotencyKey: "payin_123",
		Reference:      "payin_123",
		Amount:         amount,
		Currency:       "USD",
		Card:           ivrpay.CardDetails{PAN: pan, CVV: "123", ExpMonth: 12, ExpYear: 2030, PostalCode: "94107"},
		Capture:        true,
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	const visa = "4111111111111111"
	with := func(a ivrpay.CardPayment, f func(*ivrpay.CardPayment)) ivrpay.CardPayment {
		f(&a)
		return a
	}
	tests := []struct {
		name     string
		a        ivrpay.CardPayment
		approved bool
		refusal  string
		desc     string
		avs, cvc string
	}{
		// Twilio's test cards and the Diners Club card (docs/sandbox.md) approve.
		{"visa", auth("4111111111111111", 1000), true, "", "", "Y", "M"},
		{"mastercard", auth("5555555555554444", 1000), true, "", "", "Y", "M"},
		{"amex", auth("378282246310005", 1000), true, "", "", "Y", "M"},
		{"discover", auth("6011111111111117", 1000), true, "", "", "Y", "M"},
		{"jcb", auth("3566002020360505", 1000), true, "", "", "Y", "M"},
		{"diners", auth("3056930009020004", 1000), true, "", "", "Y", "M"},
		{"authorize only", with(auth(visa, 1000), func(a *ivrpay.CardPayment) { a.Capture = false }), true, "", "", "Y", "M"},

		// Card triggers.
		{"card declined", auth("4000000000000002", 1000), false, ivrpay.RefusalDeclined, "Card declined", "Y", "M"},
		{"card insufficient funds", auth("4000000000009995", 1000), false, ivrpay.RefusalInsufficientFunds, "Insufficient funds", "Y", "M"},
		{"card expired", auth("4000000000000069", 1000), false, ivrpay.RefusalExpiredCard, "Expired card", "Y", "M"},
		{"card bad cvc", auth("4000000000000127", 1000), false, ivrpay.RefusalInvalidCardSecurityCode, "Incorrect card security code", "Y", "M"},
		{"card processing error", auth("4000000000000119", 1000), false, ivrpay.RefusalProcessingError, "Processing error", "Y", "M"},
		{"card risk", auth("4100000000000019", 1000), false, ivrpay.RefusalRiskDecline, "Declined by risk rules", "Y", "M"},

		// CVC.
		{"cvc 000", with(auth(visa, 1000), func(a *ivrpay.CardPayment) { a.Card.CVV = "000" }), false, ivrpay.RefusalInvalidCardSecurityCode, "Incorrect card security code", "Y", "N"},
		{"cvc empty", with(auth(visa, 1000), func(a *ivrpay.CardPayment) { a.Card.CVV = "" }), true, "", "", "Y", "P"},
		{"cvc 4 digits", with(auth("378282246310005", 1000), func(a *ivrpay.CardPayment) { a.Card.CVV = "1234" }), true, "", "", "Y", "M"},

		// AVS.
		{"postal 00000", with(auth(visa, 1000), func(a *ivrpay.CardPayment) { a.Card.PostalCode = "00000" }), false, ivrpay.RefusalIncorrectPaymentInformation, "Postal code or card details do not match", "N", "M"},
		{"postal empty", with(auth(visa, 1000), func(a *ivrpay.CardPayment) { a.Card.PostalCode = "" }), true, "", "", "U", "M"},

		// Amount triggers.
		{"amount 5101", auth(visa, 5101), false, ivrpay.RefusalDeclined, "Card declined", "Y", "M"},
		{"amount 5102", auth(visa, 5102), false, ivrpay.RefusalInsufficientFunds, "Insufficient funds", "Y", "M"},
		{"amount 5103", auth(visa, 5103), false, ivrpay.RefusalDoNotHonor, "Do not honor", "Y", "M"},
		{"amount 5105", auth(visa, 5105), false, ivrpay.RefusalProcessingError, "Processing error", "Y", "M"},
		{"amount 5104 is not a trigger", auth(visa, 5104), true, "", "", "Y", "M"},

		// Order: card before CVC before AVS before amount; result codes always set.
		{"card beats cvc", with(auth("4000000000009995", 5101), func(a *ivrpay.CardPayment) { a.Card.CVV = "000"; a.Card.PostalCode = "00000" }), false, ivrpay.RefusalInsufficientFunds, "Insufficient funds", "N", "N"},
		{"cvc beats avs", with(auth(visa, 5102), func(a *ivrpay.CardPayment) { a.Card.CVV = "000"; a.Card.PostalCode = "00000" }), false, ivrpay.RefusalInvalidCardSecurityCode, "Incorrect card security code", "N", "N"},
		{"avs beats amount", with(auth(visa, 5103), func(a *ivrpay.CardPayment) { a.Card.PostalCode = "00000" }), false, ivrpay.RefusalIncorrectPaymentInformation, "Postal code or card details do not match", "N", "M"},
		{"empty cvc and postal on amount decline", with(auth(visa, 5105), func(a *ivrpay.CardPayment) { a.Card.CVV = ""; a.Card.PostalCode = "" }), false, ivrpay.RefusalProcessingError, "Processing error", "U", "P"},

		// Amount 0 verifies the card (tokenize): amount rules skip, the others apply.
		{"verify visa", auth(visa, 0), true, "", "", "Y", "M"},
		{"verify declined card", auth("4000000000000002", 0), false, ivrpay.RefusalDeclined, "Card declined", "Y", "M"},
		{"verify cvc 000", with(auth(visa, 0), func(a *ivrpay.CardPayment) { a.Card.CVV = "000" }), false, ivrpay.RefusalInvalidCardSecurityCode, "Incorrect card security code", "Y", "N"},
		{"verify postal 00000", with(auth(visa, 0), func(a *ivrpay.CardPayment) { a.Card.PostalCode = "00000" }), false, ivrpay.RefusalIncorrectPaymentInformation, "Postal code or card details do not match", "N", "M"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, rec := setup(t)
			call := p.Authorize
			if tt.a.Amount == 0 {
				call = p.Verify
			}
			got, err := call(context.Background(), tt.a)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			want := ivrpay.ProcessorResult{
				Approved:      tt.approved,
				AVSResultCode: tt.avs,
				CVCResultCode: tt.cvc,
				RefusalCode:   tt.refusal,
				RefusalDesc:   tt.desc,
			}
			want.Reference = reference("ch", tt.a.IdempotencyKey)
			if tt.approved {
				want.AuthCode = authCode(tt.a.IdempotencyKey)
				want.AuthorizedAmount = tt.a.Amount
				want.NetworkTransactionID = networkTransactionID(tt.a.IdempotencyKey)
			}
			if got != want {
				t.Fatalf("Authorize =\n %+v\nwant\n %+v", got, want)
			}
			if len(rec.calls) != 0 {
				t.Fatalf("Authorize slept %v for amount %d", rec.calls, tt.a.Amount)
			}
		})
	}
}

// TestFaultTriggers checks the amounts whose answer is lost: what Authorize
// says (an unknown outcome), and what Resolve then finds.
func TestFaultTriggers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		amount          int64
		firstUnknown    bool
		repeatUnknown   bool
		resolveApproved bool
	}{
		{"slow", SlowAmount, true, true, true},
		{"timeout on the first call", TimeoutFirstAmount, true, false, true},
		{"every answer lost", LostAnswersAmount, true, true, true},
		{"unavailable, no charge", UnavailableAmount, true, true, false},
		{"normal", 1000, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, rec := setup(t)
			rec.err = context.DeadlineExceeded // every wait ends with the caller's deadline
			a := auth("4111111111111111", tc.amount)
			_, err := p.Authorize(context.Background(), a)
			if got := errors.Is(err, ivrpay.ErrOutcomeUnknown); got != tc.firstUnknown {
				t.Fatalf("first call: error %v, want unknown=%v", err, tc.firstUnknown)
			}
			_, err = p.Authorize(context.Background(), a)
			if got := errors.Is(err, ivrpay.ErrOutcomeUnknown); got != tc.repeatUnknown {
				t.Fatalf("repeat: error %v, want unknown=%v", err, tc.repeatUnknown)
			}
			a.Card.CVV = ""
			res, err := p.Resolve(context.Background(), a)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if res.Approved != tc.resolveApproved {
				t.Fatalf("Resolve = %+v, want approved=%v", res, tc.resolveApproved)
			}
			if !res.Approved && res.RefusalCode != ivrpay.RefusalProcessingError {
				t.Fatalf("Resolve refusal %q, want PROCESSING_ERROR", res.RefusalCode)
			}
			if res.Approved && res.Reference != reference("ch", a.IdempotencyKey) {
				t.Fatalf("Resolve found reference %q, not the charge's", res.Reference)
			}
		})
	}
}

// TestSlowAmountWaits checks that SlowAmount waits SlowDelay and then answers
// when the caller waits that long; verification never waits.
func TestSlowAmountWaits(t *testing.T) {
	t.Parallel()
	p, rec := setup(t)
	got, err := p.Authorize(context.Background(), auth("4111111111111111", SlowAmount))
	if err != nil || !got.Approved || len(rec.calls) != 1 || rec.calls[0] != SlowDelay {
		t.Fatalf("slow amount = %+v, %v (slept %v)", got, err, rec.calls)
	}
	p, rec = setup(t)
	if _, err := p.Verify(context.Background(), auth("4111111111111111", SlowAmount)); err != nil || len(rec.calls) != 0 {
		t.Fatalf("verification slept %v, err %v", rec.calls, err)
	}
}

// TestRealSleepHonoursContext runs the default timer with a canceled context,
// so it returns at once instead of after 12 s.
func TestRealSleepHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New().Authorize(ctx, auth("4111111111111111", SlowAmount))
	if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Fatalf("Authorize error = %v, want an unknown outcome", err)
	}
	if err := New().sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("real sleep: %v", err)
	}
}

// TestContract runs the contract every adapter passes.
func TestContract(t *testing.T) {
	t.Parallel()
	processortest.Run(t, func(t *testing.T) ivrpay.Processor {
		return &Processor{Sleep: func(ctx context.Context, d time.Duration) error { return context.DeadlineExceeded }}
	})
}

func TestAuthCodeDeterministic(t *testing.T) {
	t.Parallel()
	p, _ := setup(t)
	get := func(ref, pan string, amount int64) string {
		a := auth(pan, amount)
		a.IdempotencyKey = ref
		res, err := p.Authorize(context.Background(), a)
		if err != nil || !res.Approved {
			t.Fatalf("Authorize(%q) = %+v, %v", ref, res, err)
		}
		return res.AuthCode
	}
	a := get("payin_abc", "4111111111111111", 1000)
	if b := get("payin_abc", "5555555555554444", 2500); a != b {
		t.Fatalf("same reference gave auth codes %q and %q", a, b)
	}
	if c := get("payin_abd", "4111111111111111", 1000); a == c {
		t.Fatalf("different references gave the same auth code %q", a)
	}
	// A fixed value, so a change of derivation (which would change codes
	// integrators may have recorded) is a deliberate one.
	if got, want := authCode("payin_123"), "XEOAIP"; got != want {
		t.Fatalf("authCode(payin_123) = %q, want %q", got, want)
	}
}

// TestAuthorizeProperties checks, over arbitrary requests, what must hold for
// every answer: well-formed codes, and no PAN or CVV in any returned string.
func TestAuthorizeProperties(t *testing.T) {
	t.Parallel()
	p, _ := setup(t)
	digits := rapid.StringMatching(`[0-9]{12,19}`)
	rapid.Check(t, func(rt *rapid.T) {
		a := ivrpay.CardPayment{
			IdempotencyKey: rapid.String().Draw(rt, "reference"),
			Amount:         rapid.Int64Range(0, 10000).Draw(rt, "amount"),
			Card: ivrpay.CardDetails{
				PAN:        rapid.OneOf(digits, rapid.SampledFrom([]string{"4111111111111111", "4000000000000002"})).Draw(rt, "pan"),
				CVV:        rapid.StringMatching(`[0-9]{0,4}`).Draw(rt, "cvv"),
				PostalCode: rapid.StringMatching(`[0-9]{0,5}`).Draw(rt, "postal"),
			},
		}
		res, err := p.Authorize(context.Background(), a)
		if errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			return // a fault trigger
		}
		if err != nil {
			rt.Fatalf("Authorize: %v", err)
		}
		if res.Approved == (res.RefusalCode != "") || (res.RefusalCode == "") != (res.RefusalDesc == "") {
			rt.Fatalf("inconsistent result %+v", res)
		}
		if res.Approved {
			if len(res.AuthCode) != 6 || strings.Trim(res.AuthCode, authCodeAlphabet) != "" {
				rt.Fatalf("auth code %q is not 6 uppercase alphanumerics", res.AuthCode)
			}
		} else if res.AuthCode != "" {
			rt.Fatalf("declined with auth code %q", res.AuthCode)
		}
		if !strings.Contains("YNU", res.AVSResultCode) || len(res.AVSResultCode) != 1 ||
			!strings.Contains("MNP", res.CVCResultCode) || len(res.CVCResultCode) != 1 {
			rt.Fatalf("result codes %q %q", res.AVSResultCode, res.CVCResultCode)
		}
		for _, s := range []string{res.AuthCode, res.AVSResultCode, res.CVCResultCode, res.RefusalCode, res.RefusalDesc, fmt.Sprintf("%+v", res)} {
			if strings.Contains(s, a.Card.PAN) {
				rt.Fatalf("result contains the PAN: %q", s)
			}
		}
		// Refusal text has no digits at all, so it can hold no CVV.
		if strings.ContainsAny(res.RefusalCode+res.RefusalDesc, "0123456789") {
			rt.Fatalf("refusal has digits: %+v", res)
		}
	})
}

// TestTable checks that the published table lists every trigger and that each
// row does what it says when sent to Authorize.
func TestTable(t *testing.T) {
	t.Parallel()
	rules := Table()
	seen := make(map[string]bool)
	for _, r := range rules {
		key := r.Kind + ":" + r.Trigger
		if seen[key] {
			t.Fatalf("duplicate row %s", key)
		}
		seen[key] = true
		if r.Kind == "" || r.Trigger == "" || r.Description == "" {
			t.Fatalf("incomplete row %+v", r)
		}
		a := auth("4111111111111111", 1000)
		switch r.Kind {
		case KindAmount:
			n, err := strconv.ParseInt(r.Trigger, 10, 64)
			if err != nil {
				t.Fatalf("amount trigger %q: %v", r.Trigger, err)
			}
			a.Amount = n
		case KindCard:
			a.Card.PAN = r.Trigger
		case KindCVC:
			a.Card.CVV = r.Trigger
		case KindPostalCode:
			a.Card.PostalCode = r.Trigger
		case KindDefault:
		default:
			t.Fatalf("unknown kind %q", r.Kind)
		}
		p, rec := setup(t)
		rec.err = context.DeadlineExceeded
		res, err := p.Authorize(context.Background(), a)
		fault := errors.Is(err, ivrpay.ErrOutcomeUnknown)
		if fault {
			// A fault trigger: the row tells what Resolve finds.
			if res, err = p.Resolve(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if res.RefusalCode != r.RefusalCode || (r.RefusalCode != "" && !fault && res.RefusalDesc != r.Description) {
			t.Fatalf("row %+v: Authorize gave %+v", r, res)
		}
	}
	for _, want := range []string{
		"amount:5110", "amount:5120", "amount:5121", "amount:5122", "amount:5101", "amount:5102", "amount:5103", "amount:5105",
		"card:4000000000000002", "card:4000000000009995", "card:4000000000000069",
		"card:4000000000000127", "card:4000000000000119", "card:4100000000000019",
		"cvc:000", "postal_code:00000",
	} {
		if !seen[want] {
			t.Errorf("Table lacks %s", want)
		}
	}
}

// TestLatency: with Latency set, every Authorize and Verify first waits that
// long (recorded, not slept), and a caller that gives up first gets an
// unknown outcome.
func TestLatency(t *testing.T) {
	t.Parallel()
	p, rec := setup(t)
	p.Latency = 300 * time.Millisecond
	if res, err := p.Authorize(context.Background(), auth("4111111111111111", 1000)); err != nil || !res.Approved {
		t.Fatalf("Authorize = %+v, %v", res, err)
	}
	if _, err := p.Verify(context.Background(), auth("4111111111111111", 0)); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 2 || rec.calls[0] != p.Latency || rec.calls[1] != p.Latency {
		t.Fatalf("waits %v, want two of %v", rec.calls, p.Latency)
	}
	rec.err = context.DeadlineExceeded
	if _, err := p.Authorize(context.Background(), auth("4111111111111111", 1000)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Fatalf("a caller that gives up during the latency: %v, want an unknown outcome", err)
	}
}

// TestConfirmations: the sandbox confirms a payin's capture and a refund's
// success, fails a refund of RefundFailsAmount or of a payin of that
// amount, and gives each event an id fixed by its object and effect.
func TestConfirmations(t *testing.T) {
	t.Parallel()
	payin := ivrpay.SandboxDue{PayinID: "sbx_pyi_1", PayinAmount: 1000, CapturedAmount: 1000, PayinReference: "sbxproc_ch_1", Currency: "USD"}
	refundOf := func(payinAmount, amount int64) ivrpay.SandboxDue {
		d := payin
		d.PayinAmount, d.RefundID, d.RefundAmount, d.RefundReference = payinAmount, "sbx_rfd_1", amount, "sbxproc_re_1"
		return d
	}
	for _, tc := range []struct {
		name       string
		due        ivrpay.SandboxDue
		effect     ivrpay.EventEffect
		id, refuse string
	}{
		{"payin", payin, ivrpay.EffectPaymentCaptured, "sbx_pyi_1:PAYMENT_CAPTURED", ""},
		{"refund", refundOf(1000, 300), ivrpay.EffectRefundSucceeded, "sbx_rfd_1:REFUND_SUCCEEDED", ""},
		{"refund of 51.40", refundOf(9000, RefundFailsAmount), ivrpay.EffectRefundFailed, "sbx_rfd_1:REFUND_FAILED", ivrpay.RefusalProcessingError},
		{"refund of a payin of 51.40", refundOf(RefundFailsAmount, 100), ivrpay.EffectRefundFailed, "sbx_rfd_1:REFUND_FAILED", ivrpay.RefusalProcessingError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := Confirmations(tc.due)
			if len(events) != 1 {
				t.Fatalf("%d events, want 1", len(events))
			}
			e := events[0]
			if e.Effect != tc.effect || e.ID != tc.id || e.RefusalCode != tc.refuse || e.Account != ivrpay.SandboxAccount || e.Kind != Kind {
				t.Fatalf("event %+v, want effect %s, id %s, refusal %q", e, tc.effect, tc.id, tc.refuse)
			}
			if err := ivrpay.CheckProcessorEvent(e); err != nil {
				t.Fatalf("the inbox refuses the event: %v", err)
			}
			if again := Confirmations(tc.due); again[0].ID != e.ID {
				t.Fatalf("ids %s then %s: the same confirmation must keep its id", e.ID, again[0].ID)
			}
		})
	}
}

// TestResolveGivesTheLostAnswer: Resolve of a charge whose answer was lost
// answers what Authorize would have said, CVC result included, although
// Resolve carries no CVV; another process's Resolve, which did not make
// the charge, can only say the CVC was not processed.
func TestResolveGivesTheLostAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, cvv, postal, wantCVC, wantAVS string
	}{
		{"matching CVC", "123", "94111", CVCMatch, AVSMatch},
		{"approved despite a CVC mismatch", ApproveMismatchCVC, "94111", CVCNoMatch, AVSMatch},
		{"approved despite a postal code mismatch", "123", ApproveMismatchPostalCode, CVCMatch, AVSNoMatch},
	} {
		for _, amount := range []int64{TimeoutFirstAmount, LostAnswersAmount} {
			t.Run(fmt.Sprint(tc.name, " ", amount), func(t *testing.T) {
				t.Parallel()
				p, rec := setup(t)
				rec.err = context.DeadlineExceeded
				a := auth("4111111111111111", amount)
				a.Card.CVV, a.Card.PostalCode = tc.cvv, tc.postal
				want := answer(a)
				if _, err := p.Authorize(context.Background(), a); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
					t.Fatalf("Authorize: %v, want an unknown outcome", err)
				}
				a.Card.CVV = "" // never kept
				got, err := p.Resolve(context.Background(), a)
				if err != nil || got != want || got.CVCResultCode != tc.wantCVC || got.AVSResultCode != tc.wantAVS || got.AuthCode == "" || got.NetworkTransactionID == "" {
					t.Fatalf("Resolve = %+v, %v; want %+v", got, err, want)
				}
				other, _ := setup(t)
				if got, err := other.Resolve(context.Background(), a); err != nil || !got.Approved || got.CVCResultCode != CVCNotProvided || got.AuthCode != want.AuthCode {
					t.Fatalf("another process's Resolve = %+v, %v; want approved with cvc P and the same auth code", got, err)
				}
			})
		}
	}
}
