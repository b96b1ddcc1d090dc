package twilio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/card"
)

// Twilio's connector behaviour the simulator reproduces (reference §2.2).
const (
	// DefaultUsername is the connector USERNAME ivrpay's connector expects.
	DefaultUsername = "api_key"
	// DefaultTimeout is how long Twilio waits for each connector attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultRetries is how many times Twilio retries after a timed-out attempt.
	DefaultRetries = 5
)

// Result values of the action callback that the simulator produces.
const (
	ResultSuccess               = "success"
	ResultPaymentConnectorError = "payment-connector-error"
	ResultValidationError       = "validation-error"
	// ResultInternalError is Telnyx's and SignalWire's result for an answer
	// they cannot use.
	ResultInternalError = "internal-error"
)

// Platform is the voice platform whose side Simulate plays; the zero value
// is Twilio. Package voice describes Telnyx and SignalWire, whose pay verbs
// speak variants of the Generic Pay Connector. A nil func is Twilio's way.
type Platform struct {
	// Name names the platform ("Telnyx"); "" is Twilio.
	Name string
	// Timeout is the platform's wait for each connector attempt, Retries
	// how many times it retries an attempt that got no answer (negative:
	// never); 0 is Twilio's DefaultTimeout and DefaultRetries.
	Timeout time.Duration
	Retries int
	// Method is the connector method a <Pay> makes the platform ask for.
	Method func(p *Pay) (string, error)
	// Body is the connector request's body as the platform sends it.
	Body func(p *Pay, r ConnectorRequest) ([]byte, error)
	// Read is what the platform makes of the connector's answer (the
	// last attempt's status and body).
	Read func(method string, status int, body []byte, redact func(string) string) AnswerReading
	// OmitConnectorParameters leaves the answer's parameters out of the
	// action callback (Twilio passes them on as PayConnector_*).
	OmitConnectorParameters bool
}

// AnswerReading is what a platform makes of a connector's answer.
type AnswerReading struct {
	// Response is the answer, when it is well formed.
	Response *ConnectorResponse
	// Result, ConnectorError and PaymentError are the action callback's fields.
	Result, ConnectorError, PaymentError string
}

// PaymentError values of caller-side validation failures (Twilio's ErrorType names).
const (
	ErrorInvalidCardNumber   = "invalid-card-number"
	ErrorInvalidCardType     = "invalid-card-type"
	ErrorInvalidDate         = "invalid-date"
	ErrorInvalidSecurityCode = "invalid-security-code"
	ErrorInvalidPostalCode   = "invalid-postal-code"
)

// maxAnswerBytes bounds what the simulator reads of a connector's or action URL's answer.
const maxAnswerBytes = 1 << 20

// CallerInput is what the caller types on the keypad. Its String and Format
// methods show the card as last 4 only, so printing it can never leak the PAN
// or the CVV.
type CallerInput struct {
	CardNumber string
	// Expiry is "MM/YY" (also accepted: "MMYY", "MM/YYYY").
	Expiry     string
	CVV        string
	PostalCode string
}

// String shows the input with the card masked and the CVV hidden.
func (c CallerInput) String() string {
	return fmt.Sprintf("card %s exp %s cvv %s postal code %s",
		maskPAN(c.CardNumber), c.Expiry, strings.Repeat("*", len(c.CVV)), c.PostalCode)
}

// Format makes every fmt verb (%d and %x included) print String.
func (c CallerInput) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// maskPAN masks a PAN as Twilio does in the action callback: "x" for every
// digit but the last four.
func maskPAN(pan string) string {
	last4 := card.Last4(pan)
	return strings.Repeat("x", len(pan)-len(last4)) + last4
}

