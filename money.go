package ivrpay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidDollars is returned for amounts that are not decimal dollar strings with at most two decimals.
var ErrInvalidDollars = errors.New("invalid amount")

// ParseDollars parses a decimal dollar string ("10", "10.0", "10.00") into
// integer cents without ever going through a float.
func ParseDollars(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 9 || !allDigits(whole) || (hasDot && (frac == "" || len(frac) > 2 || !allDigits(frac))) {
		// Short inputs are echoed to help; longer ones (a card number in the
		// wrong field, say) never are.
		if len(s) > 10 {
			return 0, fmt.Errorf("%w: the amount is not a decimal amount with at most 2 decimals, such as 10.00", ErrInvalidDollars)
		}
		return 0, fmt.Errorf("%w: %q is not a decimal amount with at most 2 decimals, such as 10.00", ErrInvalidDollars, s)
	}
	dollars, _ := strconv.ParseInt(whole, 10, 64)
	var cents int64
	if frac != "" {
		cents, _ = strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			cents *= 10
		}
	}
	return dollars*100 + cents, nil
}

// FormatDollars formats cents as a dollar string with two decimals ("10.00").
func FormatDollars(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
