package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/portal"
)

// TestSessionsAreSharedByProcesses puts two portals (two processes: two
// handlers, nothing shared in memory) on one database behind a round-robin
// server: a session signed in on one works on the other page after page,
// signing out on one ends it on both, disabling the key ends every session
// of the key, the database holds neither the cookie's session id nor the key
// secret in clear, and an idle session ends and is deleted.
func TestSessionsAreSharedByProcesses(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		e, clock, _ := setupShared(t, engine)
		ctx := context.Background()

		t.Run("pages land on both processes", func(t *testing.T) {
			c := e.newClient(t)
			c.signIn(e.admin.Secret)
			for _, path := range []string{"/portal/", "/portal/keys", "/portal/merchants", "/portal/configs", "/portal/payins", "/portal/webhooks"} {
				p := c.get(path)
				if p.status != http.StatusOK || p.url.Path != path {
					t.Fatalf("GET %s: status %d at %s", path, p.status, p.url)
				}
			}
			// A form posted to the other process than the one that rendered it.
			keys := c.get("/portal/merchants")
			created := c.post("/portal/merchants", url.Values{"csrf_token": {keys.csrf(t)}, "name": {"Second Bakery"}})
			if created.status != http.StatusOK || strings.Contains(created.url.Path, "signin") {
				t.Fatalf("POST /portal/merchants: status %d at %s:\n%s", created.status, created.url, created.text())
			}
		})

		t.Run("sign-out ends the session on every process", func(t *testing.T) {
			c := e.newClient(t)
			csrf := c.signIn(e.admin.Secret)
			out := c.post("/portal/signout", url.Values{"csrf_token": {csrf}})
			if out.url.Path != "/portal/signin" {
				t.Fatalf("sign-out ended at %s", out.url)
			}
			for i := range 2 {
				if p := c.get("/portal/keys"); p.url.Path != "/portal/signin" {
					t.Fatalf("request %d after sign-out reached %s", i, p.url)
				}
			}
		})

		t.Run("disabling the key ends its sessions on every process", func(t *testing.T) {
			key, err := e.store.CreateAPIKey(ivrpay.NewContextWithPrincipal(ctx, e.admin), []ivrpay.Statement{{Permissions: []string{"group#all"},
				Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: e.platform.ID}}}})
			if err != nil {
				t.Fatal(err)
			}
			c := e.newClient(t)
			c.signIn(key.Secret)
			if _, err := e.store.SetAPIKeyStatus(ivrpay.NewContextWithPrincipal(ctx, e.admin), key.ID, ivrpay.APIKeyStatusDisabled); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if p := c.get("/portal/keys"); p.url.Path != "/portal/signin" {
					t.Fatalf("request %d after the key was disabled reached %s", i, p.url)
				}
			}
		})

		t.Run("the database holds no session id or key secret in clear", func(t *testing.T) {
			c := e.newClient(t)
			c.signIn(e.admin.Secret)
			u, _ := url.Parse(e.srv.URL + "/portal/")
			var cookie string
			for _, ck := range c.http.Jar.Cookies(u) {
				if ck.Name == portal.SessionCookie {
					cookie = ck.Value
				}
			}
			if cookie == "" {
				t.Fatal("no session cookie")
			}
			rows, err := e.store.DB().Query(`SELECT id_hash || ' ' || key_secret FROM portal_sessions`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var row string
				rows.Scan(&row)
				n++
				if strings.Contains(row, cookie) || strings.Contains(row, e.admin.Secret) {
					t.Fatalf("a stored session holds the cookie's id or the key secret in clear: %s", row)
				}
			}
			if n == 0 {
				t.Fatal("no session stored")
			}
		})

		t.Run("an idle session ends and is deleted", func(t *testing.T) {
			c := e.newClient(t)
			c.signIn(e.admin.Secret)
			clock.Add(int64(2 * time.Hour))
			if p := c.get("/portal/keys"); p.url.Path != "/portal/signin" {
				t.Fatalf("an idle session reached %s", p.url)
			}
			// The next sign-in deletes every expired session.
			c.signIn(e.admin.Secret)
			var n int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM portal_sessions`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d sessions (%v) after the others expired, want the new one", n, err)
			}
		})
	})
}

// setupShared is setup with two portals on engine's database behind one
// round-robin server, both keyed by one sign-in secret, sessions in the
// database; the clock (offset in nanoseconds) moves both, and pages counts
// the page requests (not static assets) each portal served.
func setupShared(t *testing.T, engine string) (e *env, clock *atomic.Int64, pages *[2]atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	opts := paymentstest.Options(t)
	store := paymentstest.Open(t, engine, opts)
	pay := opts.Payments(store)
	platform, admin, err := store.CreatePlatform(ctx, "Portal test platform", true)
	if err != nil {
		t.Fatal(err)
	}
	merchant, err := store.CreateMerchantAsOperator(ctx, platform.ID, ivrpay.MerchantCreate{Name: "Corner Bakery"})
	if err != nil {
		t.Fatal(err)
	}
	offset := &atomic.Int64{}
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	var handlers []http.Handler
	var turn atomic.Uint64
	pages = &[2]atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := turn.Add(1) % uint64(len(handlers))
		if !strings.HasPrefix(r.URL.Path, "/portal/static/") {
			pages[i].Add(1)
		}
		handlers[i].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for range 2 {
		api := &httpapi.Server{Services: httpapi.NewServices(store, pay)}
		api.Portal = portal.New(portal.Options{
			Services: portal.Services{Auth: store, APIKeys: store, Merchants: store, PayinConfigs: store,
				PaymentMethodConfigs: store, Payins: pay, PaymentMethods: store, Webhooks: store, Audit: store, Chargebacks: store},
			Mode: ivrpay.ModeSandbox, BaseURL: srv.URL, ConnectorURL: srv.URL, ConnectorClient: srv.Client(),
			Sessions: store, SessionVault: opts.Vault, SignInSecret: []byte("the deployment's shared secret, 32+ bytes"), Now: now,
		})
		handlers = append(handlers, api.Handler())
	}
	return &env{store: store, srv: srv, platform: platform, admin: admin, merchant: merchant}, offset, pages
}
