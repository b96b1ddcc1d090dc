package vault_test

import (
	"testing"

	"github.com/ivrpay/ivrpay/vault"
)

// BenchmarkFingerprint is one card fingerprint (an IVR charge computes one):
//
//	go test ./vault -run '^$' -bench Fingerprint -benchmem
func BenchmarkFingerprint(b *testing.B) {
	v, err := vault.New(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Fingerprint("4111111111111111")
	}
}
