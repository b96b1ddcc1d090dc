package ivrpay

import (
	"math/big"
	"testing"
	"time"

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

// TestNewIDSortsByTime holds ids to creation order down to 1/65,536 s, within
// one second as across seconds, and to FirstIDAt's bound.
func TestNewIDSortsByTime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := time.Unix(rapid.Int64Range(idEpoch, idEpoch+1<<31).Draw(t, "second"), 0)
		early := base.Add(time.Duration(rapid.Int64Range(0, 2*int64(time.Second)).Draw(t, "early")))
		// Two instants at least one tick apart: 1/65,536 s rounded up (15,259 ns;
		// 15,258 ns after a whole second is still in its first tick).
		tick := (time.Second + 65535) / 65536
		late := early.Add(tick + time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(t, "gap")))
		a, b := NewID(ModeProduction, PrefixPayin, early), NewID(ModeProduction, PrefixPayin, late)
		if a >= b {
			t.Fatalf("NewID(%v) = %s does not sort before NewID(%v) = %s", early, a, late, b)
		}
		if first := FirstIDAt(ModeProduction, PrefixPayin, early); first > a {
			t.Fatalf("FirstIDAt(%v) = %s sorts after an id made then, %s", early, first, a)
		}
		if len(a) != len(PrefixPayin)+27 {
			t.Fatalf("NewID = %s, want the prefix and 27 characters", a)
		}
	})
}
