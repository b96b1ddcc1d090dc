// Package portal is ivrpay's web portal for platform users, served under
// /portal: server-rendered with html/template, its CSS and JavaScript embedded,
// nothing loaded from elsewhere. A user signs in with a platform API key and
// then acts with that key's permissions only: every page and every form calls
// the same domain services as the REST API, with the key in the request
// context, so the services' permission checks apply unchanged. Pages show the
// actions the key may not take as unavailable, naming the missing permission.
//
// A session is a random session id in an HttpOnly, SameSite=Strict cookie;
// the API key secret stays on the server, never in the browser. With
// Options.Sessions the sessions live in the database, where every process
// reads them (a load balancer needs no sticky sessions); without, in the
// memory of the process that created them.
package portal

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
)

// Services are the domain services the portal calls; the same ones the REST
// API calls. Webhooks may be nil: the webhooks page then says so.
type Services struct {
	Auth                 ivrpay.AuthService
	APIKeys              ivrpay.APIKeyService
	Merchants            ivrpay.MerchantService
	PayinConfigs         ivrpay.PayinConfigService
	PaymentMethodConfigs ivrpay.PaymentMethodConfigService
	Payins               ivrpay.PayinService
	PaymentMethods       ivrpay.PaymentMethodService
	Webhooks             ivrpay.WebhookEndpointService
	// Lifecycle captures, voids and refunds payins; when nil, the payin page
	// offers no actions that work.
	Lifecycle ivrpay.PayinLifecycleService
	// Sessions, when set, lists the platform's active sessions on the keys page.
	Sessions ivrpay.SessionService
	// Audit, when set, records failed sign-ins as the REST API records its 401s.
	Audit ivrpay.AuditService
	// Risk, when set, lists the platform's active risk blocks (docs/risk.md).
	Risk ivrpay.RiskBlockService
	// Chargebacks, when set, lists chargebacks and shows their deadlines on
	// the payin page.
	Chargebacks ivrpay.ChargebackService
}

// Limiter blocks clients after repeated failed sign-ins; *httpapi.AuthLimiter
// is one, so that the REST API and the portal share one count per address.
type Limiter interface {
	// Blocked reports whether key is blocked, and for how long still.
	Blocked(key string) (time.Duration, bool)
	// Fail records a failure for key and reports whether it is now blocked.
	Fail(key string) bool
}

// AuditAggregator is what a Limiter may also do (*httpapi.AuthLimiter does):
// aggregate the audit rows of an address's authentication failures and
// write them within a minute, so that a flood writes a bounded number of
// rows, not one per attempt.
type AuditAggregator interface {
	// AuditFailure counts a failure from address on route, and reports
	// false when it does not audit (the caller then writes the row).
	AuditFailure(address, route string, blocked bool) bool
}

// ConnectorPath is where Twilio posts Generic Pay Connector requests.
var ConnectorPath = httpapi.ConnectorPath

