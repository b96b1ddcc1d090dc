package ivrpay_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// TestFormatTimeIsTimeFormat: FormatTime writes what time.Format writes with
// its layout, for any instant and zone, years outside 0–9999 included.
func TestFormatTimeIsTimeFormat(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var at time.Time
		if rapid.Bool().Draw(t, "near") {
			at = time.Unix(rapid.Int64Range(-1e10, 1e11).Draw(t, "s"), rapid.Int64Range(0, 999_999_999).Draw(t, "ns"))
		} else {
			at = time.Unix(rapid.Int64Range(-1e12, 1e12).Draw(t, "s"), rapid.Int64Range(0, 999_999_999).Draw(t, "ns"))
		}
		at = at.In(time.FixedZone("z", rapid.IntRange(-14*3600, 14*3600).Draw(t, "offset")))
		if got, want := ivrpay.FormatTime(at), at.UTC().Format("2006-01-02T15:04:05.000000Z"); got != want {
			t.Fatalf("FormatTime(%v) = %q, time.Format writes %q", at, got, want)
		}
	})
}
