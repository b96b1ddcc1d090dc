package card

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fataler is the part of testing.TB that rapid.T also implements, so that the
// helpers work in both plain and property tests.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// withLuhn returns partial followed by the check digit that makes it Luhn-valid,
// so that boundary tests exercise the IIN rules rather than the checksum.
func withLuhn(t fataler, partial string) string {
	t.Helper()
	for d := byte('0'); d <= '9'; d++ {
		s := partial + string(d)
		if Luhn(s) {
			return s
		}
	}
	t.Fatalf("no Luhn check digit for %q", partial)
	return ""
}

// synth builds a Luhn-valid number of the given total length starting with prefix,
// padding with zeros.
func synth(t fataler, prefix string, length int) string {
	t.Helper()
	if len(prefix) >= length {
		t.Fatalf("prefix %q too long for length %d", prefix, length)
	}
	return withLuhn(t, prefix+strings.Repeat("0", length-1-len(prefix)))
}

func TestBrandsOrder(t *testing.T) {
	t.Parallel()
	want := []Brand{"VISA", "MASTERCARD", "AMERICAN_EXPRESS", "DISCOVER", "JCB", "DINERS_CLUB"}
	if len(Brands) != len(want) {
		t.Fatalf("Brands = %v, want %v", Brands, want)
	}
	for i := range want {
		if Brands[i] != want[i] {
			t.Errorf("Brands[%d] = %q, want %q", i, Brands[i], want[i])
		}
	}
}

