package vault

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

const testPAN = "4111111111111111"

// fixedKey returns a deterministic key, so failures reproduce.
func fixedKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustNew(tb testing.TB, current []byte, previous ...[]byte) *Vault {
	tb.Helper()
	v, err := New(current, previous...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

func mustEncrypt(tb testing.TB, v *Vault, pan string) string {
	tb.Helper()
	ct, err := v.Encrypt(pan)
	if err != nil {
		tb.Fatalf("Encrypt: %v", err)
	}
	return ct
}

// assertNoPAN fails when err mentions the test PAN: errors end up in logs.
func assertNoPAN(tb testing.TB, err error) {
	tb.Helper()
	if err != nil && strings.Contains(err.Error(), testPAN) {
		tb.Fatalf("error contains the PAN: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(1))
	ct := mustEncrypt(t, v, testPAN)
	if strings.Contains(ct, testPAN) {
		t.Fatalf("ciphertext contains the PAN: %s", ct)
	}
	want := "v1:" + v.KeyID() + ":"
	if !strings.HasPrefix(ct, want) {
		t.Fatalf("ciphertext %q does not start with %q", ct, want)
	}
	if len(v.KeyID()) != 8 {
		t.Fatalf("KeyID %q is not 8 characters", v.KeyID())
	}
	got, err := v.Decrypt(ct)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if got != testPAN {
		t.Fatalf("Decrypt = %q, want %q", got, testPAN)
	}
	if ct2 := mustEncrypt(t, v, testPAN); ct2 == ct {
		t.Fatalf("two encryptions of one PAN are equal; the nonce is not random")
	}
}

func TestRoundTripProperty(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(2))
	rapid.Check(t, func(t *rapid.T) {
		pan := rapid.String().Draw(t, "pan")
		ct, err := v.Encrypt(pan)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		got, err := v.Decrypt(ct)
		if err != nil || got != pan {
			t.Fatalf("Decrypt = %q, %v; want %q", got, err, pan)
		}
		if v.NeedsReencrypt(ct) {
			t.Fatalf("NeedsReencrypt is true for a fresh ciphertext")
		}
	})
}

func TestDecryptRejects(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(1))
	other := mustNew(t, fixedKey(2))
	ct := mustEncrypt(t, v, testPAN)
	payload := strings.SplitN(ct, ":", 3)[2]

	// Flip one bit of every byte position in turn: GCM must catch each.
	tampered := func(i int) string {
		b := []byte(ct)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	// Flip the last byte of the sealed bytes (the tag's), not the last base64
	// character: that character may carry padding bits that decoding ignores.
	tamperedTag := func() string {
		raw, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 0x01
		return "v1:" + v.KeyID() + ":" + base64.RawURLEncoding.EncodeToString(raw)
	}
	// The sealed bytes less their last three, canonically encoded.
	truncated := func() string {
		raw, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		return "v1:" + v.KeyID() + ":" + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-3])
	}
	// The same bytes written with non-zero padding bits: only the canonical text is accepted.
	nonCanonical := func() string {
		if len(payload)%4 == 0 {
			return "v1:" + v.KeyID() + ":" + payload + "!"
		}
		b := []byte(payload)
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		// The lowest bit of the last character is a padding bit when the length is not a multiple of 4.
		b[len(b)-1] = alphabet[strings.IndexByte(alphabet, b[len(b)-1])|1]
		return "v1:" + v.KeyID() + ":" + string(b)
	}

	tests := []struct {
		name string
		ct   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"the PAN itself", testPAN, ErrMalformed},
		{"PAN as key id", "v1:" + testPAN + ":" + payload, ErrMalformed},
		{"PAN as payload", "v1:" + v.KeyID() + ":" + testPAN, ErrMalformed},
		{"wrong version", "v2" + strings.TrimPrefix(ct, "v1"), ErrMalformed},
		{"no payload", "v1:" + v.KeyID() + ":", ErrMalformed},
		{"uppercase key id", "v1:" + strings.ToUpper(v.KeyID()) + ":" + payload, ErrMalformed},
		{"not base64", "v1:" + v.KeyID() + ":!!!!", ErrMalformed},
		{"too short", "v1:" + v.KeyID() + ":AAAA", ErrMalformed},
		{"truncated", truncated(), ErrAuthFailed},
		{"tampered first payload byte", tampered(len("v1:") + 9), ErrAuthFailed},
		{"tampered last byte", tamperedTag(), ErrAuthFailed},
		{"non-canonical base64", nonCanonical(), ErrMalformed},
		{"wrong key", mustEncrypt(t, other, testPAN), ErrUnknownKey},
		// A ciphertext of another key relabelled with this key's id: the
		// key id in the additional data and the key itself both differ.
		{"relabelled", "v1:" + v.KeyID() + ":" + strings.SplitN(mustEncrypt(t, other, testPAN), ":", 3)[2], ErrAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Decrypt(tt.ct)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %q, %v; want error %v", got, err, tt.want)
			}
			if got != "" {
				t.Fatalf("Decrypt returned %q alongside an error", got)
			}
			assertNoPAN(t, err)
			if tt.want == ErrUnknownKey && !v.NeedsReencrypt(tt.ct) {
				t.Fatalf("NeedsReencrypt is false for another key's ciphertext")
			}
		})
	}
}