// SimulateOptions configure one simulated call.
type SimulateOptions struct {
	// Endpoint is the connector's ENDPOINT URL. Credentials in it
	// (user:password@) are the connector's USERNAME and PASSWORD.
	Endpoint string
	// Username is the connector's USERNAME; "" means DefaultUsername.
	Username string
	// APIKey is the connector's PASSWORD.
	APIKey string
	// ContentType is sent with the connector request; "" sends none, as Twilio.
	ContentType string
	// Pay is the <Pay> verb of the call.
	Pay *Pay
	// Caller is what the caller types.
	Caller CallerInput
	// Action overrides Pay.Action: the URL the callback fields are posted to.
	Action string
	// StatusCallback overrides Pay.StatusCallback: the URL that gets one
	// event per prompt.
	StatusCallback string
	// AccountSid and CallSid go on every callback; "" means
	// DefaultAccountSid and a fresh CA… SID.
	AccountSid, CallSid string
	// AuthToken, when set, signs every callback with X-Twilio-Signature.
	AuthToken string
	// Platform is the voice platform whose side the call plays; nil is Twilio.
	Platform *Platform
	// Timeout is per attempt; 0 means the platform's (Twilio: DefaultTimeout).
	Timeout time.Duration
	// Retries is how many times a timed-out or failed attempt is retried; 0
	// means the platform's (Twilio: DefaultRetries) and a negative value means none.
	Retries int
	// Client sends the requests; nil means a client without a timeout of its
	// own, since Timeout bounds each attempt.
	Client *http.Client
	// NewTransactionID returns the call's transaction_id; nil means NewTransactionID.
	NewTransactionID func() string
	// Now is the clock the expiry check uses; nil means time.Now.
	Now func() time.Time
}

// connectorDefaults fills in what a connector call (the simulator's, the
// emulator's) leaves unset: Twilio's timeout and retries (a negative Retries
// means none), a client without a timeout of its own, fresh transaction ids
// and the wall clock.
func connectorDefaults(timeout *time.Duration, retries *int, client **http.Client, newTxID *func() string, now *func() time.Time) {
	if *timeout <= 0 {
		*timeout = DefaultTimeout
	}
	switch {
	case *retries == 0:
		*retries = DefaultRetries
	case *retries < 0:
		*retries = 0
	}
	if *client == nil {
		*client = &http.Client{}
	}
	if *newTxID == nil {
		*newTxID = NewTransactionID
	}
	if *now == nil {
		*now = time.Now
	}
}

// Attempt is one connector request of a simulated call.
type Attempt struct {
	TransactionID string `json:"transaction_id"`
	// StatusCode is the HTTP status of the answer, 0 when there was none.
	StatusCode int           `json:"status_code,omitempty"`
	Duration   time.Duration `json:"duration"`
	// Error says why the attempt got no answer (timeout or transport error).
	Error string `json:"error,omitempty"`
}

// Simulation is the outcome of a simulated call.
type Simulation struct {
	// Callback holds the fields Twilio would post to the action URL.
	Callback CallbackFields `json:"callback"`
	// Method is the connector method, charge or tokenize.
	Method string `json:"method"`
	// TransactionID is the call's transaction_id, "" when no request was sent.
	TransactionID string    `json:"transaction_id,omitempty"`
	Attempts      []Attempt `json:"attempts"`
	// Response is the connector's final answer; nil when it sent none or a malformed one.
	Response *ConnectorResponse `json:"response"`
	// ActionStatus is the action URL's HTTP status; 0 when nothing was posted.
	ActionStatus int `json:"action_status,omitempty"`
	// CallSid is the simulated call's SID, on every callback.
	CallSid string `json:"call_sid"`
	// StatusEvents are the events posted to the status callback, in order.
	StatusEvents []StatusEvent `json:"status_events,omitempty"`
}

// StatusEvent is one statusCallback post of a simulated call.
type StatusEvent struct {
	Fields CallbackFields `json:"fields"`
	// Status is the status callback's HTTP status, 0 when it gave none.
	Status int `json:"status,omitempty"`
	// Error says why the post failed; Twilio goes on regardless.
	Error string `json:"error,omitempty"`
}

// Result is the callback's Result field.
func (s *Simulation) Result() string { return s.Callback.Get("Result") }

// CallbackField is one field of the action callback.
type CallbackField struct{ Name, Value string }

// CallbackFields are the action callback's fields in Twilio's order; they
// encode as a JSON object in that order, so equal calls print equal bytes.
type CallbackFields []CallbackField

// Get returns the named field's value, or "".
func (f CallbackFields) Get(name string) string {
	for _, x := range f {
		if x.Name == name {
			return x.Value
		}
	}
	return ""
}

