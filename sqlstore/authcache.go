package sqlstore

import (
	"time"

	"github.com/ivrpay/ivrpay"
)

// AuthCacheFor bounds how long this process may keep accepting an API key
// after another process disabled or deleted it, or how long it may see the
// key's platform as it was before another process changed it: a successful
// authentication is reused for at most this period, by the Store's clock.
// This process's own changes to keys and platforms take effect at once.
// Only enabled keys are cached (never unknown or disabled ones, nor session
// keys), at most 10,000 of them per Store.
const AuthCacheFor = time.Second

// authCacheMaxEntries bounds the cache's memory (about 1 KB an entry): a
// store that would cache one more key first drops the expired entries, and
// everything if none has expired. Only keys that authenticated are cached,
// so guessing secrets cannot fill it.
const authCacheMaxEntries = 10_000

// authCache holds successful authentications for AuthCacheFor, keyed by the
// secret's hash: a memory dump shows no more than the database holds.
type authCache struct {
	readCache[cachedAuth]
}

func newAuthCache() *authCache {
	return &authCache{readCache[cachedAuth]{period: AuthCacheFor, maxEntries: authCacheMaxEntries}}
}

// cachedAuth is a key as read, its Platform held apart so that every hit
// gets its own copy of both.
type cachedAuth struct {
	key      ivrpay.APIKey
	platform ivrpay.Platform
}

// get returns a fresh copy of the key cached under hash, with a fresh copy of
// its platform. The Statements are shared: nothing changes them after
// authentication.
func (c *authCache) get(hash string, now time.Time) (*ivrpay.APIKey, bool) {
	e, ok := c.readCache.get(hash, now)
	if !ok {
		return nil, false
	}
	k, p := e.key, e.platform
	k.Platform = &p
	return &k, true
}

// put caches k (with its Platform, without its secret) under hash.
func (c *authCache) put(hash string, k *ivrpay.APIKey, readAt time.Time, generation uint64) {
	e := cachedAuth{key: *k, platform: *k.Platform}
	e.key.Platform, e.key.Secret = nil, ""
	c.readCache.put(hash, e, readAt, generation)
}
