// Package vault encrypts card numbers at rest and fingerprints them, so that
// the database never holds a PAN in the clear (README.md, "Operating").
//
// A PAN is sealed with AES-256-GCM under the current key of a keyring. The
// ciphertext names the key that sealed it ("v1:<keyid>:<base64url(nonce|ct)>"),
// so a vault holding the current and the previous keys can read everything
// written before and during a key rotation. The key id is bound into the GCM
// additional data, so a ciphertext cannot be relabelled to another key version.
//
// Fingerprints are an HMAC-SHA-256 under a subkey derived from the current key,
// never under the encryption key itself: a fingerprint leaks nothing usable
// against the ciphertexts, and duplicates can be detected without decrypting.
//
// No error from this package contains a PAN, a ciphertext or key material.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

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
	aead cipher.AEAD
}

// Vault is a keyring: it seals with its current key and opens with any key it
// holds. It is safe for concurrent use.
type Vault struct {
	current *key
	keys    map[string]*key
	fpKey   []byte
}

// New returns a vault that encrypts with current and decrypts with current or
// any of previous. Every key must be KeySize bytes.
func New(current []byte, previous ...[]byte) (*Vault, error) {
	v := &Vault{keys: make(map[string]*key)}
	seen := make(map[string][]byte)
	for i, raw := range append([][]byte{current}, previous...) {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("vault: key %d is %d bytes, want %d", i, len(raw), KeySize)
		}
		id := keyID(raw)
		if other, dup := seen[id]; dup {
			// The same key twice is harmless and simply ignored; two
			// different keys with one id would make ciphertexts ambiguous
			// (astronomically unlikely, but cheap to refuse).
			if hmac.Equal(raw, other) {
				continue
			}
			return nil, fmt.Errorf("vault: two keys share the key id %s; generate a new key", id)
		}
		seen[id] = raw
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
		k := &key{id: id, aead: aead}
		v.keys[id] = k
		if i == 0 {
			v.current = k
		}
	}
	mac := hmac.New(sha256.New, current)
	mac.Write([]byte(fingerprintLabel))
	v.fpKey = mac.Sum(nil)
	return v, nil
}

// keyID names a key in ciphertexts: the first 8 hex characters of the SHA-256
// of its bytes. It identifies a key without revealing it.
func keyID(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}

// KeyID returns the id of the current key, the one Encrypt uses.
func (v *Vault) KeyID() string { return v.current.id }

// String describes the vault by its current key id only, so that printing a
// vault by mistake never writes key material to a log.
func (v *Vault) String() string { return "vault.Vault(key " + v.current.id + ")" }

// GoString is String, for the same reason, under %#v.
func (v *Vault) GoString() string { return v.String() }

// additionalData binds the key id into the GCM tag, so a ciphertext
// relabelled with another key id fails authentication even if that key were
// somehow the one that sealed it.
func additionalData(id string) []byte { return []byte(version + ":" + id) }

// Encrypt seals pan under the current key with a fresh random nonce, so that
// the same PAN encrypts differently every time; use Fingerprint to compare.
func (v *Vault) Encrypt(pan string) (string, error) {
	k := v.current
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
	k, ok := v.keys[id]
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

// Fingerprint returns the hex HMAC-SHA-256 of pan under the fingerprint
// subkey of the current key. It is stable for one key, so equal PANs have
// equal fingerprints; after a rotation stored fingerprints must be recomputed
// along with the ciphertexts.
func (v *Vault) Fingerprint(pan string) string {
	mac := hmac.New(sha256.New, v.fpKey)
	mac.Write([]byte(pan))
	return hex.EncodeToString(mac.Sum(nil))
}

// NeedsReencrypt reports whether ct was not sealed by the current key, which
// is what a rotation re-encrypts. A malformed ct also needs it (Decrypt will
// then say why it cannot be read).
func (v *Vault) NeedsReencrypt(ct string) bool {
	id, _, err := parse(ct)
	return err != nil || id != v.current.id
}
