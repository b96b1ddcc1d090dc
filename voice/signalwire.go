package voice

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// SignalWire (cXML <Pay paymentConnectorUrl=…>, SWML pay) posts a variant of
// the Generic Pay Connector request (signalwire/docs, cXML <Pay> and SWML
// pay.payment_connector_url): method is the payment method ("credit-card";
// the cXML tokenize example has none), a charge carries chargeAmount (a JSON
// number in the cXML docs, a string in SWML's) and a tokenize amount 0 with
// token_type. The answer has the same keys, and only a 200 is a success:
// SignalWire treats any 200 as one, so a refusal is a 402 with the body.
var SignalWire Platform = signalWire{}

type signalWire struct{}

// SignalWireTimeout is how long SignalWire waits for the connector; its docs
// describe no retry.
const SignalWireTimeout = 5 * time.Second

var signalWireCall = &twilio.Platform{Name: "SignalWire", Timeout: SignalWireTimeout, Retries: -1,
	Body: signalWireRequestBody, Read: readSignalWireAnswer, OmitConnectorParameters: true}

func (signalWire) Simulator() *twilio.Platform { return signalWireCall }

// signalWireRequestBody is the request as the cXML docs show it: a charge
// with method credit-card and chargeAmount a JSON number; a tokenize
// without method, with amount 0 and token_type.
func signalWireRequestBody(p *twilio.Pay, r twilio.ConnectorRequest) ([]byte, error) {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	currency := strings.ToUpper(strings.TrimSpace(p.Currency))
	if currency == "" {
		currency = "USD"
	}
	body := map[string]any{
		"transaction_id": r.TransactionID, "cardnumber": r.CardNumber, "cvv": nullable(r.CVV), "postal_code": nullable(r.PostalCode),
		"description": nullable(r.Description), "expiry_month": r.ExpiryMonth, "expiry_year": r.ExpiryYear, "currency_code": currency,
		"parameters": r.Parameters,
	}
	if r.Method == twilio.MethodCharge {
		body["method"] = signalWireCard
		body["chargeAmount"] = json.Number(r.Amount)
	} else {
		tokenType := strings.TrimSpace(p.TokenType)
		if tokenType == "" {
			tokenType = "reusable"
		}
		body["amount"], body["token_type"] = 0, tokenType
	}
	return json.Marshal(body)
}

// readSignalWireAnswer: SignalWire takes any 2xx as a success and anything
// else as the connector's failure (payment-connector-error), whose
// error_code it passes on as ConnectorError.
func readSignalWireAnswer(method string, status int, body []byte, redact func(string) string) twilio.AnswerReading {
	resp, wellFormed := twilio.ParseConnectorAnswer(body, method, redact)
	if status >= 200 && status <= 299 {
		a := twilio.AnswerReading{Result: twilio.ResultSuccess}
		if wellFormed {
			a.Response = resp
		}
		return a
	}
	a := twilio.AnswerReading{Result: twilio.ResultPaymentConnectorError, PaymentError: fmt.Sprintf("HTTP %d from the connector", status)}
	if wellFormed {
		a.ConnectorError = resp.ErrorCode
		if resp.ErrorMessage != "" {
			a.PaymentError += ": " + resp.ErrorMessage
		}
	}
	return a
}

func (signalWire) Provider() ivrpay.IVRProvider { return ivrpay.ProviderSignalWire }

func (signalWire) Path() string { return "/vendor/signalwire/pay" }

// SignalWire's payment methods, in its request's method field.
const (
	signalWireCard = "credit-card"
	signalWireACH  = "ach-debit"
)

