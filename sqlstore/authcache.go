package sqlstore

import (
	"sync"
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
	mu     sync.Mutex
	byHash map[string]cachedAuth
	// generation counts clears. An authentication whose read began before a
	// clear may have read what the clear's change replaced; it is not cached.
	generation uint64
}

// cachedAuth is a key as read, its Platform held apart so that every hit
// gets its own copy of both.
type cachedAuth struct {
	key      ivrpay.APIKey
	platform ivrpay.Platform
	readAt   time.Time
}

// get returns a fresh copy of the key cached under hash, with a fresh copy of
// its platform, when it was read within AuthCacheFor before now. A clock set
// back to before the read makes the entry stale, so that it cannot stretch
// the period. The Statements are shared: nothing changes them after
// authentication.
func (c *authCache) get(hash string, now time.Time) (*ivrpay.APIKey, bool) {
	c.mu.Lock()
	e, ok := c.byHash[hash]
	c.mu.Unlock()
	if !ok || now.Before(e.readAt) || !now.Before(e.readAt.Add(AuthCacheFor)) {
		return nil, false
	}
	k, p := e.key, e.platform
	k.Platform = &p
	return &k, true
}

// start returns the generation to hand to put for a read beginning now.
func (c *authCache) start() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// put caches k (with its Platform) under hash, read at readAt, unless the
// cache was cleared since start returned generation.
func (c *authCache) put(hash string, k *ivrpay.APIKey, readAt time.Time, generation uint64) {
	e := cachedAuth{key: *k, platform: *k.Platform, readAt: readAt}
	e.key.Platform, e.key.Secret = nil, ""
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if c.byHash == nil {
		c.byHash = map[string]cachedAuth{}
	}
	if _, ok := c.byHash[hash]; !ok && len(c.byHash) >= authCacheMaxEntries {
		for h, old := range c.byHash {
			if !readAt.Before(old.readAt.Add(AuthCacheFor)) || readAt.Before(old.readAt) {
				delete(c.byHash, h)
			}
		}
		if len(c.byHash) >= authCacheMaxEntries {
			clear(c.byHash)
		}
	}
	c.byHash[hash] = e
}

// clear forgets every authentication, after this process changed a key or a
// platform. Such changes are rare, so precision is not worth a second index
// by key id and platform id. Call it after the change committed.
func (c *authCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	clear(c.byHash)
}
