package vault

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
)

// RingStore is where the deployment's key ring is shared: the database every
// process of the deployment uses (sqlstore.Store implements it). It holds
// each key's id and state, never a key in clear.
type RingStore interface {
	// VaultRing returns the ring's keys and its stable secrets (name → vault
	// ciphertext); no keys on a database that never had a ring.
	VaultRing(ctx context.Context) ([]ivrpay.VaultKey, map[string]string, error)
	// InitVaultRing writes the first ring when there is none yet, and
	// does nothing when another process wrote one first.
	InitVaultRing(ctx context.Context, keys []ivrpay.VaultKey, secrets map[string]string) error
	// AddVaultKey adds a key in state added; an ECONFLICT while another
	// rotation is under way.
	AddVaultKey(ctx context.Context, k ivrpay.VaultKey) error
	// PromoteVaultKey makes the added key id current, and the current key
	// retiring.
	PromoteVaultKey(ctx context.Context, id string) error
	// RetireVaultKeys retires every retiring key, forgets every wrapped
	// key, audits the rotation, and returns the retired ids.
	RetireVaultKeys(ctx context.Context) ([]string, error)
	SaveVaultMember(ctx context.Context, m ivrpay.VaultMember) error
	RemoveVaultMember(ctx context.Context, id string) error
	VaultMembers(ctx context.Context) ([]ivrpay.VaultMember, error)
	// ReencryptVault passes every vault ciphertext the store keeps to
	// reencrypt, in batches that each commit on their own, stores the ones
	// it changed, and returns how many changed per kind of secret.
	ReencryptVault(ctx context.Context, reencrypt func(ciphertext string) (string, bool, error)) (map[string]int, error)
}

// Names of the ring's stable secrets in RingStore.
const (
	secretFingerprint = "fingerprint"
	secretShared      = "shared"
)

// Timings of the ring's membership. A member refreshes its ring every
// SyncEvery and reports at least every reportEvery; it seals only while its
// last refresh is under leaseFor old (else it refreshes first), and a
// rotation counts a member as live while its report is under liveFor old.
// liveFor exceeds leaseFor plus reportEvery, so a member a rotation no
// longer waits for can no longer seal with what it knew.
const (
	SyncEvery      = time.Second
	reportEvery    = 3 * time.Second
	leaseFor       = 10 * time.Second
	liveFor        = 15 * time.Second
	refreshTimeout = 5 * time.Second
)

// KeeperOptions are how a process takes part in the ring.
type KeeperOptions struct {
	// Create makes the key file, with a fresh sandbox key, when it is missing.
	Create bool
	// Member names the process among the ring's members: `ivrpay serve`
	// processes, which every rotation waits for. Short-lived commands (the
	// admin CLI) leave it empty.
	Member string
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Keeper is one process's vault kept in step with the deployment's key ring:
// it learns keys added to the ring (from the database, where a new key
// waits sealed by the current one, or from its key file), saves them in its
// key file, seals with the key the ring makes current once the work it began
// under the previous one is done, and drops retired keys. It implements
// ivrpay.Vault.
type Keeper struct {
	v      *Vault
	store  RingStore
	path   string
	mode   string
	member string
	log    *slog.Logger
	now    func() time.Time

	syncMu sync.Mutex // one Sync at a time; guards the fields below it
	// saved are the key ids the key file held when last read or written.
	saved      map[string]bool
	reported   ivrpay.VaultMember
	reportedAt time.Time
	// saveErrLogged is when a failure to update the key file was last logged.
	saveErrLogged time.Time
	// retiredCopies are the retired keys this process kept beside the key file.
	retiredCopies map[string]bool
	// secretsRead are the stable secrets' ciphertexts last decrypted.
	secretsRead map[string]string

	lastSync atomic.Int64 // Unix nanoseconds of the last Sync that succeeded
	// encrypts is the key id reported as the one this process seals with
	// (nil before the first Sync).
	encrypts atomic.Pointer[string]
	work     activity
}

var _ ivrpay.Vault = (*Keeper)(nil)

// MissingKeyError says that the key file lacks the ring's current key and
// the database no longer carries it.
type MissingKeyError struct {
	Path, KeyID string
	Holds       []string
}

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("vault: the key ring's current key %s is not in %s (it holds %s); copy the key file from a host whose processes served during the rotation, or from the host where `ivrpay admin vault rotate` ran",
		e.KeyID, e.Path, strings.Join(e.Holds, ", "))
}