// The key id is bound in the additional data: the same key under two labels
// must not open each other's ciphertexts. This is checked with the internal
// seal, since no real key pair has colliding ids.
func TestKeyIDBoundInAdditionalData(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(1))
	k := v.current
	nonce := make([]byte, nonceSize)
	sealed := k.aead.Seal(nonce, nonce, []byte(testPAN), additionalData("00000000"))
	if _, err := k.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], additionalData(k.id)); err == nil {
		t.Fatal("a ciphertext sealed under another key id opened")
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a1 := mustNew(t, fixedKey(1))
	a2 := mustNew(t, fixedKey(1))
	b := mustNew(t, fixedKey(2))

	fp := a1.Fingerprint(testPAN)
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("Fingerprint %q is not 64 lowercase hex characters", fp)
	}
	if fp != a1.Fingerprint(testPAN) || fp != a2.Fingerprint(testPAN) {
		t.Fatal("Fingerprint is not stable for one key and PAN")
	}
	if fp == a1.Fingerprint("5555555555554444") {
		t.Fatal("two PANs have the same fingerprint")
	}
	if fp == b.Fingerprint(testPAN) {
		t.Fatal("two keys give the same fingerprint")
	}
	if strings.Contains(fp, testPAN) {
		t.Fatal("fingerprint contains the PAN")
	}
	// A new ring's fingerprint key comes from its current key.
	ring := mustNew(t, fixedKey(2), fixedKey(1))
	if ring.Fingerprint(testPAN) != b.Fingerprint(testPAN) {
		t.Fatal("a new keyring's fingerprint does not come from its current key")
	}
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	old := mustNew(t, fixedKey(1))
	oldCT := mustEncrypt(t, old, testPAN)

	ring := mustNew(t, fixedKey(2), fixedKey(1))
	if ring.KeyID() == old.KeyID() {
		t.Fatal("keyring's current key is the old key")
	}
	got, err := ring.Decrypt(oldCT)
	if err != nil || got != testPAN {
		t.Fatalf("keyring Decrypt(old) = %q, %v", got, err)
	}
	if !ring.NeedsReencrypt(oldCT) {
		t.Fatal("NeedsReencrypt is false for a ciphertext of the previous key")
	}
	newCT := mustEncrypt(t, ring, testPAN)
	if ring.NeedsReencrypt(newCT) {
		t.Fatal("NeedsReencrypt is true for a ciphertext of the current key")
	}
	if !strings.Contains(newCT, ":"+ring.KeyID()+":") {
		t.Fatalf("keyring did not encrypt with the current key: %s", newCT)
	}
	// The old vault alone cannot read what the keyring wrote.
	_, err = old.Decrypt(newCT)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old Decrypt(new) error = %v, want ErrUnknownKey", err)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	t.Parallel()
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
	if _, err := New(fixedKey(1), make([]byte, 31)); err == nil {
		t.Fatal("New accepted a 31-byte previous key")
	}
	// The same key twice is harmless.
	if _, err := New(fixedKey(1), fixedKey(1)); err != nil {
		t.Fatalf("New(k, k): %v", err)
	}
}

