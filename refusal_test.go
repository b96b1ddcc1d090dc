package ivrpay_test

import (
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

func TestRefusalDescription(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, code, processorCode, want string }{
		{"code only", ivrpay.RefusalDeclined, "", "Card declined"},
		{"with the processor's code", ivrpay.RefusalInsufficientFunds, "stripe card_declined/insufficient_funds", "Insufficient funds (stripe card_declined/insufficient_funds)"},
		{"unknown code", "SOMETHING_NEW", "adyen 99", "Processing error (adyen 99)"},
		{"no code", "", "", "Processing error"},
		{"a processor code too long to be one", ivrpay.RefusalDeclined, "stripe " + strings.Repeat("x", 100), "Card declined"},
		{"a processor code with a line break", ivrpay.RefusalDeclined, "adyen 2\nacct_1", "Card declined"},
		{"a processor code with a card number", ivrpay.RefusalDeclined, "adyen 4111111111111111", "Card declined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ivrpay.RefusalDescription(tc.code, tc.processorCode); got != tc.want {
				t.Fatalf("RefusalDescription(%q, %q) = %q, want %q", tc.code, tc.processorCode, got, tc.want)
			}
		})
	}
}
