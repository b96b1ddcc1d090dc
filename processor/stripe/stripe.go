package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/notsent"
	stripeapi "github.com/stripe/stripe-go/v84"
)

// Kind is "stripe".
const Kind = "stripe"

// DefaultAPIBase is Stripe's API.
const DefaultAPIBase = stripeapi.APIURL

// MetadataReference is the PaymentIntent metadata key holding
// CardPayment.Reference; Resolve searches it.
const MetadataReference = "ivrpay_reference"

// MetadataPayin is the Refund metadata key holding the refunded payin's id.
const MetadataPayin = "ivrpay_payin"

// listScanLimit bounds how many of the newest PaymentIntents Resolve reads
// when search finds nothing.
const listScanLimit = 300

// Config configures a Processor.
type Config struct {
	SecretKey string
	// APIBase defaults to Stripe's; tests point it at stripe-mock or a fake.
	APIBase string
	// HTTPClient defaults to a client with a 30 s timeout; callers bound each
	// call with their context anyway.
	HTTPClient *http.Client
}

// Processor is the Stripe ivrpay.Processor. It is safe for concurrent use.
type Processor struct {
	client *stripeapi.Client
	secret string
}

var _ ivrpay.Processor = (*Processor)(nil)

// New returns a Processor for cfg.
func New(cfg Config) (*Processor, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("stripe: no secret key")
	}
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	if err := CheckSecretKey(cfg.SecretKey); err != nil {
		return nil, err
	}
	// A request refused before it left (a bad header) is told apart from one
	// whose answer was lost.
	hc := notsent.Client(cfg.HTTPClient, 30*time.Second)
	backends := stripeapi.NewBackendsWithConfig(&stripeapi.BackendConfig{
		HTTPClient: hc,
		URL:        stripeapi.String(base),
		// ivrpay retries with the same idempotency key itself; a retry inside
		// stripe-go would outlast the 6 s a processor call gets.
		MaxNetworkRetries: stripeapi.Int64(0),
		// stripe-go logs failed requests; nothing of a payment call is logged.
		LeveledLogger:   &stripeapi.LeveledLogger{Level: stripeapi.LevelNull},
		EnableTelemetry: stripeapi.Bool(false),
	})
	return &Processor{client: stripeapi.NewClient(cfg.SecretKey, stripeapi.WithBackends(backends)), secret: cfg.SecretKey}, nil
}

// secretKeyShape is a Stripe secret or restricted key: the prefix, then
// letters and digits only.
var secretKeyShape = regexp.MustCompile(`^(sk|rk)_(live|test)_[A-Za-z0-9]{1,250}$`)

// CheckSecretKey refuses what cannot be a Stripe secret or restricted key
// (a second line, a space, a character outside the key's alphabet), which
// would otherwise fail every call after it was stored. The error never
// quotes the key.
func CheckSecretKey(secretKey string) error {
	if !secretKeyShape.MatchString(secretKey) {
		return errors.New("stripe: the secret key is not a Stripe secret or restricted key (sk_live_, rk_live_, sk_test_ or rk_test_ followed by letters and digits only, on one line)")
	}
	return nil
}

// CheckAPIBase refuses an API base that is not an http(s) URL, and in
// production one that is not https: a live key and card numbers travel to
// it (a test double in production serves TLS, its certificate trusted
// through SSL_CERT_FILE). Empty is Stripe's own API.
func CheckAPIBase(apiBase string, production bool) error {
	if apiBase == "" {
		return nil
	}
	u, err := url.Parse(apiBase)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("stripe: the API base %q is not an http(s) URL", apiBase)
	}
	if production && u.Scheme != "https" {
		return fmt.Errorf("stripe: production needs an https API base, not %q (a test double serves TLS; trust its certificate with SSL_CERT_FILE)", apiBase)
	}
	return nil
}

// CheckKeyMode refuses live keys outside production and test keys in
// production (docs/processors.md).
func CheckKeyMode(secretKey string, production bool) error {
	live := strings.HasPrefix(secretKey, "sk_live_") || strings.HasPrefix(secretKey, "rk_live_")
	test := strings.HasPrefix(secretKey, "sk_test_") || strings.HasPrefix(secretKey, "rk_test_")
	switch {
	case !live && !test:
		return errors.New("stripe: the secret key is not a Stripe secret or restricted key (sk_live_, rk_live_, sk_test_ or rk_test_)")
	case production && test:
		return errors.New("stripe: a test key (sk_test_/rk_test_) cannot be used in production; use a live key")
	case !production && live:
		return errors.New("stripe: a live key (sk_live_/rk_live_) cannot be used in sandbox; use a test key")
	}
	return nil
}