// MarshalJSON writes a JSON object with the fields in order.
func (f CallbackFields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, x := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(x.Name)
		v, _ := json.Marshal(x.Value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Form is the fields as the form Twilio posts.
func (f CallbackFields) Form() url.Values {
	v := url.Values{}
	for _, x := range f {
		v.Set(x.Name, x.Value)
	}
	return v
}

// add appends a field unless its value is empty: Twilio leaves out what it did not get.
func (f *CallbackFields) add(name, value string) {
	if value != "" {
		*f = append(*f, CallbackField{name, value})
	}
}

// NewTransactionID returns a random UUID v4, as Twilio's transaction ids are.
func NewTransactionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// captured is the caller's input after <Pay>'s own checks; a field is set
// once its check passed.
type captured struct {
	pan, cvv, postal string
	brand            card.Brand
	expiry           card.Expiry
}

// Simulate plays Twilio's part of a call against a connector (docs/connector.md): the
// caller-side checks of <Pay> (no request when they fail), with one status
// callback event per prompt, the connector request as Twilio sends it,
// Twilio's per-attempt timeout and retries with the same transaction_id, and
// the action callback built from the answer, posted form-encoded to the action
// URL when there is one. The error is for unusable options, a cancelled ctx,
// or a failed post to the action URL (the Simulation is returned with it
// then); a failed status callback is only recorded, as Twilio goes on. Neither
// the Simulation nor the error ever holds the PAN or the CVV.
func Simulate(ctx context.Context, o SimulateOptions) (*Simulation, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	method, err := o.method()
	if err != nil {
		return nil, err
	}
	sim := &Simulation{Method: method, Attempts: []Attempt{}, CallSid: o.CallSid}
	in, problem := o.capture(ctx, sim)
	if problem != "" {
		sim.fillCallback(AnswerReading{Result: ResultValidationError, PaymentError: problem}, in, false)
		return sim, o.postAction(ctx, sim)
	}
	o.statusEvent(ctx, sim, "payment-processing", in, "")

	sim.TransactionID = o.NewTransactionID()
	x := o.exchange()
	out, err := x.run(ctx, o.Pay.connectorRequest(method, sim.TransactionID, in), redactor(in.pan, in.cvv))
	if err != nil {
		return nil, err
	}
	sim.Attempts, sim.Response = out.attempts, out.response
	sim.fillCallback(out.reading(), in, o.Platform == nil || !o.Platform.OmitConnectorParameters)
	return sim, o.postAction(ctx, sim)
}

// method is the connector method the <Pay> makes the platform ask for.
func (o *SimulateOptions) method() (string, error) {
	if o.Platform != nil && o.Platform.Method != nil {
		return o.Platform.Method(o.Pay)
	}
	method, err := o.Pay.Method()
	if err != nil {
		return "", fmt.Errorf("chargeAmount: %w", err)
	}
	return method, nil
}

// exchange is the connector transaction these options describe.
func (o *SimulateOptions) exchange() *connectorExchange {
	return &connectorExchange{endpoint: o.Endpoint, username: o.Username, password: o.APIKey,
		contentType: o.ContentType, timeout: o.Timeout, retries: o.Retries, client: o.Client, platform: o.Platform, pay: o.Pay}
}

func (o *SimulateOptions) poster() webhookPoster {
	return webhookPoster{client: o.Client, accountSid: o.AccountSid, callSid: o.CallSid, authToken: o.AuthToken, timeout: o.Timeout}
}

// statusEvent posts one statusCallback event, as <Pay> does after each
// prompt: the prompt (For), the attempt, what is known so far, masked, and
// the ErrorType when the caller's entry failed its check.
func (o *SimulateOptions) statusEvent(ctx context.Context, sim *Simulation, step string, in captured, errorType string) {
	if o.StatusCallback == "" {
		return
	}
	var f CallbackFields
	f.add("For", step)
	f.add("Attempt", "1")
	f.add("ErrorType", errorType)
	f = append(f, in.maskedFields()...)
	ev := StatusEvent{Fields: f}
	status, err := o.poster().post(ctx, o.StatusCallback, f)
	ev.Status = status
	if err != nil {
		ev.Error = redactor(in.pan, in.cvv)(err.Error())
	}
	sim.StatusEvents = append(sim.StatusEvents, ev)
}

// maskedFields are the payment fields known so far as Twilio shows them in
// status callbacks: the card masked, the security code redacted.
func (in captured) maskedFields() CallbackFields {
	var f CallbackFields
	if in.brand != "" {
		f.add("PaymentCardNumber", maskPAN(in.pan))
		f.add("PaymentCardType", CardType(in.brand))
	}
	if in.expiry != (card.Expiry{}) {
		f.add("ExpirationDate", in.expiry.MMYY())
	}
	f.add("SecurityCode", strings.Repeat("*", len(in.cvv)))
	f.add("PaymentCardPostalCode", in.postal)
	return f
}

// connectorExchange is Twilio's side of one Generic Pay Connector
// transaction: the request as Twilio sends it, the per-attempt timeout and
// retries with one transaction_id, and the reading of the answer. The
// simulator and the emulator both use it, so they send the same bytes.
type connectorExchange struct {
	endpoint, username, password, contentType string
	timeout                                   time.Duration
	retries                                   int
	client                                    *http.Client
	// platform, when not Twilio, encodes the request and reads the answer;
	// pay is the <Pay> it encodes for.
	platform *Platform
	pay      *Pay
}

// exchangeOutcome is what the platform makes of a connector transaction.
type exchangeOutcome struct {
	attempts []Attempt
	// response is the connector's answer when it was well formed.
	response                             *ConnectorResponse
	result, connectorError, paymentError string
}

// reading is the outcome's reading of the answer.
func (o exchangeOutcome) reading() AnswerReading {
	return AnswerReading{Response: o.response, Result: o.result, ConnectorError: o.connectorError, PaymentError: o.paymentError}
}

// run sends r until an attempt gets an answer or the retries run out, and
// reads the answer. The error is ctx's alone.
func (x *connectorExchange) run(ctx context.Context, r ConnectorRequest, redact func(string) string) (exchangeOutcome, error) {
	out := exchangeOutcome{attempts: []Attempt{}}
	var body []byte
	var err error
	if x.platform != nil && x.platform.Body != nil {
		body, err = x.platform.Body(x.pay, r)
	} else {
		body, err = json.Marshal(newGenericPayBody(r))
	}
	if err != nil {
		return out, err
	}
	var (
		answer []byte
		status int
	)
	for n := 0; n <= x.retries && answer == nil; n++ {
		a := Attempt{TransactionID: r.TransactionID}
		start := time.Now()
		a.StatusCode, answer, err = x.attempt(ctx, body)
		a.Duration = time.Since(start)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if err != nil {
			a.Error = redact(err.Error())
		}
		status = a.StatusCode
		out.attempts = append(out.attempts, a)
	}

	var a AnswerReading
	switch {
	case answer == nil:
		a.Result = ResultPaymentConnectorError
		a.PaymentError = fmt.Sprintf("Payment Gateway did not answer within %s in %d attempts", x.timeout, len(out.attempts))
	case x.platform != nil && x.platform.Read != nil:
		a = x.platform.Read(r.Method, status, answer, redact)
	default:
		a = ReadGenericPayAnswer(r.Method, status, answer, redact)
	}
	out.response, out.result, out.connectorError, out.paymentError = a.Response, a.Result, a.ConnectorError, a.PaymentError
	return out, nil
}

// ReadGenericPayAnswer is what Twilio makes of a connector's answer (status
// and body): a 2xx with the method's id is a success, a 2xx with error_code
// its payment-connector-error, and any other status a failure of the
// connector itself, said as what it is (a 401 is a credentials problem, not
// a malformed body).
func ReadGenericPayAnswer(method string, status int, body []byte, redact func(string) string) AnswerReading {
	resp, wellFormed := ParseConnectorAnswer(body, method, redact)
	out := AnswerReading{Result: ResultPaymentConnectorError}
	switch {
	case status < 200 || status > 299:
		out.PaymentError = fmt.Sprintf("HTTP %d from the connector", status)
		if wellFormed {
			out.ConnectorError = resp.ErrorCode
			if resp.ErrorMessage != "" {
				out.PaymentError += ": " + resp.ErrorMessage
			}
		}
	case !wellFormed:
		what := map[string]string{MethodCharge: "charge", MethodTokenize: "token"}[method]
		out.PaymentError = "Payment Gateway rejected " + what + " creation. Got malformed response from Payment Provider."
	default:
		out.Response = resp
		if resp.ErrorCode == "" && resp.ID != "" {
			out.Result = ResultSuccess
		}
		out.ConnectorError, out.PaymentError = resp.ErrorCode, resp.ErrorMessage
	}
	return out
}

// fillCallback sets the action callback fields in Twilio's order, with what
// the caller got through (a field is left out when its step failed) and,
// with connectorParams, the answer's parameters as PayConnector_*.
func (s *Simulation) fillCallback(a AnswerReading, in captured, connectorParams bool) {
	resp := a.Response
	cb := &s.Callback
	cb.add("Result", a.Result)
	cb.addConfirmation(s.Method, a)
	if in.brand != "" {
		cb.add("PaymentCardNumber", maskPAN(in.pan))
		cb.add("PaymentCardType", CardType(in.brand))
	}
	if in.expiry != (card.Expiry{}) {
		cb.add("ExpirationDate", in.expiry.MMYY())
	}
	cb.add("PaymentCardPostalCode", in.postal)
	cb.add("PaymentMethod", "credit-card")
	cb.add("ConnectorError", a.ConnectorError)
	cb.add("PaymentError", a.PaymentError)
	if resp != nil && connectorParams {
		keys := make([]string, 0, len(resp.Parameters))
		for k := range resp.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			cb.add("PayConnector_"+k, resp.Parameters[k])
		}
	}
}

// addConfirmation adds the answer's id as Twilio passes it on, for a
// success only: PaymentConfirmationCode for a charge, PaymentToken for a
// tokenize. An answer that carries an id and an error_code is an error, and
// its id goes nowhere.
func (f *CallbackFields) addConfirmation(method string, a AnswerReading) {
	if a.Response == nil || a.Result != ResultSuccess {
		return
	}
	if method == MethodCharge {
		f.add("PaymentConfirmationCode", a.Response.ID)
	} else {
		f.add("PaymentToken", a.Response.ID)
	}
}

// connectorCredentials takes the connector's USERNAME and PASSWORD from
// user:password@ in its URL, as a gateway's docs often give them, or from
// the given ones (the username defaulting to DefaultUsername), and returns
// the URL without them.
func connectorCredentials(u *url.URL, username, password string) (endpoint, user, pass string, err error) {
	if u.User != nil {
		urlUser := u.User.Username()
		urlPassword, _ := u.User.Password()
		switch {
		case username != "" && username != urlUser:
			return "", "", "", errors.New("endpoint: the URL's username differs from the username given; give it once")
		case password != "" && password != urlPassword:
			return "", "", "", errors.New("endpoint: the URL's password differs from the API key given; give it once")
		}
		username, password = urlUser, urlPassword
		stripped := *u
		stripped.User = nil
		u = &stripped
	}
	if username == "" {
		username = DefaultUsername
	}
	return u.String(), username, password, nil
}

func (o *SimulateOptions) defaults() error {
	u, err := url.Parse(o.Endpoint)
	if o.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("endpoint: the connector's URL (http or https) is required")
	}
	if o.Endpoint, o.Username, o.APIKey, err = connectorCredentials(u, o.Username, o.APIKey); err != nil {
		return err
	}
	if o.Pay == nil {
		return errors.New("a <Pay> verb is required")
	}
	if m := strings.ReplaceAll(strings.ToLower(o.Pay.PaymentMethod), "_", "-"); m != "" && m != "credit-card" {
		return fmt.Errorf("paymentMethod %q: the simulator plays credit-card payments only", o.Pay.PaymentMethod)
	}
	if o.Action == "" {
		o.Action = o.Pay.Action
	}
	if o.StatusCallback == "" {
		o.StatusCallback = o.Pay.StatusCallback
	}
	if o.AccountSid == "" {
		o.AccountSid = DefaultAccountSid
	}
	if o.CallSid == "" {
		o.CallSid = NewSid("CA")
	}
	if p := o.Platform; p != nil {
		if o.Timeout == 0 {
			o.Timeout = p.Timeout
		}
		if o.Retries == 0 {
			o.Retries = p.Retries
		}
	}
	connectorDefaults(&o.Timeout, &o.Retries, &o.Client, &o.NewTransactionID, &o.Now)
	return nil
}

