package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// authFixture is a platform of its own with its admin and a second key, so
// that a change made to one row's key or platform leaves the others alone.
type authFixture struct {
	platformID string
	adminCtx   context.Context
	key        *ivrpay.APIKey // with Secret
}

func newAuthFixture(t *testing.T, s *sqlstore.Store) authFixture {
	t.Helper()
	ctx := boundedContext(t)
	p, admin, err := s.CreatePlatform(ctx, "Auth cache platform", true)
	if err != nil {
		t.Fatalf("CreatePlatform: %v", err)
	}
	adminCtx := ivrpay.NewContextWithPrincipal(ctx, authenticate(t, s, admin.Secret))
	return authFixture{platformID: p.ID, adminCtx: adminCtx,
		key: createKey(t, s, adminCtx, platformStatement(p.ID, "", "payin:create", "payment_method:create"))}
}

// authChanges are the changes an authentication must come to see: the key's
// own status, and the platform it carries.
var authChanges = []struct {
	name   string
	change func(s *sqlstore.Store, f authFixture) error
	// seen reports whether an authentication's result shows the change.
	seen func(k *ivrpay.APIKey, err error) bool
}{
	{"key disabled by an operator", func(s *sqlstore.Store, f authFixture) error {
		_, err := s.DisableAPIKey(f.adminCtx, f.key.ID)
		return err
	}, refused},
	{"key disabled over the API", func(s *sqlstore.Store, f authFixture) error {
		_, err := s.SetAPIKeyStatus(f.adminCtx, f.key.ID, ivrpay.APIKeyStatusDisabled)
		return err
	}, refused},
	{"key deleted", func(s *sqlstore.Store, f authFixture) error {
		return s.DeleteAPIKey(f.adminCtx, f.key.ID)
	}, refused},
	{"platform's IVR payments disabled", func(s *sqlstore.Store, f authFixture) error {
		_, err := s.SetPlatformIVR(f.adminCtx, f.platformID, false)
		return err
	}, func(k *ivrpay.APIKey, err error) bool { return err == nil && !k.Platform.IVRPayments }},
	{"platform's minimum API version changed", func(s *sqlstore.Store, f authFixture) error {
		_, err := s.SetPlatformMinAPIVersion(f.adminCtx, f.platformID, ivrpay.APIVersion20230101)
		return err
	}, func(k *ivrpay.APIKey, err error) bool {
		return err == nil && k.Platform.MinAPIVersion == ivrpay.APIVersion20230101
	}},
}

// standingClock gives a store a fake clock that never moves, so that
// nothing expires from the authentication cache on a slow machine.
func standingClock(c *paymentstest.Config) {
	c.Clock = newFakeClock(time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC))
}

func refused(_ *ivrpay.APIKey, err error) bool { return ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED }

// describe is an authentication's result for a failure message.
func describe(k *ivrpay.APIKey, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("key %s %s, platform %+v", k.ID, k.Status, *k.Platform)
}

// TestAuthCacheBoundAcrossProcesses: a change another process (another Store
// on the same database) makes to a key or its platform is not seen by this
// process's authentications for less than sqlstore.AuthCacheFor after this
// process last read the key, and is seen once that period is over.
func TestAuthCacheBoundAcrossProcesses(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		clock := newFakeClock(time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC))
		opts := paymentstest.Options(t)
		opts.Clock = clock
		dsn := paymentstest.DSN(t, engine)
		s := openDSN(t, dsn, opts)
		other := openDSN(t, dsn, opts) // a second process on the same database
		// The rows share the clock: they run one after the other.
		for _, tc := range authChanges {
			t.Run(tc.name, func(t *testing.T) {
				f := newAuthFixture(t, s) // authenticates the key, at the clock's time
				if err := tc.change(other, f); err != nil {
					t.Fatalf("the other process's change: %v", err)
				}
				clock.Advance(sqlstore.AuthCacheFor - time.Nanosecond)
				if k, err := s.Authenticate(context.Background(), f.key.Secret); err != nil || tc.seen(k, err) {
					t.Fatalf("within %s another process's change is already seen (%s): the test does not reach the cache",
						sqlstore.AuthCacheFor, describe(k, err))
				}
				clock.Advance(time.Nanosecond)
				if k, err := s.Authenticate(context.Background(), f.key.Secret); !tc.seen(k, err) {
					t.Fatalf("%s after another process's change, this process does not see it: %s", sqlstore.AuthCacheFor, describe(k, err))
				}
			})
		}
	})
}