// Kind names the adapter.
func (p *Processor) Kind() string { return Kind }

// Capabilities: Stripe does everything the contract asks.
func (p *Processor) Capabilities() ivrpay.ProcessorCapabilities {
	return ivrpay.ProcessorCapabilities{ManualCapture: true, PartialCapture: true, Void: true, Refund: true,
		PartialRefund: true, Verify: true, StoredCharges: true}
}

// params returns the common parameters of one call.
func params(ctx context.Context, key, account string) stripeapi.Params {
	p := stripeapi.Params{Context: ctx}
	if key != "" {
		p.IdempotencyKey = stripeapi.String(key)
	}
	if account != "" {
		p.StripeAccount = stripeapi.String(account)
	}
	return p
}

// createPaymentMethod turns the raw card into a PaymentMethod.
func (p *Processor) createPaymentMethod(ctx context.Context, a ivrpay.CardPayment) (*stripeapi.PaymentMethod, error) {
	card := &stripeapi.PaymentMethodCreateCardParams{
		Number:   stripeapi.String(a.Card.PAN),
		ExpMonth: stripeapi.Int64(int64(a.Card.ExpMonth)),
		ExpYear:  stripeapi.Int64(int64(a.Card.ExpYear)),
	}
	if a.Card.CVV != "" {
		card.CVC = stripeapi.String(a.Card.CVV)
	}
	pm := &stripeapi.PaymentMethodCreateParams{
		Params: params(ctx, a.IdempotencyKey+"-pm", a.AccountRef),
		Type:   stripeapi.String(string(stripeapi.PaymentMethodTypeCard)),
		Card:   card,
	}
	if a.Card.PostalCode != "" {
		pm.BillingDetails = &stripeapi.PaymentMethodCreateBillingDetailsParams{
			Address: &stripeapi.AddressParams{PostalCode: stripeapi.String(a.Card.PostalCode)},
		}
	}
	return p.client.V1PaymentMethods.Create(ctx, pm)
}

// Authorize charges a card (see the package documentation).
func (p *Processor) Authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	if a.IdempotencyKey == "" {
		return refused("stripe adapter: no idempotency key; nothing was sent"), nil
	}
	s := p.scrubber(a.Card)
	pm, err := p.createPaymentMethod(ctx, a)
	if err != nil {
		return s.outcome(err)
	}
	captureMethod := stripeapi.PaymentIntentCaptureMethodManual
	if a.Capture {
		captureMethod = stripeapi.PaymentIntentCaptureMethodAutomatic
	}
	pi := &stripeapi.PaymentIntentCreateParams{
		Params:             params(ctx, a.IdempotencyKey, a.AccountRef),
		Amount:             stripeapi.Int64(a.Amount),
		Currency:           stripeapi.String(strings.ToLower(a.Currency)),
		Confirm:            stripeapi.Bool(true),
		CaptureMethod:      stripeapi.String(string(captureMethod)),
		PaymentMethod:      stripeapi.String(pm.ID),
		PaymentMethodTypes: []*string{stripeapi.String("card")},
		Metadata:           map[string]string{MetadataReference: a.Reference},
	}
	if a.Description != "" {
		pi.Description = stripeapi.String(a.Description)
	}
	if a.Stored != nil {
		pi.OffSession = stripeapi.Bool(true)
		if a.Stored.NetworkTransactionID != "" {
			pi.AddExtra("payment_method_options[card][mit_exemption][network_transaction_id]", a.Stored.NetworkTransactionID)
		}
	} else {
		pi.PaymentMethodOptions = &stripeapi.PaymentIntentCreatePaymentMethodOptionsParams{
			Card: &stripeapi.PaymentIntentCreatePaymentMethodOptionsCardParams{MOTO: stripeapi.Bool(true)},
		}
	}
	pi.AddExpand("latest_charge")
	intent, err := p.client.V1PaymentIntents.Create(ctx, pi)
	if err != nil {
		return s.outcome(err)
	}
	return p.intentResult(ctx, s, intent, a.IdempotencyKey, a.AccountRef)
}

