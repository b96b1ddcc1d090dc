package sqlstore

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

// TestParseTimeIsTimeParse: parseTime reads every text as time.Parse with
// RFC 3339 does (the store's own layout by its shortcut), and reads back
// what ivrpay.FormatTime wrote (in the years RFC 3339 has).
func TestParseTimeIsTimeParse(t *testing.T) {
	want := func(s string) time.Time {
		v, _ := time.Parse(time.RFC3339Nano, s)
		return v.UTC()
	}
	rapid.Check(t, func(t *rapid.T) {
		at := time.Unix(rapid.Int64Range(-1e11, 3e11).Draw(t, "s"), rapid.Int64Range(0, 999_999_999).Draw(t, "ns"))
		stored := ivrpay.FormatTime(at)
		if y := at.UTC().Year(); y >= 0 && y <= 9999 {
			if got := parseTime(stored); !got.Equal(at.Truncate(time.Microsecond)) || got.Location() != time.UTC {
				t.Fatalf("parseTime(%q) = %v, want %v", stored, got, at.Truncate(time.Microsecond).UTC())
			}
		}
		// The same text with one byte changed, or another layout.
		b := []byte(stored)
		b[rapid.IntRange(0, len(b)-1).Draw(t, "at")] = rapid.SampledFrom([]byte("0193-:TZ.x ")).Draw(t, "byte")
		for _, s := range []string{stored, string(b), at.Format(time.RFC3339Nano), at.Format(time.RFC3339), "2024-02-30T00:00:00.000000Z", ""} {
			if got := parseTime(s); !got.Equal(want(s)) || got.Location() != time.UTC {
				t.Fatalf("parseTime(%q) = %v, time.Parse reads %v", s, got, want(s))
			}
		}
	})
}
