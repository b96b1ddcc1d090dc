// Package sandbox is the deterministic card processor of sandbox deployments
// (SPEC §4). It never touches a card network: its answer depends only on the
// request, so integrators can script every outcome, including declines made
// through Twilio's TEST mode, which only forwards Twilio's own test cards and
// so can only be steered by amount.
//
// Authorize evaluates its rules in this order; the first decline wins:
//
//  1. Amount 5110 cents (SlowAmount): wait SlowDelay (12 s), longer than
//     Twilio's 10 s connector timeout so that its retry can be exercised, then
//     go on with the rules below (a normal card is then approved).
//  2. Card triggers: the test card numbers of Table decline with their refusal code.
//  3. CVC: "000" declines with INVALID_CARD_SECURITY_CODE (cvc_result_code N);
//     an empty CVV is P (not processed); any other is M.
//  4. AVS: postal code "00000" declines with INCORRECT_PAYMENT_INFORMATION
//     (avs_result_code N); an empty postal code is U (unavailable); any other is Y.
//  5. Amount triggers: 5101, 5102, 5103 and 5105 cents decline.
//  6. Otherwise approve, with an auth code derived from the reference.
//
// The AVS and CVC result codes are set on every result, approved or declined.
// An amount of 0 is a card verification (tokenize): the amount rules (1 and 5)
// do not apply, the card, CVC and AVS rules do.
//
// The processor logs nothing and no string it returns contains the PAN or CVV.
// It does not check the Luhn digit or the expiry date: invalid card data is
// refused before a processor is asked.
package sandbox

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/ivrpay/ivrpay"
)

// SlowAmount is the amount, in cents, that makes Authorize answer only after
// SlowDelay.
const SlowAmount = 5110

// SlowDelay is how long SlowAmount takes: longer than the 10 s Twilio waits
// for a connector before it retries.
const SlowDelay = 12 * time.Second

// AVS and CVC result codes.
const (
	AVSMatch       = "Y"
	AVSNoMatch     = "N"
	AVSUnavailable = "U"
	CVCMatch       = "M"
	CVCNoMatch     = "N"
	CVCNotProvided = "P"
)

// Trigger values of the CVC and AVS rules.
const (
	DeclineCVC        = "000"
	DeclinePostalCode = "00000"
)

// Rule kinds in Table.
const (
	KindAmount     = "amount"
	KindCard       = "card"
	KindCVC        = "cvc"
	KindPostalCode = "postal_code"
	KindDefault    = "default"
)

// Rule is one row of the trigger table: a request with Trigger in the field
// Kind gets RefusalCode and Description (the refusal_desc), or is approved
// when RefusalCode is empty.
type Rule struct{ Kind, Trigger, RefusalCode, Description string }

// refusal is a decline outcome.
type refusal struct{ code, desc string }

// cardTrigger and amountTrigger are the single source of both Authorize and
// Table, so the published table cannot drift from what the processor does.
type cardTrigger struct {
	pan string
	refusal
}

type amountTrigger struct {
	amount int64
	refusal
}

var (
	declined          = refusal{ivrpay.RefusalDeclined, "Card declined"}
	insufficientFunds = refusal{ivrpay.RefusalInsufficientFunds, "Insufficient funds"}
	expiredCard       = refusal{ivrpay.RefusalExpiredCard, "Expired card"}
	badCVC            = refusal{ivrpay.RefusalInvalidCardSecurityCode, "Incorrect card security code"}
	processingError   = refusal{ivrpay.RefusalProcessingError, "Processing error"}
	riskDecline       = refusal{ivrpay.RefusalRiskDecline, "Declined by risk rules"}
	doNotHonor        = refusal{ivrpay.RefusalDoNotHonor, "Do not honor"}
	badPostalCode     = refusal{ivrpay.RefusalIncorrectPaymentInformation, "Postal code does not match"}
)

var cardTriggers = []cardTrigger{
	{"4000000000000002", declined},
	{"4000000000009995", insufficientFunds},
	{"4000000000000069", expiredCard},
	{"4000000000000127", badCVC},
	{"4000000000000119", processingError},
	{"4100000000000019", riskDecline},
}

