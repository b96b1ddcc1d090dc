package card

import (
	"strings"
	"testing"
)

// fullWidth writes the ASCII digits of s as full-width digits (U+FF10–U+FF19).
func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			r += 0xFF10 - '0'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestContainsPANRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"postal code", "94111", false},
		{"zip+4", "94111-1234", false},
		{"phone", "+1 415 555 0100", false},
		{"discover in one piece", "6011111111111117", true},
		{"visa 13 digits", "4222222222222", true},
		{"visa 19 digits", "4111111111111111110", true},
		{"mastercard 2-series", "2223000048400011", true},
		{"luhn-invalid 16 digits", "6011111111111118", false},
		{"12 digits, luhn-valid", "411111111116", false},
		{"spaces", "6011 1111 1111 1117", true},
		{"dashes", "6011-1111-1111-1117", true},
		{"spaced dashes", "6011 - 1111 - 1111 - 1117", true},
		{"dots", "4111.1111.1111.1111", true},
		{"slashes", "4111/1111/1111/1111", true},
		{"underscores", "4111_1111_1111_1111", true},
		{"tabs", "4111\t1111\t1111\t1111", true},
		{"no-break spaces", "4111\u00a01111\u00a01111\u00a01111", true},
		{"mixed separators", "4111 .1111/_1111 - 1111", true},
		{"full-width digits", fullWidth("4111111111111111"), true},
		{"full-width digits and spaces", strings.ReplaceAll(fullWidth("4111 1111 1111 1111"), " ", "\u3000"), true},
		{"full-width dashes", strings.ReplaceAll(fullWidth("4111-1111-1111-1111"), "-", "\uff0d"), true},
		{"half full-width", "4111" + fullWidth("111111111111"), true},
		{"inside text", "call me, card is 4111 1111 1111 1111 thanks", true},
		{"card then cvv", "4111 1111 1111 1111 123", true},
		{"cvv then card", "123 4111-1111-1111-1111", true},
		{"card, expiry and cvv in one piece", "41111111111111111225123", true},
		{"amex, expiry and cid in one piece", "37828224631000512251234", true},
		{"mastercard, expiry and cvv in one piece", "55555555555544440827321", true},
		{"card then four digits in one piece", "60111111111111170000", true},
		{"card and expiry, then cvv", "41111111111111111225 123", true},
		{"card in a URL path", "https://hooks.example.com/4111/1111/1111/1111", true},
		{"card in a URL query", "https://hooks.example.com/in?ref=4111111111111111", true},
		{"card in an identifier", "order-4111111111111111", true},
		{"card in an underscored identifier", "tx_4111_1111_1111_1111", true},
		{"card glued to a word", "visa4111111111111111", true},
		{"card after many groups of one run", strings.Repeat("7 ", 200) + "4111 1111 1111 1111", true},
		{"card inside a long run", strings.Repeat("7-", 100) + "4111111111111111" + strings.Repeat("-7", 100), true},
		{"card between long groups", strings.Repeat("7", 40) + " 4111111111111111 " + strings.Repeat("7", 40), true},
		{"card in groups in a long run of small groups", strings.Repeat("77 ", 45) + "4111 1111 1111 1111" + strings.Repeat(" 77", 45), true},
		{"19 digits, 4-4-4-4-3", "6011 0009 9013 9424 009", true},
		{"13 digits, 4-4-4-1", "4222 2222 2222 2", true},
		{"diners 4-6-4", "3056 930902 5904", true},
		{"four separators break the run", "6011    1111111111117", false},
		{"letters break the run", "6011a111111111117", false},
		{"amex", "3714 496353 98431", true},
		{"order number and date", "order 12345 on 2026-01-02", false},
		{"luhn-valid, but no card starts with 0", "0000000000000", false},
		{"luhn-valid, but no card starts with 8", withLuhn(t, "812345678901234"), false},
		{"a long number that is no card", "12345678901234567890", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ContainsPANRun(tc.in); got != tc.want {
				t.Fatalf("ContainsPANRun(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestContainsPANRunIdentifiers: identifiers callers and Twilio use every
// day are not card numbers, also when their digits would pass the Luhn
// check. Each row's digits are made Luhn-valid where they could be, so the
// row tests the rule that spares it, not luck.
func TestContainsPANRunIdentifiers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in string }{
		{"Twilio transaction id (a UUID)", "72500aba-328c-445c-a12e-da5700e10b17"},
		{"UUID of digits only", "41111111-1111-4111-8111-111111111111"},
		{"upper-case UUID", "7D444840-9DC0-11D1-B245-5FFDCE74FAD2"},
		{"UUID inside a key", "openemr:550e8400-e29b-41d4-a716-446655440000:retry"},
		{"ivrpay id", "sbx_cfg_2vXQbUqmnHLkWmsWs7WlUhTPGjs"},
		{"ivrpay id with digits", "pyi_2vXQc41111111111Zk3J5hWq9Lx"},
		{"portal idempotency key", "portal_41111111111111114a3f9c0b"},
		{"hex request id", "4111111111111111deadbeefcafe0123"},
		{"git object id", "41111111111111111111aaaa0b1c2d3e4f506172"},
		{"loadtest transaction id", "lt-9f2c41d0a7b3e615-1234567"},
		{"Unix time in seconds", "1767225600"},
		{"Unix time in milliseconds", withLuhn(t, "176722560012")},
		{"Unix time in nanoseconds", withLuhn(t, "176722560012345678")},
		{"snowflake id", withLuhn(t, "123945678901234567")},
		{"RFC 3339 time", "2026-01-02T15:04:05.123456Z"},
		{"time with a space", "2026-01-02 15:04:05.123"},
		{"compact time", withLuhn(t, "2026010215040")},
		{"date and time with dots", "02.01.2026 15.04.05"},
		{"dated path", "/2026/01/02/" + withLuhn(t, "12345")},
		{"IP address", "192.168.100.200"},
		{"IPv6 address", "2001:db8:85a3::8a2e:370:7334"},
		{"amount", "1234567.89"},
		{"version", "1.22.333.4444"},
		{"two phone numbers", "415-555-0100, 415-555-0199"},
		{"US phone with country code", "+1 (415) 555-0100 ext. 1234"},
		{"twelve digits", withLuhn(t, "41111111111")},
		// The digits of these counters and timestamps, read as one, are a card number.
		{"counter and Unix time in nanoseconds", "v-5-" + withLuhn(t, "517672256001234")[1:] + "6789"},
		{"counter and Unix time in milliseconds", "order-42-" + withLuhn(t, "42176722560012")[2:]},
		{"counter and milliseconds, a card's length", "order-4-" + withLuhn(t, "417672256001")[1:]},
		{"four-digit counter and milliseconds", "inv-4242-" + withLuhn(t, "4242176722560012")[4:]},
		{"a card read out one digit at a time (not a card's layout)", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ContainsPANRun(tc.in) {
				t.Fatalf("ContainsPANRun(%q) = true for an identifier", tc.in)
			}
		})
	}
}

