package twilio

import (
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

// TestScalarIsWhatUnmarshalMakes: scalar's shortcut for strings without
// escapes gives what json.Unmarshal gives, for any string a JSON body can
// carry: escaped or not, valid UTF-8 or not.
func TestScalarIsWhatUnmarshalMakes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var raw []byte
		if rapid.Bool().Draw(t, "marshalled") {
			raw, _ = json.Marshal(rapid.String().Draw(t, "s"))
		} else {
			// Bytes as a body may carry them between quotes: anything but a
			// quote, a backslash or a control character, valid UTF-8 or not.
			body := rapid.SliceOf(rapid.ByteRange(0x20, 0xff).Filter(func(b byte) bool { return b != '"' && b != '\\' })).Draw(t, "body")
			raw = append(append([]byte{'"'}, body...), '"')
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", raw, err)
		}
		got, isNull, err := scalar(raw)
		if err != nil || isNull || got != want {
			t.Fatalf("scalar(%q) = %q, %v, %v; json.Unmarshal makes %q", raw, got, isNull, err, want)
		}
	})
}