func TestLuhn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"0", true},
		{"79927398713", true},
		{"79927398710", false},
		{"4111111111111111", true},
		{"4242424242424241", false},
		{"3065930009020004", false},
		{"3056930009020004", true},
		{"4111 1111 1111 1111", false},
		{"4111-1111-1111-1111", false},
		{"411111111111111a", false},
		{"+4111111111111111", false},
		{"٤١١١", false}, // Arabic-Indic digits are not ASCII digits
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := Luhn(tt.in); got != tt.want {
				t.Errorf("Luhn(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePANTestCards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pan     string
		want    Brand
		wantErr error
	}{
		{"twilio visa", "4111111111111111", Visa, nil},
		{"twilio mastercard", "5555555555554444", Mastercard, nil},
		{"twilio amex", "378282246310005", Amex, nil},
		{"twilio discover", "6011111111111117", Discover, nil},
		{"twilio jcb", "3566002020360505", JCB, nil},
		{"stripe diners", "3056930009020004", DinersClub, nil},
		{"twilio diners misprint fails luhn", "3065930009020004", "", ErrInvalidNumber},
		{"stripe mastercard 2-series", "2223003122003222", Mastercard, nil},
		{"stripe diners 14 digits", "36227206271667", DinersClub, nil},
		{"stripe decline card is still valid", "4000000000000002", Visa, nil},
		{"stripe visa", "4242424242424242", Visa, nil},
		{"stripe incorrect number", "4242424242424241", "", ErrInvalidNumber},
		{"unionpay unsupported", "6200000000000005", "", ErrUnsupportedBrand},
		{"maestro unsupported", "6771798021000008", "", ErrUnsupportedBrand},
		{"sandbox insufficient funds", "4000000000009995", Visa, nil},
		{"sandbox expired card", "4000000000000069", Visa, nil},
		{"sandbox incorrect cvc", "4000000000000127", Visa, nil},
		{"sandbox processing error", "4000000000000119", Visa, nil},
		{"sandbox risk decline", "4100000000000019", Visa, nil},
		{"empty", "", "", ErrInvalidNumber},
		{"spaces", "4111 1111 1111 1111", "", ErrInvalidNumber},
		{"dashes", "4111-1111-1111-1111", "", ErrInvalidNumber},
		{"leading space", " 4111111111111111", "", ErrInvalidNumber},
		{"letters", "411111111111111a", "", ErrInvalidNumber},
		{"11 digits", synth(t, "4", 11), "", ErrInvalidNumber},
		{"20 digits", synth(t, "4", 20), "", ErrInvalidNumber},
		{"12 digit unsupported", synth(t, "9", 12), "", ErrUnsupportedBrand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePAN(tt.pan)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("ParsePAN(%q) = %q, %v; want %q, %v", tt.pan, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParsePANBoundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prefix  string
		length  int
		want    Brand
		wantErr error
	}{
		// Mastercard 51–55 and 2221–2720 (222100–272099).
		{"mc 50 not mc", "50", 16, "", ErrUnsupportedBrand},
		{"mc 51", "51", 16, Mastercard, nil},
		{"mc 55", "55", 16, Mastercard, nil},
		{"mc 56 not mc", "56", 16, "", ErrUnsupportedBrand},
		{"mc 222099 not mc", "222099", 16, "", ErrUnsupportedBrand},
		{"mc 2221", "2221", 16, Mastercard, nil},
		{"mc 222100", "222100", 16, Mastercard, nil},
		{"mc 2720", "2720", 16, Mastercard, nil},
		{"mc 272099", "272099", 16, Mastercard, nil},
		{"mc 2721 not mc", "2721", 16, "", ErrUnsupportedBrand},
		{"mc 15 digits", "51", 15, "", ErrInvalidNumber},
		{"mc 19 digits", "2221", 19, "", ErrInvalidNumber},
		// Discover 6011, 622126–622925, 644–649, 65.
		{"discover 6011", "6011", 16, Discover, nil},
		{"discover 6012 not discover", "6012", 16, "", ErrUnsupportedBrand},
		{"discover 622125 not discover", "622125", 16, "", ErrUnsupportedBrand},
		{"discover 622126", "622126", 16, Discover, nil},
		{"discover 622925", "622925", 16, Discover, nil},
		{"discover 622926 not discover", "622926", 16, "", ErrUnsupportedBrand},
		{"discover 643 not discover", "643", 16, "", ErrUnsupportedBrand},
		{"discover 644", "644", 16, Discover, nil},
		{"discover 649", "649", 19, Discover, nil},
		{"discover 65", "65", 17, Discover, nil},
		{"discover 65 15 digits", "65", 15, "", ErrInvalidNumber},
		// JCB 3528–3589.
		{"jcb 3527 not jcb", "3527", 16, "", ErrUnsupportedBrand},
		{"jcb 3528", "3528", 16, JCB, nil},
		{"jcb 3589", "3589", 19, JCB, nil},
		{"jcb 3590 not jcb", "3590", 16, "", ErrUnsupportedBrand},
		{"jcb 15 digits", "3528", 15, "", ErrInvalidNumber},
		// Diners 300–305, 36, 38–39.
		{"diners 300", "300", 14, DinersClub, nil},
		{"diners 305", "305", 19, DinersClub, nil},
		{"diners 306 not diners", "306", 14, "", ErrUnsupportedBrand},
		{"diners 309 not diners", "309", 14, "", ErrUnsupportedBrand},
		{"diners 36", "36", 14, DinersClub, nil},
		{"diners 37 is amex", "37", 15, Amex, nil},
		{"diners 38", "38", 16, DinersClub, nil},
		{"diners 39", "39", 14, DinersClub, nil},
		{"diners 13 digits", "36", 13, "", ErrInvalidNumber},
		// Amex 34, 37; length 15.
		{"amex 34", "34", 15, Amex, nil},
		{"amex 33 not amex", "33", 15, "", ErrUnsupportedBrand},
		{"amex 16 digits", "34", 16, "", ErrInvalidNumber},
		// Visa 4; lengths 13, 16, 19.
		{"visa 12 digits", "4", 12, "", ErrInvalidNumber},
		{"visa 13", "4", 13, Visa, nil},
		{"visa 14 digits", "4", 14, "", ErrInvalidNumber},
		{"visa 15 digits", "4", 15, "", ErrInvalidNumber},
		{"visa 16", "4", 16, Visa, nil},
		{"visa 17 digits", "4", 17, "", ErrInvalidNumber},
		{"visa 18 digits", "4", 18, "", ErrInvalidNumber},
		{"visa 19", "4", 19, Visa, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pan := synth(t, tt.prefix, tt.length)
			got, err := ParsePAN(pan)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("ParsePAN(%q) = %q, %v; want %q, %v", pan, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBrandOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Brand
	}{
		{"", ""},
		{"4", Visa},
		{"5", ""},
		{"51", Mastercard},
		{"222", ""},
		{"2221", Mastercard},
		{"2720", Mastercard},
		{"2721", ""},
		{"23:000", ""}, // ':' sorts after '9'; non-digits must never fall inside a range
		{"5a", ""},
		{"6221", ""},
		{"622126", Discover},
		{"3", ""},
		{"36", DinersClub},
		{"3528", JCB},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := BrandOf(tt.in); got != tt.want {
				t.Errorf("BrandOf(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		month, year string
		want        Expiry
		wantErr     error
	}{
		{"08", "27", Expiry{8, 2027}, nil},
		{"8", "2027", Expiry{8, 2027}, nil},
		{"1", "00", Expiry{1, 2000}, nil},
		{"12", "99", Expiry{12, 2099}, nil},
		{"01", "2000", Expiry{1, 2000}, nil},
		{"12", "2099", Expiry{12, 2099}, nil},
		{"13", "27", Expiry{}, ErrInvalidExpiry},
		{"00", "27", Expiry{}, ErrInvalidExpiry},
		{"0", "27", Expiry{}, ErrInvalidExpiry},
		{"008", "27", Expiry{}, ErrInvalidExpiry},
		{"", "27", Expiry{}, ErrInvalidExpiry},
		{"+8", "27", Expiry{}, ErrInvalidExpiry},
		{" 8", "27", Expiry{}, ErrInvalidExpiry},
		{"08", "2", Expiry{}, ErrInvalidExpiry},
		{"08", "202", Expiry{}, ErrInvalidExpiry},
		{"08", "1999", Expiry{}, ErrInvalidExpiry},
		{"08", "2100", Expiry{}, ErrInvalidExpiry},
		{"08", "20270", Expiry{}, ErrInvalidExpiry},
		{"08", "", Expiry{}, ErrInvalidExpiry},
		{"08", "-27", Expiry{}, ErrInvalidExpiry},
		{"abc", "27", Expiry{}, ErrInvalidExpiry},
		{"08", "abc", Expiry{}, ErrInvalidExpiry},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%q", tt.month, tt.year), func(t *testing.T) {
			got, err := ParseExpiry(tt.month, tt.year)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("ParseExpiry(%q, %q) = %+v, %v; want %+v, %v", tt.month, tt.year, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name string
		e    Expiry
		now  time.Time
		want bool
	}{
		{"last second of month", Expiry{8, 2027}, time.Date(2027, 8, 31, 23, 59, 59, 0, time.UTC), false},
		{"last nanosecond of month", Expiry{8, 2027}, time.Date(2027, 8, 31, 23, 59, 59, 999999999, time.UTC), false},
		{"first second of next month", Expiry{8, 2027}, time.Date(2027, 9, 1, 0, 0, 0, 0, time.UTC), true},
		{"first day of month", Expiry{8, 2027}, time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC), false},
		{"long before", Expiry{8, 2027}, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"december rolls into next year", Expiry{12, 2027}, time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{"december expired in january", Expiry{12, 2027}, time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"february leap year", Expiry{2, 2028}, time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC), false},
		{"february leap year end", Expiry{2, 2028}, time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), true},
		// 19:00 EST on Aug 31 is already Sept 1 in UTC, so UTC decides.
		{"other zone, already next month in UTC", Expiry{8, 2027}, time.Date(2027, 8, 31, 19, 0, 0, 0, est), true},
		{"other zone, still this month in UTC", Expiry{8, 2027}, time.Date(2027, 8, 31, 18, 59, 59, 0, est), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Expired(tt.now); got != tt.want {
				t.Errorf("%s: %+v.Expired(%v) = %v, want %v", tt.name, tt.e, tt.now, got, tt.want)
			}
		})
	}
}

func TestMMYY(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Expiry
		want string
	}{
		{Expiry{8, 2027}, "0827"},
		{Expiry{12, 2000}, "1200"},
		{Expiry{1, 2099}, "0199"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.e), func(t *testing.T) {
			if got := tt.e.MMYY(); got != tt.want {
				t.Errorf("%+v.MMYY() = %q, want %q", tt.e, got, tt.want)
			}
		})
	}
}

func TestCheckSecurityCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cvv     string
		b       Brand
		wantErr error
	}{
		{"123", Visa, nil},
		{"000", Mastercard, nil},
		{"123", Discover, nil},
		{"123", JCB, nil},
		{"123", DinersClub, nil},
		{"1234", Amex, nil},
		{"123", Amex, ErrInvalidSecurityCode},
		{"1234", Visa, ErrInvalidSecurityCode},
		{"12", Visa, ErrInvalidSecurityCode},
		{"12a", Visa, ErrInvalidSecurityCode},
		{"12a4", Amex, ErrInvalidSecurityCode},
		{"", Visa, ErrInvalidSecurityCode},
		{"", Amex, ErrInvalidSecurityCode},
		{" 123", Visa, ErrInvalidSecurityCode},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q %s", tt.cvv, tt.b), func(t *testing.T) {
			if err := CheckSecurityCode(tt.cvv, tt.b); !errors.Is(err, tt.wantErr) {
				t.Errorf("CheckSecurityCode(%q, %q) = %v, want %v", tt.cvv, tt.b, err, tt.wantErr)
			}
		})
	}
}

