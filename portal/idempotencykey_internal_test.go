package portal

import (
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestIdempotencyKeyIsNoCardNumber: the key a config form carries is
// accepted whatever its random bytes, also when their hexadecimal is all
// decimal digits that begin with a card number (4111111111111111).
func TestIdempotencyKeyIsNoCardNumber(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    [12]byte
	}{
		{"digits holding a card", [12]byte{0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x00, 0x00, 0x00, 0x00}},
		{"letters", [12]byte{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := idempotencyKeyOf(tc.b)
			in := ivrpay.PayinConfigCreate{MerchantID: "mid", IdempotencyKey: key, Amount: "1000", CurrencyCode: "USD"}
			if _, err := in.Validate(ivrpay.APIVersion20241016); err != nil {
				t.Errorf("key %s refused: %v", key, err)
			}
		})
	}
}
