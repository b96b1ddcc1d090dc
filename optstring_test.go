package ivrpay_test

import (
	"encoding/json"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

// jsonStringText draws strings, many of them plain ASCII, with the
// characters JSON or HTML escaping concerns.
var jsonStringText = rapid.OneOf(rapid.String(), rapid.StringOf(rapid.RuneFrom([]rune(`az09 _-.:"\<>&`+"\x00\x1f\x7f\u2028é"))))

// TestAppendJSONStringIsMarshal: AppendJSONString appends what json.Marshal
// makes of a string, byte for byte.
func TestAppendJSONStringIsMarshal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := jsonStringText.Draw(t, "s")
		want, _ := json.Marshal(s)
		if got := ivrpay.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, json.Marshal makes %s", s, got[1:], want)
		}
	})
}

// TestOptStringMarshalsAsJSON: an OptString marshals as null when empty and
// otherwise as json.Marshal marshals its string, alone and inside a struct
// encoded without HTML escaping, as events are.
func TestOptStringMarshalsAsJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := jsonStringText.Draw(t, "s")
		got, err := ivrpay.OptString(s).MarshalJSON()
		want, _ := json.Marshal(s)
		if s == "" {
			want = []byte("null")
		}
		if err != nil || string(got) != string(want) {
			t.Fatalf("OptString(%q).MarshalJSON() = %s, %v; want %s", s, got, err, want)
		}
		var plain strings.Builder
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(struct{ V ivrpay.OptString }{ivrpay.OptString(s)}); err != nil || plain.String() != `{"V":`+string(want)+"}\n" {
			t.Fatalf("in a struct: %s (%v), want %s", plain.String(), err, want)
		}
	})
}
