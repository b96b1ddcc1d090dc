package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// TestMACIsHMAC: MAC's reused hashes give what a fresh HMAC-SHA256 gives, for
// any key and messages, one after another and from goroutines at once, and
// Sum appends to what it is given.
func TestMACIsHMAC(t *testing.T) {
	want := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOf(rapid.Byte()).Draw(t, "key")
		msgs := rapid.SliceOfN(rapid.String(), 1, 20).Draw(t, "msgs")
		m := NewMAC(key)
		key = append(key, 'x') // NewMAC keeps its own copy
		for _, msg := range msgs {
			if got := m.Sum([]byte("prefix"), msg); string(got) != "prefix"+string(want(key[:len(key)-1], msg)) {
				t.Fatalf("Sum(%q) = %x, HMAC-SHA256 is %x", msg, got, want(key[:len(key)-1], msg))
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		key := []byte("shared")
		m := NewMAC(key)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					msg := string(rune('a'+g)) + string(rune('0'+i%10))
					if got := m.Sum(nil, msg); !hmac.Equal(got, want(key, msg)) {
						t.Errorf("Sum(%q) from goroutine %d = %x, want %x", msg, g, got, want(key, msg))
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
