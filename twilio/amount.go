package twilio

import "github.com/ivrpay/ivrpay"

// ErrInvalidAmount is returned for amounts that are not decimal dollar strings with at most two decimals.
var ErrInvalidAmount = ivrpay.ErrInvalidDollars

// ParseAmount parses a decimal dollar string as Twilio sends it ("10",
// "10.0", "10.00") into integer cents, without ever going through a float.
func ParseAmount(s string) (int64, error) { return ivrpay.ParseDollars(s) }

// FormatCents formats cents as Twilio's chargeAmount ("10.00").
func FormatCents(cents int64) string { return ivrpay.FormatDollars(cents) }
