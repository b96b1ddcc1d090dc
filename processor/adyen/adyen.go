package adyen

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/notsent"
)

// Kind is "adyen".
const Kind = "adyen"

// TestAPIBase is Adyen's Checkout API v71 test endpoint, the default.
const TestAPIBase = "https://checkout-test.adyen.com/v71"

// DefaultReturnURL is sent as returnUrl, which Checkout v71 requires on every
// /payments request although a phone order is never redirected (MOTO is out
// of 3D Secure's scope). The .invalid domain says so to anyone reading it.
const DefaultReturnURL = "https://moto.ivrpay.invalid/no-redirect"

// liveHostSuffix ends every live Checkout host: {PREFIX}-checkout-live.adyenpayments.com.
const liveHostSuffix = "-checkout-live.adyenpayments.com"

// maxResponse bounds what is read of an answer; Adyen's are a few KiB.
const maxResponse = 1 << 20

// Config configures one Adyen processor account.
type Config struct {
	// APIKey is the API credential's key (X-API-Key). It needs the "API PCI
	// Payments role" to send raw card data.
	APIKey string
	// MerchantAccount is the default (MOTO) merchant account;
	// CardPayment.AccountRef and PaymentOperation.AccountRef override it.
	MerchantAccount string
	// APIBase is the Checkout endpoint up to and including the version:
	// TestAPIBase when empty, https://{PREFIX}-checkout-live.adyenpayments.com/checkout/v71
	// in production, a local fake in tests.
	APIBase string
	// Live says the account moves real money: APIBase must then be a live
	// endpoint, and otherwise must not be one (CheckEndpointMode).
	Live bool
	// HTTPClient sends the requests; nil means a client with a 30 s timeout
	// (the caller's context normally ends the call much sooner).
	HTTPClient *http.Client
	// ReturnURL is sent as returnUrl; DefaultReturnURL when empty.
	ReturnURL string
	// AmountTriggers asks Adyen's test platform for the refusals of
	// TestAcquirerResponseCodes by amount, so that a decline can be made
	// through Twilio's TEST mode, which only forwards fixed test cards. Only
	// for test accounts: New refuses it with Live.
	AmountTriggers bool
}

// TestAcquirerResponseCodes maps the sandbox's decline amounts (cents) to the
// RequestedTestAcquirerResponseCode Adyen's test platform answers with that
// refusal: 2 Refused, 12 Not enough balance, 27 Declined Non Generic, 4
// Acquirer Error.
var TestAcquirerResponseCodes = map[int64]string{5101: "2", 5102: "12", 5103: "27", 5105: "4"}

// Processor is the Adyen ivrpay.Processor. It is safe for concurrent use.
type Processor struct {
	apiKey, merchantAccount, apiBase, returnURL string
	client                                      *http.Client
	amountTriggers                              bool
}

var _ ivrpay.Processor = (*Processor)(nil)

// New checks cfg and returns a processor. Its errors never contain the API key.
func New(cfg Config) (*Processor, error) {
	if err := CheckAPIKey(cfg.APIKey); err != nil {
		return nil, err
	}
	if cfg.MerchantAccount == "" {
		return nil, errors.New("adyen: no merchant account")
	}
	base := cfg.APIBase
	if base == "" {
		base = TestAPIBase
	}
	if err := CheckEndpointMode(base, cfg.Live); err != nil {
		return nil, err
	}
	// A request refused before it left (a bad header) is told apart from one
	// whose answer was lost.
	client := notsent.Client(cfg.HTTPClient, 30*time.Second)
	ret := cfg.ReturnURL
	if ret == "" {
		ret = DefaultReturnURL
	}
	if cfg.AmountTriggers && cfg.Live {
		return nil, errors.New("adyen: amount triggers are for test accounts only")
	}
	return &Processor{apiKey: cfg.APIKey, merchantAccount: cfg.MerchantAccount,
		apiBase: strings.TrimRight(base, "/"), returnURL: ret, client: client, amountTriggers: cfg.AmountTriggers}, nil
}