// OpenKeeper loads the key file at path and joins the ring kept by store: a
// database without a ring gets one whose current key is the file's newest
// (and whose fingerprint key and shared secret are derived from it, as
// before the ring existed). created reports that the file was made (Create).
func OpenKeeper(ctx context.Context, store RingStore, path string, o KeeperOptions) (k *Keeper, created bool, err error) {
	var v *Vault
	if o.Create {
		v, created, err = LoadOrCreate(path)
	} else {
		v, err = Load(path)
	}
	if err != nil {
		return nil, false, err
	}
	mode, err := KeyFileMode(path)
	if err != nil {
		return nil, false, err
	}
	k = &Keeper{v: v, store: store, path: path, mode: mode, member: o.Member, log: o.Logger, now: o.Now, retiredCopies: map[string]bool{}}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if err := k.Sync(ctx); err != nil {
		return nil, created, err
	}
	return k, created, nil
}

// Encrypt seals with the ring's current key. A member whose ring was last
// refreshed longer ago than its lease refreshes it first: a rotation may
// have stopped waiting for it. A short-lived command, which no rotation
// waits for, refreshes it before every seal.
func (k *Keeper) Encrypt(pan string) (string, error) {
	lease := leaseFor
	if k.member == "" {
		lease = 0
	}
	if k.now().Sub(time.Unix(0, k.lastSync.Load())) > lease {
		if err := k.refreshSince(k.now()); err != nil {
			return "", fmt.Errorf("vault: the key ring could not be refreshed: %w", err)
		}
	}
	return k.v.Encrypt(pan)
}

// Decrypt opens ct; a ciphertext of a key this process has not learned yet
// (another process sealed with it first) refreshes the ring and tries again.
func (k *Keeper) Decrypt(ct string) (string, error) {
	asked := k.now()
	pt, err := k.v.Decrypt(ct)
	if errors.Is(err, ErrUnknownKey) && k.refreshSince(asked) == nil {
		pt, err = k.v.Decrypt(ct)
	}
	return pt, err
}

// Fingerprint is the ring's keyed fingerprint of pan (Vault.Fingerprint).
func (k *Keeper) Fingerprint(pan string) string { return k.v.Fingerprint(pan) }

// KeyID is the id of the key this process seals with.
func (k *Keeper) KeyID() string { return k.v.KeyID() }

// SharedSecret is the ring's shared secret (Vault.SharedSecret).
func (k *Keeper) SharedSecret() []byte { return k.v.SharedSecret() }

// String names the keeper by its current key id only.
func (k *Keeper) String() string { return "vault.Keeper(key " + k.v.KeyID() + ")" }

// Begin marks work that may seal with the current key and store the result
// (a request, a worker's pass); call the returned function when it is over.
// A member reports sealing with a new key only once every piece of work
// begun before the switch is over, so that a rotation never retires a key
// while a ciphertext it sealed is still on its way to the database.
func (k *Keeper) Begin() (done func()) { return k.work.begin() }

// Run refreshes the ring every SyncEvery until ctx ends, then leaves the
// membership. Failures are logged with a back-off.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	var failing backoffLog
	for {
		select {
		case <-ctx.Done():
			if k.member != "" {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
				k.store.RemoveVaultMember(rctx, k.member)
				cancel()
			}
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		err := k.Sync(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if failing.due(k.now()) {
				k.log.Error("vault key ring could not be refreshed; it is tried again every second", "error", err, "failures", failing.n)
			}
		} else {
			failing = backoffLog{}
		}
	}
}

// backoffLog tells which of a run of repeated failures to log: the 1st,
// 2nd, 4th, 8th… and then one a minute.
type backoffLog struct {
	n    int
	next time.Time
}

func (b *backoffLog) due(now time.Time) bool {
	b.n++
	if b.n&(b.n-1) == 0 || now.After(b.next) {
		b.next = now.Add(time.Minute)
		return true
	}
	return false
}

// refreshSince syncs the ring unless a Sync has succeeded since t (another
// caller refreshed it meanwhile).
func (k *Keeper) refreshSince(t time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	return k.sync(ctx, t)
}

// Sync brings this process's ring in step with the deployment's once: keys
// in the key file or waiting in the database are learned and saved in the
// key file, the database's current key becomes the one this process seals
// with, retired keys are dropped (kept beside the key file as retired
// copies), and a member reports what it holds.
func (k *Keeper) Sync(ctx context.Context) error { return k.sync(ctx, time.Time{}) }

