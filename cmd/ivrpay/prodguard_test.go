package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/vault"
)

// TestProductionGuards checks that production refuses sandbox-grade settings,
// each with one clear line and a non-zero exit, before opening anything.
func TestProductionGuards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "prod-vault.key")
	if err := vault.WriteKeyFile(keyFile, key); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "prod.db")
	// Checked after the parallel subtests have run.
	t.Cleanup(func() {
		if _, err := os.Stat(db); err == nil {
			t.Error("a refused production start created the database")
		}
	})
	base := []string{"serve", "--mode", "production", "--db", db, "--addr", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no vault key", []string{"--base-url", "https://pay.example.com", "--behind-proxy"}, "--vault-key-file is required"},
		{"sandbox vault key", []string{"--vault-key-file", filepath.Join(dir, "ivrpay-vault.key"), "--base-url", "https://pay.example.com", "--behind-proxy"}, "auto-created sandbox key"},
		{"no base url", []string{"--vault-key-file", keyFile, "--behind-proxy"}, "--base-url must be the public https:// URL"},
		{"http base url", []string{"--vault-key-file", keyFile, "--base-url", "http://pay.example.com", "--behind-proxy"}, "--base-url must be the public https:// URL"},
		{"plain http", []string{"--vault-key-file", keyFile, "--base-url", "https://pay.example.com"}, "plain HTTP is refused"},
		{"cert without key", []string{"--vault-key-file", keyFile, "--base-url", "https://pay.example.com", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"missing vault key file", []string{"--vault-key-file", filepath.Join(dir, "absent.key"), "--base-url", "https://pay.example.com", "--behind-proxy"}, "absent.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(context.Background(), append(append([]string{}, base...), tc.args...), &out, &errOut)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr = %q, want one line containing %q", errOut.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout = %q, want nothing (no bootstrap secrets in production)", out.String())
			}
		})
	}
}