// CheckAPIKey refuses what cannot be an Adyen API key: empty, too long, or
// holding anything but printable ASCII without spaces (a second line from
// the key file, above all), which would fail every call after it was
// stored. The error never quotes the key.
func CheckAPIKey(key string) error {
	if key == "" {
		return errors.New("adyen: no API key")
	}
	if len(key) > maxAPIKey {
		return fmt.Errorf("adyen: the API key is %d characters long; Adyen's are far shorter than %d", len(key), maxAPIKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return fmt.Errorf("adyen: the API key holds a space, a line break or another character that is not printable ASCII (at byte %d); it must be one line", i+1)
		}
	}
	return nil
}

// maxAPIKey bounds an API key's length (Adyen's are about 200 characters).
const maxAPIKey = 1024

// CheckEndpointMode refuses an endpoint that does not fit the mode: production
// needs a live Checkout endpoint over https, and sandbox refuses any live
// Adyen endpoint, so that test credentials never meet real money and the
// other way round (docs/processors.md). An empty apiBase is TestAPIBase.
func CheckEndpointMode(apiBase string, production bool) error {
	if apiBase == "" {
		apiBase = TestAPIBase
	}
	u, err := url.Parse(apiBase)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("adyen: the API base %q is not an http(s) URL", apiBase)
	}
	host := strings.ToLower(u.Hostname())
	live := strings.HasSuffix(host, ".adyenpayments.com") && strings.Contains(host, "-live")
	if production {
		if u.Scheme != "https" || !strings.HasSuffix(host, liveHostSuffix) || len(host) == len(liveHostSuffix) {
			return fmt.Errorf("adyen: production needs a live Checkout endpoint such as "+
				"https://{PREFIX}%s/checkout/v71 (prefix from Customer Area > Developers > API URLs); %q is not one",
				liveHostSuffix, apiBase)
		}
		return nil
	}
	if live {
		return fmt.Errorf("adyen: sandbox refuses the live endpoint %q; use %s (or a local fake) with a test API key", apiBase, TestAPIBase)
	}
	return nil
}

// Kind names the adapter.
func (p *Processor) Kind() string { return Kind }

// Capabilities: Adyen does everything the contract asks.
func (p *Processor) Capabilities() ivrpay.ProcessorCapabilities {
	return ivrpay.ProcessorCapabilities{ManualCapture: true, PartialCapture: true, Void: true, Refund: true,
		PartialRefund: true, Verify: true, StoredCharges: true}
}

// Request bodies (Checkout API v71 field names).

type amount struct {
	Value    int64  `json:"value"`
	Currency string `json:"currency"`
}

type cardDetails struct {
	Type        string `json:"type"`
	Number      string `json:"number"`
	ExpiryMonth string `json:"expiryMonth"`
	ExpiryYear  string `json:"expiryYear"`
	CVC         string `json:"cvc,omitempty"`
}

type billingAddress struct {
	Street            string `json:"street"`
	HouseNumberOrName string `json:"houseNumberOrName"`
	City              string `json:"city"`
	PostalCode        string `json:"postalCode"`
	Country           string `json:"country"`
}

type paymentRequest struct {
	Amount                   amount            `json:"amount"`
	Reference                string            `json:"reference"`
	MerchantAccount          string            `json:"merchantAccount"`
	PaymentMethod            cardDetails       `json:"paymentMethod"`
	BillingAddress           *billingAddress   `json:"billingAddress,omitempty"`
	ShopperInteraction       string            `json:"shopperInteraction"`
	RecurringProcessingModel string            `json:"recurringProcessingModel,omitempty"`
	ReturnURL                string            `json:"returnUrl"`
	AdditionalData           map[string]string `json:"additionalData,omitempty"`
}

type modificationRequest struct {
	MerchantAccount string  `json:"merchantAccount"`
	Amount          *amount `json:"amount,omitempty"` // none on cancels
	Reference       string  `json:"reference,omitempty"`
}