// intentResult reads a confirmed PaymentIntent. An intent left in a state
// that moved no money is cancelled, so it cannot be confirmed later.
func (p *Processor) intentResult(ctx context.Context, s scrubber, pi *stripeapi.PaymentIntent, key, account string) (ivrpay.ProcessorResult, error) {
	switch pi.Status {
	case stripeapi.PaymentIntentStatusSucceeded, stripeapi.PaymentIntentStatusRequiresCapture:
		return approvedIntent(pi), nil
	case stripeapi.PaymentIntentStatusProcessing:
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("stripe: payment intent %s is still processing", pi.ID)
	case stripeapi.PaymentIntentStatusCanceled:
		r := refused(fmt.Sprintf("stripe: payment intent %s is canceled", pi.ID))
		r.Reference = pi.ID
		return r, nil
	}
	// requires_payment_method (declined), requires_confirmation, requires_action.
	r := refused(fmt.Sprintf("stripe: payment intent %s is %s", pi.ID, pi.Status))
	if e := pi.LastPaymentError; e != nil && e.Type == stripeapi.ErrorTypeCard {
		r = s.cardRefusal(e)
	}
	r.Reference = pi.ID
	cancel := &stripeapi.PaymentIntentCancelParams{Params: params(ctx, key+"-cancel", account)}
	if _, err := p.client.V1PaymentIntents.Cancel(ctx, pi.ID, cancel); err != nil {
		if unknown(err) {
			// The intent may still be confirmable: keep the outcome open.
			return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("stripe: payment intent %s is %s and could not be cancelled: %s",
				pi.ID, pi.Status, s.describe(err))
		}
	}
	return r, nil
}

func approvedIntent(pi *stripeapi.PaymentIntent) ivrpay.ProcessorResult {
	r := ivrpay.ProcessorResult{Approved: true, Reference: pi.ID, AVSResultCode: avsCode(""), CVCResultCode: cvcCode("")}
	if pi.Status == stripeapi.PaymentIntentStatusRequiresCapture {
		r.AuthorizedAmount = pi.AmountCapturable
	} else {
		r.AuthorizedAmount = pi.AmountReceived
	}
	chargeAnswer(&r, pi.LatestCharge)
	return r
}

// chargeAnswer sets r's auth code, network transaction id and AVS and CVC
// result codes from the card details of the payment's charge, when ch
// carries them (an expanded charge; a charge id alone does not). A
// PaymentIntent's answer and its events read them alike.
func chargeAnswer(r *ivrpay.ProcessorResult, ch *stripeapi.Charge) bool {
	if ch == nil || ch.PaymentMethodDetails == nil || ch.PaymentMethodDetails.Card == nil {
		return false
	}
	card := ch.PaymentMethodDetails.Card
	r.NetworkTransactionID = card.NetworkTransactionID
	r.AuthCode = card.AuthorizationCode
	if card.Checks != nil {
		r.AVSResultCode = avsCode(string(card.Checks.AddressPostalCodeCheck))
		r.CVCResultCode = cvcCode(string(card.Checks.CVCCheck))
	}
	return true
}

// eventChargeAnswer sets an event's (or a look-up's) card network answer
// from ch, read as the synchronous answer reads it; nothing when ch does
// not carry it.
func eventChargeAnswer(e *ivrpay.ProcessorEvent, ch *stripeapi.Charge) {
	var r ivrpay.ProcessorResult
	if chargeAnswer(&r, ch) {
		e.AuthCode, e.NetworkTransactionID, e.AVSResultCode, e.CVCResultCode = r.AuthCode, r.NetworkTransactionID, r.AVSResultCode, r.CVCResultCode
	}
}