// capture applies <Pay>'s caller-side checks in the order Twilio prompts:
// card number (and its type), expiry, security code, postal code, posting a
// status event after each prompt. It returns the ErrorType of the first
// failure, or "".
func (o *SimulateOptions) capture(ctx context.Context, sim *Simulation) (captured, string) {
	p, c := o.Pay, o.Caller
	in := captured{pan: c.CardNumber}
	step := func(name, problem string) string {
		o.statusEvent(ctx, sim, name, in, problem)
		return problem
	}
	if problem := in.enterCardNumber(p, c.CardNumber); problem != "" {
		return in, step("payment-card-number", problem)
	}
	step("payment-card-number", "")
	if problem := in.enterExpiry(c.Expiry, o.Now()); problem != "" {
		return in, step("expiration-date", problem)
	}
	step("expiration-date", "")
	if p.asksSecurityCode() {
		if problem := in.enterSecurityCode(c.CVV); problem != "" {
			return in, step("security-code", problem)
		}
		step("security-code", "")
	}
	switch {
	case p.asksPostalCode():
		if problem := in.enterPostalCode(c.PostalCode); problem != "" {
			return in, step("postal-code", problem)
		}
		step("postal-code", "")
	case !strings.EqualFold(strings.TrimSpace(p.PostalCode), "false"):
		in.postal = strings.TrimSpace(p.PostalCode) // a fixed postal code goes to the connector without asking
	}
	return in, ""
}

