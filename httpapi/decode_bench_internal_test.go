package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// BenchmarkDecodeJSON decodes a payin config body the way every config
// creation does: depth, duplicate keys, exact members, then the decoder.
func BenchmarkDecodeJSON(b *testing.B) {
	const body = `{"merchant_id":"sbx_mid_3MvqXkjRynkN5661vpwCm1M2gtj","idempotency_key":"order-1042","amount":1000,
		"currency_code":"USD","billing_contact":{"name":"Ada Lovelace","address_line_1":"1 Main St","city":"Oakland",
		"state":"CA","postal_code":"94607","country":"US","email":"ada@example.com"},"metadata":{"order":"A-1042"}}`
	b.ReportAllocs()
	for b.Loop() {
		var v ivrpay.PayinConfigCreate
		r := httptest.NewRequest("POST", "/v1/payin_configs", strings.NewReader(body))
		if err := decodeJSON(httptest.NewRecorder(), r, &v); err != nil {
			b.Fatal(err)
		}
	}
}
