package ivrpay

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay/card"
)

// MaxPostalCodeLength bounds postal codes everywhere (REST billing contacts
// and the connector's postal_code): the longest real ones (Brazil's
// "01310-100", Canada's "K1A 0B1") fit, and a 13–19 digit card number
// cannot.
const MaxPostalCodeLength = 10

// ContainsCardNumber reports whether free text or an identifier holds what
// looks like a card number: a Luhn-valid run of 13 to 19 digits that starts
// like a card, ASCII or full-width, possibly grouped with spaces, tabs,
// dashes, dots, slashes or underscores, or followed by more digits
// (card.ContainsPANRun). Such text is refused, never stored.
func ContainsCardNumber(s string) bool { return card.ContainsPANRun(s) }

// ValidPostalCode reports whether s is at most MaxPostalCodeLength letters,
// digits, spaces and dashes (ASCII).
func ValidPostalCode(s string) bool {
	if len(s) > MaxPostalCodeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

// cardNumberError is the refusal of a free-text field that holds a card
// number; it names the field and never the value.
func cardNumberError(field string) error {
	return FieldErrorf(field, "looks like it holds a card number (a Luhn-valid run of 13 to 19 digits); card numbers are accepted only in card fields, never in free text or identifiers")
}

// checkFreeText refuses a card number in a free-text field.
func checkFreeText(field, value string) error {
	if ContainsCardNumber(value) {
		return cardNumberError(field)
	}
	return nil
}

// metadataCardPath returns the path under field of the first key or value
// (strings and numbers, at any depth) of the JSON value raw that holds a
// card number. Objects are walked in key order so the answer is stable.
// mayHoldCardNumber reports whether the JSON text raw may hold a card number
// in one of its strings, numbers or keys: false when it has fewer ASCII digits
// than a card number and nothing that decodes to another digit (an escape, or
// a byte beyond ASCII, such as a full-width digit's). Most metadata is short
// text, which this spares a decode.
func mayHoldCardNumber(raw []byte) bool {
	digits := 0
	for _, c := range raw {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '\\' || c >= 0x80:
			return true
		}
	}
	return digits >= card.MinPANRun
}

func metadataCardPath(field string, raw json.RawMessage) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	return cardPathIn(field, v)
}

func cardPathIn(path string, v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return path, ContainsCardNumber(x)
	case json.Number:
		return path, ContainsCardNumber(string(x))
	case []any:
		for i, e := range x {
			if p, ok := cardPathIn(path+"["+strconv.Itoa(i)+"]", e); ok {
				return p, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ContainsCardNumber(k) {
				return path, true
			}
			if p, ok := cardPathIn(path+"."+SafeJSONKey(k), x[k]); ok {
				return p, true
			}
		}
	}
	return "", false
}

// SafeJSONKey returns key as it may appear in an error's field name: short
// printable ASCII without anything that looks like a card number, or
// "(key not shown)". A key is caller input like any other, and errors never
// echo what could be card data.
func SafeJSONKey(key string) string {
	if key == "" || len(key) > 64 || ContainsCardNumber(key) {
		return "(key not shown)"
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "(key not shown)"
		}
	}
	return key
}

// NULError is the refusal of a text field that holds a NUL character.
// SQLite would store one and PostgreSQL refuses it, so both engines answer
// the same 400 before anything is written (SPEC §9).
func NULError(field string) error {
	return FieldErrorf(field, "must not contain a NUL character (U+0000)")
}

// checkJSONNUL refuses JSON text given as field (metadata, statements)
// that holds a NUL character, naming where ("metadata.note").
func checkJSONNUL(field string, raw []byte) error {
	path, nul := JSONNULPath(raw)
	switch {
	case !nul:
		return nil
	case path == "body":
		return NULError(field)
	case strings.HasPrefix(path, "["):
		return NULError(field + path)
	}
	return NULError(field + "." + path)
}

// RequestNUL returns the name of the first field of a request that holds a
// NUL character: the id in its path, then each query or form in turn (a
// field whose name or one of whose values holds one, in name order).
func RequestNUL(pathID string, forms ...map[string][]string) (field string, found bool) {
	if strings.IndexByte(pathID, 0) >= 0 {
		return "id", true
	}
	hasNUL := func(v string) bool { return strings.IndexByte(v, 0) >= 0 }
	for _, form := range forms {
		var names []string
		for name, values := range form {
			if hasNUL(name) || slices.ContainsFunc(values, hasNUL) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			return SafeJSONKey(names[0]), true
		}
	}
	return "", false
}
