// Package twilio speaks Twilio's side of IVR payments: the Generic Pay
// Connector wire protocol (request parsing, response shape), the <Pay> TwiML
// model (generation and lint), and a simulator of Twilio's part of a call.
package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ivrpay/ivrpay"
)

// Connector methods.
const (
	MethodCharge   = "charge"
	MethodTokenize = "tokenize"
)

// MaxRequestBytes bounds a connector request body.
const MaxRequestBytes = 64 << 10

// ConnectorRequest is the body Twilio posts to a Generic Pay Connector. Every
// scalar is a string on the wire; an absent or null field is the empty string.
type ConnectorRequest struct {
	Method            string            `json:"method"`
	TransactionID     string            `json:"transaction_id"`
	CardNumber        string            `json:"cardnumber,omitempty"`
	CVV               string            `json:"cvv,omitempty"`
	ExpiryMonth       string            `json:"expiry_month,omitempty"`
	ExpiryYear        string            `json:"expiry_year,omitempty"`
	PostalCode        string            `json:"postal_code,omitempty"`
	BankAccountNumber string            `json:"bankaccountnumber,omitempty"`
	RoutingNumber     string            `json:"routingnumber,omitempty"`
	Amount            string            `json:"amount,omitempty"`
	CurrencyCode      string            `json:"currency_code,omitempty"`
	Description       string            `json:"description,omitempty"`
	Parameters        map[string]string `json:"parameters"`

	// AmountPresent tells an absent amount from an empty one.
	AmountPresent bool `json:"-"`
}

// IsACH reports whether the request carries bank account fields instead of a card.
func (r *ConnectorRequest) IsACH() bool {
	return r.BankAccountNumber != "" || r.RoutingNumber != ""
}

// ErrInvalidRequest is wrapped by every ParseConnectorRequest error; the
// message after it is meant for the platform developer and never echoes card data.
var ErrInvalidRequest = errors.New("invalid connector request")

// ParseConnectorRequest parses a connector body leniently, as Twilio needs:
// JSON whatever the Content-Type, scalars that are strings (numbers and
// booleans are taken as their literal text), null or missing optional fields,
// unknown fields ignored. It checks that method is charge or tokenize and that
// transaction_id is present; the method is returned even when that check fails,
// so the answer can carry the right id key.
func ParseConnectorRequest(body []byte) (*ConnectorRequest, error) {
	if ivrpay.JSONTooDeep(body) {
		return &ConnectorRequest{}, fmt.Errorf("%w: the body nests objects or arrays deeper than %d levels", ErrInvalidRequest, ivrpay.MaxJSONDepth)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return &ConnectorRequest{}, notOneObject(body)
	}
	r := &ConnectorRequest{Parameters: map[string]string{}}
	targets := map[string]*string{
		"method": &r.Method, "transaction_id": &r.TransactionID, "cardnumber": &r.CardNumber, "cvv": &r.CVV,
		"expiry_month": &r.ExpiryMonth, "expiry_year": &r.ExpiryYear, "postal_code": &r.PostalCode,
		"bankaccountnumber": &r.BankAccountNumber, "routingnumber": &r.RoutingNumber, "amount": &r.Amount,
		"currency_code": &r.CurrencyCode,
	}
	// Sorted so that the first bad field reported is always the same one.
	names := make([]string, 0, len(targets))
	for name := range targets {
		names = append(names, name)
	}
	sort.Strings(names)
	var firstErr error
	for _, name := range names {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		s, isNull, err := scalar(raw)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%w: %s must be a string", ErrInvalidRequest, name)
		}
		*targets[name] = strings.TrimSpace(s)
		if name == "amount" && !isNull {
			r.AmountPresent = true
		}
	}
	if raw, ok := fields["description"]; ok {
		// Twilio has been seen sending description as an object; keep its text.
		if s, _, err := scalar(raw); err == nil {
			r.Description = s
		} else {
			r.Description = string(raw)
		}
	}
	if raw, ok := fields["parameters"]; ok {
		if err := parseParameters(raw, r.Parameters); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	r.Method = strings.ToLower(r.Method)
	if r.Method != MethodCharge && r.Method != MethodTokenize {
		if r.Method == "" {
			return r, fmt.Errorf("%w: method is required: charge or tokenize", ErrInvalidRequest)
		}
		if !isWord(r.Method) {
			// Echo a mistyped word ("refund"), never arbitrary caller input:
			// a misplaced card number must not come back in an error.
			return r, fmt.Errorf("%w: method must be charge or tokenize", ErrInvalidRequest)
		}
		return r, fmt.Errorf("%w: method must be charge or tokenize, not %q", ErrInvalidRequest, r.Method)
	}
	// encoding/json keeps the last of duplicated keys: {"amount":"10.00",
	// "amount":"0.07"} must not mean whichever a reader happens to take.
	// Keys are otherwise matched exactly (map lookups): "AMOUNT" is an
	// unknown field, ignored like any other.
	if path, dup := ivrpay.DuplicateJSONKey(body); dup {
		return r, fmt.Errorf("%w: the key %s appears more than once in its object", ErrInvalidRequest, path)
	}
	if firstErr != nil {
		return r, firstErr
	}
	if r.TransactionID == "" {
		return r, fmt.Errorf("%w: transaction_id is required", ErrInvalidRequest)
	}
	if len(r.TransactionID) > 255 {
		return r, fmt.Errorf("%w: transaction_id must be at most 255 characters", ErrInvalidRequest)
	}
	// A card number typed at the postal code prompt must not be stored with
	// the payin (SPEC §9); neither message echoes the value.
	if ivrpay.ContainsCardNumber(r.PostalCode) {
		r.PostalCode = ""
		return r, fmt.Errorf("%w: postal_code looks like a card number; it must be a postal code of at most %d letters, digits, spaces and dashes", ErrInvalidRequest, ivrpay.MaxPostalCodeLength)
	}
	if !ivrpay.ValidPostalCode(r.PostalCode) {
		r.PostalCode = ""
		return r, fmt.Errorf("%w: postal_code must be at most %d letters, digits, spaces and dashes", ErrInvalidRequest, ivrpay.MaxPostalCodeLength)
	}
	return r, nil
}