var amountTriggers = []amountTrigger{
	{5101, declined},
	{5102, insufficientFunds},
	{5103, doNotHonor},
	{5105, processingError},
}

// Table returns the trigger table, in the order Authorize evaluates it, for
// the public docs and the portal. Amounts are in cents.
func Table() []Rule {
	rules := []Rule{{
		Kind:        KindAmount,
		Trigger:     strconv.Itoa(SlowAmount),
		Description: "Answers after 12 s (longer than Twilio's 10 s timeout), then applies the other rules",
	}}
	for _, c := range cardTriggers {
		rules = append(rules, Rule{KindCard, c.pan, c.code, c.desc})
	}
	rules = append(rules,
		Rule{KindCVC, DeclineCVC, badCVC.code, badCVC.desc},
		Rule{KindPostalCode, DeclinePostalCode, badPostalCode.code, badPostalCode.desc},
	)
	for _, a := range amountTriggers {
		rules = append(rules, Rule{KindAmount, strconv.FormatInt(a.amount, 10), a.code, a.desc})
	}
	return append(rules, Rule{
		Kind:        KindDefault,
		Trigger:     "any other valid card",
		Description: "Approved, with an auth code that depends only on the payin reference",
	})
}

// Processor is the sandbox ivrpay.Processor. It holds no state, so one value
// serves any number of concurrent calls.
type Processor struct {
	// Sleep waits d or until ctx is done; tests replace it. nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ ivrpay.Processor = (*Processor)(nil)

// New returns a sandbox processor that really waits for SlowAmount.
func New() *Processor { return &Processor{} }

// Authorize answers a by the rules of the package documentation. Declines are
// results; the only error is the one of an interrupted SlowDelay wait (the
// context's error), which is returned as is.
func (p *Processor) Authorize(ctx context.Context, a ivrpay.Authorization) (ivrpay.AuthorizationResult, error) {
	if a.Amount == SlowAmount { // never 0, so tokenize is never slow
		if err := p.sleep(ctx, SlowDelay); err != nil {
			return ivrpay.AuthorizationResult{}, err
		}
	}

	res := ivrpay.AuthorizationResult{
		AVSResultCode: avsResult(a.PostalCode),
		CVCResultCode: cvcResult(a.CVV),
	}
	if r, ok := decline(a, res); ok {
		res.RefusalCode, res.RefusalDesc = r.code, r.desc
		return res, nil
	}
	res.Approved = true
	res.AuthCode = authCode(a.Reference)
	return res, nil
}

// decline applies rules 2 to 5 in order.
func decline(a ivrpay.Authorization, res ivrpay.AuthorizationResult) (refusal, bool) {
	for _, c := range cardTriggers {
		if a.PAN == c.pan {
			return c.refusal, true
		}
	}
	if res.CVCResultCode == CVCNoMatch {
		return badCVC, true
	}
	if res.AVSResultCode == AVSNoMatch {
		return badPostalCode, true
	}
	if a.Amount > 0 {
		for _, t := range amountTriggers {
			if a.Amount == t.amount {
				return t.refusal, true
			}
		}
	}
	return refusal{}, false
}

func cvcResult(cvv string) string {
	switch cvv {
	case DeclineCVC:
		return CVCNoMatch
	case "":
		return CVCNotProvided
	}
	return CVCMatch
}

func avsResult(postal string) string {
	switch postal {
	case DeclinePostalCode:
		return AVSNoMatch
	case "":
		return AVSUnavailable
	}
	return AVSMatch
}

// authCodeAlphabet is what card networks put in approval codes: digits and
// uppercase letters.
const authCodeAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// authCode derives a 6-character approval code from the reference, so a retry
// of one attempt (same reference) gets the same code, as an idempotent real
// processor would answer. The hash keeps the code free of reference text.
func authCode(reference string) string {
	sum := sha256.Sum256([]byte("ivrpay sandbox auth code\x00" + reference))
	code := make([]byte, 6)
	for i := range code {
		code[i] = authCodeAlphabet[int(sum[i])%len(authCodeAlphabet)]
	}
	return string(code)
}

func (p *Processor) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
