package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/portal"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	for _, path := range []string{"/portal/signin", "/portal/static/portal.css", "/portal/nowhere"} {
		t.Run(path, func(t *testing.T) {
			c := c.on(t)
			p := c.get(path)
			for h, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
			} {
				if got := p.header.Get(h); got != want {
					t.Errorf("GET %s: %s = %q, want %q", path, h, got, want)
				}
			}
		})
	}
	if p := c.get("/portal/signin"); p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("sign-in page Cache-Control = %q, want no-store", p.header.Get("Cache-Control"))
	}
	// Nothing is loaded from elsewhere: every script and stylesheet is the portal's own.
	p := c.get("/portal/signin")
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		if !strings.HasPrefix(m[1], "/portal") {
			t.Errorf("sign-in page refers to %s outside the portal", m[1])
		}
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") {
		t.Error("inline script or style on the sign-in page: the CSP forbids them")
	}
}

func TestCSRFTokenRequiredOnEveryPost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)

	// The sign-in form carries a token too.
	c.get("/portal/signin")
	if p := c.post("/portal/signin", url.Values{"api_key": {e.admin.Secret}}); p.status != http.StatusForbidden {
		t.Fatalf("sign-in without csrf_token: status %d, want 403", p.status)
	}
	token := c.signIn(e.admin.Secret)

	form := url.Values{"name": {"No Token Ltd"}}
	if p := c.post("/portal/merchants", form); p.status != http.StatusForbidden {
		t.Errorf("create merchant without csrf_token: status %d, want 403", p.status)
	} else {
		mustContain(t, p, "csrf_token")
	}
	form.Set("csrf_token", token+"x")
	if p := c.post("/portal/merchants", form); p.status != http.StatusForbidden {
		t.Errorf("create merchant with a wrong csrf_token: status %d, want 403", p.status)
	}
	// Another session's token is refused too.
	other := e.newClient(t)
	otherToken := other.signIn(e.admin.Secret)
	form.Set("csrf_token", otherToken)
	if p := c.post("/portal/merchants", form); p.status != http.StatusForbidden {
		t.Errorf("create merchant with another session's csrf_token: status %d, want 403", p.status)
	}
	for _, path := range []string{"/portal/keys", "/portal/configs/payin", "/portal/ivr/test-call", "/portal/signout",
		"/portal/keys/" + e.ivrKey.ID + "/disable", "/portal/webhooks"} {
		t.Run(path, func(t *testing.T) {
			if p := c.on(t).post(path, url.Values{}); p.status != http.StatusForbidden {
				t.Errorf("POST %s without csrf_token: status %d, want 403", path, p.status)
			}
		})
	}
	l, err := e.store.ListMerchants(ivrpay.NewContextWithPrincipal(t.Context(), e.admin), ivrpay.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if l.TotalResults != 1 {
		t.Errorf("%d merchants after refused posts, want 1", l.TotalResults)
	}
	if k, _ := e.store.FindAPIKey(ivrpay.NewContextWithPrincipal(t.Context(), e.admin), e.ivrKey.ID); k.Status != ivrpay.APIKeyStatusEnabled {
		t.Errorf("IVR key is %s after a refused disable", k.Status)
	}

	// With the token, the same post works.
	form.Set("csrf_token", token)
	if p := c.post("/portal/merchants", form); p.status != http.StatusOK || !strings.Contains(p.body, "No Token Ltd") {
		t.Errorf("create merchant with csrf_token: status %d:\n%s", p.status, p.text())
	}
	// Signing out ends the session: the old token no longer works.
	if p := c.post("/portal/signout", url.Values{"csrf_token": {token}}); p.url.Path != "/portal/signin" {
		t.Errorf("sign-out landed on %s", p.url.Path)
	}
	form.Set("name", "After Sign-out")
	if p := c.post("/portal/merchants", form); p.status != http.StatusForbidden {
		t.Errorf("post after sign-out: status %d, want 403", p.status)
	}
	if p := c.get("/portal/keys"); p.url.Path != "/portal/signin" {
		t.Errorf("GET /portal/keys after sign-out landed on %s, want the sign-in page", p.url.Path)
	}
}

