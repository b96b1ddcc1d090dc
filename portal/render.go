package portal

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
)

// page is what every template gets.
type page struct {
	Title string
	// Nav is the active navigation entry.
	Nav  string
	CSRF string
	// Key is the signed-in key; nil on the sign-in and error pages of a signed-out visitor.
	Key *ivrpay.APIKey
	// Error and ErrorField report a refused action; Notice a completed one.
	Error      string
	ErrorField string
	// InlineError shows Error next to the form field instead of at the top.
	InlineError bool
	Notice      string
	Mode        ivrpay.Mode
	Assets      map[string]string
	Data        any
}

// gate says whether the signed-in key may take an action, and if not, which
// permission it lacks.
type gate struct {
	OK         bool
	Permission string
	// Only limits an allowed action to some objects of the platform, each
	// described for people ("merchant mid_…", "payin config cfg_…"); empty: all of them.
	Only []string
}

// platformLevel reports whether permission is on platform-level objects
// (which a merchant-constrained statement never grants).
func platformLevel(permission string) bool {
	res, act, _ := strings.Cut(permission, ":")
	return slices.Contains([]string{"api_key", "webhook_endpoint", "platform"}, res) || (res == "merchant" && act == "create")
}

// can decides, before rendering, whether key may take an action: on the
// platform itself for platform-level objects, or on some object of its
// platform (all of them, or those of some merchants) otherwise. The services
// check again on every call.
func can(key *ivrpay.APIKey, permission string) gate {
	if key == nil {
		return gate{Permission: permission}
	}
	if platformLevel(permission) {
		return gate{OK: ivrpay.Allows(key, permission, ivrpay.Object{PlatformID: key.PlatformID}), Permission: permission}
	}
	scope := ivrpay.ScopeFor(key, permission)
	g := gate{OK: !scope.Empty(), Permission: permission}
	if !scope.All {
		for _, f := range scope.Filters {
			g.Only = append(g.Only, f.String())
		}
		if g.OK && len(g.Only) == 0 {
			// A payer's browser's config read: by id, never in a list.
			g.Only = []string{"configs read by id"}
		}
	}
	return g
}

// Can is can for the page's key, for templates: {{with $.Can "api_key:create"}}.
func (pg *page) Can(permission string) gate { return can(pg.Key, permission) }

// PlatformID is the signed-in key's platform.
func (pg *page) PlatformID() string {
	if pg.Key == nil {
		return ""
	}
	return pg.Key.PlatformID
}

// IVREnabled reports whether the key's platform may take IVR payments.
func (pg *page) IVREnabled() bool {
	return pg.Key != nil && pg.Key.Platform != nil && pg.Key.Platform.IVRPayments
}

type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	"dollars": func(cents int64) string { return "$" + ivrpay.FormatDollars(cents) },
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"date":       func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"prettyJSON": prettyJSON,
	"shortID":    shortID,
	"join":       strings.Join,
	"lower":      strings.ToLower,
	"statusClass": func(s string) string {
		return "status-" + strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	},
	"statementsJSON": statementsJSON,
	"lastAttempt": func(a []ivrpay.WebhookDeliveryAttempt) *ivrpay.WebhookDeliveryAttempt {
		if len(a) == 0 {
			return nil
		}
		return &a[len(a)-1]
	},
	"navItem": func(pg *page, nav, href, label string) navLink {
		return navLink{Href: href, Label: label, Active: pg.Nav == nav}
	},
}

type navLink struct {
	Href, Label string
	Active      bool
}

// shortID is how a list shows a long id: its prefix and its last six
// characters ("sbx_pyi_…mhg2k0"). Ids made at the same time share their
// start, so the end is what tells rows apart; the row keeps the whole id in
// its link and title.
func shortID(id string) string {
	const tail = 6
	i := strings.LastIndexByte(id, '_')
	if i < 0 || len(id)-(i+1) <= tail+2 {
		return id
	}
	return id[:i+1] + "…" + id[len(id)-tail:]
}

// prettyJSON indents a JSON value for display; "" for null or empty.
func prettyJSON(v any) string {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		raw = b
	}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return ""
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return string(raw)
	}
	return out.String()
}

// statementsJSON is the statements exactly as the API stores and returns
// them, indented like the guide's examples.
func statementsJSON(st []ivrpay.Statement) string {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

func parseTemplates(assets map[string]string) map[string]*pageTemplate {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
		out[name] = &pageTemplate{t: t}
	}
	return out
}

// render executes a page into a buffer first, so a template error is a clean 500.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, pg *page) {
	pg.Mode, pg.Assets = p.opts.Mode, p.assets
	t, ok := p.pages[name]
	var buf bytes.Buffer
	if !ok {
		p.log.Error("portal: no template", "name", name)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	if err := t.t.ExecuteTemplate(&buf, "layout", pg); err != nil {
		p.log.Error("portal: template failed", "name", name, "error", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a message on the error page, with the navigation when a key is signed in.
func (p *Portal) renderError(w http.ResponseWriter, r *http.Request, rq *request, status int, msg string) {
	pg := &page{Title: http.StatusText(status), Error: msg}
	if rq != nil {
		pg.Key, pg.CSRF = rq.key, rq.sess.csrf
	}
	p.render(w, r, status, "error", pg)
}

// statusFor maps a domain error code to the page's HTTP status with the REST
// API's one mapping.
func statusFor(err error) int { return httpapi.ErrorStatus(ivrpay.ErrorCode(err)) }

// errorText is what a page shows of a service error: its field and message,
// or a generic line for internal errors (which are logged, never shown).
func (p *Portal) errorText(err error) string {
	if ivrpay.ErrorCode(err) == ivrpay.EINTERNAL {
		p.log.Error("portal: service failed", "error", err)
		return "Internal error."
	}
	msg := ivrpay.ErrorMessage(err)
	if f := ivrpay.ErrorField(err); f != "" {
		return f + ": " + msg
	}
	return msg
}

// renderServiceError shows a service error on the error page.
func (p *Portal) renderServiceError(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	p.renderError(w, r, rq, statusFor(err), p.errorText(err))
}

// basePage starts a page for a signed-in request.
func (rq *request) basePage(title, nav string) *page {
	return &page{Title: title, Nav: nav, CSRF: rq.sess.csrf, Key: rq.key}
}

// fail sets a service error on pg and returns the status to render with.
func (p *Portal) fail(pg *page, err error) int {
	pg.Error = p.errorText(err)
	pg.ErrorField = ivrpay.ErrorField(err)
	return statusFor(err)
}

func itoa(n int) string { return strconv.Itoa(n) }