type technicalCancelRequest struct {
	MerchantAccount  string `json:"merchantAccount"`
	PaymentReference string `json:"paymentReference"`
	Reference        string `json:"reference,omitempty"`
}

// Response bodies.

type paymentResponse struct {
	ResultCode        string            `json:"resultCode"`
	PSPReference      string            `json:"pspReference"`
	RefusalReason     string            `json:"refusalReason"`
	RefusalReasonCode flexString        `json:"refusalReasonCode"`
	AdditionalData    map[string]string `json:"additionalData"`
}

// modificationResponse answers captures, cancels, refunds and technical cancels.
type modificationResponse struct {
	PSPReference string `json:"pspReference"`
	Status       string `json:"status"`
}

// serviceError is Adyen's error body on a non-2xx answer.
type serviceError struct {
	Status       int    `json:"status"`
	ErrorCode    string `json:"errorCode"`
	Message      string `json:"message"`
	ErrorType    string `json:"errorType"`
	PSPReference string `json:"pspReference"`
}

// flexString decodes a JSON string or number: refusalReasonCode is a string
// in Checkout v71 but a number in older examples.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// Authorize charges a card with POST /payments as a phone order (Moto), or a
// stored card as a merchant-initiated ContAuth charge citing the first
// payment's network transaction id.
func (p *Processor) Authorize(ctx context.Context, pay ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	return p.pay(ctx, pay, pay.Amount)
}

// Verify checks a card with a zero-amount /payments, flagged as the first of
// a card-on-file series so that its network transaction id can be cited by
// later merchant-initiated charges. ivrpay keeps the card itself, so nothing
// is stored at Adyen (no storePaymentMethod).
func (p *Processor) Verify(ctx context.Context, pay ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	return p.pay(ctx, pay, 0)
}

func (p *Processor) pay(ctx context.Context, pay ivrpay.CardPayment, value int64) (ivrpay.ProcessorResult, error) {
	if pay.IdempotencyKey == "" {
		return noKey, nil
	}
	req := paymentRequest{
		Amount:          amount{Value: value, Currency: currency(pay.Currency)},
		Reference:       pay.Reference,
		MerchantAccount: p.merchant(pay.AccountRef),
		PaymentMethod: cardDetails{Type: "scheme", Number: pay.Card.PAN,
			ExpiryMonth: fmt.Sprintf("%02d", pay.Card.ExpMonth), ExpiryYear: strconv.Itoa(pay.Card.ExpYear)},
		ShopperInteraction: "Moto",
		// Every card ivrpay charges is kept as a payment method (docs/sandbox.md), so
		// the first payment is flagged as the start of a card-on-file series.
		RecurringProcessingModel: "UnscheduledCardOnFile",
		ReturnURL:                p.returnURL,
		AdditionalData:           map[string]string{},
	}
	if pay.Card.PostalCode != "" {
		// Adyen requires street, house number and city with a billing
		// address; <Pay> collects only the postal code, which is what AVS
		// checks in the US, so the others are "N/A".
		req.BillingAddress = &billingAddress{Street: "N/A", HouseNumberOrName: "N/A", City: "N/A",
			PostalCode: pay.Card.PostalCode, Country: "US"}
	}
	if pay.Stored != nil {
		// A merchant-initiated charge never carries a CVV, even if one is at hand.
		req.ShopperInteraction = "ContAuth"
		if pay.Stored.NetworkTransactionID != "" {
			req.AdditionalData["networkTxReference"] = pay.Stored.NetworkTransactionID
		}
	} else {
		req.PaymentMethod.CVC = pay.Card.CVV
	}
	if value > 0 && !pay.Capture {
		req.AdditionalData["manualCapture"] = "true"
	}
	if code, ok := TestAcquirerResponseCodes[value]; ok && p.amountTriggers {
		req.AdditionalData["RequestedTestAcquirerResponseCode"] = code
	}
	if len(req.AdditionalData) == 0 {
		req.AdditionalData = nil
	}
	var res paymentResponse
	apiErr, err := p.call(ctx, "/payments", idempotencyKey(pay.IdempotencyKey), req, &res, pay.Card)
	if err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	if apiErr != nil {
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError,
			Reference: apiErr.PSPReference, RefusalDesc: redact(apiErr.desc(), pay.Card), ProcessorCode: apiErr.code()}, nil
	}
	return paymentResult(res, pay, value)
}