// ParseRequest reads SignalWire's fields (method, chargeAmount, amount,
// token_type), then the fields it shares with Twilio through Twilio's parser,
// so that both are held to the same checks: charge when chargeAmount is
// present and not zero, tokenize otherwise.
func (signalWire) ParseRequest(body []byte) (ivrpay.IVRRequest, error) {
	req := ivrpay.IVRRequest{Provider: ivrpay.ProviderSignalWire}
	var fields map[string]json.RawMessage
	if ivrpay.JSONTooDeep(body) || json.Unmarshal(body, &fields) != nil || fields == nil {
		// Not one JSON object: Twilio's parser says why.
		_, err := twilio.ParseConnectorRequest(body)
		if err == nil {
			err = fmt.Errorf("%w: the body is not a JSON object", twilio.ErrInvalidRequest)
		}
		return req, err
	}
	chargeAmount, chargeAmountOK := fields["chargeAmount"]
	charge := chargeAmountOK && !jsonNullOrBlank(chargeAmount) && !isZeroAmount(chargeAmount)
	req.Method = ivrpay.IVRMethodTokenize
	if charge {
		req.Method = ivrpay.IVRMethodCharge
	}
	method, err := signalWireMethod(fields["method"])
	if err != nil {
		return req, err
	}
	if path, dup := ivrpay.DuplicateJSONKey(body); dup {
		return req, fmt.Errorf("%w: the key %s appears more than once in its object", twilio.ErrInvalidRequest, path)
	}
	for _, name := range []string{"amount", "chargeAmount"} {
		if raw, ok := fields[name]; ok && !isJSONScalarAmount(raw) {
			return req, fmt.Errorf("%w: %s must be a number or a string of dollars, such as 10.00", twilio.ErrInvalidRequest, name)
		}
	}
	if raw, ok := fields["token_type"]; ok && !jsonNullOrString(raw) {
		return req, fmt.Errorf("%w: token_type must be a string", twilio.ErrInvalidRequest)
	}

	// The Generic Pay Connector body this request means.
	generic := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		switch k {
		case "method", "chargeAmount", "amount", "token_type":
		default:
			generic[k] = v
		}
	}
	generic["method"], _ = json.Marshal(req.Method)
	if charge {
		generic["amount"] = chargeAmount
	} else if amount, ok := fields["amount"]; ok {
		generic["amount"] = amount
	}
	b, err := json.Marshal(generic)
	if err != nil {
		return req, fmt.Errorf("%w: the body could not be read", twilio.ErrInvalidRequest)
	}
	r, err := twilio.ParseConnectorRequest(b)
	parsed := serviceRequest(ivrpay.ProviderSignalWire, r)
	parsed.Method = req.Method
	parsed.ACH = parsed.ACH || method == signalWireACH
	return parsed, err
}

// signalWireMethod reads the method field: absent (SignalWire's tokenize),
// credit-card or ach-debit.
func signalWireMethod(raw json.RawMessage) (string, error) {
	if raw == nil || jsonNullOrBlank(raw) {
		return "", nil
	}
	var m string
	if json.Unmarshal(raw, &m) != nil {
		return "", fmt.Errorf("%w: method must be the string %q", twilio.ErrInvalidRequest, signalWireCard)
	}
	switch m = strings.ToLower(strings.TrimSpace(m)); m {
	case signalWireCard, signalWireACH:
		return m, nil
	case ivrpay.IVRMethodCharge, ivrpay.IVRMethodTokenize:
		return "", fmt.Errorf("%w: method %q is Twilio's format; SignalWire sends the payment method %q, and Twilio and Telnyx post to their own endpoints (/vendor/twilio/pay_generic, /vendor/telnyx/pay_generic)",
			twilio.ErrInvalidRequest, m, signalWireCard)
	}
	return "", fmt.Errorf("%w: method must be %q", twilio.ErrInvalidRequest, signalWireCard)
}

// Answer is 200 on success only. A refusal is 402 (401 for credentials, 429
// while they are rate limited, 500 for an internal error) with the same
// body, since SignalWire reads any 200 as a success.
func (signalWire) Answer(method string, res ivrpay.IVRResult) (int, []byte) {
	status := http.StatusOK
	switch res.ErrorCode {
	case "":
	case ivrpay.ConnUnauthorized:
		status = http.StatusUnauthorized
	case ivrpay.ConnRateLimited:
		status = http.StatusTooManyRequests
	case ivrpay.ConnInternal:
		status = http.StatusInternalServerError
	default:
		status = http.StatusPaymentRequired
	}
	return status, answerBody(method, res)
}

// jsonNullOrBlank reports whether raw is null or a string of spaces.
func jsonNullOrBlank(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return true
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) == ""
}

// jsonNullOrString reports whether raw is null or a string.
func jsonNullOrString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return bytes.Equal(raw, []byte("null")) || (len(raw) > 0 && raw[0] == '"')
}

// isJSONScalarAmount reports whether raw can hold an amount: null, a number or a string.
func isJSONScalarAmount(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return jsonNullOrString(raw) || (len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')))
}

// isZeroAmount reports whether raw is the amount 0 (0, 0.00, "0", "0.0"):
// SignalWire's chargeAmount 0 stores a card.
func isZeroAmount(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	text := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if json.Unmarshal(raw, &text) != nil {
			return false
		}
	}
	cents, err := ivrpay.ParseDollars(strings.TrimSpace(text))
	return err == nil && cents == 0
}
