package vault

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// RotateWait is how long Rotate waits for the live processes at each step
// before it gives up (the rotation then resumes where it stopped when run
// again).
const RotateWait = 2 * time.Minute

// maxPasses bounds the re-encryption passes of one rotation: the first
// moves everything, a second finds what was written while the first ran
// (normally nothing, since every process sealed with the new key first).
const maxPasses = 5

// RotateResult is what a rotation did.
type RotateResult struct {
	// KeyID is the key that now seals everything.
	KeyID string `json:"key_id"`
	// Retired are the keys retired; nothing stored is sealed with them.
	Retired []string `json:"retired_key_ids"`
	// Reencrypted counts the ciphertexts moved to KeyID, per kind of secret.
	Reencrypted map[string]int `json:"reencrypted"`
	// Processes is how many live `ivrpay serve` processes learned the key.
	Processes int    `json:"processes"`
	KeyFile   string `json:"vault_key_file"`
}

// Rotate replaces the ring's current key while the deployment serves:
//  1. a new key is saved in this host's key file, then added to the ring in
//     the database, sealed by the current key;
//  2. once every live member (`ivrpay serve` process) holds it, saved in
//     its own key file, it becomes current; until then nobody seals with it;
//  3. once every live member seals with it (the work begun under the old
//     key being over), every stored ciphertext is re-encrypted under it, in
//     small transactions, until a pass finds none left;
//  4. the old key is retired: every process drops it and its key file keeps
//     it only as a retired copy (path.retired-<time>), for old backups.
//
// Fingerprints and the shared secret do not change. A rotation cut short (a
// timeout waiting for a process, a crash) resumes where it stopped when
// Rotate runs again; a second rotation is refused while one is under way
// elsewhere. progress gets a line per step.
func (k *Keeper) Rotate(ctx context.Context, progress io.Writer) (*RotateResult, error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, "vault rotate: "+format+"\n", args...) }
	if err := k.Sync(ctx); err != nil {
		return nil, err
	}
	keys, _, err := k.store.VaultRing(ctx)
	if err != nil {
		return nil, err
	}
	added, retiring := "", false
	for _, rk := range keys {
		switch rk.State {
		case ivrpay.VaultKeyAdded:
			added = rk.ID
		case ivrpay.VaultKeyRetiring:
			retiring = true
		}
	}
	if added == "" && !retiring {
		if added, err = k.addKey(ctx); err != nil {
			return nil, err
		}
		say("added key %s (sealed by key %s in the database, and in %s)", added, k.v.KeyID(), k.path)
	} else if added != "" {
		say("resuming the rotation to key %s", added)
	} else {
		say("resuming the re-encryption under key %s", k.v.KeyID())
	}
	res := &RotateResult{KeyFile: k.path, Reencrypted: map[string]int{}}
	if added != "" {
		if !k.v.Holds(added) {
			return nil, fmt.Errorf("vault: key %s of the rotation under way is neither in %s nor readable from the database", added, k.path)
		}
		n, err := k.await(ctx, say, "hold key "+added, func(m ivrpay.VaultMember) bool { return slices.Contains(m.Holds, added) })
		if err != nil {
			return nil, err
		}
		res.Processes = n
		if err := k.store.PromoteVaultKey(ctx, added); err != nil {
			return nil, err
		}
		if err := k.Sync(ctx); err != nil {
			return nil, err
		}
		say("key %s is current", added)
	}
	current := k.v.KeyID()
	n, err := k.await(ctx, say, "seal with key "+current, func(m ivrpay.VaultMember) bool { return m.Encrypts == current })
	if err != nil {
		return nil, err
	}
	res.Processes = max(res.Processes, n)
	for pass := 1; ; pass++ {
		moved, err := k.store.ReencryptVault(ctx, k.v.Reencrypt)
		if err != nil {
			return nil, fmt.Errorf("vault: re-encrypting under key %s: %w", current, err)
		}
		total := 0
		for kind, c := range moved {
			res.Reencrypted[kind] += c
			total += c
		}
		say("pass %d re-encrypted %d ciphertexts", pass, total)
		if total == 0 {
			break
		}
		if pass == maxPasses {
			return nil, fmt.Errorf("vault: ciphertexts under older keys still appeared after %d passes; run vault rotate again", maxPasses)
		}
	}
	if res.Retired, err = k.store.RetireVaultKeys(ctx); err != nil {
		return nil, err
	}
	if err := k.Sync(ctx); err != nil {
		return nil, err
	}
	if len(res.Retired) > 0 {
		say("retired key %s (kept as %s%s<time> for old backups)", strings.Join(res.Retired, ", "), k.path, RetiredSuffix)
	}
	res.KeyID = current
	return res, nil
}

// addKey makes a new key, saves it in the key file before anything can
// seal with it, and adds it to the database's ring sealed by the current
// key.
func (k *Keeper) addKey(ctx context.Context) (string, error) {
	raw, err := GenerateKey()
	if err != nil {
		return "", err
	}
	id, err := k.v.Add(raw)
	if err != nil {
		return "", err
	}
	k.syncMu.Lock()
	fileKeys, _, err := loadRing(k.path)
	if err == nil {
		err = WriteKeyRing(k.path, append(fileKeys, raw), k.mode)
	}
	k.syncMu.Unlock()
	if err != nil {
		return "", err
	}
	wrapped, err := k.v.Encrypt(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return "", err
	}
	if err := k.store.AddVaultKey(ctx, ivrpay.VaultKey{ID: id, State: ivrpay.VaultKeyAdded, Wrapped: wrapped}); err != nil {
		return "", err
	}
	return id, nil
}

// await waits until every live member satisfies done, saying who it waits
// for every few seconds; it returns how many live members there were.
func (k *Keeper) await(ctx context.Context, say func(string, ...any), what string, done func(ivrpay.VaultMember) bool) (int, error) {
	deadline := k.now().Add(RotateWait)
	var nextSay time.Time
	for {
		members, err := k.store.VaultMembers(ctx)
		if err != nil {
			return 0, err
		}
		now := k.now()
		live, pending := 0, []string(nil)
		for _, m := range members {
			if now.Sub(m.SeenAt) > liveFor {
				continue
			}
			live++
			if !done(m) {
				pending = append(pending, fmt.Sprintf("%s (holds %s, seals with %s)", m.ID, strings.Join(m.Holds, ","), m.Encrypts))
			}
		}
		if len(pending) == 0 {
			say("all %d live processes %s", live, what)
			return live, nil
		}
		if now.After(deadline) {
			return live, fmt.Errorf("vault: after %s, %d of %d live processes do not %s: %s; a process that cannot write its key file needs the key file of this host copied to it; run vault rotate again to resume",
				RotateWait, len(pending), live, what, strings.Join(pending, "; "))
		}
		if now.After(nextSay) {
			say("waiting for %d of %d live processes to %s", len(pending), live, what)
			nextSay = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return live, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
