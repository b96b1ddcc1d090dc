package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
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

// TestFailedSignInsAreAudited: a refused sign-in is an authentication
// failure like a REST 401: audited (aggregated per address when the limiter
// can) and counted in the limit.
func TestFailedSignInsAreAudited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		limiter  bool
		failures int
		rows     int
	}{
		{"without a limiter, one row each", false, 3, 3},
		{"with the limiter, aggregated per address", true, httpapi.AuthFailureLimit, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := envOptions{ivrEnabled: true}
			limiter := httpapi.NewAuthLimiter()
			if tc.limiter {
				o.limiter = limiter
			}
			e := setupWith(t, o)
			limiter.Audit = e.store
			c := e.newClient(t)
			for i := 0; i < tc.failures; i++ {
				token := c.get("/portal/signin").csrf(t)
				if p := c.post("/portal/signin", url.Values{"csrf_token": {token}, "api_key": {"sbx_apikey_" + strings.Repeat("0", 64)}}); p.status != http.StatusUnauthorized {
					t.Fatalf("failure %d: status %d", i+1, p.status)
				}
			}
			if err := limiter.FlushAudit(context.Background()); err != nil {
				t.Fatal(err)
			}
			events, err := e.store.ListAudit(context.Background(), ivrpay.AuditFilter{Action: "auth.failure"})
			if err != nil || len(events) != tc.rows {
				t.Fatalf("%d auth.failure rows (%v), want %d: %+v", len(events), err, tc.rows, events)
			}
			total := 0
			for _, ev := range events {
				if ev.Actor != ivrpay.ActorAnonymous || ev.Outcome != ivrpay.AuditDenied || ev.ClientAddress != "127.0.0.1" ||
					!strings.Contains(ev.Detail, "POST /portal/signin") || strings.Contains(ev.Detail, "apikey") {
					t.Fatalf("audit row %+v", ev)
				}
				if _, n, ok := strings.Cut(ev.Detail, "failures="); ok {
					k, _ := strconv.Atoi(strings.Fields(n)[0])
					total += k
				} else {
					total++
				}
			}
			if total != tc.failures {
				t.Fatalf("audit rows count %d failures, want %d", total, tc.failures)
			}
			if tc.limiter && !strings.Contains(events[0].Detail, "blocked_for") {
				t.Fatalf("the newest row does not note the block: %+v", events[0])
			}
		})
	}
}
