package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/vault"
)

// TestProductionGuards checks that production refuses sandbox-grade settings,
// each with one clear line and a non-zero exit, before opening anything.
func TestProductionGuards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "prod-vault.key")
	paymentstest.WriteVaultKey(t, keyFile)
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

// TestProductionRefusesSandboxKeyAndDatabase starts the real serve command
// on what a sandbox made — its vault key file (renamed, so the name does not
// give it away) and its database (with and without the recorded mode) — and
// checks the one-line refusal; then a production database refuses a sandbox.
func TestProductionRefusesSandboxKeyAndDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	prodKey := filepath.Join(dir, "prod.key")
	paymentstest.WriteVaultKey(t, prodKey) // by hand: no mode recorded
	sandboxKey := filepath.Join(dir, "sbx.key")
	if _, _, err := vault.LoadOrCreate(sandboxKey); err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(dir, "payments-prod.key")
	if err := os.Rename(sandboxKey, renamed); err != nil {
		t.Fatal(err)
	}
	// A sandbox database, as an admin command on the sandbox makes it.
	sandboxDB := filepath.Join(dir, "sandbox.db")
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"admin", "platform", "create", "--name", "Sbx", "--db", sandboxDB, "--vault-key-file", filepath.Join(dir, "other.key")}, &out, &errOut); code != 0 {
		t.Fatalf("admin platform create: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "sbx_apikey_") {
		t.Fatalf("no sandbox key printed: %s", out.String())
	}
	// The same database from before the mode was recorded: only its sbx_ ids tell.
	legacyDB := filepath.Join(dir, "legacy.db")
	copyFile(t, sandboxDB, legacyDB)
	db, err := sql.Open("sqlite", legacyDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM deployment`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	prod := []string{"serve", "--mode", "production", "--addr", "127.0.0.1:0", "--base-url", "https://pay.example.com", "--behind-proxy"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"renamed sandbox vault key", []string{"--vault-key-file", renamed, "--db", filepath.Join(dir, "fresh.db")}, "created by a sandbox deployment"},
		{"sandbox database", []string{"--vault-key-file", prodKey, "--db", sandboxDB}, "made by a sandbox deployment"},
		{"sandbox database without a recorded mode", []string{"--vault-key-file", prodKey, "--db", legacyDB}, "holds sandbox data (sbx_ ids)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(ctx, append(append([]string{}, prod...), tc.args...), &out, &errOut)
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and one line containing %q", code, errOut.String(), tc.want)
			}
		})
	}

	t.Run("production database refuses a sandbox", func(t *testing.T) {
		prodDB := filepath.Join(dir, "prod.db")
		withProcessorAccount(t, prodDB, prodKey)
		runCtx, cancel := context.WithCancel(ctx)
		var stderr paymentstest.LockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- runServe(runCtx, append(prod[1:], "--vault-key-file", prodKey, "--db", prodDB), io.Discard, &stderr)
		}()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), `"msg":"listening"`); time.Sleep(20 * time.Millisecond) {
			select {
			case code := <-done:
				t.Fatalf("production serve exited %d before listening: %s", code, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("production serve did not listen: %s", stderr.String())
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("production serve exited %d", code)
		}
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"serve", "--mode", "sandbox", "--addr", "127.0.0.1:0", "--db", prodDB, "--vault-key-file", filepath.Join(dir, "sbx2.key")}, &out, &errOut)
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		if code != 1 || !strings.Contains(lines[len(lines)-1], "made by a production deployment") || strings.Contains(out.String(), "apikey") {
			t.Fatalf("sandbox on a production database: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
