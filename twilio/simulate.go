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
)

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
	// Endpoint is the connector's ENDPOINT URL.
	Endpoint string
	// APIKey is the connector's PASSWORD; the USERNAME is "api_key".
	APIKey string
	// Pay is the <Pay> verb of the call.
	Pay *Pay
	// Caller is what the caller types.
	Caller CallerInput
	// Action overrides Pay.Action: the URL the callback fields are posted to.
	Action string
	// Timeout is per attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a timed-out or failed attempt is retried; 0
	// means DefaultRetries and a negative value means none.
	Retries int
	// Client sends the requests; nil means a client without a timeout of its
	// own, since Timeout bounds each attempt.
	Client *http.Client
	// NewTransactionID returns the call's transaction_id; nil means NewTransactionID.
	NewTransactionID func() string
	// Now is the clock the expiry check uses; nil means time.Now.
	Now func() time.Time
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
// caller-side checks of <Pay> (no request when they fail), the connector
// request as Twilio sends it, Twilio's per-attempt timeout and retries with
// the same transaction_id, and the action callback built from the answer,
// posted form-encoded to the action URL when there is one. The error is for
// unusable options, a cancelled ctx, or a failed post to the action URL (the
// Simulation is returned with it then). Neither the Simulation nor the error
// ever holds the PAN or the CVV.
func Simulate(ctx context.Context, o SimulateOptions) (*Simulation, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	method, err := o.Pay.Method()
	if err != nil {
		return nil, fmt.Errorf("chargeAmount: %w", err)
	}
	sim := &Simulation{Method: method, Attempts: []Attempt{}}
	in, problem := o.capture()
	if problem != "" {
		sim.fillCallback(ResultValidationError, in, nil, "", problem)
		return sim, o.postAction(ctx, sim)
	}

	sim.TransactionID = o.NewTransactionID()
	body, err := json.Marshal(o.connectorRequest(method, sim.TransactionID, in))
	if err != nil {
		return nil, err
	}
	redact := redactor(in.pan, in.cvv)
	var answer []byte
	for n := 0; n <= o.Retries && answer == nil; n++ {
		a := Attempt{TransactionID: sim.TransactionID}
		start := time.Now()
		a.StatusCode, answer, err = o.attempt(ctx, body)
		a.Duration = time.Since(start)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			a.Error = redact(err.Error())
		}
		sim.Attempts = append(sim.Attempts, a)
	}

	resp, wellFormed := readConnectorAnswer(answer, method, redact)
	switch {
	case answer == nil:
		sim.fillCallback(ResultPaymentConnectorError, in, nil, "",
			fmt.Sprintf("Payment Gateway did not answer within %s in %d attempts", o.Timeout, len(sim.Attempts)))
	case !wellFormed:
		what := map[string]string{MethodCharge: "charge", MethodTokenize: "token"}[method]
		sim.fillCallback(ResultPaymentConnectorError, in, nil, "",
			"Payment Gateway rejected "+what+" creation. Got malformed response from Payment Provider.")
	default:
		sim.Response = resp
		result := ResultPaymentConnectorError
		if resp.ErrorCode == "" && resp.ID != "" {
			result = ResultSuccess
		}
		sim.fillCallback(result, in, resp, resp.ErrorCode, resp.ErrorMessage)
	}
	return sim, o.postAction(ctx, sim)
}

