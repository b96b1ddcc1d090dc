package ivrpay_test

import (
	"testing"

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
