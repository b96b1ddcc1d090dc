package ivrpay_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"testing"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

// marshalHash is RequestHash as it was first written: the SHA-256 of
// json.Marshal's bytes. Stored request hashes were made this way, so a new
// request must hash to the same text to be recognised as a repeat.
func marshalHash(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestRequestHashIsMarshalHash: RequestHash of the lists the services hash
// (strings; strings, integers, booleans, nullable strings and JSON text) is
// the hash of what json.Marshal makes of them.
func TestRequestHashIsMarshalHash(t *testing.T) {
	for _, v := range []any{[]string(nil), []any(nil), []string{}, []any{}, []any{make(chan int)}} {
		if got, want := ivrpay.RequestHash(v), marshalHash(v); got != want {
			t.Fatalf("RequestHash(%#v) = %s, json.Marshal's hash %s", v, got, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		strs := rapid.SliceOf(jsonStringText).Draw(t, "strings")
		if got, want := ivrpay.RequestHash(strs), marshalHash(strs); got != want {
			t.Fatalf("RequestHash(%q) = %s, json.Marshal's hash %s", strs, got, want)
		}
		values := rapid.SliceOf(rapid.OneOf(
			rapid.Map(jsonStringText, func(s string) any { return s }),
			rapid.Map(rapid.Int64(), func(n int64) any { return n }),
			rapid.Map(rapid.Int(), func(n int) any { return n }),
			rapid.Map(rapid.Bool(), func(b bool) any { return b }),
			rapid.Map(jsonStringText, func(s string) any { return sql.NullString{String: s, Valid: s != ""} }),
			rapid.Map(rapid.SampledFrom([]string{`{"a":1}`, `[]`, `null`, `{"source":"ivrpay loadtest"}`}), func(s string) any { return json.RawMessage(s) }),
			rapid.Just[any](nil),
		)).Draw(t, "values")
		if got, want := ivrpay.RequestHash(values), marshalHash(values); got != want {
			t.Fatalf("RequestHash(%#v) = %s, json.Marshal's hash %s", values, got, want)
		}
	})
}

// BenchmarkRequestHash hashes a connector charge's identity, as every
// connector request does:
//
//	go test . -run '^$' -bench RequestHash -benchmem
func BenchmarkRequestHash(b *testing.B) {
	b.Run("strings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ivrpay.RequestHash([]string{"charge", "sbx_pic_3MvqXkjRynkN5661vpwCm1M2gtj", "9f2c1e4b7a0d5e8f3b6c9a2d1e4f7b0c3d6e9f2a5b8c1d4e7f0a3b6c9d2e5f8a", "1000", "false"})
		}
	})
	b.Run("payin config", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ivrpay.RequestHash([]any{"sbx_mid_3MvqXkjRynkN5661vpwCm1M2gtj", int64(1000), "USD", sql.NullString{},
				sql.NullString{String: `{"source":"ivrpay loadtest"}`, Valid: true}, sql.NullString{}, ""})
		}
	})
}