// paymentResult reads a /payments answer.
func paymentResult(res paymentResponse, pay ivrpay.CardPayment, value int64) (ivrpay.ProcessorResult, error) {
	ad := res.AdditionalData
	n := networkAnswer(func(key string) string { return ad[key] }, pay)
	r := ivrpay.ProcessorResult{
		Reference:     res.PSPReference,
		AVSResultCode: cmp.Or(n.avs, avsResult("")),
		CVCResultCode: cmp.Or(n.cvc, cvcResult("", pay)),
	}
	switch res.ResultCode {
	case "Authorised":
		r.Approved = true
		r.AuthCode, r.NetworkTransactionID = n.authCode, n.nti
		r.AuthorizedAmount = value
		return r, nil
	case "Refused", "Cancelled":
		r.RefusalCode = refusalCode(string(res.RefusalReasonCode), res.RefusalReason, ad["refusalReasonRaw"])
		r.RefusalDesc = redact(refusalDesc(res, ad["refusalReasonRaw"]), pay.Card)
		r.ProcessorCode = refusalProcessorCode(res, ad["refusalReasonRaw"])
		return r, nil
	case "Error":
		r.RefusalCode = ivrpay.RefusalProcessingError
		r.RefusalDesc = redact("adyen error: "+refusalDesc(res, ad["refusalReasonRaw"]), pay.Card)
		r.ProcessorCode = refusalProcessorCode(res, ad["refusalReasonRaw"])
		return r, nil
	case "RedirectShopper", "IdentifyShopper", "ChallengeShopper", "PresentToShopper", "AuthenticationNotRequired", "AuthenticationFinished":
		// Nothing is authorised until the shopper acts, which a caller on the
		// phone cannot: the merchant account is not set up for MOTO.
		r.RefusalCode = ivrpay.RefusalProcessingError
		r.RefusalDesc = "adyen: resultCode " + res.ResultCode + " asks for shopper authentication; is the merchant account a MOTO account?"
		return r, nil
	}
	// Received, Pending and anything unknown are not final: money may move.
	return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("adyen: /payments answered resultCode %q (pspReference %s), not a final outcome",
		redact(res.ResultCode, pay.Card), res.PSPReference)
}

// Capture captures all or part of an authorization:
// POST /payments/{pspReference}/captures.
func (p *Processor) Capture(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return p.modify(ctx, op, "captures", &amount{Value: op.Amount, Currency: currency(op.Currency)})
}

// Void cancels an authorization: POST /payments/{pspReference}/cancels (no amount).
func (p *Processor) Void(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return p.modify(ctx, op, "cancels", nil)
}

// Refund gives back all or part of a captured payment:
// POST /payments/{pspReference}/refunds.
func (p *Processor) Refund(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return p.modify(ctx, op, "refunds", &amount{Value: op.Amount, Currency: currency(op.Currency)})
}