func TestVaultDoesNotPrintKeys(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(7))
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		t.Run(verb, func(t *testing.T) {
			s := fmt.Sprintf(verb, v)
			if strings.Contains(s, "7 7 7") || strings.Contains(s, "0x07") || !strings.Contains(s, v.KeyID()) {
				t.Fatalf("printed vault = %q", s)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.key")
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize {
		t.Fatalf("GenerateKey returned %d bytes", len(key))
	}
	if err := WriteKeyFile(path, key); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode = %04o, want 0600", fi.Mode().Perm())
		}
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasSuffix(data, []byte("\n")) || len(data) != 45 {
		t.Fatalf("key file content is %d bytes, want 44 base64 + newline", len(data))
	}
	got, err := ReadKeyFile(path)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ReadKeyFile = %x, %v", got, err)
	}

	if err := WriteKeyFile(path, fixedKey(1)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteKeyFile over an existing file: %v, want fs.ErrExist", err)
	}
	if got, _ := ReadKeyFile(path); !bytes.Equal(got, key) {
		t.Fatal("WriteKeyFile replaced an existing key")
	}
	if err := WriteKeyFile(filepath.Join(dir, "short"), make([]byte, 16)); err == nil {
		t.Fatal("WriteKeyFile accepted a 16-byte key")
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
			t.Fatal(err)
		}
		return p
	}
	good := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 bytes of 0x01
	secretish := "c2VjcmV0LXNlY3JldC1zZWNyZXQ="            // base64 of "secret-secret-secret"

	if k, err := ReadKeyFile(write("no-newline", good, 0o600)); err != nil || !bytes.Equal(k, fixedKey(1)) {
		t.Fatalf("key without newline: %x, %v", k, err)
	}
	if k, err := ReadKeyFile(write("crlf", good+"\r\n", 0o400)); err != nil || !bytes.Equal(k, fixedKey(1)) {
		t.Fatalf("key with CRLF: %x, %v", k, err)
	}

	tests := []struct {
		name string
		path string
		want string // substring of the error
	}{
		{"missing", filepath.Join(dir, "missing"), "does not exist"},
		{"not base64", write("garbage", "not base64 at all!\n", 0o600), "not standard base64"},
		{"too short", write("short", secretish+"\n", 0o600), "holds 20 bytes, want 32"},
		{"too large", write("large", strings.Repeat("A", 20000), 0o600), "too large"},
		{"no key", write("empty", "# ivrpay vault key; mode=sandbox\n", 0o600), "holds no key"},
		{"directory", dir, "not a regular file"},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests,
			struct{ name, path, want string }{"world readable", write("0644", good+"\n", 0o644), "chmod 600"},
			struct{ name, path, want string }{"group readable", write("0640", good+"\n", 0o640), "chmod 600"},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadKeyFile(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadKeyFile error = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secretish) || strings.Contains(err.Error(), good) {
				t.Fatalf("error quotes the file content: %v", err)
			}
		})
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key file error %v does not match fs.ErrNotExist", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vault.key")
	v1, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate (missing) = %v, %v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("created key file: %v, %v", fi, err)
	}
	ct := mustEncrypt(t, v1, testPAN)

	v2, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("LoadOrCreate (existing) = %v, %v", created, err)
	}
	if v2.KeyID() != v1.KeyID() {
		t.Fatal("LoadOrCreate replaced an existing key")
	}
	if got, err := v2.Decrypt(ct); err != nil || got != testPAN {
		t.Fatalf("Decrypt after reload = %q, %v", got, err)
	}

	// An existing but unsafe file is an error, never silently replaced.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if _, _, err := LoadOrCreate(path); err == nil {
			t.Fatal("LoadOrCreate accepted a world-readable key file")
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Load created a missing key file")
	}
}