// TestAuthCacheSeesOwnChangesAtOnce: a change this process makes to a key or
// its platform is seen by its very next authentication, the key having been
// served from the cache just before.
func TestAuthCacheSeesOwnChangesAtOnce(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		standingClock(&opts)
		s := paymentstest.Open(t, engine, opts)
		for _, tc := range authChanges {
			t.Run(tc.name, func(t *testing.T) {
				f := newAuthFixture(t, s)
				before := s.Statements()
				if k, err := s.Authenticate(context.Background(), f.key.Secret); err != nil || tc.seen(k, err) {
					t.Fatalf("before the change: %s", describe(k, err))
				}
				if n := s.Statements() - before; n != 0 {
					t.Fatalf("before the change the key was read from the database (%d statements): the test does not reach the cache", n)
				}
				if err := tc.change(s, f); err != nil {
					t.Fatalf("the change: %v", err)
				}
				if k, err := s.Authenticate(context.Background(), f.key.Secret); !tc.seen(k, err) {
					t.Fatalf("the next authentication after this process's change does not see it: %s", describe(k, err))
				}
			})
		}
	})
}

// TestAuthCacheIsNotNegative: a key another process enables again works at
// once: refusals are never cached.
func TestAuthCacheIsNotNegative(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		standingClock(&opts)
		dsn := paymentstest.DSN(t, engine)
		s := openDSN(t, dsn, opts)
		other := openDSN(t, dsn, opts)
		f := newAuthFixture(t, other)
		if _, err := other.SetAPIKeyStatus(f.adminCtx, f.key.ID, ivrpay.APIKeyStatusDisabled); err != nil {
			t.Fatal(err)
		}
		_, err := s.Authenticate(context.Background(), f.key.Secret)
		wantCode(t, err, ivrpay.EUNAUTHORIZED)
		if _, err := other.SetAPIKeyStatus(f.adminCtx, f.key.ID, ivrpay.APIKeyStatusEnabled); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(context.Background(), f.key.Secret); err != nil {
			t.Fatalf("a key enabled again by another process is still refused, with the clock standing still: %v", err)
		}
	})
}

// TestAuthCacheHitIsACopy: callers change the key they get (the connector
// sets its Platform); neither a miss's key nor a hit's may change the next hit.
func TestAuthCacheHitIsACopy(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, standingClock)
		for _, tc := range []struct {
			name  string
			first func(t *testing.T) *ivrpay.APIKey
		}{
			{"the key of the read that filled the cache", func(t *testing.T) *ivrpay.APIKey {
				// This process's change empties the cache.
				if _, err := b.s.DisableAPIKey(b.adminCtx, b.ivrKey.ID); err != nil {
					t.Fatal(err)
				}
				before := b.s.Statements()
				k := authenticate(t, b.s, b.admin.Secret)
				if n := b.s.Statements() - before; n != 1 {
					t.Fatalf("the first authentication after a change ran %d statements, want 1 (a read)", n)
				}
				return k
			}},
			{"the key of a hit", func(t *testing.T) *ivrpay.APIKey { return authenticate(t, b.s, b.admin.Secret) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				first := tc.first(t)
				want, wantPlatform := *first, *first.Platform
				want.Platform = nil
				// change is what a caller may do to the key it got.
				change := func(k *ivrpay.APIKey) {
					k.Status, k.Secret, k.Session, k.PlatformID = "CHANGED", "changed", true, "plt_changed"
					k.Platform.IVRPayments, k.Platform.Name, k.Platform.MinAPIVersion = false, "Changed", ivrpay.APIVersion20230101
				}
				hit := func() *ivrpay.APIKey {
					t.Helper()
					before := b.s.Statements()
					k := authenticate(t, b.s, b.admin.Secret)
					if n := b.s.Statements() - before; n != 0 {
						t.Fatalf("an authentication ran %d statements: the test does not reach the cache", n)
					}
					return k
				}
				check := func(what string, k *ivrpay.APIKey) {
					t.Helper()
					if *k.Platform != wantPlatform {
						t.Fatalf("%s: platform = %+v, want %+v", what, *k.Platform, wantPlatform)
					}
					got := *k
					got.Platform = nil
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: key = %+v, want %+v", what, got, want)
					}
				}
				change(first)
				next := hit()
				check("a hit after a caller changed its key", next)
				other := hit()
				change(next)
				check("a hit while another request changes its own hit", other)
			})
		}
	})
}

// TestAuthCacheHoldsNoSecret: the cache is keyed by the secret's SHA-256, as
// the database is, and holds no secret anywhere.
func TestAuthCacheHoldsNoSecret(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine, standingClock) // authenticates the admin and the IVR key
		cached := b.s.AuthCached()
		for _, k := range []*ivrpay.APIKey{b.admin, b.ivrKey} {
			secret := k.Secret
			sum := sha256.Sum256([]byte(secret))
			if _, ok := cached[hex.EncodeToString(sum[:])]; !ok {
				t.Errorf("no cache entry under the SHA-256 of the secret of %s: the test does not reach the cache", k.ID)
			}
			for hash, k := range cached {
				if text := fmt.Sprintf("%s %#v %#v", hash, k, *k.Platform); strings.Contains(text, secret) {
					t.Errorf("the cache entry of key %s holds a key secret", k.ID)
				}
			}
		}
	})
}
