package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
)

// SessionCookie is the name of the portal's session cookie.
const SessionCookie = "ivrpay_portal"

// maxFormBytes bounds every form post.
const maxFormBytes = 64 << 10

// session is one signed-in browser's state, kept in this process's memory
// (sessionStore) or in a store every process shares (sharedSessions).
// Signed-out visitors have none: the sign-in form's token is stateless
// (signin.go), so anonymous traffic cannot fill or evict sessions.
type session struct {
	id      string
	csrf    string
	secret  string // the signed-in API key's secret; never sent to the browser
	created time.Time
	seen    time.Time
	// recentConfigs are the config ids this session created or opened, newest
	// first, for the IVR setup page's picker.
	recentConfigs []string
}

// sessionStore holds sessions by id.
type sessionStore struct {
	now          func() time.Time
	idle, maxAge time.Duration
	max          int

	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore(now func() time.Time, idle, maxAge time.Duration, max int) *sessionStore {
	return &sessionStore{now: now, idle: idle, maxAge: maxAge, max: max, m: map[string]*session{}}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errTooManySessions = errors.New("too many sessions")

// create starts a signed-in session for the key secret.
func (s *sessionStore) create(secret string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max {
		s.sweepLocked(now)
	}
	if len(s.m) >= s.max {
		return nil, errTooManySessions
	}
	sess := &session{id: randomToken(), csrf: randomToken(), secret: secret, created: now, seen: now}
	s.m[sess.id] = sess
	return sess, nil
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.seen) > s.idle || now.Sub(sess.created) > s.maxAge
}

func (s *sessionStore) sweepLocked(now time.Time) {
	for id, sess := range s.m {
		if s.expired(sess, now) {
			delete(s.m, id)
		}
	}
}

// get returns a copy of the live session with this id, touching it.
func (s *sessionStore) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return session{}, false
	}
	now := s.now()
	if s.expired(sess, now) {
		delete(s.m, id)
		return session{}, false
	}
	sess.seen = now
	c := *sess
	c.recentConfigs = slices.Clone(sess.recentConfigs)
	return c, true
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// rememberConfig puts a config id first in the session's recent list.
func (s *sessionStore) rememberConfig(id, configID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return
	}
	list := slices.DeleteFunc(sess.recentConfigs, func(c string) bool { return c == configID })
	list = append([]string{configID}, list...)
	if len(list) > 10 {
		list = list[:10]
	}
	sess.recentConfigs = list
}

func (p *Portal) setSessionCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/portal", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: p.overTLS(r)})
}

func (p *Portal) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/portal", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: p.overTLS(r)})
}

// currentSession returns the request's live session, if any.
func (p *Portal) currentSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return session{}, false
	}
	return p.sessions.get(c.Value)
}

// checkCSRF parses the form (at most maxFormBytes) and compares its
// csrf_token with the session's in constant time.
func (p *Portal) checkCSRF(w http.ResponseWriter, r *http.Request, sess session, ok bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return false
	}
	token := r.PostForm.Get("csrf_token")
	return ok && token != "" && sess.csrf != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// request is what an authenticated handler gets: the session, the signed-in
// key (authenticated again on every request, so a disabled key is signed out
// at once) and a context that carries the key for the services.
type request struct {
	*http.Request
	sess session
	key  *ivrpay.APIKey
}

// authed wraps a handler that needs a signed-in key. GETs without a session
// go to the sign-in page; POSTs must carry the session's csrf_token (403 otherwise).
func (p *Portal) authed(h func(w http.ResponseWriter, r *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := p.currentSession(r)
		if r.Method == http.MethodPost && !p.checkCSRF(w, r, sess, ok) {
			p.renderCSRFError(w, r)
			return
		}
		if !ok || sess.secret == "" {
			if r.Method == http.MethodPost {
				p.renderCSRFError(w, r)
				return
			}
			http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
			return
		}
		key, err := p.svc.Auth.Authenticate(r.Context(), sess.secret)
		if err != nil {
			if ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED {
				// The key was disabled or deleted since sign-in: the session ends.
				p.sessions.delete(sess.id)
				p.clearSessionCookie(w, r)
				http.Redirect(w, r, "/portal/signin?ended=1", http.StatusSeeOther)
				return
			}
			p.renderServiceError(w, r, nil, err)
			return
		}
		rq := &request{Request: r.WithContext(keyContext(r.Context(), key)), sess: sess, key: key}
		if field, nul := ivrpay.RequestNUL(r.PathValue("id"), r.URL.Query(), r.PostForm); nul {
			p.renderError(w, r, rq, http.StatusBadRequest, nulMessage(field))
			return
		}
		h(w, rq)
	})
}