func TestLast4AndMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		b         Brand
		pan       string
		wantLast4 string
		wantMask  string
	}{
		{Visa, "4111111111111111", "1111", "VISA •••• 1111"},
		{Amex, "378282246310005", "0005", "AMERICAN_EXPRESS •••• 0005"},
		{DinersClub, "36227206271667", "1667", "DINERS_CLUB •••• 1667"},
		{"", "5555555555554444", "4444", "•••• 4444"},
		{Visa, "123", "123", "VISA •••• 123"},
		{Visa, "", "", "VISA •••• "},
	}
	for _, tt := range tests {
		t.Run(tt.pan, func(t *testing.T) {
			if got := Last4(tt.pan); got != tt.wantLast4 {
				t.Errorf("Last4(%q) = %q, want %q", tt.pan, got, tt.wantLast4)
			}
			got := Mask(tt.b, tt.pan)
			if got != tt.wantMask {
				t.Errorf("Mask(%q, %q) = %q, want %q", tt.b, tt.pan, got, tt.wantMask)
			}
			if len(tt.pan) > 4 && strings.Contains(got, tt.pan[:len(tt.pan)-4]) {
				t.Errorf("Mask(%q, %q) = %q shows more than the last 4 digits", tt.b, tt.pan, got)
			}
		})
	}
}

