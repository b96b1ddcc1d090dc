package vault_test

import (
	"bytes"
	"context"
	"errors"

	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// ringTest is a deployment's database and its first vault key, which each
// process of a test gets a key file copy of (as on hosts of their own).
type ringTest struct {
	t   *testing.T
	dsn string
	key []byte
}

func newRingTest(t *testing.T, engine string) *ringTest {
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &ringTest{t: t, dsn: paymentstest.DSN(t, engine), key: key}
}

// keyFile writes a copy of the first key into a directory of its own.
func (r *ringTest) keyFile() string {
	path := filepath.Join(r.t.TempDir(), "vault.key")
	if err := vault.WriteKeyFile(path, r.key); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// store opens a connection pool of the database of its own, like a process.
func (r *ringTest) store() *sqlstore.Store {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, r.dsn, sqlstore.Options{Mode: ivrpay.ModeSandbox})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

// process opens a keeper on path; a member runs its refresh loop until the
// test ends.
func (r *ringTest) process(path, member string) *vault.Keeper {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, _, err := vault.OpenKeeper(ctx, r.store(), path, vault.KeeperOptions{Member: member})
	if err != nil {
		r.t.Fatal(err)
	}
	if member != "" {
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			k.Run(runCtx)
		}()
		r.t.Cleanup(func() { stop(); <-done })
	}
	return k
}

func ringKeys(t *testing.T, path string) [][]byte {
	t.Helper()
	keys, _, err := vault.ReadKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestKeeperRotatesAcrossProcesses rotates the key of a deployment whose two
// serving processes each have a key file of their own and never see the
// rotating command's file: each learns the new key from the database, saves
// it in its own file, seals with it once it is current, and drops the old
// key for a retired copy beside its file. What either sealed before is
// re-encrypted; a process restarted on its file afterwards reads everything;
// and a host whose file missed the rotation is refused with a clear error.
func TestKeeperRotatesAcrossProcesses(t *testing.T) {
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRingTest(t, engine)
			fileA, fileB := r.keyFile(), r.keyFile()
			a, b := r.process(fileA, "a"), r.process(fileB, "b")
			oldID := a.KeyID()
			fp := a.Fingerprint("4111111111111111")
			shared := a.SharedSecret()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			secret, err := b.Encrypt("sk_test_sealedByB")
			if err != nil {
				t.Fatal(err)
			}
			store := r.store()
			if err := store.CreateProcessorAccount(ctx, ivrpay.ProcessorAccount{Name: "acct", Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: secret}); err != nil {
				t.Fatal(err)
			}

			admin := r.process(r.keyFile(), "")
			var said paymentstest.LockedBuffer
			res, err := admin.Rotate(ctx, &said)
			if err != nil {
				t.Fatalf("Rotate: %v\n%s", err, said.String())
			}
			if res.Processes != 2 || res.KeyID == oldID || len(res.Retired) != 1 || res.Retired[0] != oldID || res.Reencrypted["processor_accounts"] != 1 {
				t.Fatalf("Rotate = %+v\n%s", res, said.String())
			}
			if !strings.Contains(said.String(), "all 2 live processes hold key "+res.KeyID) {
				t.Errorf("progress does not say that both processes learned the key:\n%s", said.String())
			}
			for name, k := range map[string]*vault.Keeper{"a": a, "b": b} {
				waitFor(t, name+" to drop the retired key", func() bool {
					k.Sync(ctx)
					return k.KeyID() == res.KeyID && len(ringKeys(t, map[string]string{"a": fileA, "b": fileB}[name])) == 1
				})
				if k.Fingerprint("4111111111111111") != fp || !bytes.Equal(k.SharedSecret(), shared) {
					t.Errorf("%s: the fingerprint or the shared secret changed with the rotation", name)
				}
			}
			for _, f := range []string{fileA, fileB} {
				retired, _ := filepath.Glob(f + vault.RetiredSuffix + "*")
				if len(retired) != 1 {
					t.Fatalf("%s: retired copies %v, want one", f, retired)
				}
				if k, err := vault.ReadKeyFile(retired[0]); err != nil || !bytes.Equal(k, r.key) {
					t.Fatalf("%s: the retired copy is not the old key: %v", retired[0], err)
				}
			}
			acct, err := store.FindProcessorAccount(ctx, "acct")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(acct.SecretCiphertext, ":"+res.KeyID+":") {
				t.Fatal("the secret sealed before the rotation was not re-encrypted")
			}
			restarted := r.process(fileB, "")
			if got, err := restarted.Decrypt(acct.SecretCiphertext); err != nil || got != "sk_test_sealedByB" {
				t.Fatalf("a process restarted on b's key file: %q, %v", got, err)
			}
			if restarted.Fingerprint("4111111111111111") != fp {
				t.Fatal("the restarted process fingerprints differently")
			}

			_, _, err = vault.OpenKeeper(ctx, r.store(), r.keyFile(), vault.KeeperOptions{})
			var missing *vault.MissingKeyError
			if !errors.As(err, &missing) || missing.KeyID != res.KeyID || !strings.Contains(err.Error(), "copy the key file") {
				t.Fatalf("a key file that missed the rotation: %v", err)
			}
		})
	}
}

