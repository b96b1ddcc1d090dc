// Package sandbox is the deterministic card processor of sandbox deployments
// (docs/sandbox.md). It never touches a card network: its answer depends only on the
// request, so integrators can script every outcome, including declines made
// through Twilio's TEST mode, which only forwards Twilio's own test cards and
// so can only be steered by amount.
//
// Authorize evaluates its rules in this order; the first decline wins:
//
//  1. Amounts whose answer does not arrive (the charge is made at the
//     "acquirer", or not, whatever the caller hears): 5110 cents (SlowAmount)
//     answers after SlowDelay (12 s), beyond the 6 s ivrpay gives a processor
//     call; 5120 (TimeoutFirstAmount) times out on the first call of an
//     idempotency key and answers its repeats; 5121 (LostAnswersAmount)
//     never answers; 5122 (UnavailableAmount) answers 503 and charges
//     nothing. Resolve answers them all: approved, except 5122, and except
//     5121 while the caller is on the line (CardPayment.DuringCall): its
//     answers are lost until the reconciler asks. Resolve gives the answer
//     the charge got (AVS and CVC results included), as remembered in
//     memory by the process that made it.
//
// Capture, Void and Refund approve; one of TimeoutFirstAmount cents times out
// on the first call of its idempotency key (the operation is done) and
// answers its repeats, like a charge of that amount. A refund of a payment
// of ChargebackAmount is refused as disputed (Stripe's charge_disputed):
// the sandbox disputes that payment from settlement on, before its dispute
// event reaches ivrpay.
//  2. Card triggers: the test card numbers of Table decline with their refusal code.
//  3. CVC: "000" declines with INVALID_CARD_SECURITY_CODE (cvc_result_code N);
//     "001" approves with cvc_result_code N, as an issuer that approves
//     despite a mismatch (what a platform's require_cvc_match policy
//     catches); an empty CVV is P (not processed); any other is M.
//  4. AVS: postal code "00000" declines with INCORRECT_PAYMENT_INFORMATION
//     (avs_result_code N); "00001" approves with avs_result_code N; an empty
//     postal code is U (unavailable); any other is Y.
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
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
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
	// ApproveMismatchCVC and ApproveMismatchPostalCode approve with a
	// result code N (SPEC §11 rule 5).
	ApproveMismatchCVC        = "001"
	ApproveMismatchPostalCode = "00001"
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

// The sandbox's refusals read as every processor's do once normalized.
var (
	declined          = refusalOf(ivrpay.RefusalDeclined)
	insufficientFunds = refusalOf(ivrpay.RefusalInsufficientFunds)
	expiredCard       = refusalOf(ivrpay.RefusalExpiredCard)
	badCVC            = refusalOf(ivrpay.RefusalInvalidCardSecurityCode)
	processingError   = refusalOf(ivrpay.RefusalProcessingError)
	riskDecline       = refusalOf(ivrpay.RefusalRiskDecline)
	doNotHonor        = refusalOf(ivrpay.RefusalDoNotHonor)
	badPostalCode     = refusalOf(ivrpay.RefusalIncorrectPaymentInformation)
)

