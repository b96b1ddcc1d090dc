package main

import (
	"bytes"
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
// it is the vault key ring's shared secret, derived with HKDF-SHA256 from
// the vault key that was current when the ring began and kept by the ring
// through every rotation (every process holds the ring anyway; in
// production it began with an explicit production key, so the secret is
// never a sandbox's or a default). Deriving it means nothing more to
// distribute.
func sharedSecret(secretFile string, ring *vault.Keeper) ([]byte, error) {
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
	return ring.SharedSecret(), nil
}
