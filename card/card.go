// Package card validates the card data a caller types on a phone keypad: the PAN
// (length, Luhn check, brand by IIN range), the expiry date and the security code,
// and renders a card for display with everything but the last four digits hidden.
//
// It is pure and does no I/O so that the Twilio connector, the sandbox processor and
// the simulator all apply exactly the same rules. Its errors are fixed sentinels, so
// no PAN or CVV can ever leak into an error message or a log line through them.
package card

import (
	"errors"
	"fmt"
	"time"
)

// Brand is a card network, spelled as in the API's card_brand enum so that it can
// be sent to clients as is.
type Brand string

// The six supported brands; anything else is refused with ErrUnsupportedBrand
// because the processor only settles these networks.
const (
	Visa       Brand = "VISA"
	Mastercard Brand = "MASTERCARD"
	Amex       Brand = "AMERICAN_EXPRESS"
	Discover   Brand = "DISCOVER"
	JCB        Brand = "JCB"
	DinersClub Brand = "DINERS_CLUB"
)

// Brands lists the six supported brands in a fixed order, for documentation,
// enums and exhaustive tests.
var Brands = []Brand{Visa, Mastercard, Amex, Discover, JCB, DinersClub}

// Sentinel errors, each mapping to one error_code of the connector. Their messages
// are meant for a platform developer and never include the PAN or the CVV.
var (
	// ErrInvalidNumber means the PAN is not 12–19 digits, fails the Luhn check, or
	// has a length its brand never issues.
	ErrInvalidNumber = errors.New("card: invalid card number (must be 12-19 digits, pass the Luhn check and have a length valid for its brand)")
	// ErrUnsupportedBrand means the PAN is well formed but belongs to none of the
	// six supported brands.
	ErrUnsupportedBrand = errors.New("card: unsupported card brand (accepted: Visa, Mastercard, American Express, Discover, JCB, Diners Club)")
	// ErrInvalidExpiry means the month is not 1–12 or the year is not a 2-digit or
	// 4-digit year in 2000–2099.
	ErrInvalidExpiry = errors.New("card: invalid expiration date (month must be 1-12, year 2 or 4 digits in 2000-2099)")
	// ErrExpired means the current instant is past the end of the expiry month.
	ErrExpired = errors.New("card: card has expired")
	// ErrInvalidSecurityCode means the CVV is not exactly 3 digits (4 for
	// American Express).
	ErrInvalidSecurityCode = errors.New("card: invalid security code (must be 3 digits, 4 for American Express)")
)

// iinRange is one IIN range: a PAN belongs to it when its first len(lo) digits,
// read as a number, lie in [lo, hi]. lo and hi have the same number of digits, so
// comparing them as strings compares them as numbers.
type iinRange struct {
	brand  Brand
	lo, hi string
}

// iinRanges are the ranges the product decided on (docs/connector.md, check 9). UnionPay's
// 62 and Maestro's ranges are deliberately absent: those cards are unsupported.
var iinRanges = []iinRange{
	{Visa, "4", "4"},
	{Mastercard, "51", "55"},
	{Mastercard, "2221", "2720"}, // 222100–272099
	{Amex, "34", "34"},
	{Amex, "37", "37"},
	{Discover, "6011", "6011"},
	{Discover, "622126", "622925"},
	{Discover, "644", "649"},
	{Discover, "65", "65"},
	{JCB, "3528", "3589"},
	{DinersClub, "300", "305"},
	{DinersClub, "36", "36"},
	{DinersClub, "38", "39"},
}

// brandLengths are the PAN lengths each brand issues; a Luhn-valid number of
// another length is a mistyped card, not a card of an unknown brand.
var brandLengths = map[Brand][]int{
	Visa:       {13, 16, 19},
	Mastercard: {16},
	Amex:       {15},
	Discover:   {16, 17, 18, 19},
	JCB:        {16, 17, 18, 19},
	DinersClub: {14, 15, 16, 17, 18, 19},
}

// allDigits reports whether s is non-empty and made of ASCII digits only; it is
// stricter than strconv, which would accept signs.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Luhn reports whether digits passes the ISO/IEC 7812-1 mod-10 check, which
// catches single-digit typos and most transpositions on the keypad. It is false
// for an empty string or anything that is not all ASCII digits.
func Luhn(digits string) bool {
	return allDigits(digits) && luhn(digits)
}