func scalar(raw json.RawMessage) (s string, isNull bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, []byte("null")):
		return "", true, nil
	case len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw):
		// What json.Unmarshal would make of it, without its decoder: raw is
		// part of a body it validated, and has no escapes to undo.
		return string(raw[1 : len(raw)-1]), false, nil
	case len(raw) > 0 && raw[0] == '"':
		err = json.Unmarshal(raw, &s)
		return s, false, err
	case len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')):
		return string(raw), false, nil
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return string(raw), false, nil
	}
	return "", false, errors.New("not a scalar")
}

func parseParameters(raw json.RawMessage, into map[string]string) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%w: parameters must be an object of strings", ErrInvalidRequest)
	}
	for k, v := range m {
		s, isNull, err := scalar(v)
		if err != nil {
			return fmt.Errorf("%w: parameters.%s must be a string", ErrInvalidRequest, ivrpay.Truncate(k, 40))
		}
		if !isNull {
			into[k] = strings.TrimSpace(s)
		}
	}
	return nil
}

// notOneObject says why body, which json.Unmarshal refused as an object, is
// not one JSON object.
func notOneObject(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return fmt.Errorf("%w: the body is not a JSON object", ErrInvalidRequest)
	}
	// Anything after the object, even a stray closing brace or bracket (which
	// Decoder.More does not report), means the body is not one JSON object.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: the body has data after the JSON object", ErrInvalidRequest)
	}
	return fmt.Errorf("%w: the body is not a JSON object", ErrInvalidRequest)
}

// isWord reports whether s is a short word of ASCII letters, '_' and '-'.
func isWord(s string) bool {
	if len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ConnectorResponse is the answer Twilio expects. The id key (charge_id for a
// charge, token_id for a tokenize, both when the method is unknown) is always
// present and null on failure.
type ConnectorResponse struct {
	Method       string
	ID           string
	ErrorCode    string
	ErrorMessage string
	Parameters   map[string]string
}

// MarshalJSON writes the Twilio shape with a fixed key order, so that equal
// responses are equal bytes.
func (r ConnectorResponse) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	writeField := func(key string, value string) { // keys are plain ASCII: no escaping
		b.WriteByte('"')
		b.WriteString(key)
		b.WriteString(`":`)
		if value == "" {
			b.WriteString("null")
		} else {
			v, _ := json.Marshal(value)
			b.Write(v)
		}
		b.WriteByte(',')
	}
	switch r.Method {
	case MethodCharge:
		writeField("charge_id", r.ID)
	case MethodTokenize:
		writeField("token_id", r.ID)
	default:
		writeField("charge_id", "")
		writeField("token_id", "")
	}
	writeField("error_code", r.ErrorCode)
	writeField("error_message", r.ErrorMessage)
	params := r.Parameters
	if params == nil {
		params = map[string]string{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	b.WriteString(`"parameters":`)
	b.Write(p)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads either id key. The key's presence sets Method, also
// when its value is null (a failure), so that a response reads back as it
// was written; with both keys (an unknown method) Method stays empty unless
// one of them holds an id.
func (r *ConnectorResponse) UnmarshalJSON(data []byte) error {
	var w struct {
		ChargeID     json.RawMessage   `json:"charge_id"`
		TokenID      json.RawMessage   `json:"token_id"`
		ErrorCode    *string           `json:"error_code"`
		ErrorMessage *string           `json:"error_message"`
		Parameters   map[string]string `json:"parameters"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	var chargeID, tokenID *string
	for _, id := range []struct {
		raw json.RawMessage
		to  **string
	}{{w.ChargeID, &chargeID}, {w.TokenID, &tokenID}} {
		if id.raw != nil {
			if err := json.Unmarshal(id.raw, id.to); err != nil {
				return err
			}
		}
	}
	*r = ConnectorResponse{Parameters: w.Parameters}
	switch {
	case chargeID != nil:
		r.Method, r.ID = MethodCharge, *chargeID
	case tokenID != nil:
		r.Method, r.ID = MethodTokenize, *tokenID
	case w.ChargeID != nil && w.TokenID == nil:
		r.Method = MethodCharge
	case w.TokenID != nil && w.ChargeID == nil:
		r.Method = MethodTokenize
	}
	if w.ErrorCode != nil {
		r.ErrorCode = *w.ErrorCode
	}
	if w.ErrorMessage != nil {
		r.ErrorMessage = *w.ErrorMessage
	}
	return nil
}