// modify sends a capture, cancel or refund. Adyen answers 201 with status
// "received": it accepted the request, and the final outcome arrives later by
// webhook (CAPTURE, CANCELLATION, REFUND, with success true or false; see
// VerifyNotifications), so "received" is an accepted request.
func (p *Processor) modify(ctx context.Context, op ivrpay.PaymentOperation, what string, amt *amount) (ivrpay.ProcessorResult, error) {
	if op.IdempotencyKey == "" {
		return noKey, nil
	}
	if op.Reference == "" {
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError,
			RefusalDesc: "adyen: no pspReference to " + strings.TrimSuffix(what, "s")}, nil
	}
	req := modificationRequest{MerchantAccount: p.merchant(op.AccountRef), Amount: amt, Reference: op.IdempotencyKey}
	var res modificationResponse
	path := "/payments/" + url.PathEscape(op.Reference) + "/" + what
	apiErr, err := p.call(ctx, path, idempotencyKey(op.IdempotencyKey), req, &res, ivrpay.CardDetails{})
	if err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	if apiErr != nil {
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: apiErr.desc(), ProcessorCode: apiErr.code()}, nil
	}
	if res.Status != "received" {
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("adyen: %s answered status %q", what, res.Status)
	}
	return ivrpay.ProcessorResult{Approved: true, Reference: res.PSPReference, AuthorizedAmount: op.Amount}, nil
}

// Resolve settles a lost Authorize. Checkout has no lookup by merchant
// reference, so Resolve cannot find the payment; it reverses whatever
// /payments made under pay.Reference with a technical cancel (POST /cancels
// with paymentReference) and reports the attempt refused with
// PROCESSING_ERROR. Adyen answers "received"; the TECHNICAL_CANCEL webhook
// carries the final outcome. A technical cancel only releases a payment that
// is not captured yet, within 24 hours (see the package documentation).
func (p *Processor) Resolve(ctx context.Context, pay ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	if pay.IdempotencyKey == "" || pay.Reference == "" {
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("adyen: cannot resolve a payment without idempotency key and reference")
	}
	req := technicalCancelRequest{MerchantAccount: p.merchant(pay.AccountRef), PaymentReference: pay.Reference,
		Reference: ivrpay.Clip(technicalCancelPrefix+pay.Reference, 80)}
	var res modificationResponse
	apiErr, err := p.call(ctx, "/cancels", derivedKey("technical-cancel", pay.IdempotencyKey), req, &res, pay.Card)
	if err != nil {
		return ivrpay.ProcessorResult{}, err
	}
	if apiErr != nil {
		// The payment may exist and was not reversed: not a refusal, so the
		// reconciler asks again and an operator sees why.
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("adyen: technical cancel of reference %q refused: %s",
			pay.Reference, redact(apiErr.desc(), pay.Card))
	}
	if res.Status != "received" {
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("adyen: technical cancel answered status %q", res.Status)
	}
	return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError,
		RefusalDesc: fmt.Sprintf("adyen: the outcome was lost; any payment with reference %s was reversed by technical cancel (received, pspReference %s)",
			pay.Reference, res.PSPReference)}, nil
}

// technicalCancelPrefix starts the reference of Resolve's technical cancel,
// followed by the payment's own reference.
const technicalCancelPrefix = "tcancel-"

// noKey refuses a call without an idempotency key before anything is sent:
// Adyen would replay one shared answer to every such call.
var noKey = ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError,
	RefusalDesc: "adyen: no idempotency key; nothing was sent"}

