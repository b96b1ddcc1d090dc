// Package vault encrypts card numbers at rest and fingerprints them, so that
// the database never holds a PAN in the clear (README.md, "Operating").
//
// A PAN is sealed with AES-256-GCM under the current key of a keyring. The
// ciphertext names the key that sealed it ("v1:<keyid>:<base64url(nonce|ct)>"),
// so a vault holding the current and the previous keys can read everything
// written before and during a key rotation. The key id is bound into the GCM
// additional data, so a ciphertext cannot be relabelled to another key version.
// A Keeper keeps one process's ring in step with the deployment's (the
// database and the key file), so that a rotation needs no restart.
//
// Fingerprints are an HMAC-SHA-256 under a fingerprint key derived once, from
// the key that was current when the deployment's ring began, never under an
// encryption key itself: a fingerprint leaks nothing usable against the
// ciphertexts, duplicates can be detected without decrypting, and a
// fingerprint stays the same across rotations (docs/decisions.md).
//
// No error from this package contains a PAN, a ciphertext or key material.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ivrpay/ivrpay"
)

// KeySize is the length of a vault key in bytes (AES-256).
const KeySize = 32

// version prefixes every ciphertext, so the format can change later without
// guessing what an old value is.
const version = "v1"

// nonceSize is GCM's standard nonce length; random nonces of this size are
// safe for far more PANs than one key will ever seal.
const nonceSize = 12

// fingerprintLabel derives the fingerprint subkey. Changing it changes every
// fingerprint, which would break duplicate detection for stored cards.
const fingerprintLabel = "ivrpay fingerprint v1"

// sharedSecretInfo derives the deployment's shared secret (SharedSecret).
// Changing it changes the secret every process shares.
const sharedSecretInfo = "ivrpay shared session secret v1"

// ErrMalformed is returned by Decrypt for input that is not a vault ciphertext.
var ErrMalformed = errors.New("vault: malformed ciphertext")

// ErrUnknownKey is returned by Decrypt for a ciphertext sealed by a key the
// vault does not hold (for example one retired by a rotation).
var ErrUnknownKey = errors.New("vault: ciphertext was sealed by a key this vault does not hold")

// ErrAuthFailed is returned by Decrypt when the ciphertext was altered or was
// not sealed by the key it names.
var ErrAuthFailed = errors.New("vault: ciphertext failed authentication")

var _ ivrpay.Vault = (*Vault)(nil)

// key is one AES-256 key of the keyring.
type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Vault is a keyring: it seals with its current key and opens with any key it
// holds. Keys can be added, made current and dropped while it is in use (a
// Keeper does so during a rotation). It is safe for concurrent use.
type Vault struct {
	mu      sync.RWMutex
	current *key
	keys    map[string]*key
	fpKey   []byte
	fpMAC   *MAC // keyed with fpKey
	shared  []byte
}

// New returns a vault that encrypts with current and decrypts with current or
// any of previous. Every key must be KeySize bytes. Its fingerprint key and
// shared secret are derived from current.
func New(current []byte, previous ...[]byte) (*Vault, error) {
	v := &Vault{keys: make(map[string]*key)}
	for i, raw := range append([][]byte{current}, previous...) {
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("vault: key %d: %w", i, err)
		}
		if err := v.add(k); err != nil {
			return nil, err
		}
		if i == 0 {
			v.current = k
		}
	}
	v.fpKey, v.shared = derivedSecrets(current)
	v.fpMAC = NewMAC(v.fpKey)
	return v, nil
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &key{id: keyID(raw), raw: slices.Clone(raw), aead: aead}, nil
}

// add puts k in the ring. The same key twice is harmless and simply
// ignored; two different keys with one id would make ciphertexts ambiguous
// (astronomically unlikely, but cheap to refuse).
func (v *Vault) add(k *key) error {
	if other, dup := v.keys[k.id]; dup {
		if hmac.Equal(k.raw, other.raw) {
			return nil
		}
		return fmt.Errorf("vault: two keys share the key id %s; generate a new key", k.id)
	}
	v.keys[k.id] = k
	return nil
}

// derivedSecrets are the fingerprint key and the shared secret a ring
// derives from the key that is current when it begins; they then stay the
// ring's through every rotation (the deployment keeps them in its database).
func derivedSecrets(raw []byte) (fingerprint, shared []byte) {
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(fingerprintLabel))
	shared, err := hkdf.Key(sha256.New, raw, nil, sharedSecretInfo, KeySize)
	if err != nil {
		panic("vault: HKDF-SHA256 refused a 32-byte key: " + err.Error()) // cannot happen for these lengths
	}
	return mac.Sum(nil), shared
}

