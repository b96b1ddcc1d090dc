package ivrpay

import (
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// TestEncodeIDIsBase62 holds encodeID's long division to the plain big.Int
// conversion it replaced, on random and extreme 20-byte values.
func TestEncodeIDIsBase62(t *testing.T) {
	reference := func(raw [20]byte) string {
		n := new(big.Int).SetBytes(raw[:])
		out := make([]byte, 27)
		base, mod := big.NewInt(62), new(big.Int)
		for i := 26; i >= 0; i-- {
			n.DivMod(n, base, mod)
			out[i] = base62[mod.Int64()]
		}
		return string(out)
	}
	var zero, ones [20]byte
	for i := range ones {
		ones[i] = 0xff
	}
	for name, raw := range map[string][20]byte{"zero": zero, "all ones": ones} {
		t.Run(name, func(t *testing.T) {
			if got, want := encodeID(raw), reference(raw); got != want {
				t.Fatalf("encodeID(%x) = %s, want %s", raw, got, want)
			}
		})
	}
	rapid.Check(t, func(t *rapid.T) {
		var raw [20]byte
		copy(raw[:], rapid.SliceOfN(rapid.Byte(), 20, 20).Draw(t, "raw"))
		if got, want := encodeID(raw), reference(raw); got != want {
			t.Fatalf("encodeID(%x) = %s, want %s", raw, got, want)
		}
	})
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID(ModeSandbox, PrefixPayin, SystemClock{}.Now())
	}
}
