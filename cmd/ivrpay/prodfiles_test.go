package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestProductionFilePermissions runs the binary in production: every
// secret file other users can read is refused with one line (a processor
// key, the session secret, the TLS key, the vault key), the same files
// readable by their owner alone are accepted, and the SQLite database and
// the -wal and -shm files beside it are created readable by their owner
// alone.
func TestProductionFilePermissions(t *testing.T) {
	t.Parallel()
	bin := buildIvrpay(t)
	dir := t.TempDir()
	db, keyFile := filepath.Join(dir, "prod.db"), filepath.Join(dir, "vault.key")
	paymentstest.WriteVaultKey(t, keyFile)
	write := func(name string, content []byte, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil { // WriteFile's mode is subject to umask
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := selfSignedCert(t)
	tlsCert := write("tls.crt", certPEM, 0o644)
	run := func(args ...string) (int, string) {
		t.Helper()
		code, _, stderr := runBinary(t, bin, args...)
		return code, stderr
	}
	admin := []string{"admin", "--mode", "production", "--db", db, "--vault-key-file", keyFile}
	serve := []string{"serve", "--mode", "production", "--db", db, "--vault-key-file", keyFile, "--addr", "127.0.0.1:0", "--base-url", "https://pay.example.com"}

	// The first command creates the database; production serves only with an account.
	if code, stderr := run(append(admin, "processor", "add", "--name", "stripe-main", "--kind", "stripe", "--api-base", "https://127.0.0.1:9",
		"--secret-key-file", write("stripe.key", []byte("sk_live_51OwnerOnly"), 0o600))...); code != 0 {
		t.Fatalf("processor add with a private key file: exit %d, %s", code, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"processor key", append(admin, "processor", "add", "--name", "stripe-other", "--kind", "stripe", "--api-base", "https://127.0.0.1:9",
			"--secret-key-file", write("stripe-open.key", []byte("sk_live_51OpenToAll"), 0o644))},
		{"session secret", append(serve, "--behind-proxy", "--session-secret-file", write("session-open.key", bytes.Repeat([]byte("s"), 40), 0o604))},
		{"TLS key", append(serve, "--tls-cert", tlsCert, "--tls-key", write("tls-open.key", keyPEM, 0o644))},
		{"vault key", append(append([]string{}, serve[:5]...), "--vault-key-file", write("vault-open.key", []byte(strings.Repeat("A", 43)+"=\n"), 0o644),
			"--addr", "127.0.0.1:0", "--base-url", "https://pay.example.com", "--behind-proxy")},
	} {
		t.Run(tc.name+" readable by others", func(t *testing.T) {
			code, stderr := run(tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 1 || len(lines) != 1 || !(strings.Contains(stderr, "other users can read") || strings.Contains(stderr, "read by group or others")) {
				t.Fatalf("exit %d, stderr %q; want 1 and one line refusing the file", code, stderr)
			}
		})
	}

	srv := awaitListening(t, spawnServe(t, bin, nil, append(serve[1:], "--tls-cert", tlsCert, "--tls-key", write("tls.key", keyPEM, 0o600),
		"--session-secret-file", write("session.key", bytes.Repeat([]byte("s"), 40), 0o640))...))
	defer srv.kill()
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), perm)
		}
	}
}

// selfSignedCert is a TLS certificate and key for 127.0.0.1, in PEM.
func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