func TestRestrictedKeySeesActionsAsUnavailable(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.ivrKey.Secret)

	home := c.get("/portal/")
	mustContain(t, home, "unavailable: missing api_key:create", "unavailable: missing payin_config:create", "allowed")

	keys := c.get("/portal/keys")
	if keys.status != http.StatusOK {
		t.Fatalf("GET /portal/keys: %d", keys.status)
	}
	mustContain(t, keys, "Unavailable: your key lacks the permission api_key:read", "Unavailable: your key lacks the permission api_key:create")
	if strings.Contains(keys.body, `id="create-key"`) {
		t.Error("the key creation form is offered to a key without api_key:create")
	}
	p := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"preset"}, "preset": {"both"}})
	if p.status != http.StatusForbidden {
		t.Errorf("POST /portal/keys with an IVR key: status %d, want 403", p.status)
	}
	mustContain(t, p, "missing permission api_key:create for platform "+e.platform.ID)

	configs := c.get("/portal/configs")
	mustContain(t, configs, "Unavailable: your key lacks the permission payin_config:create")
	p = c.post("/portal/configs/payin", url.Values{"csrf_token": {token}, "merchant_id": {e.merchant.ID}, "amount": {"10.00"},
		"idempotency_key": {"restricted-1"}})
	if p.status != http.StatusForbidden {
		t.Errorf("POST /portal/configs/payin with an IVR key: status %d, want 403", p.status)
	}
	mustContain(t, p, "missing permission payin_config:create for merchant "+e.merchant.ID)

	p = c.post("/portal/merchants", url.Values{"csrf_token": {token}, "name": {"Sneaky"}})
	if p.status != http.StatusForbidden {
		t.Errorf("POST /portal/merchants with an IVR key: status %d, want 403", p.status)
	}
	mustContain(t, p, "missing permission merchant:create")
	p = c.post("/portal/keys/"+e.admin.ID+"/disable", url.Values{"csrf_token": {token}})
	if p.status != http.StatusForbidden {
		t.Errorf("disabling the admin key with an IVR key: status %d, want 403", p.status)
	}
	mustContain(t, p, "missing permission api_key:update")

	mustContain(t, c.get("/portal/payins"), "Unavailable: your key lacks the permission payin:read")
	mustContain(t, c.get("/portal/merchants"), "Unavailable: your key lacks the permission merchant:read")
	mustContain(t, c.get("/portal/ivr"), "Unavailable: your key lacks the permission payin_config:read")
	mustContain(t, c.get("/portal/webhooks"), "Unavailable: your key lacks the permission webhook_endpoint:read")
	if p := c.get("/portal/payins/sbx_pyi_nothing"); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("payin detail with an IVR key: status %d", p.status)
	}
}

func setCookie(t *testing.T, p page) string { return setCookieNamed(t, p, portal.SessionCookie) }

func setCookieNamed(t *testing.T, p page, name string) string {
	t.Helper()
	for _, v := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	t.Fatalf("no %s cookie set by %s; headers %v", name, p.url, p.header)
	return ""
}