// FuzzContainsPANRun checks that any text holding a Luhn-valid number of
// 13 to 19 digits that starts like a card is caught, wherever the number is
// put and whatever surrounds it (as long as nothing touches it), also when
// written in full-width digits or in groups of four with any separator.
func FuzzContainsPANRun(f *testing.F) {
	f.Add("", "", "6011111111111117", 0)
	f.Add("name: ", " x", "4111111111111111", 3)
	f.Add("a1", "b", "378282246310005", 6)
	f.Add("72500aba-328c-445c-a12e-", "da5700e10b17", "2223000048400011", 1)
	separators := []string{" ", "-", ".", "/", "_", "\t", "\u00a0", "\u3000", "\uff0d", " - "}
	f.Fuzz(func(t *testing.T, before, after, digits string, sep int) {
		_ = ContainsPANRun(before + digits + after) // must not panic
		if len(digits) < MinPANRun || len(digits) > MaxPANRun || !Luhn(digits) || !startsLikeCard([]byte(digits)) {
			return
		}
		if s := before + "|" + digits + "|" + after; !ContainsPANRun(s) {
			t.Fatalf("ContainsPANRun(%q) = false with a card number inside", s)
		}
		if s := before + "|" + fullWidth(digits) + "|" + after; !ContainsPANRun(s) {
			t.Fatalf("ContainsPANRun(%q) = false with a full-width card number inside", s)
		}
		var grouped strings.Builder
		for i := 0; i < len(digits); i += 4 {
			if i > 0 {
				grouped.WriteString(separators[uint(sep)%uint(len(separators))])
			}
			grouped.WriteString(digits[i:min(i+4, len(digits))])
		}
		if s := before + "|" + grouped.String() + "|" + after; !ContainsPANRun(s) {
			t.Fatalf("ContainsPANRun(%q) = false with a grouped card number inside", s)
		}
		if s := before + "|" + digits + "12251234|" + after; !ContainsPANRun(s) && parsePANOK(digits) {
			t.Fatalf("ContainsPANRun(%q) = false with a card number followed by more digits", s)
		}
	})
}

// parsePANOK reports whether ParsePAN accepts pan.
func parsePANOK(pan string) bool {
	_, err := ParsePAN(pan)
	return err == nil
}

// BenchmarkContainsPANRun is the check of the connector's identifiers and
// of free text: a transaction id, a postal code, a sentence, and the worst
// case, a body-sized run of single digits.
func BenchmarkContainsPANRun(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"uuid", "72500aba-328c-445c-a12e-da5700e10b17"},
		{"postal code", "94111-1234"},
		{"sentence", "Please call back about invoice 2026-0042 before 5pm; phone +1 415 555 0100."},
		{"long number", strings.Repeat("1234567890", 10)},
		{"64 KiB of spaced digits", strings.Repeat("7 ", 32<<10)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ContainsPANRun(bc.in) {
					b.Fatal("found a card")
				}
			}
		})
	}
}
