package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Key file layout. A key file holds the keys of this deployment's ring that
// this host has: one standard base64 encoding of KeySize random bytes per
// line, oldest first, optionally preceded by comment lines starting with
// '#'. A file written by hand (head -c 32 /dev/urandom | base64) is a ring
// of one key. A key file written by ivrpay records the mode of the
// deployment that made it in such a line ("# ivrpay vault key; mode=sandbox"),
// so that production can refuse a key a sandbox created; a file without one
// has no recorded mode. When a rotation retires a key, the key leaves the
// file and is kept as path+RetiredSuffix+timestamp, so that backups taken
// before the rotation can still be read.
const (
	RetiredSuffix   = ".retired-"
	RetiredTimeFmt  = "20060102T150405Z"
	maxKeyFileBytes = 16 << 10
	// legacyNextSuffix is where releases before the key ring kept the new
	// key of a rotation cut short; its key is read as the newest.
	legacyNextSuffix = ".next"
)

// GenerateKey returns KeySize bytes from the operating system's CSPRNG.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("vault: generating key: %w", err)
	}
	return k, nil
}

// WriteKeyFile writes key to a new file at path with mode 0600, recording no
// deployment mode. It refuses to replace an existing file (the error matches
// fs.ErrExist), because overwriting a key makes every PAN sealed with it
// unreadable.
func WriteKeyFile(path string, key []byte) error { return WriteKeyFileMode(path, key, "") }

// WriteKeyFileMode is WriteKeyFile, recording mode (sandbox or production)
// in the file when it is not empty.
func WriteKeyFileMode(path string, key []byte, mode string) (err error) {
	if strings.ContainsAny(mode, " \r\n#=;") {
		return fmt.Errorf("vault: invalid mode %q", mode)
	}
	if len(key) != KeySize {
		return fmt.Errorf("vault: key is %d bytes, want %d", len(key), KeySize)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vault: creating key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path) // a half-written key file must not be mistaken for a key
		}
	}()
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	if mode != "" {
		text = "# ivrpay vault key; mode=" + mode + "\n" + text
	}
	if _, err = f.WriteString(text); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	// The key must be on disk before any PAN sealed with it is.
	if err = f.Sync(); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	syncDir(path)
	return nil
}

// ReadKeyFile reads the newest key of a key file (one written by
// WriteKeyFile, WriteKeyRing or by hand: base64 of 32 bytes). It refuses a
// file that group or others may read, since anyone who can read the key can
// read every stored card number.
func ReadKeyFile(path string) ([]byte, error) {
	key, _, err := ReadKeyFileMode(path)
	return key, err
}

// KeyFileMode returns the deployment mode recorded in the key file at path,
// or "" for a file that records none.
func KeyFileMode(path string) (string, error) {
	_, mode, err := ReadKeyFileMode(path)
	return mode, err
}

// ReadKeyFileMode is ReadKeyFile, also returning the recorded mode ("" if none).
func ReadKeyFileMode(path string) ([]byte, string, error) {
	keys, mode, err := ReadKeyRing(path)
	if err != nil {
		return nil, "", err
	}
	return keys[len(keys)-1], mode, nil
}

// ReadKeyRing reads every key of a key file, oldest first, and the mode it
// records ("" if none). It refuses a file that group or others may read.
func ReadKeyRing(path string) ([][]byte, string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("vault: key file %s does not exist: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, "", fmt.Errorf("vault: opening key file: %w", err)
	}
	defer f.Close()
	// Stat the open file rather than the path, so the mode checked is the
	// mode of the file actually read.
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("vault: key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("vault: key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; Go reports every file there as 0666.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, "", fmt.Errorf("vault: key file %s has mode %04o and can be read by group or others; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("vault: reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, "", fmt.Errorf("vault: key file %s is too large to be a key ring (want lines of base64 of %d bytes)", path, KeySize)
	}
	// The error messages below never quote the content: it is, or is close to, a key.
	var keys [][]byte
	mode := ""
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("#")) {
			for _, field := range strings.FieldsFunc(string(line[1:]), func(r rune) bool { return r == ';' || r == ' ' }) {
				if v, ok := strings.CutPrefix(field, "mode="); ok {
					mode = v
				}
			}
			continue
		}
		if len(line) == 0 {
			continue
		}
		key := make([]byte, base64.StdEncoding.DecodedLen(len(line)))
		n, err := base64.StdEncoding.Decode(key, line)
		if err != nil {
			return nil, "", fmt.Errorf("vault: key file %s: line %d is not standard base64 (want base64 of %d random bytes)", path, i+1, KeySize)
		}
		if n != KeySize {
			return nil, "", fmt.Errorf("vault: key file %s: line %d holds %d bytes, want %d (base64 of %d random bytes)", path, i+1, n, KeySize, KeySize)
		}
		keys = append(keys, key[:n])
	}
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("vault: key file %s holds no key (want base64 of %d random bytes)", path, KeySize)
	}
	return keys, mode, nil
}

