package sqlstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
)

// TestReadCachePeriod: both caches serve an entry from its read time for
// exactly their period, not before it (a clock set back cannot stretch it).
func TestReadCachePeriod(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	key := &ivrpay.APIKey{ID: "key_1", Status: ivrpay.APIKeyStatusEnabled, Platform: &ivrpay.Platform{ID: "plt_1"}}
	endpoints := []*ivrpay.WebhookEndpoint{{ID: "we_1", PlatformID: "plt_1"}}
	for _, cache := range []struct {
		name   string
		period time.Duration
		// hitAfter caches an entry read at t0 in a new cache and reports a hit at t0+after.
		hitAfter func(after time.Duration) bool
	}{
		{"authentication", AuthCacheFor, func(after time.Duration) bool {
			c := newAuthCache()
			c.put("h", key, t0, c.start())
			_, hit := c.get("h", t0.Add(after))
			return hit
		}},
		{"webhook endpoints", EndpointCacheFor, func(after time.Duration) bool {
			c := newEndpointCache()
			c.put("plt_1", endpoints, t0, c.start())
			_, hit := c.get("plt_1", t0.Add(after))
			return hit
		}},
	} {
		for _, tc := range []struct {
			name  string
			after time.Duration
			hit   bool
		}{
			{"at the read", 0, true},
			{"just before the period ends", cache.period - 1, true},
			{"when the period ends", cache.period, false},
			{"clock set back before the read", -time.Nanosecond, false},
		} {
			t.Run(cache.name+"/"+tc.name, func(t *testing.T) {
				if hit := cache.hitAfter(tc.after); hit != tc.hit {
					t.Fatalf("hit = %t %s after the read, want %t", hit, tc.after, tc.hit)
				}
			})
		}
	}
}

// TestEndpointCacheForgetAndBound: the endpoint cache drops a platform when
// this process changes its endpoints, does not keep a read that began before
// such a change, and holds at most endpointCacheMaxEntries platforms.
func TestEndpointCacheForgetAndBound(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	endpoints := []*ivrpay.WebhookEndpoint{{ID: "we_1", PlatformID: "plt_1"}}
	t.Run("forget drops the platform and a read begun before it", func(t *testing.T) {
		t.Parallel()
		c := newEndpointCache()
		c.put("plt_1", endpoints, t0, c.start())
		generation := c.start()
		c.forget("plt_1") // this process created an endpoint while another read ran
		if _, hit := c.get("plt_1", t0); hit {
			t.Fatal("the platform's endpoints were kept after this process changed them")
		}
		c.put("plt_1", nil, t0, generation)
		if _, hit := c.get("plt_1", t0); hit {
			t.Fatal("a read begun before the change was kept: it may miss the new endpoint")
		}
	})
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		c := newEndpointCache()
		for i := range endpointCacheMaxEntries + 1 {
			c.put(strconv.Itoa(i), endpoints, t0, c.start())
		}
		if n := len(c.entries); n > endpointCacheMaxEntries {
			t.Fatalf("%d platforms cached, want at most %d", n, endpointCacheMaxEntries)
		}
	})
}
