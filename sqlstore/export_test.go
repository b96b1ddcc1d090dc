package sqlstore

import "github.com/ivrpay/ivrpay"

// AuthCached returns what the authentication cache holds, by cache key, with
// each key's platform, for tests that check what it keeps.
func (s *Store) AuthCached() map[string]ivrpay.APIKey {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	out := map[string]ivrpay.APIKey{}
	for hash, e := range s.auth.entries {
		k, p := e.value.key, e.value.platform
		k.Platform = &p
		out[hash] = k
	}
	return out
}
