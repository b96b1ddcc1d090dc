package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/ivrpay/ivrpay"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

type envelope struct {
	Status string          `json:"status"`
	Data   any             `json:"data"`
	Errors []envelopeError `json:"errors"`
}

type envelopeError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorStatus maps a domain error code to its HTTP status; it is the only such mapping.
func ErrorStatus(code string) int {
	switch code {
	case ivrpay.EINVALID:
		return http.StatusBadRequest
	case ivrpay.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ivrpay.EFORBIDDEN:
		return http.StatusForbidden
	case ivrpay.ENOTFOUND:
		return http.StatusNotFound
	case ivrpay.ECONFLICT:
		return http.StatusConflict
	case ivrpay.ERATELIMITED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, envelope{Status: "SUCCESS", Data: data})
}

// writeError writes the error envelope. Internal errors are logged by the
// request logger and answered without detail.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := ivrpay.ErrorCode(err)
	if code == ivrpay.EINTERNAL {
		if info := infoFrom(r.Context()); info != nil {
			info.err = err
		}
	}
	writeJSON(w, ErrorStatus(code), envelope{Status: "ERROR", Errors: []envelopeError{{
		Field: ivrpay.ErrorField(err), Code: code, Message: ivrpay.ErrorMessage(err)}}})
}

// decodeJSON reads a request body strictly: at most MaxBodyBytes, one JSON
// value, no unknown fields. Every failure names the field when there is one.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	var read bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= MaxBodyBytes {
		read.Grow(int(r.ContentLength) + bytes.MinRead) // one buffer, not a doubling from 512 bytes
	}
	if _, err := read.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		return bodyError(err)
	}
	if ivrpay.JSONTooDeep(read.Bytes()) {
		return ivrpay.FieldErrorf("body", "the request body nests objects or arrays deeper than %d levels", ivrpay.MaxJSONDepth)
	}
	// encoding/json takes the last of duplicated keys and matches keys
	// case-insensitively, so {"amount":1000,"AMOUNT":7} would mean 7 cents:
	// refuse both before decoding (SPEC §9).
	if path, dup := ivrpay.DuplicateJSONKey(read.Bytes()); dup {
		return ivrpay.FieldErrorf(path, "appears more than once in its object; each key may appear only once")
	}
	if path, nul := ivrpay.JSONNULPath(read.Bytes()); nul {
		return ivrpay.NULError(path)
	}
	if err := strictMembers(read.Bytes(), reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(read.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// encoding/json names neither an unknown nested field nor a string
		// that is not a number (for json.Number fields) with its path: find
		// the member in what was read.
		unknown := strings.HasPrefix(err.Error(), "json: unknown field ")
		if unknown || strings.HasPrefix(err.Error(), "json: invalid number literal") {
			if path := badMember(read.Bytes(), reflect.TypeOf(v), ""); path != "" {
				if unknown {
					return ivrpay.FieldErrorf(path, "unknown field")
				}
				return ivrpay.FieldErrorf(path, "must be a number")
			}
		}
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ivrpay.FieldErrorf("body", "the request body must hold exactly one JSON object")
	}
	return nil
}

func bodyError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return ivrpay.FieldErrorf("body", "a JSON request body is required")
	case errors.As(err, &tooLarge):
		return ivrpay.FieldErrorf("body", "the request body is larger than %d KiB", MaxBodyBytes>>10)
	case errors.As(err, &syntax):
		return ivrpay.FieldErrorf("body", "the request body is not valid JSON (error at byte %d)", syntax.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return ivrpay.FieldErrorf(field, "must be %s, not a JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return ivrpay.FieldErrorf(name, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ivrpay.FieldErrorf("body", "the request body is truncated JSON")
	}
	return ivrpay.FieldErrorf("body", "the request body could not be read: %v", err)
}

// badMember returns the path ("billing_contact.zip") of the first member of
// the JSON object raw, in document order and depth first, that does not
// decode strictly into type t: the member encoding/json stopped at.
func badMember(raw []byte, t reflect.Type, prefix string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return prefix
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return prefix
	}
	for dec.More() {
		tok, err := dec.Token()
		var value json.RawMessage
		if err != nil || dec.Decode(&value) != nil {
			return prefix
		}
		key, _ := tok.(string)
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		f, ok := jsonField(t, key)
		if !ok {
			return path
		}
		strict := json.NewDecoder(bytes.NewReader(value))
		strict.DisallowUnknownFields()
		if strict.Decode(reflect.New(f.Type).Interface()) != nil {
			return badMember(value, f.Type, path)
		}
	}
	return ""
}

