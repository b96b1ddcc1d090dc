package portal_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/portal"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// env is a real deployment for one test: a SQLite store (or another engine), the httpapi handler
// with the portal mounted, served by httptest, one IVR-enabled platform with
// an admin key, an ACTIVE merchant and a restricted IVR key.
type env struct {
	store    *sqlstore.Store
	srv      *httptest.Server
	platform *ivrpay.Platform
	admin    *ivrpay.APIKey
	merchant *ivrpay.Merchant
	ivrKey   *ivrpay.APIKey
}

type envOptions struct {
	engine      string // sqlstore.EngineSQLite when empty
	tls         bool
	behindProxy bool
	ivrEnabled  bool
	limiter     portal.Limiter
	maxSessions int
}

func setup(t *testing.T) *env { return setupWith(t, envOptions{ivrEnabled: true}) }

func setupWith(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	opts := paymentstest.Options(t)
	engine := o.engine
	if engine == "" {
		engine = sqlstore.EngineSQLite
	}
	store := paymentstest.Open(t, engine, opts)
	pay := opts.Payments(store)
	platform, admin, err := store.CreatePlatform(ctx, "Portal test platform", o.ivrEnabled)
	if err != nil {
		t.Fatal(err)
	}
	merchant, err := store.CreateMerchantAsOperator(ctx, platform.ID, ivrpay.MerchantCreate{Name: "Corner Bakery"})
	if err != nil {
		t.Fatal(err)
	}
	ivrKey, err := store.CreateAPIKey(ivrpay.NewContextWithPrincipal(ctx, admin), []ivrpay.Statement{{
		Permissions: []string{"payin:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platform.ID}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	var handler http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	if o.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	api := &httpapi.Server{Services: httpapi.NewServices(store, pay)}
	api.Portal = portal.New(portal.Options{
		Services: portal.Services{Auth: store, APIKeys: store, Merchants: store, PayinConfigs: store,
			PaymentMethodConfigs: store, Payins: pay, PaymentMethods: store, Webhooks: store, Lifecycle: pay, Sessions: store, Audit: store,
			Risk: store, Chargebacks: store},
		Mode: ivrpay.ModeSandbox, BaseURL: srv.URL, ConnectorURL: srv.URL, ConnectorClient: srv.Client(),
		BehindProxy: o.behindProxy, Limiter: o.limiter, MaxSessions: o.maxSessions,
	})
	handler = api.Handler()
	return &env{store: store, srv: srv, platform: platform, admin: admin, merchant: merchant, ivrKey: ivrKey}
}

// client is a browser without JavaScript: a cookie jar that follows redirects.
type client struct {
	t    *testing.T
	e    *env
	http *http.Client
}

func (e *env) newClient(t *testing.T) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *e.srv.Client()
	c.Jar = jar
	c.Timeout = 60 * time.Second
	return &client{t: t, e: e, http: &c}
}

// on returns the same browser reporting to t, for a subtest.
func (c *client) on(t *testing.T) *client { return &client{t: t, e: c.e, http: c.http} }

// page is a response read whole.
type page struct {
	status int
	body   string
	header http.Header
	url    *url.URL
}

func (c *client) get(path string) page {
	c.t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return read(c.t, resp)
}

func (c *client) post(path string, form url.Values) page {
	c.t.Helper()
	resp, err := c.http.PostForm(c.e.srv.URL+path, form)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return read(c.t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, body: string(b), header: resp.Header, url: resp.Request.URL}
}

var csrfPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the csrf_token of the first form on a page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf_token on the page at %s:\n%s", p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

// text is the page with tags removed and entities decoded, for reading messages.
func (p page) text() string {
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(p.body, " "))
	return strings.Join(strings.Fields(text), " ")
}

// signIn signs in with secret and returns the CSRF token of the session.
func (c *client) signIn(secret string) string {
	c.t.Helper()
	login := c.get("/portal/signin")
	home := c.post("/portal/signin", url.Values{"csrf_token": {login.csrf(c.t)}, "api_key": {secret}})
	if home.status != http.StatusOK || home.url.Path != "/portal/" {
		c.t.Fatalf("sign-in: status %d at %s:\n%s", home.status, home.url, home.text())
	}
	return home.csrf(c.t)
}

func mustContain(t *testing.T, p page, want ...string) {
	t.Helper()
	text := p.text()
	for _, w := range want {
		if !strings.Contains(text, w) && !strings.Contains(p.body, w) {
			t.Errorf("page %s (status %d) lacks %q:\n%s", p.url, p.status, w, text)
		}
	}
}