// Options configure the portal.
type Options struct {
	Services Services
	// Mode is the deployment's mode; it picks the suggested connector name.
	Mode ivrpay.Mode
	// BaseURL is the deployment's public URL; the Endpoint URL to paste into
	// Twilio is BaseURL + ConnectorPath.
	BaseURL string
	// ConnectorURL is where the portal's test call sends its connector
	// request: this server's own address (the loopback address it listens
	// on), or BaseURL when empty.
	ConnectorURL string
	// ConnectorClient sends the test call's requests; nil means a plain client.
	ConnectorClient *http.Client
	// BehindProxy trusts X-Forwarded-Proto (Secure cookies) and
	// X-Forwarded-For (sign-in rate limit) from the proxy in front.
	BehindProxy bool
	// Limiter, when set, counts failed sign-ins per client address.
	Limiter Limiter
	// SessionIdleTimeout ends a session unused for this long (default 1 h);
	// SessionMaxAge ends any session this long after sign-in (default 12 h).
	SessionIdleTimeout time.Duration
	SessionMaxAge      time.Duration
	// MaxSessions bounds the signed-in sessions held in memory (default
	// 10000). Signed-out visitors hold none: the sign-in form's CSRF token is
	// stateless.
	MaxSessions int
	// Sessions, when set with SessionVault, keeps signed-in sessions where
	// every process reads them; the key secret is stored encrypted by
	// SessionVault. Without, sessions live in this process's memory.
	Sessions     SessionStore
	SessionVault ivrpay.Vault
	// SignInSecret, when set, keys the sign-in form's CSRF tokens, so that
	// several processes accept each other's forms; nil means a random key of
	// this process.
	SignInSecret []byte
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Portal is the /portal handler.
type Portal struct {
	opts     Options
	svc      Services
	sessions sessionKeeper
	// signInKey keys the sign-in form's stateless CSRF tokens.
	signInKey []byte
	pages     map[string]*pageTemplate
	mux       *http.ServeMux
	assets    map[string]string // asset name → URL with a content hash
	log       *slog.Logger
	now       func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the portal. It panics if the embedded templates do not parse,
// which a test catches before any release.
func New(o Options) *Portal {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionIdleTimeout <= 0 {
		o.SessionIdleTimeout = time.Hour
	}
	if o.SessionMaxAge <= 0 {
		o.SessionMaxAge = 12 * time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10000
	}
	if o.Mode == "" {
		o.Mode = ivrpay.ModeSandbox
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	o.ConnectorURL = strings.TrimRight(o.ConnectorURL, "/")
	if o.ConnectorURL == "" {
		o.ConnectorURL = o.BaseURL
	}
	if o.ConnectorClient == nil {
		o.ConnectorClient = &http.Client{}
	}
	p := &Portal{opts: o, svc: o.Services, log: o.Logger, now: o.Now, signInKey: newSignInKey(o.SignInSecret),
		sessions: newSessionStore(o.Now, o.SessionIdleTimeout, o.SessionMaxAge, o.MaxSessions)}
	if o.Sessions != nil && o.SessionVault != nil {
		p.sessions = &sharedSessions{store: o.Sessions, vault: o.SessionVault, now: o.Now, idle: o.SessionIdleTimeout,
			maxAge: o.SessionMaxAge, max: o.MaxSessions, log: o.Logger}
	}
	p.assets = assetURLs()
	p.pages = parseTemplates(p.assets)
	p.routes()
	return p
}

func assetURLs() map[string]string {
	out := map[string]string{}
	for _, name := range []string{"portal.css", "portal.js"} {
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out[name] = "/portal/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
	}
	return out
}

func (p *Portal) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/portal/static/", http.FileServerFS(static))
	mux.Handle("GET /portal/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /portal/signin", p.handleSignInPage)
	mux.HandleFunc("POST /portal/signin", p.handleSignIn)
	mux.HandleFunc("POST /portal/signout", p.handleSignOut)

	mux.Handle("GET /portal/{$}", p.authed(p.handleHome))
	mux.Handle("GET /portal/keys", p.authed(p.handleKeys))
	mux.Handle("POST /portal/keys", p.authed(p.handleCreateKey))
	mux.Handle("POST /portal/keys/{id}/disable", p.authed(p.handleSetKeyStatus(ivrpay.APIKeyStatusDisabled)))
	mux.Handle("POST /portal/keys/{id}/enable", p.authed(p.handleSetKeyStatus(ivrpay.APIKeyStatusEnabled)))
	mux.Handle("GET /portal/ivr", p.authed(p.handleIVR))
	mux.Handle("POST /portal/ivr/test-call", p.authed(p.handleTestCall))
	mux.Handle("GET /portal/merchants", p.authed(p.handleMerchants))
	mux.Handle("POST /portal/merchants", p.authed(p.handleCreateMerchant))
	mux.Handle("GET /portal/configs", p.authed(p.handleConfigs))
	mux.Handle("POST /portal/configs/payin", p.authed(p.handleCreatePayinConfig))
	mux.Handle("GET /portal/configs/payin/{id}", p.authed(p.handlePayinConfig))
	mux.Handle("POST /portal/configs/payment-method", p.authed(p.handleCreatePaymentMethodConfig))
	mux.Handle("GET /portal/payins", p.authed(p.handlePayins))
	mux.Handle("GET /portal/payins/{id}", p.authed(p.handlePayin))
	mux.Handle("POST /portal/payins/{id}/capture", p.authed(p.handlePayinAction("capture")))
	mux.Handle("POST /portal/payins/{id}/void", p.authed(p.handlePayinAction("void")))
	mux.Handle("POST /portal/payins/{id}/refund", p.authed(p.handlePayinAction("refund")))
	mux.Handle("GET /portal/chargebacks", p.authed(p.handleChargebacks))
	mux.Handle("GET /portal/payment-methods", p.authed(p.handlePaymentMethods))
	mux.Handle("GET /portal/payment-methods/{id}", p.authed(p.handlePaymentMethod))
	mux.Handle("GET /portal/risk", p.authed(p.handleRisk))
	mux.Handle("GET /portal/webhooks", p.authed(p.handleWebhooks))
	mux.Handle("POST /portal/webhooks", p.authed(p.handleCreateWebhook))
	mux.Handle("GET /portal/webhooks/{id}", p.authed(p.handleWebhook))
	mux.Handle("POST /portal/webhooks/{id}/delete", p.authed(p.handleDeleteWebhook))
	mux.Handle("POST /portal/webhooks/{id}/rotate-secret", p.authed(p.handleRotateWebhookSecret))
	mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, nil, http.StatusNotFound, "There is no portal page at "+r.URL.Path+".")
	})
	p.mux = mux
}

// ServeHTTP serves the portal with its security headers on every response.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/portal/static/") {
		// Pages show keys' statements, payins and one-time secrets: never cache them.
		h.Set("Cache-Control", "no-store")
	}
	p.mux.ServeHTTP(w, r)
}

// overTLS reports whether the browser reached us over https.
func (p *Portal) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return p.opts.BehindProxy && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// clientAddress is the peer's address as the REST API's limits count it
// (an IPv6 address's /64), so that both share one count.
func (p *Portal) clientAddress(r *http.Request) string {
	return httpapi.LimitAddress(httpapi.ClientAddress(r, p.opts.BehindProxy))
}

// LoopbackURL returns the http(s) URL at which a server listening on addr
// reaches itself: an unspecified host (0.0.0.0, ::) becomes the loopback address.
func LoopbackURL(addr net.Addr, useTLS bool) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// keyContext puts the signed-in key and its platform's minimum API version in
// the context, as the REST API's authentication does for a request without a
// Rainforest-Api-Version header.
func keyContext(ctx context.Context, key *ivrpay.APIKey) context.Context {
	ctx = ivrpay.NewContextWithPrincipal(ctx, key)
	if key.Platform != nil && key.Platform.MinAPIVersion != "" {
		ctx = ivrpay.NewContextWithVersion(ctx, key.Platform.MinAPIVersion)
	}
	return ctx
}
