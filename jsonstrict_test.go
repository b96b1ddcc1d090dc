package ivrpay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

func TestDuplicateJSONKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, path string
		found          bool
	}{
		{"none", `{"amount":1000,"currency_code":"USD"}`, "", false},
		{"case differs", `{"amount":1000,"AMOUNT":7}`, "", false},
		{"top level", `{"amount":1000,"amount":7}`, "amount", true},
		{"escaped spelling", `{"amount":1000,"\u0061mount":7}`, "amount", true},
		{"nested", `{"billing_contact":{"name":"a","name":"b"}}`, "billing_contact.name", true},
		{"in an array", `{"statements":[{"permissions":[]},{"constraints":{},"constraints":{}}]}`, "statements[1].constraints", true},
		{"same key in sibling objects", `{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}`, "", false},
		{"after nested values", `{"a":[1,[2,{"b":3}]],"c":{},"a":0}`, "a", true},
		{"invalid JSON", `{"a":1,"b"}`, "", false},
		{"duplicate before the JSON breaks", `{"a":1,"a"`, "a", true},
		{"not an object", `[1,2,3]`, "", false},
		{"card number key not echoed", `{"4111111111111111":1,"4111111111111111":2}`, "(key not shown)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, found := ivrpay.DuplicateJSONKey([]byte(tc.in))
			if path != tc.path || found != tc.found {
				t.Fatalf("DuplicateJSONKey(%s) = %q, %v; want %q, %v", tc.in, path, found, tc.path, tc.found)
			}
		})
	}
}

func TestJSONNULPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, path string
		found          bool
	}{
		{"none", `{"name":"Acme","metadata":{"a":"b"}}`, "", false},
		{"top-level value", `{"name":"Ac\u0000me"}`, "name", true},
		{"nested value", `{"metadata":{"order":{"note":"x\u0000"}}}`, "metadata.order.note", true},
		{"in an array", `{"statements":[{"permissions":["a","\u0000"]}]}`, "statements[0].permissions[1]", true},
		{"in a key", `{"metadata":{"k\u0000":"v"}}`, "metadata.(key not shown)", true},
		{"an escaped backslash before u0000 is no NUL", `{"name":"a\\u0000"}`, "", false},
		{"U+0001 is no NUL", `{"name":"a\u0001"}`, "", false},
		{"after a duplicate key", `{"a":1,"a":"\u0000"}`, "a", true},
		{"invalid JSON first", `{"a":1,"b"} "\u0000"`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, found := ivrpay.JSONNULPath([]byte(tc.in))
			if path != tc.path || found != tc.found {
				t.Fatalf("JSONNULPath(%s) = %q, %v; want %q, %v", tc.in, path, found, tc.path, tc.found)
			}
		})
	}
}