func refusalOf(code string) refusal { return refusal{code, ivrpay.RefusalDescription(code, "")} }

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
		Description: "Answers after 12 s, beyond the 6 s a processor call gets: the outcome is unknown until a retry or the reconciler finds the charge",
	}, {
		Kind: KindAmount, Trigger: strconv.Itoa(TimeoutFirstAmount),
		Description: "The first call times out although the charge went through; a retry or the reconciler finds it approved",
	}, {
		Kind: KindAmount, Trigger: strconv.Itoa(LostAnswersAmount),
		Description: "The charge goes through and every answer is lost until the reconciler asks; it then finds it approved",
	}, {
		Kind: KindAmount, Trigger: strconv.Itoa(UnavailableAmount), RefusalCode: ivrpay.RefusalProcessingError,
		Description: "503 without a charge: the reconciler finds no charge and fails the payin with PROCESSING_ERROR",
	}}
	for _, c := range cardTriggers {
		rules = append(rules, Rule{KindCard, c.pan, c.code, c.desc})
	}
	rules = append(rules,
		Rule{KindCVC, DeclineCVC, badCVC.code, badCVC.desc},
		Rule{KindCVC, ApproveMismatchCVC, "", "Approved with cvc_result_code N (a platform with require_cvc_match voids it)"},
		Rule{KindPostalCode, DeclinePostalCode, badPostalCode.code, badPostalCode.desc},
		Rule{KindPostalCode, ApproveMismatchPostalCode, "", "Approved with avs_result_code N (a platform with require_avs_match voids it)"},
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

// Fault triggers: amounts whose answer does not arrive (docs/processors.md).
// The charge is made (or not) at the "acquirer"; only the
// answer is lost, as when a real processor times out or answers 5xx.
const (
	// TimeoutFirstAmount: the first call for an idempotency key times out
	// although the charge went through; a repeat with the same key, or
	// Resolve, finds it approved.
	TimeoutFirstAmount = 5120
	// LostAnswersAmount: the charge goes through and every answer about it is
	// lost (each call times out) until Resolve asks.
	LostAnswersAmount = 5121
	// UnavailableAmount: every call answers 503 and nothing is charged;
	// Resolve reports no charge.
	UnavailableAmount = 5122
)

// Processor is the sandbox ivrpay.Processor. Its answers depend only on the
// request, except that it remembers which idempotency keys of
// TimeoutFirstAmount it has seen (in memory, bounded), so that one value
// serves any number of concurrent calls and a restarted server resolves what
// an earlier one left unknown.
type Processor struct {
	// Sleep waits d or until ctx is done; tests replace it. nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Latency is how long every Authorize, Verify and Resolve takes before
	// it answers, like a real acquirer's round trip (serve
	// --sandbox-processor-latency); 0 answers at once.
	Latency time.Duration

	mu   sync.Mutex
	seen map[string]bool // idempotency keys of TimeoutFirstAmount already answered once
	// lost holds the answers of charges made whose answer was lost (the
	// fault triggers), by idempotency key, for Resolve: the CVV that gave
	// the CVC result is not in Resolve's request (ivrpay never keeps it),
	// but the acquirer remembers what it answered.
	lost map[string]ivrpay.ProcessorResult

	calls atomic.Int64 // calls of every kind, for tests
}

// Calls returns how many calls (of every kind: authorize, verify, capture,
// void, refund, resolve) the processor received: how tests prove that a
// refused attempt never reached it.
func (p *Processor) Calls() int64 { return p.calls.Load() }

var _ ivrpay.Processor = (*Processor)(nil)

// Kind is "sandbox".
const Kind = "sandbox"

// maxSeen bounds the memory of TimeoutFirstAmount keys; past it the memory
// starts again (a forgotten key times out once more, which the retry or the
// reconciler resolves).
const maxSeen = 10000

// New returns a sandbox processor that really waits.
func New() *Processor { return &Processor{} }

// Kind names the adapter.
func (p *Processor) Kind() string { return Kind }

// Capabilities: the sandbox does everything.
func (p *Processor) Capabilities() ivrpay.ProcessorCapabilities {
	return ivrpay.ProcessorCapabilities{ManualCapture: true, PartialCapture: true, Void: true, Refund: true,
		PartialRefund: true, Verify: true, StoredCharges: true}
}

// Authorize answers a by the rules of the package documentation. Declines are
// results; errors are unknown outcomes (the fault triggers, or an interrupted
// SlowDelay wait).
func (p *Processor) Authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	p.calls.Add(1)
	if err := p.wait(ctx); err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	switch a.Amount {
	case SlowAmount:
		// The charge goes through at the "acquirer" however long the caller waits.
		res := p.charged(a)
		if err := p.sleep(ctx, SlowDelay); err != nil {
			return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("sandbox: no answer within the deadline: %v", err)
		}
		return res, nil
	case TimeoutFirstAmount:
		if p.firstCall(a.IdempotencyKey) {
			p.charged(a)
			return ivrpay.ProcessorResult{}, p.timeout(ctx)
		}
	case LostAnswersAmount:
		p.charged(a)
		return ivrpay.ProcessorResult{}, p.timeout(ctx)
	case UnavailableAmount:
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("sandbox: HTTP 503 Service Unavailable")
	}
	return answer(a), nil
}

// charged makes the charge a at the "acquirer" and remembers its answer
// for Resolve (bounded like seen), the answer being lost on the way back.
func (p *Processor) charged(a ivrpay.CardPayment) ivrpay.ProcessorResult {
	res := answer(a)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost == nil || len(p.lost) >= maxSeen {
		p.lost = map[string]ivrpay.ProcessorResult{}
	}
	p.lost[a.IdempotencyKey] = res
	return res
}

// Verify checks a card without an amount: the card, CVC and AVS rules apply.
func (p *Processor) Verify(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	p.calls.Add(1)
	if err := p.wait(ctx); err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	a.Amount = 0
	return answer(a), nil
}

// Capture, Void and Refund approve (the service has already checked amounts
// and states); an operation of TimeoutFirstAmount times out on its first
// call (the operation is done), as a charge of that amount does.
func (p *Processor) Capture(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return p.operate(ctx, "cap", op)
}

// Void approves, or times out first (TimeoutFirstAmount).
func (p *Processor) Void(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return p.operate(ctx, "void", op)
}

// Refund approves, or times out first (TimeoutFirstAmount), or refuses a
// payment the sandbox disputes (ChargebackAmount) as Stripe does.
func (p *Processor) Refund(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	if op.PaymentAmount == ChargebackAmount {
		p.calls.Add(1)
		return disputedRefund, nil
	}
	return p.operate(ctx, "re", op)
}

// disputedRefund is the sandbox's refusal of a refund of a disputed payment:
// a refusal with the processor's code, as the Stripe adapter maps
// charge_disputed.
var disputedRefund = ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, ProcessorCode: "sandbox charge_disputed",
	RefusalDesc: "sandbox: the payment is disputed; a refund would pay the cardholder twice"}

