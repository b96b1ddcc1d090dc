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
	"slices"
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
	r, plain := parsePlain(body)
	var fieldErr error
	if !plain {
		var err error
		if r, fieldErr, err = parseAny(body); err != nil {
			return r, err
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
	// unknown field, ignored like any other. (parsePlain takes no body with
	// a repeated key.)
	if !plain {
		if path, dup := ivrpay.DuplicateJSONKey(body); dup {
			return r, fmt.Errorf("%w: the key %s appears more than once in its object", ErrInvalidRequest, path)
		}
	}
	if fieldErr != nil {
		return r, fieldErr
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

// stringFields are the members read as strings, sorted so that the first
// bad field reported is always the same one.
var stringFields = []string{"amount", "bankaccountnumber", "cardnumber", "currency_code", "cvv", "expiry_month",
	"expiry_year", "method", "postal_code", "routingnumber", "transaction_id"}

// stringField is where the member name (one of stringFields) goes; nil for
// any other name.
func (r *ConnectorRequest) stringField(name string) *string {
	switch name {
	case "amount":
		return &r.Amount
	case "bankaccountnumber":
		return &r.BankAccountNumber
	case "cardnumber":
		return &r.CardNumber
	case "currency_code":
		return &r.CurrencyCode
	case "cvv":
		return &r.CVV
	case "expiry_month":
		return &r.ExpiryMonth
	case "expiry_year":
		return &r.ExpiryYear
	case "method":
		return &r.Method
	case "postal_code":
		return &r.PostalCode
	case "routingnumber":
		return &r.RoutingNumber
	case "transaction_id":
		return &r.TransactionID
	}
	return nil
}

// parseAny reads the members of any JSON body with encoding/json: err when
// it is not one JSON object (or nests too deep), fieldErr for the first
// member that is not a string (ParseConnectorRequest reports it after the
// method and repeated keys).
func parseAny(body []byte) (r *ConnectorRequest, fieldErr, err error) {
	if ivrpay.JSONTooDeep(body) {
		return &ConnectorRequest{}, nil, fmt.Errorf("%w: the body nests objects or arrays deeper than %d levels", ErrInvalidRequest, ivrpay.MaxJSONDepth)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return &ConnectorRequest{}, nil, notOneObject(body)
	}
	r = &ConnectorRequest{Parameters: map[string]string{}}
	for _, name := range stringFields {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		s, isNull, err := scalar(raw)
		if err != nil && fieldErr == nil {
			fieldErr = fmt.Errorf("%w: %s must be a string", ErrInvalidRequest, name)
		}
		*r.stringField(name) = strings.TrimSpace(s)
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
		if err := parseParameters(raw, r.Parameters); err != nil && fieldErr == nil {
			fieldErr = err
		}
	}
	return r, fieldErr, nil
}

// parsePlain reads, without encoding/json, the body voice platforms send in
// practice: one JSON object whose members are strings of printable ASCII
// without escapes, or null, and whose parameters member is such an object
// (or null). plain is false for anything else (an escape, a number, another
// nested value, a repeated key, a byte outside printable ASCII, a body that
// is not JSON), which parseAny then reads; for every body parsePlain takes,
// both read the same request (TestParsePlainReadsAsParseAny). The fields are
// substrings of one copy of the body: one allocation instead of one per field.
func parsePlain(body []byte) (r *ConnectorRequest, plain bool) {
	p := plainScanner{s: string(body)}
	var topBuf, paramBuf [16]plainMember
	top, params, ok := p.object(topBuf[:0], paramBuf[:0])
	if p.space(); !ok || p.i != len(p.s) {
		return nil, false
	}
	r = &ConnectorRequest{Parameters: make(map[string]string, len(params))}
	for _, m := range top {
		switch {
		case m.key == "parameters":
			if !m.object && !m.null {
				return nil, false // a string: parseAny words the refusal
			}
		case m.key == "description":
			r.Description = m.value
		default:
			if f := r.stringField(m.key); f != nil {
				*f = strings.TrimSpace(m.value)
				if m.key == "amount" && !m.null {
					r.AmountPresent = true
				}
			}
		}
	}
	for _, m := range params {
		if !m.null {
			r.Parameters[m.key] = strings.TrimSpace(m.value)
		}
	}
	return r, true
}

// plainMember is one member parsePlain read: a string value, null, or (the
// parameters member) an object, whose members are read apart.
type plainMember struct {
	key, value   string
	null, object bool
}

// plainScanner reads parsePlain's subset of JSON from s, at i.
type plainScanner struct {
	s string
	i int
}

func (p *plainScanner) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

// next skips whitespace and reports whether c comes next, taking it if so.
func (p *plainScanner) next(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (p *plainScanner) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	for j := p.i; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			s := p.s[p.i:j]
			p.i = j + 1
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// object reads an object of plain members after top, the members of its
// parameters member (an object) after params. It does not recurse, so that
// the callers' arrays stay on the stack.
func (p *plainScanner) object(top, params []plainMember) ([]plainMember, []plainMember, bool) {
	if !p.next('{') {
		return nil, nil, false
	}
	if p.next('}') {
		return top, params, true
	}
	inParams := false
	for {
		key, ok := p.str()
		if !ok || !p.next(':') {
			return nil, nil, false
		}
		m := plainMember{key: key}
		p.space()
		switch {
		case p.i < len(p.s) && p.s[p.i] == '"':
			if m.value, ok = p.str(); !ok {
				return nil, nil, false
			}
		case strings.HasPrefix(p.s[p.i:], "null"):
			p.i += len("null")
			m.null = true
		case !inParams && key == "parameters" && p.i < len(p.s) && p.s[p.i] == '{':
			p.i++
			m.object = true
		default:
			return nil, nil, false
		}
		// A repeated key is left to parseAny's caller, which refuses it by name.
		if inParams {
			if repeatedKey(params, key) {
				return nil, nil, false
			}
			params = append(params, m)
		} else {
			if repeatedKey(top, key) {
				return nil, nil, false
			}
			top = append(top, m)
		}
		if m.object {
			if inParams = !p.next('}'); inParams {
				continue
			}
		}
		// After a value: the next member, or the end of an object.
		for !p.next(',') {
			if !p.next('}') {
				return nil, nil, false
			}
			if !inParams {
				return top, params, true
			}
			inParams = false
		}
	}
}

func repeatedKey(ms []plainMember, key string) bool {
	for _, m := range ms {
		if m.key == key {
			return true
		}
	}
	return false
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
// responses are equal bytes: the values as json.Marshal writes them, the
// parameters in the order of their keys.
func (r ConnectorResponse) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 160+len(r.ErrorMessage)+32*len(r.Parameters))
	b = append(b, '{')
	writeField := func(key string, value string) { // keys are plain ASCII: no escaping
		b = append(append(append(b, '"'), key...), `":`...)
		if value == "" {
			b = append(b, "null"...)
		} else {
			b = ivrpay.AppendJSONString(b, value)
		}
		b = append(b, ',')
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
	b = append(b, `"parameters":{`...)
	keys := make([]string, 0, 8) // on the stack for the few parameters an answer has
	for k := range r.Parameters {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(ivrpay.AppendJSONString(b, k), ':')
		b = ivrpay.AppendJSONString(b, r.Parameters[k])
	}
	return append(b, "}}"...), nil
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