func cookieAttrs(raw string) map[string]string {
	attrs := map[string]string{}
	for _, part := range strings.Split(raw, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		attrs[strings.ToLower(k)] = v
	}
	return attrs
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, e *env, header http.Header, wantSecure bool) {
		t.Helper()
		c := e.newClient(t)
		c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/portal/signin", nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		login := read(t, resp)
		// The session after sign-in gets a new id with the same attributes.
		req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/portal/signin",
			strings.NewReader(url.Values{"csrf_token": {login.csrf(t)}, "api_key": {e.admin.Secret}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err = c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		signedIn := read(t, resp)
		if signedIn.status != http.StatusSeeOther {
			t.Fatalf("sign-in: status %d", signedIn.status)
		}
		// The sign-in form holds only a nonce cookie (no session); signing in
		// sets the session cookie and clears the nonce.
		before, after := setCookieNamed(t, login, portal.SignInCookie), setCookie(t, signedIn)
		if cleared := setCookieNamed(t, signedIn, portal.SignInCookie); !strings.Contains(cleared, "Max-Age=0") {
			t.Errorf("the sign-in cookie was not cleared on sign-in: %q", cleared)
		}
		for _, raw := range []string{before, after} {
			a := cookieAttrs(raw)
			if _, ok := a["httponly"]; !ok {
				t.Errorf("cookie %q is not HttpOnly", raw)
			}
			if a["samesite"] != "Strict" {
				t.Errorf("cookie %q: SameSite %q, want Strict", raw, a["samesite"])
			}
			if a["path"] != "/portal" {
				t.Errorf("cookie %q: Path %q, want /portal", raw, a["path"])
			}
			if _, ok := a["secure"]; ok != wantSecure {
				t.Errorf("cookie %q: Secure %v, want %v", raw, ok, wantSecure)
			}
		}
	}
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		check(t, setup(t), nil, false)
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		check(t, setupWith(t, envOptions{tls: true, ivrEnabled: true}), nil, true)
	})
	t.Run("behind-proxy", func(t *testing.T) {
		t.Parallel()
		check(t, setupWith(t, envOptions{behindProxy: true, ivrEnabled: true}), http.Header{"X-Forwarded-Proto": {"https"}}, true)
	})
	t.Run("forwarded-proto-ignored-without-proxy-option", func(t *testing.T) {
		t.Parallel()
		check(t, setup(t), http.Header{"X-Forwarded-Proto": {"https"}}, false)
	})
}

func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	login := c.get("/portal/signin")
	p := c.post("/portal/signin", url.Values{"csrf_token": {login.csrf(t)}, "api_key": {"sbx_apikey_" + strings.Repeat("0", 64)}})
	if p.status != http.StatusUnauthorized {
		t.Errorf("unknown key: status %d, want 401", p.status)
	}
	mustContain(t, p, "not accepted")

	// A key disabled while signed in ends its session at the next request.
	ivr := e.newClient(t)
	ivr.signIn(e.ivrKey.Secret)
	admin := e.newClient(t)
	token := admin.signIn(e.admin.Secret)
	if p := admin.post("/portal/keys/"+e.ivrKey.ID+"/disable", url.Values{"csrf_token": {token}}); p.status != http.StatusOK {
		t.Fatalf("disable: status %d:\n%s", p.status, p.text())
	} else {
		mustContain(t, p, "is disabled", "DISABLED")
	}
	if p := ivr.get("/portal/payins"); p.url.Path != "/portal/signin" || !strings.Contains(p.body, "session ended") {
		t.Errorf("a disabled key's session went on to %s", p.url)
	}
	login = c.get("/portal/signin")
	if p := c.post("/portal/signin", url.Values{"csrf_token": {login.csrf(t)}, "api_key": {e.ivrKey.Secret}}); p.status != http.StatusUnauthorized {
		t.Errorf("disabled key sign-in: status %d, want 401", p.status)
	}
	if p := admin.post("/portal/keys/"+e.ivrKey.ID+"/enable", url.Values{"csrf_token": {token}}); p.status != http.StatusOK {
		t.Errorf("enable: status %d", p.status)
	}
}

func TestSignInRateLimited(t *testing.T) {
	t.Parallel()
	e := setupWith(t, envOptions{ivrEnabled: true, limiter: httpapi.NewAuthLimiter()})
	c := e.newClient(t)
	login := c.get("/portal/signin")
	token := login.csrf(t)
	for i := 1; i <= httpapi.AuthFailureLimit; i++ {
		p := c.post("/portal/signin", url.Values{"csrf_token": {token}, "api_key": {"wrong-" + strings.Repeat("x", i)}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i, p.status)
		}
	}
	// Blocked now, even with a valid key.
	p := c.post("/portal/signin", url.Values{"csrf_token": {token}, "api_key": {e.admin.Secret}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Errorf("after %d failures: status %d, Retry-After %q; want 429 with Retry-After", httpapi.AuthFailureLimit, p.status, p.header.Get("Retry-After"))
	}
	mustContain(t, p, "Too many failed sign-ins")
}