func (p *Processor) operate(ctx context.Context, kind string, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	p.calls.Add(1)
	if op.Amount == TimeoutFirstAmount && p.firstCall(op.IdempotencyKey) {
		return ivrpay.ProcessorResult{}, p.timeout(ctx)
	}
	return operation(kind, op), nil
}

// Resolve answers what the lost call did: the fault triggers that charged
// are approved (LostAnswersAmount only when the reconciler asks: asked
// during the call, it times out), UnavailableAmount charged nothing
// (PROCESSING_ERROR), and any other request gets the answer Authorize gives it.
// A charge this process made is answered as it was made, auth code, AVS
// and CVC results and network transaction id alike; one it does not
// remember (another process's, or from before a restart) gets the same
// answer but for cvc_result_code P, since Resolve carries no CVV.
func (p *Processor) Resolve(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	p.calls.Add(1)
	if err := p.wait(ctx); err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	if a.Amount == LostAnswersAmount && a.DuringCall {
		return ivrpay.ProcessorResult{}, p.timeout(ctx)
	}
	if a.Amount == UnavailableAmount {
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError,
			RefusalDesc:   "sandbox: no charge was made (the processor was unavailable)",
			AVSResultCode: avsResult(a.Card.PostalCode), CVCResultCode: cvcResult(a.Card.CVV)}, nil
	}
	p.mu.Lock()
	res, ok := p.lost[a.IdempotencyKey]
	p.mu.Unlock()
	if ok {
		return res, nil
	}
	// Made by another process, or before a restart: the same answer but
	// for the CVC result, which the CVV (not in a Resolve) gave.
	return answer(a), nil
}

// answer applies rules 2 to 6.
func answer(a ivrpay.CardPayment) ivrpay.ProcessorResult {
	res := ivrpay.ProcessorResult{
		AVSResultCode: avsResult(a.Card.PostalCode),
		CVCResultCode: cvcResult(a.Card.CVV),
	}
	if r, ok := decline(a); ok {
		res.RefusalCode, res.RefusalDesc = r.code, r.desc
		res.Reference = reference("ch", a.IdempotencyKey)
		return res
	}
	res.Approved = true
	res.AuthCode = authCode(a.IdempotencyKey)
	res.Reference = reference("ch", a.IdempotencyKey)
	res.AuthorizedAmount = a.Amount
	res.NetworkTransactionID = networkTransactionID(a.IdempotencyKey)
	return res
}

func operation(kind string, op ivrpay.PaymentOperation) ivrpay.ProcessorResult {
	return ivrpay.ProcessorResult{Approved: true, Reference: reference(kind, op.IdempotencyKey), AuthorizedAmount: op.Amount}
}

// wait takes the processor's Latency; a caller that gives up first gets an
// unknown outcome, as with a slow acquirer.
func (p *Processor) wait(ctx context.Context) error {
	if p.Latency <= 0 {
		return nil
	}
	if err := p.sleep(ctx, p.Latency); err != nil {
		return ivrpay.UnknownOutcome("sandbox: no answer within the deadline: %v", err)
	}
	return nil
}

// firstCall reports whether key is seen for the first time, and remembers it.
func (p *Processor) firstCall(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[key] {
		return false
	}
	if p.seen == nil || len(p.seen) >= maxSeen {
		p.seen = map[string]bool{}
	}
	p.seen[key] = true
	return true
}

// timeout waits until the caller gives up (at most SlowDelay), as a processor
// that never answers.
func (p *Processor) timeout(ctx context.Context) error {
	err := p.sleep(ctx, SlowDelay)
	if err == nil {
		err = context.DeadlineExceeded
	}
	return ivrpay.UnknownOutcome("sandbox: no answer: %v", err)
}

// decline applies rules 2 to 5 in order.
func decline(a ivrpay.CardPayment) (refusal, bool) {
	for _, c := range cardTriggers {
		if a.Card.PAN == c.pan {
			return c.refusal, true
		}
	}
	if a.Card.CVV == DeclineCVC {
		return badCVC, true
	}
	if a.Card.PostalCode == DeclinePostalCode {
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
	case DeclineCVC, ApproveMismatchCVC:
		return CVCNoMatch
	case "":
		return CVCNotProvided
	}
	return CVCMatch
}

func avsResult(postal string) string {
	switch postal {
	case DeclinePostalCode, ApproveMismatchPostalCode:
		return AVSNoMatch
	case "":
		return AVSUnavailable
	}
	return AVSMatch
}

// authCodeAlphabet is what card networks put in approval codes: digits and
// uppercase letters.
const authCodeAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// reference is the sandbox's id of a payment or operation: derived from the
// idempotency key, so a repeat gets the same one.
func reference(kind, key string) string {
	sum := sha256.Sum256([]byte("ivrpay sandbox reference\x00" + key))
	return "sbxproc_" + kind + "_" + hex.EncodeToString(sum[:12])
}

// networkTransactionID is a 15-digit id like the card networks', derived
// from the idempotency key.
func networkTransactionID(key string) string {
	sum := sha256.Sum256([]byte("ivrpay sandbox network transaction\x00" + key))
	d := make([]byte, 15)
	for i := range d {
		d[i] = '0' + sum[i]%10
	}
	return string(d)
}

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