// Verify checks a card with a SetupIntent (see the package documentation).
func (p *Processor) Verify(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	if a.IdempotencyKey == "" {
		return refused("stripe adapter: no idempotency key; nothing was sent"), nil
	}
	s := p.scrubber(a.Card)
	pm, err := p.createPaymentMethod(ctx, a)
	if err != nil {
		return s.outcome(err)
	}
	si := &stripeapi.SetupIntentCreateParams{
		Params:             params(ctx, a.IdempotencyKey, a.AccountRef),
		Confirm:            stripeapi.Bool(true),
		PaymentMethod:      stripeapi.String(pm.ID),
		PaymentMethodTypes: []*string{stripeapi.String("card")},
		Usage:              stripeapi.String(string(stripeapi.SetupIntentUsageOffSession)),
		PaymentMethodOptions: &stripeapi.SetupIntentCreatePaymentMethodOptionsParams{
			Card: &stripeapi.SetupIntentCreatePaymentMethodOptionsCardParams{MOTO: stripeapi.Bool(true)},
		},
		Metadata: map[string]string{MetadataReference: a.Reference},
	}
	if a.Description != "" {
		si.Description = stripeapi.String(a.Description)
	}
	si.AddExpand("latest_attempt")
	intent, err := p.client.V1SetupIntents.Create(ctx, si)
	if err != nil {
		return s.outcome(err)
	}
	r := ivrpay.ProcessorResult{Reference: intent.ID, AVSResultCode: avsCode(""), CVCResultCode: cvcCode("")}
	if at := intent.LatestAttempt; at != nil && at.PaymentMethodDetails != nil && at.PaymentMethodDetails.Card != nil {
		if c := at.PaymentMethodDetails.Card.Checks; c != nil {
			r.AVSResultCode = avsCode(c.AddressPostalCodeCheck)
			r.CVCResultCode = cvcCode(c.CVCCheck)
		}
	}
	switch intent.Status {
	case stripeapi.SetupIntentStatusSucceeded:
		r.Approved = true
		if intent.LastResponse != nil {
			r.NetworkTransactionID = setupNetworkTransactionID(intent.LastResponse.RawJSON)
		}
		return r, nil
	case stripeapi.SetupIntentStatusProcessing:
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("stripe: setup intent %s is still processing", intent.ID)
	}
	d := refused(fmt.Sprintf("stripe: setup intent %s is %s", intent.ID, intent.Status))
	if e := intent.LastSetupError; e != nil && e.Type == stripeapi.ErrorTypeCard {
		d = s.cardRefusal(e)
	}
	d.Reference, d.AVSResultCode, d.CVCResultCode = intent.ID, r.AVSResultCode, r.CVCResultCode
	return d, nil
}