func TestErrorsAreDistinctAndCarryNoCardData(t *testing.T) {
	t.Parallel()
	errs := []error{ErrInvalidNumber, ErrUnsupportedBrand, ErrInvalidExpiry, ErrExpired, ErrInvalidSecurityCode}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
	for _, pan := range []string{"4242424242424241", "6200000000000005", "3065930009020004"} {
		t.Run(pan, func(t *testing.T) {
			if _, err := ParsePAN(pan); err == nil || strings.Contains(err.Error(), pan) {
				t.Errorf("ParsePAN(%q) error %v must be non-nil and must not contain the PAN", pan, err)
			}
		})
	}
}

// checkParsePAN asserts ParsePAN's invariants for any input; it is shared by the
// property test and the fuzz target.
func checkParsePAN(t fataler, pan string) {
	t.Helper()
	b, err := ParsePAN(pan)
	if err != nil {
		if b != "" {
			t.Fatalf("ParsePAN(%q) = %q with error %v; want empty brand", pan, b, err)
		}
		if !errors.Is(err, ErrInvalidNumber) && !errors.Is(err, ErrUnsupportedBrand) {
			t.Fatalf("ParsePAN(%q) error %v is not a PAN sentinel", pan, err)
		}
		if len(pan) >= 4 && strings.Contains(err.Error(), pan) {
			t.Fatalf("ParsePAN(%q) error %q contains the input", pan, err)
		}
		return
	}
	if !Luhn(pan) {
		t.Fatalf("ParsePAN(%q) accepted a Luhn-invalid number", pan)
	}
	if len(pan) < 12 || len(pan) > 19 {
		t.Fatalf("ParsePAN(%q) accepted length %d", pan, len(pan))
	}
	if b == "" || BrandOf(pan) != b {
		t.Fatalf("ParsePAN(%q) = %q, BrandOf = %q", pan, b, BrandOf(pan))
	}
}