// loadRing reads the keys of path and of a legacy path+".next" (newest).
func loadRing(path string) ([][]byte, string, error) {
	keys, mode, err := ReadKeyRing(path)
	if err != nil {
		return nil, "", err
	}
	next, _, err := ReadKeyRing(path + legacyNextSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return keys, mode, nil
	}
	if err != nil {
		return nil, "", err
	}
	return append(keys, next...), mode, nil
}

// WriteKeyRing replaces the key file at path with keys (oldest first),
// recording mode when it is not empty. The new file is written beside the
// old one with mode 0600, synced, then renamed over it, so that path holds
// a complete ring at every instant. A symbolic link at path is followed: the
// file it names is replaced. A legacy path+".next" whose key is in keys is
// removed.
func WriteKeyRing(path string, keys [][]byte, mode string) (err error) {
	if strings.ContainsAny(mode, " \r\n#=;") {
		return fmt.Errorf("vault: invalid mode %q", mode)
	}
	if len(keys) == 0 {
		return errors.New("vault: a key ring needs at least one key")
	}
	var text strings.Builder
	if mode != "" {
		text.WriteString("# ivrpay vault key; mode=" + mode + "\n")
	}
	for _, k := range keys {
		if len(k) != KeySize {
			return fmt.Errorf("vault: key is %d bytes, want %d", len(k), KeySize)
		}
		text.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	tmp := path + ".tmp-" + base64.RawURLEncoding.EncodeToString(suffix[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.WriteString(text.String()); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	// The key must be on disk before anything sealed with it is.
	if err = f.Sync(); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vault: writing key file %s: %w", path, err)
	}
	syncDir(path)
	if next, _, err := ReadKeyRing(path + legacyNextSuffix); err == nil && slices.ContainsFunc(keys, func(k []byte) bool { return hmac.Equal(k, next[0]) }) {
		os.Remove(path + legacyNextSuffix)
	}
	return nil
}

// WriteRetiredKey keeps a key that left the ring as path+".retired-<UTC
// time>" (backups made before its retirement still need it). A file of that
// name holding the same key (another process of this host retired it in
// the same second) is fine.
func WriteRetiredKey(path string, key []byte, mode string, now time.Time) error {
	retired := path + RetiredSuffix + now.UTC().Format(RetiredTimeFmt)
	err := WriteKeyFileMode(retired, key, mode)
	if errors.Is(err, fs.ErrExist) {
		if old, rerr := ReadKeyFile(retired); rerr == nil && hmac.Equal(old, key) {
			return nil
		}
		return fmt.Errorf("vault: %s already exists and holds another key; retry later", retired)
	}
	return err
}

// Load opens the vault whose key ring is in path: its newest key is
// current (a Keeper then makes current the key the deployment's ring says).
func Load(path string) (*Vault, error) {
	keys, _, err := loadRing(path)
	if err != nil {
		return nil, err
	}
	slices.Reverse(keys)
	return New(keys[0], keys[1:]...)
}

// LoadOrCreate is Load, except that a missing key file is first created with a
// fresh key (mode 0600, marked as made by a sandbox); created reports whether
// that happened. It is for
// sandbox deployments, which must start without any setup; production
// requires an explicit key file, since a silently new key would leave every
// stored card unreadable.
func LoadOrCreate(path string) (v *Vault, created bool, err error) {
	_, err = os.Lstat(path)
	if err == nil {
		v, err = Load(path)
		return v, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("vault: key file: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	// Only sandbox deployments create their key; the file says so, and
	// production refuses it (SPEC §9).
	err = WriteKeyFileMode(path, key, "sandbox")
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; use theirs.
		v, err = Load(path)
		return v, false, err
	}
	if err != nil {
		return nil, false, err
	}
	v, err = Load(path)
	return v, err == nil, err
}

// syncDir flushes the directory holding path so a created or renamed key file
// survives a crash. It is best effort: some systems cannot sync directories,
// and the file itself has already been synced.
func syncDir(path string) {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
