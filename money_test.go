package ivrpay_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

func TestParseDollars(t *testing.T) {
	valid := map[string]int64{
		"10": 1000, "10.0": 1000, "10.00": 1000, "010.00": 1000, "0": 0, "0.0": 0, "0.00": 0, "00": 0,
		"0.01": 1, "0.1": 10, "0.10": 10, "0.99": 99, "1.5": 150, "1.05": 105, "51.01": 5101,
		"1000000.00": 100_000_000, "999999999.99": 99_999_999_999, "999999999": 99_999_999_900, "000000001.01": 101,
	}
	for s, want := range valid {
		got, err := ivrpay.ParseDollars(s)
		if err != nil || got != want {
			t.Errorf("ParseDollars(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	invalid := []string{
		"", ".", "10.", ".5", "10.005", "10.000", "-1", "-0", "+1", "1e3", "1E3", "0x10", "abc", "10,00", "1,000.00",
		"$10.00", "10.00 USD", " 10", "10 ", "1 0", "10..0", "10.0.0", "1.-5", "1.+5", "١٠", "１０", "10\x00",
		"NaN", "Inf", "1000000000", "1000000000.00", "9999999999.99", strings.Repeat("9", 40), "0.5" + strings.Repeat("0", 30),
	}
	for _, s := range invalid {
		got, err := ivrpay.ParseDollars(s)
		if err == nil {
			t.Errorf("ParseDollars(%q) = %d, want an error", s, got)
			continue
		}
		if !errors.Is(err, ivrpay.ErrInvalidDollars) {
			t.Errorf("ParseDollars(%q) error %v does not wrap ErrInvalidDollars", s, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("ParseDollars(%q) error is %d bytes long: it must not echo unbounded input", s, len(err.Error()))
		}
	}
}

func TestFormatDollars(t *testing.T) {
	for cents, want := range map[int64]string{
		0: "0.00", 1: "0.01", 9: "0.09", 10: "0.10", 99: "0.99", 100: "1.00", 105: "1.05", 1000: "10.00", 1050: "10.50",
		5101: "51.01", 100_000_000: "1000000.00", 99_999_999_999: "999999999.99",
		-1: "-0.01", -150: "-1.50", math.MaxInt64: "92233720368547758.07",
	} {
		if got := ivrpay.FormatDollars(cents); got != want {
			t.Errorf("FormatDollars(%d) = %q, want %q", cents, got, want)
		}
	}
}

// TestDollarsRoundTrip: every amount ParseDollars can express survives a
// round trip through FormatDollars.
func TestDollarsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cents := rapid.Int64Range(0, 100_000_000_000-1).Draw(t, "cents")
		s := ivrpay.FormatDollars(cents)
		got, err := ivrpay.ParseDollars(s)
		if err != nil || got != cents {
			t.Fatalf("ParseDollars(FormatDollars(%d) = %q) = %d, %v", cents, s, got, err)
		}
	})
}

func FuzzParseDollars(f *testing.F) {
	for _, seed := range []string{"10", "10.0", "10.00", "0", "0.01", "999999999.99", "1000000000", "10.005", "-1", "abc", "",
		".5", "10.", "1e3", " 10", "１０", "0.5", "00.10"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cents, err := ivrpay.ParseDollars(s)
		if err != nil {
			if !errors.Is(err, ivrpay.ErrInvalidDollars) {
				t.Fatalf("ParseDollars(%q) error %v does not wrap ErrInvalidDollars", s, err)
			}
			return
		}
		if cents < 0 || cents >= 100_000_000_000 {
			t.Fatalf("ParseDollars(%q) = %d, outside [0, 1e11)", s, cents)
		}
		formatted := ivrpay.FormatDollars(cents)
		back, err := ivrpay.ParseDollars(formatted)
		if err != nil || back != cents {
			t.Fatalf("ParseDollars(%q) = %d, but ParseDollars(FormatDollars = %q) = %d, %v", s, cents, formatted, back, err)
		}
	})
}