// luhn is the mod-10 check of digits already known to be ASCII digits,
// for strings and for the free-text check's byte buffers alike.
func luhn[T string | []byte](digits T) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// CompleteLuhn appends to payload (digits) the check digit that makes it pass
// Luhn: how test and load-test cards are made.
func CompleteLuhn(payload string) string {
	for d := byte('0'); d <= '9'; d++ {
		if pan := payload + string(d); Luhn(pan) {
			return pan
		}
	}
	return payload
}

// BrandOf returns the brand whose IIN range matches the longest prefix of pan, or
// "" when none does. It looks at the prefix only (no length or Luhn check), so it
// can name the brand of a partially typed number.
func BrandOf(pan string) Brand {
	var best Brand
	bestLen := 0
	for _, r := range iinRanges {
		n := len(r.lo)
		if n <= bestLen || len(pan) < n {
			continue
		}
		p := pan[:n]
		if allDigits(p) && p >= r.lo && p <= r.hi {
			best, bestLen = r.brand, n
		}
	}
	return best
}

// ParsePAN validates a PAN exactly as received: digits only, since a keypad sends
// no separators and silently stripping them could hide a garbled request. The
// checks run in the order of docs/connector.md's check 9 — 12–19 digits, Luhn, brand, the
// brand's lengths — and on error the brand is "" and the error is a sentinel.
func ParsePAN(pan string) (Brand, error) {
	if len(pan) < 12 || len(pan) > 19 || !allDigits(pan) {
		return "", ErrInvalidNumber
	}
	if !Luhn(pan) {
		return "", ErrInvalidNumber
	}
	b := BrandOf(pan)
	if b == "" {
		return "", ErrUnsupportedBrand
	}
	for _, n := range brandLengths[b] {
		if len(pan) == n {
			return b, nil
		}
	}
	return "", ErrInvalidNumber
}

// Expiry is a card's expiry month. Year always has four digits so that
// comparisons and storage never depend on how the caller typed it.
type Expiry struct{ Month, Year int }

// ParseExpiry parses the month ("1".."12" or "01".."12") and year (two digits,
// read as 2000+YY, or four digits in 2000..2099) that Twilio forwards. The year
// cap rejects absurd dates without needing the current time, and any other input
// (signs, spaces, three-digit years) is ErrInvalidExpiry.
func ParseExpiry(month, year string) (Expiry, error) {
	if len(month) < 1 || len(month) > 2 || !allDigits(month) {
		return Expiry{}, ErrInvalidExpiry
	}
	m := atoi(month)
	if m < 1 || m > 12 {
		return Expiry{}, ErrInvalidExpiry
	}
	if !allDigits(year) {
		return Expiry{}, ErrInvalidExpiry
	}
	y := atoi(year)
	switch len(year) {
	case 2:
		y += 2000
	case 4:
		if y < 2000 || y > 2099 {
			return Expiry{}, ErrInvalidExpiry
		}
	default:
		return Expiry{}, ErrInvalidExpiry
	}
	return Expiry{Month: m, Year: y}, nil
}

// atoi converts a string already checked by allDigits and at most four bytes
// long, so it cannot overflow.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Expired reports whether now is past the end of the expiry month. A card is
// "good thru" the last instant of its printed month, taken in UTC so that the
// answer does not depend on the server's time zone.
func (e Expiry) Expired(now time.Time) bool {
	firstOfNext := time.Date(e.Year, time.Month(e.Month)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.Before(firstOfNext)
}

// MMYY formats the expiry as four digits, e.g. "0827", the form processors and
// Twilio's own payloads use.
func (e Expiry) MMYY() string {
	return fmt.Sprintf("%02d%02d", e.Month, e.Year%100)
}

// CheckSecurityCode checks that cvv is exactly 3 digits, or 4 for American
// Express (whose CID is 4 digits). Whether a CVV is required at all is the
// caller's decision, so an empty cvv is simply ErrInvalidSecurityCode here.
func CheckSecurityCode(cvv string, b Brand) error {
	want := 3
	if b == Amex {
		want = 4
	}
	if len(cvv) != want || !allDigits(cvv) {
		return ErrInvalidSecurityCode
	}
	return nil
}

// Last4 returns the last four characters of pan (the whole string if shorter),
// the most of a PAN that PCI DSS 3.4.1 lets us display or store in clear.
func Last4(pan string) string {
	r := []rune(pan)
	if len(r) <= 4 {
		return pan
	}
	return string(r[len(r)-4:])
}

// Mask renders a card for display as the brand and the last four digits only,
// e.g. "VISA •••• 1111", so that no more of the PAN can ever be shown. With an
// empty brand it is just "•••• 1111".
func Mask(b Brand, pan string) string {
	s := "•••• " + Last4(pan)
	if b == "" {
		return s
	}
	return string(b) + " " + s
}
