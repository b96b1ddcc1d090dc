package ivrpay_test

import (
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

func TestJSONTooDeep(t *testing.T) {
	t.Parallel()
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		body string
		deep bool
	}{
		{`{"a":{"b":[1,2,{"c":null}]}}`, false},
		{nest(ivrpay.MaxJSONDepth), false},
		{nest(ivrpay.MaxJSONDepth + 1), true},
		{`{"s":"` + strings.Repeat("[{", 100) + `"}`, false},  // brackets inside a string do not nest
		{`{"s":"\"` + strings.Repeat("[", 100) + `"}`, false}, // nor after an escaped quote
		{`{"metadata":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat("}", 40) + `}`, true},
	} {
		if got := ivrpay.JSONTooDeep([]byte(tc.body)); got != tc.deep {
			t.Errorf("JSONTooDeep(%.40q…) = %v, want %v", tc.body, got, tc.deep)
		}
	}
}
