package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/ivrpay/ivrpay/vault"
)

// minSessionSecret is the shortest --session-secret-file accepted.
const minSessionSecret = 32

// sharedSecret is the secret every `ivrpay serve` process of a deployment
// shares: it keys the portal sign-in form's CSRF tokens and the hashes of
// the credentials the authentication limiter counts, so that a form served
// by one process is accepted by another and a credential's failures are one
// count. It is the contents of --session-secret-file when given; otherwise
// it is derived with HKDF-SHA256 from the current vault key, which every
// process must share anyway (in production an explicit production key, so
// the secret is never a sandbox's or a default). Deriving it means nothing
// more to distribute; a file keeps it stable across vault key rotations.
func sharedSecret(secretFile, vaultKeyFile string) ([]byte, error) {
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("--session-secret-file: %w", err)
		}
		b = bytes.TrimSpace(b)
		if len(b) < minSessionSecret {
			return nil, fmt.Errorf("--session-secret-file %s holds %d bytes; it needs at least %d random ones (head -c 32 /dev/urandom | base64 > session.key)", secretFile, len(b), minSessionSecret)
		}
		return b, nil
	}
	key, err := vault.ReadKeyFile(vaultKeyFile)
	if err != nil {
		return nil, fmt.Errorf("derive the session secret from the vault key: %w", err)
	}
	return hkdf.Key(sha256.New, key, nil, "ivrpay shared session secret v1", 32)
}
