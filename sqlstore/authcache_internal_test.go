package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
)

// TestAuthCacheEntryBound: the cache never holds more than
// authCacheMaxEntries keys; when full it drops the expired entries first and
// everything only if none has expired.
func TestAuthCacheEntryBound(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	key := func(i int) *ivrpay.APIKey {
		return &ivrpay.APIKey{ID: fmt.Sprintf("key_%d", i), Status: ivrpay.APIKeyStatusEnabled, Platform: &ivrpay.Platform{ID: "plt_1"}}
	}
	fill := func(c *authCache, n int, at time.Time) {
		for i := range n {
			c.put(fmt.Sprintf("hash-%d-%d", at.UnixNano(), i), key(i), at, c.start())
		}
	}
	for _, tc := range []struct {
		name string
		// older entries are read at t0, newer ones at t0+newerAfter; the cache
		// is full once both are in.
		older, newer int
		newerAfter   time.Duration
		// want is the number of entries once one more key is cached at
		// t0+newerAfter.
		want int
	}{
		{"none expired: everything is dropped", authCacheMaxEntries, 0, AuthCacheFor - 1, 1},
		{"the expired are dropped, the fresh kept", 4000, authCacheMaxEntries - 4000, AuthCacheFor, authCacheMaxEntries - 4000 + 1},
		{"all expired: the new one stays", authCacheMaxEntries, 0, time.Hour, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newAuthCache()
			fill(c, tc.older, t0)
			fill(c, tc.newer, t0.Add(tc.newerAfter))
			if n := len(c.entries); n != authCacheMaxEntries {
				t.Fatalf("%d entries before the limit, want %d", n, authCacheMaxEntries)
			}
			at := t0.Add(tc.newerAfter)
			c.put("one more", key(-1), at, c.start())
			if n := len(c.entries); n != tc.want {
				t.Fatalf("%d entries after one more, want %d", n, tc.want)
			}
			if _, ok := c.get("one more", at); !ok {
				t.Fatal("the key cached last is not found")
			}
		})
	}
	t.Run("a key cached again does not count twice", func(t *testing.T) {
		t.Parallel()
		c := newAuthCache()
		fill(c, authCacheMaxEntries, t0)
		c.put(fmt.Sprintf("hash-%d-%d", t0.UnixNano(), 7), key(7), t0.Add(time.Millisecond), c.start())
		if n := len(c.entries); n != authCacheMaxEntries {
			t.Fatalf("%d entries after re-caching a cached key, want %d (nothing dropped)", n, authCacheMaxEntries)
		}
	})
}

// TestAuthCacheRead: a read that began before a clear is not cached (the
// period's rules are TestReadCachePeriod's).
func TestAuthCacheRead(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	k := &ivrpay.APIKey{ID: "key_1", Status: ivrpay.APIKeyStatusEnabled, Platform: &ivrpay.Platform{ID: "plt_1"}}
	t.Run("a read begun before a clear is not cached", func(t *testing.T) {
		t.Parallel()
		c := newAuthCache()
		generation := c.start()
		c.clear() // this process changed a key while the read ran
		c.put("h", k, t0, generation)
		if _, hit := c.get("h", t0); hit {
			t.Fatal("a read begun before a clear was cached: it may hold what the change replaced")
		}
		c.put("h", k, t0, c.start())
		if _, hit := c.get("h", t0); !hit {
			t.Fatal("a read begun after the clear was not cached")
		}
	})
}
