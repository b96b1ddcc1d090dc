package sqlstore

import (
	"sync"
	"time"
)

// readCache keeps what a read returned, per key, for less than period after
// the read by the Store's clock (a clock set back to before the read ends
// the entry, so that it cannot stretch the period), and for at most
// maxEntries keys: one more first drops the expired entries, and everything
// if none has expired. A read that began before this process changed what
// it read (forget, clear) is not kept: it may hold what the change replaced.
// The authentication and webhook-endpoint caches are readCaches.
type readCache[V any] struct {
	period     time.Duration
	maxEntries int

	mu      sync.Mutex
	entries map[string]cachedRead[V]
	// generation counts changes; start hands it to put.
	generation uint64
}

type cachedRead[V any] struct {
	value  V
	readAt time.Time
}

func (c *readCache[V]) fresh(e cachedRead[V], now time.Time) bool {
	return !now.Before(e.readAt) && now.Before(e.readAt.Add(c.period))
}

// get returns the value cached under key when it is fresh at now.
func (c *readCache[V]) get(key string, now time.Time) (v V, ok bool) {
	c.mu.Lock()
	e, found := c.entries[key]
	c.mu.Unlock()
	if !found || !c.fresh(e, now) {
		return v, false
	}
	return e.value, true
}

// start returns the generation to hand to put for a read beginning now.
func (c *readCache[V]) start() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// put keeps v under key, read at readAt, unless this process changed
// something since start returned generation.
func (c *readCache[V]) put(key string, v V, readAt time.Time, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if c.entries == nil {
		c.entries = map[string]cachedRead[V]{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.maxEntries {
		for k, old := range c.entries {
			if !c.fresh(old, readAt) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.maxEntries {
			clear(c.entries)
		}
	}
	c.entries[key] = cachedRead[V]{value: v, readAt: readAt}
}

// forget drops key after this process changed what it holds.
func (c *readCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	delete(c.entries, key)
}

// clear drops everything after this process changed what it may hold.
func (c *readCache[V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	clear(c.entries)
}
