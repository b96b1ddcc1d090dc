package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"slices"
	"time"

	"github.com/ivrpay/ivrpay"
)

// SessionStore keeps signed-in sessions where every server process reads
// them (sqlstore implements it over the database), so that a session
// started on one process works on every other, and signing out or disabling
// the key ends it on all of them.
type SessionStore interface {
	// CreatePortalSession stores s after deleting the sessions expired by
	// the cutoffs; it refuses (ERATELIMITED) when max live sessions exist.
	CreatePortalSession(ctx context.Context, s ivrpay.PortalSession, max int, idleBefore, createdBefore time.Time) error
	// FindPortalSession returns a session by its id hash (ENOTFOUND when none).
	FindPortalSession(ctx context.Context, idHash string) (*ivrpay.PortalSession, error)
	TouchPortalSession(ctx context.Context, idHash string, seen time.Time) error
	SetPortalSessionConfigs(ctx context.Context, idHash string, configs []string) error
	DeletePortalSession(ctx context.Context, idHash string) error
}

// sessionKeeper is where the portal keeps sessions: this process's memory
// (sessionStore) or a SessionStore shared by every process (sharedSessions).
type sessionKeeper interface {
	create(secret string) (*session, error)
	get(id string) (session, bool)
	delete(id string)
	rememberConfig(id, configID string)
}

// touchEvery is how stale a shared session's last-seen time may get before a
// request writes it again: the idle timeout is an hour, so a minute's
// precision saves a write on nearly every request.
const touchEvery = time.Minute

// sessionOpTimeout bounds each shared session read or write.
const sessionOpTimeout = 5 * time.Second

// sharedSessions keeps sessions in a SessionStore. The cookie's session id is
// stored only as its SHA-256, and the key secret only as vault ciphertext.
type sharedSessions struct {
	store        SessionStore
	vault        ivrpay.Vault
	now          func() time.Time
	idle, maxAge time.Duration
	max          int
	log          *slog.Logger
}

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func (s *sharedSessions) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), sessionOpTimeout)
}

func (s *sharedSessions) create(secret string) (*session, error) {
	ct, err := s.vault.Encrypt(secret)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sess := &session{id: randomToken(), csrf: randomToken(), secret: secret, created: now, seen: now}
	ctx, cancel := s.ctx()
	defer cancel()
	err = s.store.CreatePortalSession(ctx, ivrpay.PortalSession{IDHash: hashSessionID(sess.id), CSRF: sess.csrf, KeySecret: ct,
		Created: now, Seen: now}, s.max, now.Add(-s.idle), now.Add(-s.maxAge))
	if ivrpay.ErrorCode(err) == ivrpay.ERATELIMITED {
		return nil, errTooManySessions
	}
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// get returns the live session with this id. An expired one is deleted; a
// session whose secret no longer decrypts (the vault key was replaced
// without its predecessor) is signed out.
func (s *sharedSessions) get(id string) (session, bool) {
	if id == "" || !validNonce(id) {
		return session{}, false
	}
	ctx, cancel := s.ctx()
	defer cancel()
	h := hashSessionID(id)
	ps, err := s.store.FindPortalSession(ctx, h)
	if err != nil {
		if ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND {
			s.log.Error("portal session read failed", "error", err)
		}
		return session{}, false
	}
	now := s.now()
	if now.Sub(ps.Seen) > s.idle || now.Sub(ps.Created) > s.maxAge {
		s.delete(id)
		return session{}, false
	}
	secret, err := s.vault.Decrypt(ps.KeySecret)
	if err != nil {
		s.delete(id)
		return session{}, false
	}
	if now.Sub(ps.Seen) >= touchEvery {
		if err := s.store.TouchPortalSession(ctx, h, now); err != nil {
			s.log.Error("portal session touch failed", "error", err)
		}
	}
	return session{id: id, csrf: ps.CSRF, secret: secret, created: ps.Created, seen: now, recentConfigs: ps.RecentConfigs}, true
}

func (s *sharedSessions) delete(id string) {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.store.DeletePortalSession(ctx, hashSessionID(id)); err != nil {
		s.log.Error("portal session delete failed", "error", err)
	}
}

func (s *sharedSessions) rememberConfig(id, configID string) {
	ctx, cancel := s.ctx()
	defer cancel()
	h := hashSessionID(id)
	ps, err := s.store.FindPortalSession(ctx, h)
	if err != nil {
		return
	}
	list := slices.DeleteFunc(ps.RecentConfigs, func(c string) bool { return c == configID })
	list = append([]string{configID}, list...)
	if len(list) > 10 {
		list = list[:10]
	}
	if err := s.store.SetPortalSessionConfigs(ctx, h, list); err != nil {
		s.log.Error("portal session update failed", "error", err)
	}
}