// nulMessage refuses a NUL character (SPEC §9), naming the field only when
// its name is one a form of ours could have: a banner shows no text taken
// from the URL.
func nulMessage(field string) string {
	what := "A field"
	if field != "" && len(field) <= 40 && strings.Trim(field, "abcdefghijklmnopqrstuvwxyz_") == "" {
		what = "The field " + field
	}
	return what + " holds a NUL character, which no field accepts. Remove it and try again."
}

func (p *Portal) renderCSRFError(w http.ResponseWriter, r *http.Request) {
	p.renderError(w, r, nil, http.StatusForbidden,
		"This form could not be accepted: its csrf_token is missing or does not match your session (the session may have ended). Reload the page and try again.")
}

type signInData struct {
	Ended  bool
	Status int
}

func (p *Portal) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	if sess, ok := p.currentSession(r); ok && sess.secret != "" {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	// No session for a signed-out visitor: the form's token is stateless.
	p.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", CSRF: p.signInToken(w, r),
		Data: signInData{Ended: r.URL.Query().Get("ended") != ""}})
}

func (p *Portal) newSession(w http.ResponseWriter, r *http.Request, secret string) (session, error) {
	sess, err := p.sessions.create(secret)
	if err != nil {
		return session{}, err
	}
	p.setSessionCookie(w, r, sess.id)
	return *sess, nil
}

// handleSignIn checks the key with the same AuthService the REST API uses and
// counts failures in the same limiter, per client address.
func (p *Portal) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !p.checkSignInToken(w, r) {
		p.renderCSRFError(w, r)
		return
	}
	fail := func(status int, msg string) {
		p.render(w, r, status, "signin", &page{Title: "Sign in", CSRF: p.signInToken(w, r), Error: msg, Data: signInData{Status: status}})
	}
	addr := p.clientAddress(r)
	if p.opts.Limiter != nil {
		if left, blocked := p.opts.Limiter.Blocked(addr); blocked {
			w.Header().Set("Retry-After", retryAfter(left))
			fail(http.StatusTooManyRequests, "Too many failed sign-ins from your address. Try again in "+left.Round(time.Minute).String()+".")
			return
		}
	}
	secret := strings.TrimSpace(r.PostForm.Get("api_key"))
	if secret == "" {
		fail(http.StatusBadRequest, "Enter a platform API key.")
		return
	}
	key, err := p.svc.Auth.Authenticate(r.Context(), secret)
	if err != nil {
		switch ivrpay.ErrorCode(err) {
		case ivrpay.EUNAUTHORIZED:
			blocked := p.opts.Limiter != nil && p.opts.Limiter.Fail(addr)
			p.log.Info("portal sign-in refused", "client", addr)
			p.auditSignInFailure(r, addr, blocked)
			fail(http.StatusUnauthorized, "That API key was not accepted: "+ivrpay.ErrorMessage(err))
		case ivrpay.ERATELIMITED:
			fail(http.StatusTooManyRequests, ivrpay.ErrorMessage(err))
		default:
			p.renderServiceError(w, r, nil, err)
		}
		return
	}
	// A new session id on sign-in, so an id planted before sign-in is worthless.
	if old, ok := p.currentSession(r); ok {
		p.sessions.delete(old.id)
	}
	if _, err := p.newSession(w, r, secret); err != nil {
		fail(http.StatusServiceUnavailable, "The portal is busy; try again in a few minutes.")
		return
	}
	p.clearSignInCookie(w, r)
	p.log.Info("portal sign-in", "key_id", key.ID, "platform_id", key.PlatformID, "client", addr)
	http.Redirect(w, r, "/portal/", http.StatusSeeOther)
}

// auditSignInFailure records a refused sign-in like the REST API's 401s
// (actor anonymous, action auth.failure, outcome denied, the client address),
// aggregated per address when the limiter can.
func (p *Portal) auditSignInFailure(r *http.Request, addr string, blocked bool) {
	const route = "POST /portal/signin"
	if agg, ok := p.opts.Limiter.(AuditAggregator); ok && agg.AuditFailure(addr, route, blocked) {
		return
	}
	if p.svc.Audit == nil {
		return
	}
	detail := "route=" + route
	if blocked {
		detail += " blocked_for=" + httpapi.AuthBlockDuration.String()
	}
	if err := p.svc.Audit.RecordAudit(r.Context(), ivrpay.AuditEvent{Actor: ivrpay.ActorAnonymous, Action: "auth.failure",
		ClientAddress: addr, Outcome: ivrpay.AuditDenied, Detail: detail}); err != nil {
		p.log.Error("audit record failed", "error", err)
	}
}

func retryAfter(d time.Duration) string {
	s := int(d.Seconds())
	if s < 1 {
		s = 1
	}
	return itoa(s)
}

func (p *Portal) handleSignOut(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.currentSession(r)
	if !p.checkCSRF(w, r, sess, ok) {
		p.renderCSRFError(w, r)
		return
	}
	p.sessions.delete(sess.id)
	p.clearSessionCookie(w, r)
	http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
}