func TestParsePANProperties(t *testing.T) {
	t.Parallel()
	digit := rapid.RuneFrom([]rune("0123456789"))
	rapid.Check(t, func(t *rapid.T) {
		var pan string
		if rapid.Bool().Draw(t, "luhnValid") {
			// Force a check digit so that the accepting branch is exercised often.
			body := rapid.StringOfN(digit, 11, 18, -1).Draw(t, "body")
			pan = withLuhn(t, body)
		} else {
			pan = rapid.StringOfN(digit, 0, 25, -1).Draw(t, "pan")
		}
		checkParsePAN(t, pan)
	})
}

func TestParsePANArbitraryStrings(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		checkParsePAN(t, rapid.String().Draw(t, "pan"))
	})
}

func TestParsePANVisa16Property(t *testing.T) {
	t.Parallel()
	digit := rapid.RuneFrom([]rune("0123456789"))
	rapid.Check(t, func(t *rapid.T) {
		pan := withLuhn(t, "4"+rapid.StringOfN(digit, 14, 14, -1).Draw(t, "body"))
		if b, err := ParsePAN(pan); err != nil || b != Visa {
			t.Fatalf("ParsePAN(%q) = %q, %v; want VISA", pan, b, err)
		}
	})
}

var testCards = []string{
	"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
	"3566002020360505", "3056930009020004", "3065930009020004", "2223003122003222",
	"36227206271667", "4000000000000002", "4242424242424241", "6200000000000005",
	"6771798021000008",
}

func FuzzParsePAN(f *testing.F) {
	for _, c := range testCards {
		f.Add(c)
	}
	f.Add("")
	f.Add("4111 1111 1111 1111")
	f.Add("2720990000000000")
	f.Add("6221260000000000")
	f.Fuzz(func(t *testing.T, pan string) {
		checkParsePAN(t, pan)
	})
}

func FuzzParseExpiry(f *testing.F) {
	seeds := [][2]string{
		{"08", "27"}, {"8", "2027"}, {"13", "27"}, {"00", "27"}, {"08", "2"},
		{"08", "202"}, {"08", "1999"}, {"abc", "27"}, {"12", "2099"}, {"1", "00"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, month, year string) {
		e, err := ParseExpiry(month, year)
		if err != nil {
			if !errors.Is(err, ErrInvalidExpiry) || e != (Expiry{}) {
				t.Fatalf("ParseExpiry(%q, %q) = %+v, %v", month, year, e, err)
			}
			return
		}
		if e.Month < 1 || e.Month > 12 || e.Year < 2000 || e.Year > 2099 {
			t.Fatalf("ParseExpiry(%q, %q) accepted %+v", month, year, e)
		}
		if got := e.MMYY(); len(got) != 4 {
			t.Fatalf("%+v.MMYY() = %q", e, got)
		}
		// Parsing MMYY back must give the same expiry (2-digit years map into 2000s).
		if again, err := ParseExpiry(e.MMYY()[:2], e.MMYY()[2:]); err != nil || again != e {
			t.Fatalf("round trip of %+v via %q = %+v, %v", e, e.MMYY(), again, err)
		}
	})
}

func TestCompleteLuhn(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]string{"411111111111111": "4111111111111111", "555555555555444": "5555555555554444", "37828224631000": "378282246310005"} {
		if got := CompleteLuhn(payload); got != want {
			t.Errorf("CompleteLuhn(%q) = %q, want %q", payload, got, want)
		}
	}
}