// Add puts a key in the ring for decryption; it encrypts only once Use
// makes it current. It returns the key's id.
func (v *Vault) Add(raw []byte) (string, error) {
	k, err := newKey(raw)
	if err != nil {
		return "", fmt.Errorf("vault: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return k.id, v.add(k)
}

// Use makes the held key id the one Encrypt seals with.
func (v *Vault) Use(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	if !ok {
		return fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	v.current = k
	return nil
}

// Drop removes a key that is not current from the ring: what it sealed can
// no longer be read.
func (v *Vault) Drop(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.current.id == id {
		return fmt.Errorf("vault: key %s is current and cannot be dropped", id)
	}
	delete(v.keys, id)
	return nil
}

// Holds reports whether the ring holds the key id.
func (v *Vault) Holds(id string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.keys[id]
	return ok
}

// KeyIDs returns the ids of every key the ring holds, sorted.
func (v *Vault) KeyIDs() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// material returns a copy of the key id's bytes, or nil.
func (v *Vault) material(id string) []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if k, ok := v.keys[id]; ok {
		return slices.Clone(k.raw)
	}
	return nil
}

// setStableSecrets replaces the fingerprint key and the shared secret.
func (v *Vault) setStableSecrets(fingerprint, shared []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fpKey, v.shared = slices.Clone(fingerprint), slices.Clone(shared)
	v.fpMAC = NewMAC(v.fpKey)
}

// SharedSecret is a 32-byte secret every process of the deployment holds
// and that does not change when the keys rotate: it keys what is not card
// data (portal sign-in forms, the authentication limiter's credential
// hashes).
func (v *Vault) SharedSecret() []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return slices.Clone(v.shared)
}

func (v *Vault) currentKey() *key {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.current
}

// keyID names a key in ciphertexts: the first 8 hex characters of the SHA-256
// of its bytes. It identifies a key without revealing it.
func keyID(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}

// KeyID returns the id of the current key, the one Encrypt uses.
func (v *Vault) KeyID() string { return v.currentKey().id }

// String describes the vault by its current key id only, so that printing a
// vault by mistake never writes key material to a log.
func (v *Vault) String() string { return "vault.Vault(key " + v.KeyID() + ")" }

// GoString is String, for the same reason, under %#v.
func (v *Vault) GoString() string { return v.String() }

// additionalData binds the key id into the GCM tag, so a ciphertext
// relabelled with another key id fails authentication even if that key were
// somehow the one that sealed it.
func additionalData(id string) []byte { return []byte(version + ":" + id) }

// Encrypt seals pan under the current key with a fresh random nonce, so that
// the same PAN encrypts differently every time; use Fingerprint to compare.
func (v *Vault) Encrypt(pan string) (string, error) {
	k := v.currentKey()
	buf := make([]byte, nonceSize, nonceSize+len(pan)+k.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("vault: reading random nonce: %w", err)
	}
	sealed := k.aead.Seal(buf, buf[:nonceSize], []byte(pan), additionalData(k.id))
	return version + ":" + k.id + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Decrypt opens a ciphertext made by Encrypt with whichever key of the ring
// sealed it. Errors are ErrMalformed, ErrUnknownKey or ErrAuthFailed, possibly
// wrapped with the key id; they never include the input.
func (v *Vault) Decrypt(ct string) (string, error) {
	id, payload, err := parse(ct)
	if err != nil {
		return "", err
	}
	v.mu.RLock()
	k, ok := v.keys[id]
	v.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil || len(raw) < nonceSize+k.aead.Overhead() {
		return "", ErrMalformed
	}
	pt, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], additionalData(id))
	if err != nil {
		return "", fmt.Errorf("%w (key id %s)", ErrAuthFailed, id)
	}
	return string(pt), nil
}

// parse splits a ciphertext into its key id and payload. The key id must be
// exactly 8 lowercase hex characters, which is what makes it safe to quote in
// errors: it can never carry a PAN passed here by mistake.
func parse(ct string) (id, payload string, err error) {
	ver, rest, ok := strings.Cut(ct, ":")
	if !ok || ver != version {
		return "", "", ErrMalformed
	}
	id, payload, ok = strings.Cut(rest, ":")
	if !ok || !isKeyID(id) || payload == "" {
		return "", "", ErrMalformed
	}
	return id, payload, nil
}

func isKeyID(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Fingerprint returns the hex HMAC-SHA-256 of pan under the ring's
// fingerprint key. Equal PANs have equal fingerprints, before and after a
// rotation: the fingerprint key is not one of the keys that rotate.
func (v *Vault) Fingerprint(pan string) string {
	v.mu.RLock()
	mac := v.fpMAC
	v.mu.RUnlock()
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0], pan))
}

// NeedsReencrypt reports whether ct was not sealed by the current key, which
// is what a rotation re-encrypts. A malformed ct also needs it (Decrypt will
// then say why it cannot be read).
func (v *Vault) NeedsReencrypt(ct string) bool {
	id, _, err := parse(ct)
	return err != nil || id != v.KeyID()
}

// Reencrypt returns ct sealed under the current key, and whether that
// changed anything (false for a ciphertext the current key sealed already).
func (v *Vault) Reencrypt(ct string) (string, bool, error) {
	if !v.NeedsReencrypt(ct) {
		return ct, false, nil
	}
	plain, err := v.Decrypt(ct)
	if err != nil {
		return "", false, err
	}
	out, err := v.Encrypt(plain)
	return out, err == nil, err
}