func (k *Keeper) sync(ctx context.Context, unlessSince time.Time) error {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	if !unlessSince.IsZero() && k.lastSync.Load() >= unlessSince.UnixNano() {
		return nil
	}
	fileKeys, _, err := loadRing(k.path)
	if err != nil {
		return err
	}
	keys, secrets, err := k.store.VaultRing(ctx)
	if err != nil {
		return fmt.Errorf("vault: reading the key ring: %w", err)
	}
	if len(keys) == 0 {
		if err := k.initRing(ctx, fileKeys); err != nil {
			return err
		}
		if keys, secrets, err = k.store.VaultRing(ctx); err != nil {
			return fmt.Errorf("vault: reading the key ring: %w", err)
		}
	}
	current := ""
	retired := map[string]bool{}
	for _, rk := range keys {
		switch rk.State {
		case ivrpay.VaultKeyCurrent:
			current = rk.ID
		case ivrpay.VaultKeyRetired:
			retired[rk.ID] = true
		}
	}
	// Keys the operator or another process of this host put in the file.
	// A retired one is kept beside it as a retired copy (once) and leaves it.
	inFile := map[string]bool{}
	var fileOrder []string
	for _, raw := range fileKeys {
		id := keyID(raw)
		if inFile[id] {
			continue
		}
		inFile[id] = true
		fileOrder = append(fileOrder, id)
		if retired[id] {
			if !k.retiredCopies[id] {
				if err := WriteRetiredKey(k.path, raw, k.mode, k.now()); err != nil {
					k.logSaveError(err)
				} else {
					k.retiredCopies[id] = true
				}
			}
			continue
		}
		if !k.v.Holds(id) {
			if _, err := k.v.Add(raw); err != nil {
				return err
			}
		}
	}
	for _, rk := range keys {
		if rk.State != ivrpay.VaultKeyRetired && !k.v.Holds(rk.ID) && rk.Wrapped != "" {
			if err := k.unwrap(rk); err != nil {
				k.log.Warn("vault key waiting in the database cannot be read yet", "key_id", rk.ID, "error", err)
			}
		}
	}
	if current == "" {
		return errors.New("vault: the database's key ring has no current key")
	}
	if !k.v.Holds(current) {
		return &MissingKeyError{Path: k.path, KeyID: current, Holds: fileOrder}
	}
	if err := k.loadStableSecrets(secrets); err != nil {
		return err
	}
	for id := range retired {
		if id != current && k.v.Holds(id) {
			k.v.Drop(id)
		}
	}
	k.saveFile(fileOrder, inFile)
	switch {
	case k.encrypts.Load() == nil:
		// The first Sync: nothing has begun under another key.
		k.v.Use(current)
		k.encrypts.Store(&current)
	case k.v.KeyID() != current:
		k.v.Use(current)
		go func() {
			k.work.waitEarlier()
			if k.v.KeyID() == current {
				k.encrypts.Store(&current)
			}
		}()
	}
	if err := k.report(ctx); err != nil {
		return err
	}
	k.lastSync.Store(k.now().UnixNano())
	return nil
}

// initRing writes the first ring of a database: the key file's newest key
// is current, its older keys are retiring (a rotation from before the ring
// may have left ciphertexts under them), and the fingerprint key and shared
// secret are derived from the current key, as a single key derived them.
func (k *Keeper) initRing(ctx context.Context, fileKeys [][]byte) error {
	newest := fileKeys[len(fileKeys)-1]
	id := keyID(newest)
	if err := k.v.Use(id); err != nil {
		return err
	}
	fp, shared := derivedSecrets(newest)
	secrets := map[string]string{}
	for name, b := range map[string][]byte{secretFingerprint: fp, secretShared: shared} {
		ct, err := k.v.Encrypt(base64.StdEncoding.EncodeToString(b))
		if err != nil {
			return err
		}
		secrets[name] = ct
	}
	ring := []ivrpay.VaultKey{{ID: id, State: ivrpay.VaultKeyCurrent}}
	for _, raw := range fileKeys[:len(fileKeys)-1] {
		if other := keyID(raw); other != id {
			ring = append(ring, ivrpay.VaultKey{ID: other, State: ivrpay.VaultKeyRetiring})
		}
	}
	if err := k.store.InitVaultRing(ctx, ring, secrets); err != nil {
		return fmt.Errorf("vault: starting the key ring: %w", err)
	}
	return nil
}

// unwrap learns a key the database carries sealed by an older key.
func (k *Keeper) unwrap(rk ivrpay.VaultKey) error {
	text, err := k.v.Decrypt(rk.Wrapped)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != KeySize || keyID(raw) != rk.ID {
		return fmt.Errorf("vault: the key the database carries as %s is not that key", rk.ID)
	}
	_, err = k.v.Add(raw)
	return err
}