// asksSecurityCode reports whether Twilio prompts for the security code.
func (p *Pay) asksSecurityCode() bool {
	return !strings.EqualFold(strings.TrimSpace(p.SecurityCode), "false")
}

// asksPostalCode reports whether Twilio prompts for the postal code.
func (p *Pay) asksPostalCode() bool {
	v := strings.ToLower(strings.TrimSpace(p.PostalCode))
	return v == "" || v == "true"
}

// enterCardNumber checks a card number as <Pay> does (Luhn, a brand in
// validCardTypes) and keeps it when it passes; it returns the ErrorType.
func (in *captured) enterCardNumber(p *Pay, pan string) string {
	in.pan, in.brand = pan, ""
	brand, err := card.ParsePAN(pan)
	switch {
	case errors.Is(err, card.ErrUnsupportedBrand):
		return ErrorInvalidCardType
	case err != nil:
		return ErrorInvalidCardNumber
	}
	accepted := false
	for _, t := range p.CardTypes() {
		accepted = accepted || BrandForCardType(t) == brand
	}
	if !accepted {
		return ErrorInvalidCardType
	}
	in.brand = brand
	return ""
}

// enterExpiry reads "MM/YY", "MMYY" or "MM/YYYY" and refuses a past month.
func (in *captured) enterExpiry(s string, now time.Time) string {
	in.expiry = card.Expiry{}
	month, year, ok := strings.Cut(s, "/")
	if !ok && len(s) == 4 {
		month, year = s[:2], s[2:]
	}
	exp, err := card.ParseExpiry(month, year)
	if err != nil || exp.Expired(now) {
		return ErrorInvalidDate
	}
	in.expiry = exp
	return ""
}