// jsonField finds the struct field whose JSON name is exactly key. Unlike
// encoding/json, it never matches a key that differs only in case.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	f, ok := jsonFields(t)[key]
	return f, ok
}

// jsonFieldsByType caches jsonFields: every request body is checked against its type.
var jsonFieldsByType sync.Map // reflect.Type → map[string]reflect.StructField

// jsonFields maps the JSON name of each field of the struct type t to the field.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := jsonFieldsByType.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := m[name]; !taken {
			m[name] = f
		}
	}
	jsonFieldsByType.Store(t, m)
	return m
}

var (
	numberType      = reflect.TypeFor[json.Number]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	// stringAmountType is the one body whose amount may be a string of
	// digits ("1000"): Rainforest's older clients send the payin config
	// amount that way (docs/decisions.md). Every other amount is a JSON number.
	stringAmountType = reflect.TypeFor[ivrpay.PayinConfigCreate]()
)

// strictMembers walks the JSON value raw as it will be decoded into t and
// refuses, in document order, a member whose key matches no field of its
// struct exactly (case included) and a json.Number field given as a string
// (except the tolerated payin config amount, and then only digits). Values
// of the wrong kind are left to the decoder, which names them.
func strictMembers(raw []byte, t reflect.Type, prefix string) error {
	if membersKnown(raw, t) {
		return nil
	}
	return strictMembersInOrder(raw, t, prefix)
}

// membersKnown reports that strictMembersInOrder would refuse nothing in raw,
// without its walk token by token (json.Decoder.Token allocates per token,
// and each member's Decode builds an error it drops): every body that is
// accepted only needs its members checked, in any order. False sends raw to
// the ordered walk, which finds the first refusal or leaves raw to the
// decoder; duplicated keys, which a map would merge, are refused before this.
func membersKnown(raw []byte, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		// A walk over the bytes, not a decode into a map: the decoder reads
		// the values next, and the ordered walk runs if anything is amiss.
		fields := jsonFields(t)
		return ivrpay.JSONMembers(raw, func(key, value []byte) bool {
			f, ok := fields[string(key)]
			if !ok {
				return false
			}
			if f.Type == numberType {
				return checkNumber(value, "", t == stringAmountType && string(key) == "amount") == nil
			}
			return membersKnown(value, f.Type)
		})
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return false
		}
		for _, e := range elems {
			if !membersKnown(e, t.Elem()) {
				return false
			}
		}
	}
	return true
}

// strictMembersInOrder is strictMembers' walk in document order.
func strictMembersInOrder(raw []byte, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // json.RawMessage: its own validation reads it
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	switch t.Kind() {
	case reflect.Struct:
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil
		}
		for dec.More() {
			tok, err := dec.Token()
			var value json.RawMessage
			if err != nil || dec.Decode(&value) != nil {
				return nil
			}
			key, _ := tok.(string)
			path := ivrpay.SafeJSONKey(key)
			if prefix != "" {
				path = prefix + "." + path
			}
			f, ok := jsonField(t, key)
			if !ok {
				return ivrpay.FieldErrorf(path, "unknown field (keys are case-sensitive)")
			}
			if f.Type == numberType {
				if err := checkNumber(value, path, t == stringAmountType && key == "amount"); err != nil {
					return err
				}
				continue
			}
			if err := strictMembersInOrder(value, f.Type, path); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil
		}
		for i := 0; dec.More(); i++ {
			var value json.RawMessage
			if dec.Decode(&value) != nil {
				return nil
			}
			if err := strictMembersInOrder(value, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNumber refuses a string where a number of cents is expected, unless
// tolerated and made of digits only.
func checkNumber(value json.RawMessage, path string, tolerateDigits bool) error {
	v := bytes.TrimSpace(value)
	if len(v) == 0 || v[0] != '"' {
		return nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil && tolerateDigits && s != "" && len(s) <= 10 && strings.Trim(s, "0123456789") == "" {
		return nil
	}
	return ivrpay.FieldErrorf(path, "must be an integer number of cents (1000 is 10.00 USD), not a string")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int64", "float64":
		return "a number"
	}
	return fmt.Sprintf("a %s", goKind)
}
