package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"io"
	"slices"
	"sync"
)

// MAC computes HMAC-SHA256 under one key, reusing its hashes: a fresh HMAC
// hashes the key's two pads and allocates for every message, and every card
// fingerprint and every request's limiter key is one. It is safe for
// concurrent use.
type MAC struct{ hashes sync.Pool }

// NewMAC returns the MAC keyed with key (copied).
func NewMAC(key []byte) *MAC {
	key = slices.Clone(key)
	m := &MAC{}
	m.hashes.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// Sum appends the HMAC of msg to b. The hash is reset before it is kept for
// the next message, so that msg does not stay in it.
func (m *MAC) Sum(b []byte, msg string) []byte {
	h := m.hashes.Get().(hash.Hash)
	io.WriteString(h, msg)
	b = h.Sum(b)
	h.Reset()
	m.hashes.Put(h)
	return b
}