// setupNetworkTransactionID reads the field stripe-go does not model.
func setupNetworkTransactionID(body []byte) string {
	var v struct {
		LatestAttempt json.RawMessage `json:"latest_attempt"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var at struct {
		PaymentMethodDetails struct {
			Card struct {
				NetworkTransactionID string `json:"network_transaction_id"`
			} `json:"card"`
		} `json:"payment_method_details"`
	}
	if json.Unmarshal(v.LatestAttempt, &at) != nil { // not expanded: an id string
		return ""
	}
	return at.PaymentMethodDetails.Card.NetworkTransactionID
}

// Capture captures op.Amount of an authorization.
func (p *Processor) Capture(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	s := p.scrubber(ivrpay.CardDetails{})
	c := &stripeapi.PaymentIntentCaptureParams{Params: params(ctx, op.IdempotencyKey, op.AccountRef)}
	if op.Amount > 0 {
		c.AmountToCapture = stripeapi.Int64(op.Amount)
	}
	pi, err := p.client.V1PaymentIntents.Capture(ctx, op.Reference, c)
	if err != nil {
		return s.outcome(err)
	}
	if pi.Status != stripeapi.PaymentIntentStatusSucceeded {
		r := refused(fmt.Sprintf("stripe: payment intent %s is %s after capture", pi.ID, pi.Status))
		r.Reference = pi.ID
		return r, nil
	}
	return ivrpay.ProcessorResult{Approved: true, Reference: pi.ID, AuthorizedAmount: pi.AmountReceived}, nil
}

// Void cancels an uncaptured PaymentIntent.
func (p *Processor) Void(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	s := p.scrubber(ivrpay.CardDetails{})
	c := &stripeapi.PaymentIntentCancelParams{Params: params(ctx, op.IdempotencyKey, op.AccountRef)}
	pi, err := p.client.V1PaymentIntents.Cancel(ctx, op.Reference, c)
	if err != nil {
		return s.outcome(err)
	}
	if pi.Status != stripeapi.PaymentIntentStatusCanceled {
		r := refused(fmt.Sprintf("stripe: payment intent %s is %s after cancel", pi.ID, pi.Status))
		r.Reference = pi.ID
		return r, nil
	}
	return ivrpay.ProcessorResult{Approved: true, Reference: pi.ID}, nil
}

// Refund refunds op.Amount of a PaymentIntent; each refund has its own key.
func (p *Processor) Refund(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	s := p.scrubber(ivrpay.CardDetails{})
	c := &stripeapi.RefundCreateParams{
		Params:        params(ctx, op.IdempotencyKey, op.AccountRef),
		PaymentIntent: stripeapi.String(op.Reference),
	}
	if op.Amount > 0 {
		c.Amount = stripeapi.Int64(op.Amount)
	}
	if op.PayinID != "" {
		c.Metadata = map[string]string{MetadataPayin: op.PayinID}
	}
	re, err := p.client.V1Refunds.Create(ctx, c)
	if err != nil {
		return s.outcome(err)
	}
	switch re.Status {
	case stripeapi.RefundStatusFailed, stripeapi.RefundStatusCanceled:
		r := refused(fmt.Sprintf("stripe: refund %s is %s (%s)", re.ID, re.Status, re.FailureReason))
		r.Reference = re.ID
		return r, nil
	}
	// succeeded, pending and requires_action are accepted refunds.
	return ivrpay.ProcessorResult{Approved: true, Reference: re.ID, AuthorizedAmount: re.Amount}, nil
}

// Resolve finds the PaymentIntent of a lost Authorize (see the package
// documentation). It never needs the CVV.
func (p *Processor) Resolve(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	s := p.scrubber(a.Card)
	found, err := p.findIntents(ctx, a)
	if err != nil {
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("stripe: resolve %s: %s", a.Reference, s.describe(err))
	}
	if len(found) == 0 {
		return refused(fmt.Sprintf("stripe: no payment intent has %s %s; no charge was made", MetadataReference, a.Reference)), nil
	}
	for _, pi := range found {
		if pi.Status == stripeapi.PaymentIntentStatusSucceeded || pi.Status == stripeapi.PaymentIntentStatusRequiresCapture {
			return approvedIntent(pi), nil
		}
	}
	// Several intents cannot come from one idempotency key; report the first
	// after making sure none of them can still move money.
	var first ivrpay.ProcessorResult
	for i, pi := range found {
		r, err := p.intentResult(ctx, s, pi, a.IdempotencyKey, a.AccountRef)
		if err != nil {
			return r, err
		}
		if i == 0 {
			first = r
		}
	}
	// A decline found later is still reported as PROCESSING_ERROR: the
	// caller only learns that no money moved.
	first.RefusalCode = ivrpay.RefusalProcessingError
	return first, nil
}

// findIntents returns the PaymentIntents whose metadata carries a.Reference:
// by search, then, since search lags, by listing the newest intents.
func (p *Processor) findIntents(ctx context.Context, a ivrpay.CardPayment) ([]*stripeapi.PaymentIntent, error) {
	match := func(pi *stripeapi.PaymentIntent) bool { return pi.Metadata[MetadataReference] == a.Reference }
	var found []*stripeapi.PaymentIntent
	sp := &stripeapi.PaymentIntentSearchParams{}
	sp.Query = fmt.Sprintf("metadata['%s']:'%s'", MetadataReference, searchEscape(a.Reference))
	sp.Limit = stripeapi.Int64(10)
	sp.Single = true
	if a.AccountRef != "" {
		sp.SetStripeAccount(a.AccountRef)
	}
	sp.AddExpand("data.latest_charge")
	for pi, err := range p.client.V1PaymentIntents.Search(ctx, sp) {
		if err != nil {
			return nil, err
		}
		if match(pi) {
			found = append(found, pi)
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	lp := &stripeapi.PaymentIntentListParams{}
	lp.Limit = stripeapi.Int64(100)
	if a.AccountRef != "" {
		lp.SetStripeAccount(a.AccountRef)
	}
	lp.AddExpand("data.latest_charge")
	n := 0
	for pi, err := range p.client.V1PaymentIntents.List(ctx, lp) {
		if err != nil {
			return nil, err
		}
		if match(pi) {
			found = append(found, pi)
		}
		if n++; n >= listScanLimit {
			break
		}
	}
	return found, nil
}

// searchEscape quotes a value for Stripe's search query language.
func searchEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)
}

func refused(desc string) ivrpay.ProcessorResult {
	return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: desc}
}

// avsCode maps Stripe's address_postal_code_check.
func avsCode(check string) string {
	switch check {
	case "pass":
		return "Y"
	case "fail":
		return "N"
	}
	return "U" // unavailable, unchecked, or no postal code sent
}

// cvcCode maps Stripe's cvc_check.
func cvcCode(check string) string {
	switch check {
	case "pass":
		return "M"
	case "fail":
		return "N"
	case "unavailable":
		return "U"
	}
	return "P" // unchecked, or no CVC sent (stored cards)
}