// TestKeeperRotationWaitsForWorkInFlight holds a piece of work that began
// under the old key open in one process: the rotation makes the new key
// current but does not re-encrypt while that work may still store what it
// sealed; run again once it is over, the rotation resumes with the same key
// and finishes.
func TestKeeperRotationWaitsForWorkInFlight(t *testing.T) {
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRingTest(t, engine)
			busy := r.process(r.keyFile(), "busy")
			oldID := busy.KeyID()
			done := busy.Begin()
			admin := r.process(r.keyFile(), "")
			var said paymentstest.LockedBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			if _, err := admin.Rotate(ctx, &said); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Rotate with work in flight = %v\n%s", err, said.String())
			}
			newID := admin.KeyID()
			if newID == oldID || busy.KeyID() != newID {
				t.Fatalf("the new key is not current: admin %s, busy %s, old %s", newID, busy.KeyID(), oldID)
			}
			if !strings.Contains(said.String(), "waiting for 1 of 1 live processes to seal with key "+newID) || strings.Contains(said.String(), "re-encrypted") {
				t.Fatalf("progress:\n%s", said.String())
			}
			done()
			ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := admin.Rotate(ctx, &said)
			if err != nil || res.KeyID != newID || len(res.Retired) != 1 || res.Retired[0] != oldID {
				t.Fatalf("resumed Rotate = %+v, %v\n%s", res, err, said.String())
			}
		})
	}
}

// TestKeeperRotationWaitsForUnsavedKey gives one process a key file it
// cannot update (its directory refuses the new file, as a read-only mount
// does): the process holds the new key in memory but does not report it,
// so the rotation never makes the key current, and says which process it
// waits for.
func TestKeeperRotationWaitsForUnsavedKey(t *testing.T) {
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRingTest(t, engine)
			// A name the file system takes, but not with the suffix of the
			// new file written beside it: ENAMETOOLONG, for root as well.
			stuck := filepath.Join(t.TempDir(), strings.Repeat("k", 246)+".key")
			if err := vault.WriteKeyFile(stuck, r.key); err != nil {
				t.Fatal(err)
			}
			r.process(stuck, "read-only-host")
			r.process(r.keyFile(), "writable-host")
			admin := r.process(r.keyFile(), "")
			oldID := admin.KeyID()
			var said paymentstest.LockedBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			if _, err := admin.Rotate(ctx, &said); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Rotate = %v\n%s", err, said.String())
			}
			if admin.KeyID() != oldID {
				t.Fatal("the new key became current although a process could not save it")
			}
			if !strings.Contains(said.String(), "waiting for 1 of 2 live processes to hold key") {
				t.Fatalf("progress:\n%s", said.String())
			}
			if keys := ringKeys(t, stuck); len(keys) != 1 {
				t.Fatalf("the read-only key file changed: %d keys", len(keys))
			}
		})
	}
}

// TestKeeperLearnsBeforeItNeeds covers a process that has not refreshed
// its ring since a rotation ended (its loop did not run): it still decrypts
// a ciphertext of the new key, found in the key file it shares with the
// host that rotated, and a short-lived command seals with the new key, not
// the retired one.
func TestKeeperLearnsBeforeItNeeds(t *testing.T) {
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := newRingTest(t, engine)
			shared := r.keyFile()
			idle := r.process(shared, "")
			oldID := idle.KeyID()
			admin := r.process(shared, "")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := admin.Rotate(ctx, &paymentstest.LockedBuffer{})
			if err != nil {
				t.Fatal(err)
			}
			ct, err := admin.Encrypt("5555555555554444")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := idle.Decrypt(ct); err != nil || got != "5555555555554444" {
				t.Fatalf("Decrypt of a new key's ciphertext: %q, %v", got, err)
			}
			sealed, err := idle.Encrypt("5555555555554444")
			if err != nil || !strings.Contains(sealed, ":"+res.KeyID+":") || strings.Contains(sealed, ":"+oldID+":") {
				t.Fatalf("a command sealed with %q (%v); want the new key %s", sealed, err, res.KeyID)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