// call POSTs body as JSON to path and decodes a 2xx answer into out. A
// non-nil *serviceError is a definite refusal of the request (a 4xx: Adyen
// did nothing); an error, wrapping ivrpay.ErrOutcomeUnknown, means nobody
// knows what Adyen did. Neither carries the request body, and Adyen's
// message is redacted of the card's PAN and CVV.
func (p *Processor) call(ctx context.Context, path, idemKey string, body, out any, card ivrpay.CardDetails) (*serviceError, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, ivrpay.NotSent("adyen: encode %s: %v", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.apiBase+path, bytes.NewReader(b))
	if err != nil {
		return nil, ivrpay.NotSent("adyen: POST %s: %v", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", p.apiKey)
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := p.client.Do(req)
	if errors.Is(err, ivrpay.ErrNotSent) {
		return nil, ivrpay.NotSent("adyen: POST %s: %v", path, err)
	} else if err != nil {
		// url.Error names the URL and the cause; neither holds card data or the key.
		return nil, ivrpay.UnknownOutcome("adyen: POST %s: no answer: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, ivrpay.UnknownOutcome("adyen: POST %s: HTTP %d, answer cut off: %v", path, resp.StatusCode, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, ivrpay.UnknownOutcome("adyen: POST %s: HTTP %d with an unreadable body", path, resp.StatusCode)
		}
		return nil, nil
	}
	se := &serviceError{Status: resp.StatusCode}
	if json.Unmarshal(raw, se) != nil || se.Status == 0 {
		se.Status = resp.StatusCode
	}
	se.Message = ivrpay.Clip(redact(se.Message, card), 200)
	// 5xx and 429 may or may not have done the work. 704 (with 409 or 422)
	// is the same idempotency key still in progress, and Transient-Error
	// marks any error that a retry with the same key may turn around.
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusConflict ||
		se.ErrorCode == "704" || strings.EqualFold(resp.Header.Get("Transient-Error"), "true") {
		return nil, ivrpay.UnknownOutcome("adyen: POST %s: HTTP %d: %s", path, resp.StatusCode, se.desc())
	}
	return se, nil
}

func (e *serviceError) desc() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return e.code() + ": " + msg
}

// code is Adyen's errorCode without its message, e.g. "adyen 901", or the
// HTTP status when there is none.
func (e *serviceError) code() string {
	if e.ErrorCode == "" {
		return "adyen HTTP " + strconv.Itoa(e.Status)
	}
	return "adyen " + e.ErrorCode
}

// refusalDesc keeps Adyen's own reason code and text, and the scheme's raw
// answer when the account returns it: "adyen 12: Not enough balance (raw 51 : Insufficient funds)".
func refusalDesc(res paymentResponse, raw string) string {
	code, reason := refusalReason(res)
	d := "adyen " + code + ": " + ivrpay.Clip(reason, 120)
	if raw != "" && !strings.EqualFold(raw, reason) {
		d += " (raw " + ivrpay.Clip(raw, 80) + ")"
	}
	return d
}

// refusalProcessorCode is Adyen's code of a refusal without its text, and
// the scheme's code from the raw answer when there is one: "adyen 2, scheme 05".
func refusalProcessorCode(res paymentResponse, raw string) string {
	code, _ := refusalReason(res)
	if scheme := rawSchemeCode(raw); scheme != "" {
		return "adyen " + code + ", scheme " + scheme
	}
	return "adyen " + code
}

// refusalReason is Adyen's refusalReasonCode and refusalReason, falling back
// on the resultCode for answers without them.
func refusalReason(res paymentResponse) (code, reason string) {
	code = string(res.RefusalReasonCode)
	if code == "" {
		code = res.ResultCode
	}
	reason = res.RefusalReason
	if reason == "" {
		reason = res.ResultCode
	}
	return code, reason
}

func (p *Processor) merchant(accountRef string) string {
	if accountRef != "" {
		return accountRef
	}
	return p.merchantAccount
}

func currency(c string) string {
	if c == "" {
		return "USD"
	}
	return strings.ToUpper(c)
}

// idempotencyKey is our key, or its hash when longer than the 64 characters
// Adyen accepts; either way the same attempt always sends the same key.
func idempotencyKey(key string) string {
	if len(key) <= 64 && key != "" {
		return key
	}
	return derivedKey("long", key)
}

// derivedKey is a 64-hex-character key for a second kind of request made on
// behalf of one ivrpay key (the technical cancel of a lost payment).
func derivedKey(purpose, key string) string {
	sum := sha256.Sum256([]byte("ivrpay adyen " + purpose + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// redact removes the card number, and the CVV as a separate word, from text
// that came from Adyen (which should never echo them, but a log line must not
// depend on that), and any other run of 12 or more digits.
func redact(s string, card ivrpay.CardDetails) string {
	if card.PAN != "" {
		s = strings.ReplaceAll(s, card.PAN, "[redacted]")
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		run := s[i:j]
		if len(run) >= 12 || (card.CVV != "" && run == card.CVV) {
			run = "[redacted]"
		}
		b.WriteString(run)
		i = j
	}
	return b.String()
}