// enterSecurityCode needs the card's brand (4 digits for Amex, else 3).
func (in *captured) enterSecurityCode(cvv string) string {
	in.cvv = ""
	if card.CheckSecurityCode(cvv, in.brand) != nil {
		return ErrorInvalidSecurityCode
	}
	in.cvv = cvv
	return ""
}

func (in *captured) enterPostalCode(postal string) string {
	in.postal = strings.TrimSpace(postal)
	if in.postal == "" {
		return ErrorInvalidPostalCode
	}
	return ""
}

// connectorRequest builds the body exactly as Twilio sends it: all strings,
// a two-digit expiry year, amount and upper-case currency on charges only.
func (p *Pay) connectorRequest(method, transactionID string, in captured) ConnectorRequest {
	mmyy := in.expiry.MMYY()
	r := ConnectorRequest{
		Method:        method,
		TransactionID: transactionID,
		CardNumber:    in.pan,
		CVV:           in.cvv,
		ExpiryMonth:   mmyy[:2],
		ExpiryYear:    mmyy[2:],
		PostalCode:    in.postal,
		Description:   p.Description,
		Parameters:    map[string]string{},
	}
	if method == MethodCharge {
		r.Amount = strings.TrimSpace(p.ChargeAmount)
		r.CurrencyCode = strings.ToUpper(strings.TrimSpace(p.Currency))
		if r.CurrencyCode == "" {
			r.CurrencyCode = "USD"
		}
	}
	for _, prm := range p.Parameters {
		if _, dup := r.Parameters[prm.Name]; !dup {
			r.Parameters[prm.Name] = prm.Value
		}
	}
	return r
}