// TestKeyRingFile covers the key file as a ring: several keys, oldest
// first, rewritten atomically with mode 0600 and its recorded mode, through
// a symbolic link, and a legacy .next key (a rotation cut short before the
// ring existed) read as the newest and folded in.
func TestKeyRingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.key")
	if err := WriteKeyRing(path, [][]byte{fixedKey(1), fixedKey(2)}, "production"); err != nil {
		t.Fatal(err)
	}
	keys, mode, err := ReadKeyRing(path)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], fixedKey(1)) || !bytes.Equal(keys[1], fixedKey(2)) || mode != "production" {
		t.Fatalf("ReadKeyRing = %d keys, %q, %v", len(keys), mode, err)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("key ring file: %v, %v", fi, err)
	}
	if k, err := ReadKeyFile(path); err != nil || !bytes.Equal(k, fixedKey(2)) {
		t.Fatalf("ReadKeyFile reads the newest key: %x, %v", k, err)
	}
	if v, err := Load(path); err != nil || v.KeyID() != keyID(fixedKey(2)) || !v.Holds(keyID(fixedKey(1))) {
		t.Fatalf("Load: %v, %v", v, err)
	}
	if leftovers, _ := filepath.Glob(path + ".tmp-*"); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	if err := WriteKeyRing(path, nil, ""); err == nil {
		t.Fatal("WriteKeyRing wrote an empty ring")
	}

	t.Run("symbolic link", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no symbolic links")
		}
		target := filepath.Join(t.TempDir(), "real.key")
		if err := WriteKeyFile(target, fixedKey(3)); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(t.TempDir(), "vault.key")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := WriteKeyRing(link, [][]byte{fixedKey(3), fixedKey(4)}, ""); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced: %v", err)
		}
		if keys, _, err := ReadKeyRing(target); err != nil || len(keys) != 2 {
			t.Fatalf("the linked file: %d keys, %v", len(keys), err)
		}
	})

	t.Run("legacy next key", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "vault.key")
		if err := WriteKeyFile(p, fixedKey(5)); err != nil {
			t.Fatal(err)
		}
		if err := WriteKeyFile(p+".next", fixedKey(6)); err != nil {
			t.Fatal(err)
		}
		v, err := Load(p)
		if err != nil || v.KeyID() != keyID(fixedKey(6)) || !v.Holds(keyID(fixedKey(5))) {
			t.Fatalf("Load with a .next key: %v, %v", v, err)
		}
		if err := WriteKeyRing(p, [][]byte{fixedKey(5), fixedKey(6)}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p + ".next"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf(".next was not folded into the ring: %v", err)
		}
		if err := os.WriteFile(p+".next", []byte("junk\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Fatal("Load accepted a corrupt .next key")
		}
	})

	t.Run("retired copies", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "vault.key")
		now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 3600))
		if err := WriteRetiredKey(p, fixedKey(7), "sandbox", now); err != nil {
			t.Fatal(err)
		}
		retired := p + ".retired-20250304T040607Z"
		if k, err := ReadKeyFile(retired); err != nil || !bytes.Equal(k, fixedKey(7)) {
			t.Fatalf("retired copy: %v", err)
		}
		if m, _ := KeyFileMode(retired); m != "sandbox" {
			t.Fatalf("retired copy records mode %q", m)
		}
		if err := WriteRetiredKey(p, fixedKey(7), "sandbox", now); err != nil {
			t.Fatalf("the same key retired twice in a second: %v", err)
		}
		if err := WriteRetiredKey(p, fixedKey(8), "sandbox", now); err == nil {
			t.Fatal("a retired copy holding another key was overwritten")
		}
	})
}

