package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The sign-in form needs no server-side session: its CSRF token is
// stateless, so anonymous visitors hold nothing in the server's memory and a
// flood of them cannot evict anyone (SPEC §9). The token is
//
//	<expiry unix seconds> "." base64url(HMAC-SHA256(key, "signin|" nonce "|" expiry))
//
// where nonce is a random value in the browser's SignInCookie (HttpOnly,
// SameSite=Strict): a token only works with the cookie it was made for, so a
// page on another site can neither read nor forge one.

// SignInCookie holds the sign-in form's nonce.
const SignInCookie = "ivrpay_portal_signin"

// signInTokenTTL is how long a sign-in form stays valid.
const signInTokenTTL = time.Hour

// newSignInKey returns the HMAC key of sign-in tokens: Options.SignInSecret,
// or a random per-process key (a form served by one process is then signed
// in on that process, as its sessions are).
func newSignInKey(secret []byte) []byte {
	if len(secret) > 0 {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte("ivrpay portal sign-in v1"))
		return mac.Sum(nil)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return key
}

func (p *Portal) signInMAC(nonce string, expiry int64) []byte {
	mac := hmac.New(sha256.New, p.signInKey)
	mac.Write([]byte("signin|" + nonce + "|" + strconv.FormatInt(expiry, 10)))
	return mac.Sum(nil)
}

// signInToken returns a sign-in CSRF token bound to the browser's nonce
// cookie, setting a fresh cookie when the browser has none.
func (p *Portal) signInToken(w http.ResponseWriter, r *http.Request) string {
	nonce := ""
	if c, err := r.Cookie(SignInCookie); err == nil && validNonce(c.Value) {
		nonce = c.Value
	} else {
		nonce = randomToken()
		http.SetCookie(w, &http.Cookie{Name: SignInCookie, Value: nonce, Path: "/portal", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: p.overTLS(r)})
	}
	expiry := p.now().Add(signInTokenTTL).Unix()
	return strconv.FormatInt(expiry, 10) + "." + base64.RawURLEncoding.EncodeToString(p.signInMAC(nonce, expiry))
}

// checkSignInToken parses the form (at most maxFormBytes) and checks its
// csrf_token against the browser's nonce cookie, the key and the clock.
func (p *Portal) checkSignInToken(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return false
	}
	c, err := r.Cookie(SignInCookie)
	if err != nil || !validNonce(c.Value) {
		return false
	}
	expText, macText, ok := strings.Cut(r.PostForm.Get("csrf_token"), ".")
	if !ok {
		return false
	}
	expiry, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || p.now().Unix() > expiry || expiry > p.now().Add(signInTokenTTL).Unix() {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(macText)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, p.signInMAC(c.Value, expiry)) == 1
}

func (p *Portal) clearSignInCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SignInCookie, Value: "", Path: "/portal", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: p.overTLS(r)})
}

// validNonce accepts what randomToken makes: 43 base64url characters.
func validNonce(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
