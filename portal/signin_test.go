package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAnonymousFloodDoesNotStopSignIns is the attack of issue 12: anonymous
// GET /portal/signin past the session cap used to evict every signed-out
// visitor's session, whose sign-in then failed with 403. The sign-in form's
// token is stateless now: the flood holds nothing on the server.
func TestAnonymousFloodDoesNotStopSignIns(t *testing.T) {
	t.Parallel()
	const maxSessions = 20
	e := setupWith(t, envOptions{ivrEnabled: true, maxSessions: maxSessions})
	visitor := e.newClient(t)
	form := visitor.get("/portal/signin")
	if form.status != http.StatusOK {
		t.Fatalf("sign-in page: %d", form.status)
	}
	// Signed-in users are there too, up to half the cap.
	for i := 0; i < maxSessions/2; i++ {
		e.newClient(t).signIn(e.admin.Secret)
	}
	for i := 0; i < 5*maxSessions; i++ {
		if p := e.newClient(t).get("/portal/signin"); p.status != http.StatusOK {
			t.Fatalf("anonymous visit %d: status %d", i, p.status)
		}
	}
	home := visitor.post("/portal/signin", url.Values{"csrf_token": {form.csrf(t)}, "api_key": {e.admin.Secret}})
	if home.status != http.StatusOK || home.url.Path != "/portal/" {
		t.Fatalf("sign-in after the flood: status %d at %s:\n%s", home.status, home.url, home.text())
	}
}

// TestSignInTokenIsBoundToTheBrowser checks the stateless token: it works
// only with the nonce cookie it was made for, and cannot be altered.
func TestSignInTokenIsBoundToTheBrowser(t *testing.T) {
	t.Parallel()
	e := setup(t)
	alice, mallory := e.newClient(t), e.newClient(t)
	aliceToken := alice.get("/portal/signin").csrf(t)
	malloryToken := mallory.get("/portal/signin").csrf(t)
	expiry, mac, _ := strings.Cut(aliceToken, ".")
	for _, tc := range []struct{ name, token string }{
		{"another browser's token", malloryToken},
		{"altered expiry", "9" + expiry + "." + mac},
		{"altered signature", expiry + "." + strings.Repeat("A", len(mac))},
		{"no token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := alice.post("/portal/signin", url.Values{"csrf_token": {tc.token}, "api_key": {e.admin.Secret}}); p.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", p.status)
			}
		})
	}
	t.Run("a browser without the cookie", func(t *testing.T) {
		stranger := e.newClient(t)
		if p := stranger.post("/portal/signin", url.Values{"csrf_token": {aliceToken}, "api_key": {e.admin.Secret}}); p.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", p.status)
		}
	})
	if p := alice.post("/portal/signin", url.Values{"csrf_token": {aliceToken}, "api_key": {e.admin.Secret}}); p.url.Path != "/portal/" {
		t.Fatalf("alice's own token: ended at %s (status %d)", p.url, p.status)
	}
}