// TestRingChanges covers a vault whose ring changes while it is used: a
// key added decrypts but does not seal until made current, the current key
// cannot be dropped, a dropped key no longer decrypts, Reencrypt moves a
// ciphertext to the current key, and the fingerprint key and shared secret
// do not change with the current key.
func TestRingChanges(t *testing.T) {
	t.Parallel()
	v := mustNew(t, fixedKey(1))
	fp, shared := v.Fingerprint(testPAN), v.SharedSecret()
	old := mustEncrypt(t, v, testPAN)
	id2, err := v.Add(fixedKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Holds(id2) || v.KeyID() == id2 || !strings.Contains(mustEncrypt(t, v, testPAN), ":"+keyID(fixedKey(1))+":") {
		t.Fatal("an added key sealed before it was made current")
	}
	if err := v.Use(id2); err != nil || v.KeyID() != id2 {
		t.Fatalf("Use: %v", err)
	}
	if v.Fingerprint(testPAN) != fp || !bytes.Equal(v.SharedSecret(), shared) {
		t.Fatal("the fingerprint or the shared secret changed with the current key")
	}
	moved, changed, err := v.Reencrypt(old)
	if err != nil || !changed || !strings.Contains(moved, ":"+id2+":") {
		t.Fatalf("Reencrypt = %q, %v, %v", moved, changed, err)
	}
	if again, changed, err := v.Reencrypt(moved); err != nil || changed || again != moved {
		t.Fatalf("Reencrypt of a current ciphertext = %v, %v", changed, err)
	}
	if err := v.Drop(id2); err == nil {
		t.Fatal("the current key was dropped")
	}
	if err := v.Drop(keyID(fixedKey(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Decrypt(old); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a dropped key still decrypts: %v", err)
	}
	if got, err := v.Decrypt(moved); err != nil || got != testPAN {
		t.Fatalf("Decrypt(moved) = %q, %v", got, err)
	}
	if err := v.Use("00000000"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Use of a key not held: %v", err)
	}
	if got := v.KeyIDs(); len(got) != 1 || got[0] != id2 {
		t.Fatalf("KeyIDs = %v", got)
	}
}

func FuzzDecrypt(f *testing.F) {
	v := mustNew(f, fixedKey(1))
	ct := mustEncrypt(f, v, testPAN)
	f.Add(ct)
	f.Add(ct[:len(ct)-1])
	f.Add("")
	f.Add("v1:")
	f.Add("v1::")
	f.Add("v1:" + v.KeyID() + ":")
	f.Add("v1:" + v.KeyID() + ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("v1:deadbeef:AAAA")
	f.Add("v2:" + v.KeyID() + ":" + strings.SplitN(ct, ":", 3)[2])
	f.Add(testPAN)
	f.Fuzz(func(t *testing.T, in string) {
		pt, err := v.Decrypt(in)
		if err != nil {
			if pt != "" {
				t.Fatalf("Decrypt returned %q with error %v", pt, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Anything that opens must have been sealed by this vault.
		if v.NeedsReencrypt(in) {
			t.Fatalf("opened %q but NeedsReencrypt is true", in)
		}
	})
}

func TestKeyFileRecordsMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sandbox := filepath.Join(dir, "sandbox.key")
	if _, _, err := LoadOrCreate(sandbox); err != nil {
		t.Fatal(err)
	}
	hand := filepath.Join(dir, "hand.key")
	key, _ := GenerateKey()
	if err := WriteKeyFile(hand, key); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{{"created by a sandbox", sandbox, "sandbox"}, {"written by hand", hand, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := KeyFileMode(tc.path); err != nil || got != tc.want {
				t.Fatalf("KeyFileMode = %q, %v; want %q", got, err, tc.want)
			}
			if _, err := Load(tc.path); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
	// A ring rewritten with its mode keeps it.
	keys, mode, err := ReadKeyRing(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyRing(sandbox, append(keys, fixedKey(9)), mode); err != nil {
		t.Fatal(err)
	}
	if got, err := KeyFileMode(sandbox); err != nil || got != "sandbox" {
		t.Fatalf("mode %q, %v after a key was added", got, err)
	}
}