// fillCallback sets the action callback fields in Twilio's order, with what
// the caller got through (a field is left out when its step failed).
func (s *Simulation) fillCallback(result string, in captured, resp *ConnectorResponse, connectorError, paymentError string) {
	cb := &s.Callback
	cb.add("Result", result)
	if resp != nil && s.Method == MethodCharge {
		cb.add("PaymentConfirmationCode", resp.ID)
	} else if resp != nil {
		cb.add("PaymentToken", resp.ID)
	}
	if in.brand != "" {
		cb.add("PaymentCardNumber", maskPAN(in.pan))
		cb.add("PaymentCardType", CardType(in.brand))
	}
	if in.expiry != (card.Expiry{}) {
		cb.add("ExpirationDate", in.expiry.MMYY())
	}
	cb.add("PaymentCardPostalCode", in.postal)
	cb.add("PaymentMethod", "credit-card")
	cb.add("ConnectorError", connectorError)
	cb.add("PaymentError", paymentError)
	if resp != nil {
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

func (o *SimulateOptions) defaults() error {
	u, err := url.Parse(o.Endpoint)
	if o.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("endpoint: the connector's URL (http or https) is required")
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
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.NewTransactionID == nil {
		o.NewTransactionID = NewTransactionID
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// capture applies <Pay>'s caller-side checks in the order Twilio prompts:
// card number (and its type), expiry, security code, postal code. It returns
// the PaymentError of the first failure, or "".
func (o *SimulateOptions) capture() (captured, string) {
	p, c := o.Pay, o.Caller
	in := captured{pan: c.CardNumber}
	brand, err := card.ParsePAN(c.CardNumber)
	switch {
	case errors.Is(err, card.ErrUnsupportedBrand):
		return in, ErrorInvalidCardType
	case err != nil:
		return in, ErrorInvalidCardNumber
	}
	accepted := false
	for _, t := range p.CardTypes() {
		accepted = accepted || BrandForCardType(t) == brand
	}
	if !accepted {
		return in, ErrorInvalidCardType
	}
	in.brand = brand
	month, year, ok := strings.Cut(c.Expiry, "/")
	if !ok && len(c.Expiry) == 4 {
		month, year = c.Expiry[:2], c.Expiry[2:]
	}
	exp, err := card.ParseExpiry(month, year)
	if err != nil || exp.Expired(o.Now()) {
		return in, ErrorInvalidDate
	}
	in.expiry = exp
	if !strings.EqualFold(p.SecurityCode, "false") {
		if card.CheckSecurityCode(c.CVV, brand) != nil {
			return in, ErrorInvalidSecurityCode
		}
		in.cvv = c.CVV
	}
	switch pc := strings.TrimSpace(p.PostalCode); strings.ToLower(pc) {
	case "", "true":
		if strings.TrimSpace(c.PostalCode) == "" {
			return in, ErrorInvalidPostalCode
		}
		in.postal = strings.TrimSpace(c.PostalCode)
	case "false":
	default:
		in.postal = pc // a fixed postal code goes to the connector without asking
	}
	return in, ""
}

// connectorRequest builds the body exactly as Twilio sends it: all strings,
// a two-digit expiry year, amount and upper-case currency on charges only.
func (o *SimulateOptions) connectorRequest(method, transactionID string, in captured) ConnectorRequest {
	mmyy := in.expiry.MMYY()
	r := ConnectorRequest{
		Method:        method,
		TransactionID: transactionID,
		CardNumber:    in.pan,
		CVV:           in.cvv,
		ExpiryMonth:   mmyy[:2],
		ExpiryYear:    mmyy[2:],
		PostalCode:    in.postal,
		Description:   o.Pay.Description,
		Parameters:    map[string]string{},
	}
	if method == MethodCharge {
		r.Amount = strings.TrimSpace(o.Pay.ChargeAmount)
		r.CurrencyCode = strings.ToUpper(strings.TrimSpace(o.Pay.Currency))
		if r.CurrencyCode == "" {
			r.CurrencyCode = "USD"
		}
	}
	for _, prm := range o.Pay.Parameters {
		if _, dup := r.Parameters[prm.Name]; !dup {
			r.Parameters[prm.Name] = prm.Value
		}
	}
	return r
}

// attempt sends one connector request within the per-attempt timeout and
// returns the answer's status and body; a nil body means no answer. The
// request body is a bytes.Reader and no Content-Type is set, so net/http sends
// none, as Twilio sends none.
func (o *SimulateOptions) attempt(ctx context.Context, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("api_key", o.APIKey)
	req.Header.Set("User-Agent", "ivrpay-simulate")
	resp, err := o.Client.Do(req)
	if err != nil {
		return 0, nil, o.attemptError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return resp.StatusCode, nil, o.attemptError(ctx, err)
	}
	if answer == nil {
		answer = []byte{} // an empty answer is an answer, and malformed
	}
	return resp.StatusCode, answer, nil
}

// attemptError words a failed attempt; a timeout is what makes Twilio retry.
func (o *SimulateOptions) attemptError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", o.Timeout)
	}
	return err
}

// readConnectorAnswer reads the connector's answer as Twilio does: a JSON
// object with the method's id key (null allowed) and string or null values.
// Anything else is malformed. Every string is passed through redact, since a
// connector that echoes the request must not make the simulator print a PAN.
func readConnectorAnswer(body []byte, method string, redact func(string) string) (*ConnectorResponse, bool) {
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
// Twilio does when <Pay> ends.
func (o *SimulateOptions) postAction(ctx context.Context, sim *Simulation) error {
	if o.Action == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Action, strings.NewReader(sim.Callback.Form().Encode()))
	if err != nil {
		return fmt.Errorf("action URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "ivrpay-simulate")
	resp, err := o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("action URL: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	sim.ActionStatus = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("action URL answered HTTP %d", resp.StatusCode)
	}
	return nil
}