// genericPayBody is a card request as Twilio sends it (reference §1.3):
// every field of the method's documented body present, in the documented
// order, each a string, or null where the caller gave nothing (a <Pay>
// without description, a security code or postal code not asked for). A
// charge carries amount and currency_code; a tokenize, as Twilio documents
// it, neither. Gateways that read every key (some answer 500 without
// description) get what Twilio would send them.
type genericPayBody struct {
	Method        string            `json:"method"`
	TransactionID string            `json:"transaction_id"`
	CardNumber    *string           `json:"cardnumber"`
	CVV           *string           `json:"cvv"`
	Amount        *string           `json:"amount,omitempty"`
	CurrencyCode  *string           `json:"currency_code,omitempty"`
	ExpiryMonth   *string           `json:"expiry_month"`
	ExpiryYear    *string           `json:"expiry_year"`
	Description   *string           `json:"description"`
	PostalCode    *string           `json:"postal_code"`
	Parameters    map[string]string `json:"parameters"`
}

func newGenericPayBody(r ConnectorRequest) genericPayBody {
	nullable := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	b := genericPayBody{Method: r.Method, TransactionID: r.TransactionID, CardNumber: nullable(r.CardNumber), CVV: nullable(r.CVV),
		ExpiryMonth: nullable(r.ExpiryMonth), ExpiryYear: nullable(r.ExpiryYear), Description: nullable(r.Description),
		PostalCode: nullable(r.PostalCode), Parameters: r.Parameters}
	if r.Method == MethodCharge {
		b.Amount, b.CurrencyCode = &r.Amount, &r.CurrencyCode
	}
	if b.Parameters == nil {
		b.Parameters = map[string]string{}
	}
	return b
}

// attempt sends one connector request within the per-attempt timeout and
// returns the answer's status and body; a nil body means no answer. The
// request body is a bytes.Reader and, unless asked, no Content-Type is set,
// so net/http sends none, as Twilio sends none.
func (x *connectorExchange) attempt(ctx context.Context, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(x.username, x.password)
	req.Header.Set("User-Agent", userAgent)
	if x.contentType != "" {
		req.Header.Set("Content-Type", x.contentType)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return 0, nil, x.attemptError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return resp.StatusCode, nil, x.attemptError(ctx, err)
	}
	if answer == nil {
		answer = []byte{} // an empty answer is an answer, and malformed
	}
	return resp.StatusCode, answer, nil
}

// attemptError words a failed attempt; a timeout is what makes Twilio retry.
func (x *connectorExchange) attemptError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", x.timeout)
	}
	return err
}

// ParseConnectorAnswer reads the connector's answer as Twilio does: a JSON
// object with the method's id key (null allowed) and string or null values.
// Anything else is malformed. Every string is passed through redact, since a
// connector that echoes the request must not make the simulator print a PAN.
func ParseConnectorAnswer(body []byte, method string, redact func(string) string) (*ConnectorResponse, bool) {
	if body == nil {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return nil, false
	}
	idKey := "charge_id"
	if method == MethodTokenize {
		idKey = "token_id"
	}
	rawID, ok := fields[idKey]
	var id *string
	if !ok || json.Unmarshal(rawID, &id) != nil {
		return nil, false
	}
	var r ConnectorResponse
	if json.Unmarshal(body, &r) != nil {
		return nil, false
	}
	out := &ConnectorResponse{Method: method, ErrorCode: redact(r.ErrorCode), ErrorMessage: redact(r.ErrorMessage)}
	if id != nil {
		out.ID = redact(*id)
	}
	if len(r.Parameters) > 0 {
		out.Parameters = make(map[string]string, len(r.Parameters))
		for k, v := range r.Parameters {
			out.Parameters[redact(k)] = redact(v)
		}
	}
	return out, true
}

// redactor returns a function that masks every run of digits equal to the
// PAN or the CVV. Whole runs are compared, so "1234" is not touched for a CVV
// of "123".
func redactor(pan, cvv string) func(string) string {
	return func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); {
			if s[i] < '0' || s[i] > '9' {
				b.WriteByte(s[i])
				i++
				continue
			}
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			switch run := s[i:j]; {
			case pan != "" && run == pan:
				b.WriteString(maskPAN(run))
			case cvv != "" && run == cvv:
				b.WriteString(strings.Repeat("*", len(run)))
			default:
				b.WriteString(run)
			}
			i = j
		}
		return b.String()
	}
}

// postAction posts the callback fields form-encoded to the action URL, as
// Twilio does when <Pay> ends, with the call's AccountSid and CallSid.
func (o *SimulateOptions) postAction(ctx context.Context, sim *Simulation) error {
	if o.Action == "" {
		return nil
	}
	status, err := o.poster().post(ctx, o.Action, sim.Callback)
	sim.ActionStatus = status
	if err != nil {
		return fmt.Errorf("action URL: %w", err)
	}
	return nil
}
