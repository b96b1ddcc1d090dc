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
	"strings"
	"time"
)

// Key file layout. A key file holds the standard base64 encoding of KeySize
// random bytes and an optional trailing newline, optionally preceded by
// comment lines starting with '#'. A key file written by ivrpay records the
// mode of the deployment that made it in such a line ("# ivrpay vault key;
// mode=sandbox"), so that production can refuse a key a sandbox created;
// a file without one (written by hand) has no recorded mode. During a rotation the new key
// waits in path+NextSuffix until every stored PAN has been re-encrypted; the
// replaced key is kept as path+RetiredSuffix+timestamp so that backups taken
// before the rotation can still be read.
const (
	NextSuffix      = ".next"
	RetiredSuffix   = ".retired-"
	RetiredTimeFmt  = "20060102T150405Z"
	maxKeyFileBytes = 1 << 10
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

// ReadKeyFile reads a key written by WriteKeyFile (or by hand: base64 of 32
// bytes). It refuses a file that group or others may read, since anyone who
// can read the key can read every stored card number.
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
		return nil, "", fmt.Errorf("vault: key file %s is too large to be a key (want base64 of %d bytes)", path, KeySize)
	}
	// The error messages below never quote the content: it is, or is close to, a key.
	var text []byte
	mode := ""
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("#")) {
			for _, field := range strings.FieldsFunc(string(line[1:]), func(r rune) bool { return r == ';' || r == ' ' }) {
				if v, ok := strings.CutPrefix(field, "mode="); ok {
					mode = v
				}
			}
			continue
		}
		text = append(text, line...)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(key, text)
	if err != nil {
		return nil, "", fmt.Errorf("vault: key file %s is not standard base64 (want base64 of %d random bytes)", path, KeySize)
	}
	if n != KeySize {
		return nil, "", fmt.Errorf("vault: key file %s holds %d bytes, want %d (base64 of %d random bytes)", path, n, KeySize, KeySize)
	}
	return key[:n], mode, nil
}

// Load opens the vault whose key is in path. If path+".next" exists, a key
// rotation was interrupted: the .next key is then current and path's key is
// previous, so PANs written under either key stay readable and new ones use
// the new key until the rotation is finished.
func Load(path string) (*Vault, error) {
	cur, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	next, err := ReadKeyFile(path + NextSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return New(cur)
	}
	if err != nil {
		return nil, err
	}
	return New(next, cur)
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

// BeginRotation starts (or resumes) a key rotation: it generates a new key,
// writes it to path+".next" (0600) and returns a vault that encrypts with the
// new key and still decrypts with the old one. When path+".next" already
// exists, an earlier rotation was interrupted and its key is reused, because
// some PANs may already be sealed with it. The caller then re-encrypts every
// stored PAN for which NeedsReencrypt is true, and calls FinishRotation.
func BeginRotation(path string) (*Vault, error) {
	cur, mode, err := ReadKeyFileMode(path)
	if err != nil {
		return nil, err
	}
	nextPath := path + NextSuffix
	next, err := ReadKeyFile(nextPath)
	if errors.Is(err, fs.ErrNotExist) {
		if next, err = GenerateKey(); err != nil {
			return nil, err
		}
		err = WriteKeyFileMode(nextPath, next, mode) // the new key belongs to the same deployment
		if errors.Is(err, fs.ErrExist) {
			// A concurrent BeginRotation won the race; join its rotation.
			next, err = ReadKeyFile(nextPath)
		}
	}
	if err != nil {
		return nil, err
	}
	if hmac.Equal(next, cur) {
		return nil, fmt.Errorf("vault: %s holds the same key as %s; remove %s and start the rotation again", nextPath, path, nextPath)
	}
	return New(next, cur)
}

// FinishRotation ends a rotation once every stored PAN is sealed with the new
// key: the old key is kept as path+".retired-<UTC time>" (backups made before
// the rotation still need it), then path+".next" becomes path.
//
// The old key is copied to the retired name and then replaced by an atomic
// rename, rather than renamed away first, so that path holds a valid key at
// every instant: a crash at any point leaves a state Load and FinishRotation
// can resume from.
func FinishRotation(path string, now time.Time) error {
	nextPath := path + NextSuffix
	next, err := ReadKeyFile(nextPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: no rotation in progress: %s does not exist", nextPath)
	}
	if err != nil {
		return err
	}
	cur, mode, err := ReadKeyFileMode(path)
	if err != nil {
		return err
	}
	if hmac.Equal(next, cur) {
		return fmt.Errorf("vault: %s holds the same key as %s; nothing to finish", nextPath, path)
	}
	retired := path + RetiredSuffix + now.UTC().Format(RetiredTimeFmt)
	if err := WriteKeyFileMode(retired, cur, mode); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		// A retry of an interrupted FinishRotation in the same second finds
		// its own copy; any other file of that name is not ours to replace.
		old, rerr := ReadKeyFile(retired)
		if rerr != nil || !hmac.Equal(old, cur) {
			return fmt.Errorf("vault: %s already exists and does not hold the current key; retry later", retired)
		}
	}
	if err := os.Rename(nextPath, path); err != nil {
		return fmt.Errorf("vault: installing the new key: %w", err)
	}
	syncDir(path)
	return nil
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