func (k *Keeper) loadStableSecrets(secrets map[string]string) error {
	if maps.Equal(secrets, k.secretsRead) {
		return nil
	}
	var out [2][]byte
	for i, name := range []string{secretFingerprint, secretShared} {
		ct, ok := secrets[name]
		if !ok {
			return fmt.Errorf("vault: the database's key ring has no %s secret", name)
		}
		text, err := k.v.Decrypt(ct)
		if err != nil {
			return fmt.Errorf("vault: the key ring's %s secret: %w", name, err)
		}
		if out[i], err = base64.StdEncoding.DecodeString(text); err != nil || len(out[i]) != KeySize {
			return fmt.Errorf("vault: the key ring's %s secret is malformed", name)
		}
	}
	k.v.setStableSecrets(out[0], out[1])
	k.secretsRead = secrets
	return nil
}

// saveFile makes the key file hold the keys the ring holds, in the file's
// order, learned keys last. A file that cannot be written (a read-only
// mount) is logged: the process keeps the keys in memory but does not
// report them, so that a rotation waits until the operator has copied the
// new key file there.
func (k *Keeper) saveFile(fileOrder []string, inFile map[string]bool) {
	held := k.v.KeyIDs()
	var order []string
	for _, id := range fileOrder {
		if k.v.Holds(id) {
			order = append(order, id)
		}
	}
	for _, id := range held {
		if !inFile[id] {
			order = append(order, id)
		}
	}
	k.saved = inFile
	if slices.Equal(order, fileOrder) {
		return
	}
	keys := make([][]byte, len(order))
	for i, id := range order {
		keys[i] = k.v.material(id)
	}
	if err := WriteKeyRing(k.path, keys, k.mode); err != nil {
		k.logSaveError(err)
		return
	}
	k.saveErrLogged = time.Time{}
	k.saved = map[string]bool{}
	for _, id := range order {
		k.saved[id] = true
	}
}

// logSaveError logs a failure to update the key file when the failures
// begin, then at most every ten minutes while they go on.
func (k *Keeper) logSaveError(err error) {
	if now := k.now(); now.After(k.saveErrLogged.Add(10 * time.Minute)) {
		k.saveErrLogged = now
		k.log.Error("vault key file cannot be updated; copy the deployment's key file here before restarting", "path", k.path, "error", err)
	}
}

// report tells the ring what this member holds (saved in its key file) and
// seals with, when that changed or every reportEvery.
func (k *Keeper) report(ctx context.Context) error {
	if k.member == "" {
		return nil
	}
	m := ivrpay.VaultMember{ID: k.member, Encrypts: *k.encrypts.Load(), SeenAt: k.now()}
	for _, id := range k.v.KeyIDs() {
		if k.saved[id] {
			m.Holds = append(m.Holds, id)
		}
	}
	if slices.Equal(m.Holds, k.reported.Holds) && m.Encrypts == k.reported.Encrypts && m.SeenAt.Sub(k.reportedAt) < reportEvery {
		return nil
	}
	if err := k.store.SaveVaultMember(ctx, m); err != nil {
		return fmt.Errorf("vault: reporting to the key ring: %w", err)
	}
	k.reported, k.reportedAt = m, m.SeenAt
	return nil
}

// MemberName names this process among the ring's members: host, process id
// and a random suffix (a restarted process is a new member).
func MemberName() string {
	host, _ := os.Hostname()
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), base64.RawURLEncoding.EncodeToString(b[:]))
}

// activity counts the work in flight by the epoch it began in, so that a
// switch of the sealing key can wait for the work begun before it.
type activity struct {
	mu    sync.Mutex
	epoch uint64
	open  map[uint64]int
}

func (a *activity) begin() func() {
	a.mu.Lock()
	e := a.epoch
	if a.open == nil {
		a.open = map[uint64]int{}
	}
	a.open[e]++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			if a.open[e]--; a.open[e] == 0 {
				delete(a.open, e)
			}
			a.mu.Unlock()
		})
	}
}

// waitEarlier waits until every piece of work begun before the call is over.
func (a *activity) waitEarlier() {
	a.mu.Lock()
	target := a.epoch
	a.epoch++
	a.mu.Unlock()
	for {
		a.mu.Lock()
		busy := false
		for e := range a.open {
			if e <= target {
				busy = true
				break
			}
		}
		a.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