// FuzzJSONNULPath: a body has a NUL path exactly when encoding/json reads
// a NUL character in one of its strings.
func FuzzJSONNULPath(f *testing.F) {
	f.Add([]byte(`{"a":"\u0000"}`))
	f.Add([]byte(`{"a":["x",{"\u0000":1}]}`))
	f.Add([]byte(`{"a":"\\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path, found := ivrpay.JSONNULPath(b) // must not panic
		var v any
		if _, dup := ivrpay.DuplicateJSONKey(b); dup || json.Unmarshal(b, &v) != nil || ivrpay.JSONTooDeep(b) {
			return // encoding/json keeps only the last of duplicated keys
		}
		if want := holdsNUL(v); found != want || (found && path == "") {
			t.Fatalf("JSONNULPath(%q) = %q, %v; encoding/json reads a NUL: %v", b, path, found, want)
		}
	})
}

func holdsNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

func FuzzDuplicateJSONKey(f *testing.F) {
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"a":[{"b":1}],"c":{"d":{"e":[]}}}`))
	f.Add([]byte(`[{"x":1,"x":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path, found := ivrpay.DuplicateJSONKey(b) // must not panic
		if found && path == "" {
			t.Fatalf("a duplicate without a path in %q", b)
		}
	})
}

// duplicateJSONKeyByTokens is the reference: the same search walked with
// json.Decoder.Token (the first implementation, slower, obviously right).
func duplicateJSONKeyByTokens(b []byte) (string, bool) {
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				top.key, _ = tok.(string)
				if top.keys[top.key] {
					var sb strings.Builder
					for _, f := range stack {
						if f.object {
							if sb.Len() > 0 {
								sb.WriteByte('.')
							}
							sb.WriteString(ivrpay.SafeJSONKey(f.key))
						} else {
							fmt.Fprintf(&sb, "[%d]", f.index)
						}
					}
					return sb.String(), true
				}
				top.keys[top.key], top.wantKey = true, false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
				continue
			case json.Delim('['):
				stack = append(stack, &frame{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) == 0 {
			return "", false
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
}

// TestDuplicateJSONKeyMatchesTokens: on any valid JSON document (random
// nesting, few distinct keys so that duplicates are common, escaped
// spellings, whitespace, objects past the 16 keys where the scan switches
// to a set), the byte scan finds what the token walk finds.
func TestDuplicateJSONKeyMatchesTokens(t *testing.T) {
	t.Parallel()
	keys := []string{`a`, `b`, `\u0061`, `card`, `x y`, `\"q\"`, `k\/1`}
	var value func(t *rapid.T, depth int) string
	value = func(t *rapid.T, depth int) string {
		kind := rapid.IntRange(0, 5).Draw(t, "kind")
		if depth > 4 {
			kind %= 3
		}
		ws := rapid.SampledFrom([]string{"", " ", "\n\t "}).Draw(t, "ws")
		switch kind {
		case 0:
			return ws + rapid.SampledFrom([]string{`1`, `-2.5e3`, `true`, `null`}).Draw(t, "scalar") + ws
		case 1, 2:
			return ws + `"` + rapid.SampledFrom([]string{``, `s`, `\"{[`, `\u00e9`}).Draw(t, "string") + `"` + ws
		case 3:
			n := rapid.IntRange(0, 4).Draw(t, "elements")
			parts := make([]string, n)
			for i := range parts {
				parts[i] = value(t, depth+1)
			}
			return ws + "[" + strings.Join(parts, ",") + "]" + ws
		default:
			n := rapid.IntRange(0, 24).Draw(t, "members")
			parts := make([]string, n)
			for i := range parts {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				if rapid.Bool().Draw(t, "unique") {
					k = fmt.Sprintf("%s%d", k, i)
				}
				parts[i] = ws + `"` + k + `"` + ws + ":" + value(t, depth+1)
			}
			return ws + "{" + strings.Join(parts, ",") + "}" + ws
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		doc := value(t, 0)
		if !json.Valid([]byte(doc)) {
			t.Fatalf("the generator made invalid JSON: %s", doc)
		}
		path, found := ivrpay.DuplicateJSONKey([]byte(doc))
		wantPath, wantFound := duplicateJSONKeyByTokens([]byte(doc))
		if path != wantPath || found != wantFound {
			t.Fatalf("DuplicateJSONKey(%s) = %q, %v; the token walk says %q, %v", doc, path, found, wantPath, wantFound)
		}
	})
}

func BenchmarkDuplicateJSONKey(b *testing.B) {
	body := []byte(`{"method":"charge","transaction_id":"CA0123456789abcdef0123456789abcdef","cardnumber":"4111111111111111",` +
		`"cvv":"123","expiry_month":"08","expiry_year":"2039","description":"IVR payment","chargeamount":"10.00",` +
		`"currency_code":"usd","postal_code":"94111","parameters":{"payin_config_id":"sbx_pcfg_123"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, found := ivrpay.DuplicateJSONKey(body); found {
			b.Fatal("found a duplicate in a body without one")
		}
	}
}

// TestJSONMembers: the members of an object in document order, keys
// unescaped and values raw; false for what is not one object it can walk.
func TestJSONMembers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		members  string // "key=value;" for each member
		ok       bool
	}{
		{"empty", ` {} `, "", true},
		{"members", `{"a": 1, "b" :"x,}", "c":{"d":[1,{"e":null}]}}`, `a=1;b="x,}";c={"d":[1,{"e":null}]};`, true},
		{"escaped key", `{"\u0061mount":10}`, "amount=10;", true},
		{"repeated key inside a value", `{"a":{"k":1,"k":2}}`, "", false},
		{"repeated top-level key", `{"a":1,"a":2}`, "a=1;a=2;", true},
		{"data after the object", `{"a":1} x`, "a=1;", false},
		{"cut short", `{"a":1,`, "a=1;", false},
		{"no colon", `{"a" 1}`, "", false},
		{"an array", `[1]`, "", false},
		{"a string", `"a"`, "", false},
		{"nothing", ``, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got strings.Builder
			ok := ivrpay.JSONMembers([]byte(tc.in), func(key, value []byte) bool {
				fmt.Fprintf(&got, "%s=%s;", key, value)
				return true
			})
			if ok != tc.ok || got.String() != tc.members {
				t.Fatalf("JSONMembers(%s) = %v with %q; want %v with %q", tc.in, ok, got.String(), tc.ok, tc.members)
			}
		})
	}
	t.Run("fn stops the walk", func(t *testing.T) {
		calls := 0
		if ivrpay.JSONMembers([]byte(`{"a":1,"b":2}`), func(key, value []byte) bool { calls++; return false }) || calls != 1 {
			t.Fatalf("JSONMembers went on after fn returned false (%d calls)", calls)
		}
	})
}
