package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/vault"
)

// maxSecretFile bounds what is read from a secret file.
const maxSecretFile = 64 << 10

// openSecretFile opens a file that holds a secret (a processor key, the
// session secret, the TLS key) and, in production, refuses it when other
// users may read or change it (SPEC §9): whoever reads it holds the secret.
// The group may read it (a TLS key shared with a proxy's group, say).
func openSecretFile(flagName, path string, mode ivrpay.Mode) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	// The open file's mode, not the path's: the file checked is the file read.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s %s is not a regular file", flagName, path)
	}
	// Windows has no Unix permission bits; Go reports every file there as 0666.
	if perm := fi.Mode().Perm(); mode == ivrpay.ModeProduction && perm&0o007 != 0 && runtime.GOOS != "windows" {
		f.Close()
		return nil, fmt.Errorf("%s %s has mode %04o: other users can read or change it, and production refuses that; run chmod 600 %s", flagName, path, perm, path)
	}
	return f, nil
}

// readSecretFile reads a secret file that openSecretFile accepts.
func readSecretFile(flagName, path string, mode ivrpay.Mode) ([]byte, error) {
	f, err := openSecretFile(flagName, path, mode)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s %s is larger than %d bytes; it is not a secret file", flagName, path, maxSecretFile)
	}
	return b, nil
}

// minSessionSecret is the shortest --session-secret-file accepted.
const minSessionSecret = 32

// sharedSecret is the secret every `ivrpay serve` process of a deployment
// shares: it keys the portal sign-in form's CSRF tokens and the hashes of
// the credentials the authentication limiter counts, so that a form served
// by one process is accepted by another and a credential's failures are one
// count. It is the contents of --session-secret-file when given; otherwise
// it is the vault key ring's shared secret, derived with HKDF-SHA256 from
// the vault key that was current when the ring began and kept by the ring
// through every rotation (every process holds the ring anyway; in
// production it began with an explicit production key, so the secret is
// never a sandbox's or a default). Deriving it means nothing more to
// distribute.
func sharedSecret(secretFile string, ring *vault.Keeper, mode ivrpay.Mode) ([]byte, error) {
	if secretFile != "" {
		b, err := readSecretFile("--session-secret-file", secretFile, mode)
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) < minSessionSecret {
			return nil, fmt.Errorf("--session-secret-file %s holds %d bytes; it needs at least %d random ones (head -c 32 /dev/urandom | base64 > session.key)", secretFile, len(b), minSessionSecret)
		}
		return b, nil
	}
	return ring.SharedSecret(), nil
}
