package portal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay"
)

// capability is one line of the home page's "what this key can do" table.
type capability struct {
	What string
	gate
}

type homeData struct {
	StatementsJSON string
	Capabilities   []capability
}

var capabilities = []struct{ what, permission string }{
	{"List API keys", "api_key:read"},
	{"Create API keys", "api_key:create"},
	{"Disable and enable API keys", "api_key:update"},
	{"List merchants", "merchant:read"},
	{"Create merchants", "merchant:create"},
	{"Create payin configs (step 1 of a payin)", "payin_config:create"},
	{"Read payin configs (TwiML for a config)", "payin_config:read"},
	{"Create payment method configs", "payment_method_config:create"},
	{"Charge over IVR (step 2 of a payin)", "payin:create"},
	{"Store cards over IVR", "payment_method:create"},
	{"List payins", "payin:read"},
	{"List payment methods", "payment_method:read"},
	{"Manage webhook endpoints", "webhook_endpoint:create"},
}

func (p *Portal) handleHome(w http.ResponseWriter, rq *request) {
	pg := rq.basePage("Overview", "home")
	d := homeData{StatementsJSON: statementsJSON(rq.key.Statements)}
	for _, c := range capabilities {
		d.Capabilities = append(d.Capabilities, capability{What: c.what, gate: can(rq.key, c.permission)})
	}
	pg.Data = d
	p.render(w, rq.Request, http.StatusOK, "home", pg)
}

// newIdempotencyKey is put in each config form when it is rendered, so that
// submitting the same form twice returns the first config instead of a second.
func newIdempotencyKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return idempotencyKeyOf(b)
}

// idempotencyKeyOf is a form's key made of the random bytes b, in
// hexadecimal that starts with a letter: the API reads a hexadecimal word
// with a letter in it as an id, never as a card number (SPEC §9). All 24
// digits decimal, about once in 80,000 keys, could hold a card number and
// have the form refused.
func idempotencyKeyOf(b [12]byte) string {
	b[0] |= 0xa0 // the first digit is a, b, e or f
	return "portal_" + hex.EncodeToString(b[:])
}

// listPage is a page of a list with the cursor of the next one.
func nextCursor[T any](l *ivrpay.List[T], limit int) string {
	if len(l.Results) == limit {
		return l.LastKey
	}
	return ""
}

const listLimit = 50

// --- merchants

type merchantsData struct {
	Merchants []*ivrpay.Merchant
	ListError string
	Next      string
	Form      ivrpay.MerchantCreate
}

func (p *Portal) merchantsPage(rq *request, form ivrpay.MerchantCreate) *page {
	pg := rq.basePage("Merchants", "merchants")
	d := &merchantsData{Form: form}
	if can(rq.key, "merchant:read").OK {
		l, err := p.svc.Merchants.ListMerchants(rq.Context(), ivrpay.Page{Limit: listLimit, StartKey: rq.URL.Query().Get("after")})
		if err != nil {
			d.ListError = p.errorText(err)
		} else {
			d.Merchants, d.Next = l.Results, nextCursor(l, listLimit)
		}
	}
	pg.Data = d
	return pg
}

func (p *Portal) handleMerchants(w http.ResponseWriter, rq *request) {
	pg := p.merchantsPage(rq, ivrpay.MerchantCreate{})
	// The banner names a merchant the key may read, looked up; never text from the URL.
	if id := rq.URL.Query().Get("created"); id != "" {
		if m, err := p.svc.Merchants.FindMerchant(rq.Context(), id); err == nil {
			pg.Notice = "Merchant " + m.ID + " created."
		}
	}
	p.render(w, rq.Request, http.StatusOK, "merchants", pg)
}

func (p *Portal) handleCreateMerchant(w http.ResponseWriter, rq *request) {
	f := rq.PostForm
	in := ivrpay.MerchantCreate{Name: strings.TrimSpace(f.Get("name")), DBAName: strings.TrimSpace(f.Get("dba_name")), Email: strings.TrimSpace(f.Get("email"))}
	m, err := p.svc.Merchants.CreateMerchant(rq.Context(), in)
	if err != nil {
		pg := p.merchantsPage(rq, in)
		p.render(w, rq.Request, p.fail(pg, err), "merchants", pg)
		return
	}
	http.Redirect(w, rq.Request, "/portal/merchants?created="+url.QueryEscape(m.ID), http.StatusSeeOther)
}

// --- configs

type payinConfigForm struct {
	MerchantID     string
	Amount         string
	IdempotencyKey string
	Name           string
	PostalCode     string
	Metadata       string
}

type methodConfigForm struct {
	MerchantID     string
	IdempotencyKey string
	PostalCode     string
	Metadata       string
}

type configsData struct {
	Merchants      []*ivrpay.Merchant
	MerchantsError string
	PayinForm      payinConfigForm
	MethodForm     methodConfigForm
	Recent         []string
	Lookup         string
	Config         *ivrConfig
	Created        bool
	LookupError    string
	// List is the platform's payin configs, filtered.
	List *payinConfigsData
}

const defaultConfigMetadata = `{"integration": "twilio_ivr"}`

func (p *Portal) configsPage(rq *request) (*page, *configsData) {
	pg := rq.basePage("Payin configs", "configs")
	d := &configsData{Recent: rq.sess.recentConfigs,
		PayinForm:  payinConfigForm{IdempotencyKey: newIdempotencyKey(), Metadata: defaultConfigMetadata},
		MethodForm: methodConfigForm{IdempotencyKey: newIdempotencyKey(), Metadata: defaultConfigMetadata}}
	d.Merchants, d.MerchantsError = p.merchantOptions(rq, "payin_config:create")
	pg.Data = d
	return pg, d
}

func (p *Portal) handleConfigs(w http.ResponseWriter, rq *request) {
	pg, d := p.configsPage(rq)
	var status int
	d.List, status = p.payinConfigList(rq)
	if status != http.StatusOK {
		p.render(w, rq.Request, status, "configs", pg)
		return
	}
	q := rq.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		d.Lookup = id
		cfg, err := p.findConfig(rq, id)
		if err != nil {
			d.LookupError = p.errorText(err)
		} else {
			d.Config, d.Created = cfg, q.Get("created") != ""
			p.sessions.rememberConfig(rq.sess.id, cfg.ID)
		}
	}
	p.render(w, rq.Request, http.StatusOK, "configs", pg)
}

// parseMetadata reads an optional metadata textarea.
func parseMetadata(s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, ivrpay.FieldErrorf("metadata", "must be a JSON object such as %s", defaultConfigMetadata)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, ivrpay.FieldErrorf("metadata", "must be a JSON object")
	}
	return buf.Bytes(), nil
}

// dollarsToCents converts the form's dollar amount to integer cents exactly
// (never through a float): "10", "10.5", "$10.50".
func dollarsToCents(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	if s == "" {
		return 0, ivrpay.FieldErrorf("amount", "is required: the amount in dollars, such as 10.00")
	}
	cents, err := ivrpay.ParseDollars(strings.TrimSpace(s))
	if err != nil {
		return 0, ivrpay.FieldErrorf("amount", "must be dollars with at most 2 decimals, such as 10.00")
	}
	return cents, nil
}

func billingContact(name, postal string) *ivrpay.BillingContact {
	if name == "" && postal == "" {
		return nil
	}
	return &ivrpay.BillingContact{Name: name, PostalCode: postal}
}

func (p *Portal) handleCreatePayinConfig(w http.ResponseWriter, rq *request) {
	f := rq.PostForm
	form := payinConfigForm{MerchantID: strings.TrimSpace(f.Get("merchant_id")), Amount: strings.TrimSpace(f.Get("amount")),
		IdempotencyKey: strings.TrimSpace(f.Get("idempotency_key")), Name: strings.TrimSpace(f.Get("name")),
		PostalCode: strings.TrimSpace(f.Get("postal_code")), Metadata: f.Get("metadata")}
	if form.IdempotencyKey == "" {
		form.IdempotencyKey = newIdempotencyKey()
	}
	cfg, err := p.createPayinConfig(rq, form)
	if err != nil {
		pg, d := p.configsPage(rq)
		d.PayinForm = form
		p.render(w, rq.Request, p.fail(pg, err), "configs", pg)
		return
	}
	p.sessions.rememberConfig(rq.sess.id, cfg.ID)
	http.Redirect(w, rq.Request, "/portal/configs?created=1&id="+url.QueryEscape(cfg.ID), http.StatusSeeOther)
}

func (p *Portal) createPayinConfig(rq *request, form payinConfigForm) (*ivrpay.PayinConfig, error) {
	if form.MerchantID == "" {
		return nil, ivrpay.FieldErrorf("merchant_id", "is required: choose a merchant")
	}
	// The permission comes first, as in POST /v1/payin_configs, so a key
	// without payin_config:create is told so whatever else the form holds.
	// The service checks it again.
	if err := ivrpay.Authorize(rq.key, "payin_config:create", ivrpay.Object{PlatformID: rq.key.PlatformID, MerchantID: form.MerchantID}); err != nil {
		return nil, err
	}
	cents, err := dollarsToCents(form.Amount)
	if err != nil {
		return nil, err
	}
	md, err := parseMetadata(form.Metadata)
	if err != nil {
		return nil, err
	}
	return p.svc.PayinConfigs.CreatePayinConfig(rq.Context(), ivrpay.PayinConfigCreate{
		MerchantID: form.MerchantID, IdempotencyKey: form.IdempotencyKey, Amount: json.Number(strconv.FormatInt(cents, 10)),
		CurrencyCode: "USD", BillingContact: billingContact(form.Name, form.PostalCode), Metadata: md,
	})
}

func (p *Portal) handleCreatePaymentMethodConfig(w http.ResponseWriter, rq *request) {
	f := rq.PostForm
	form := methodConfigForm{MerchantID: strings.TrimSpace(f.Get("merchant_id")), IdempotencyKey: strings.TrimSpace(f.Get("idempotency_key")),
		PostalCode: strings.TrimSpace(f.Get("postal_code")), Metadata: f.Get("metadata")}
	if form.IdempotencyKey == "" {
		form.IdempotencyKey = newIdempotencyKey()
	}
	md, err := parseMetadata(form.Metadata)
	var cfg *ivrpay.PaymentMethodConfig
	if err == nil {
		cfg, err = p.svc.PaymentMethodConfigs.CreatePaymentMethodConfig(rq.Context(), ivrpay.PaymentMethodConfigCreate{
			PlatformID: rq.key.PlatformID, IdempotencyKey: form.IdempotencyKey, MerchantID: form.MerchantID,
			BillingContact: billingContact("", form.PostalCode), Metadata: md,
		})
	}
	if err != nil {
		pg, d := p.configsPage(rq)
		d.MethodForm = form
		p.render(w, rq.Request, p.fail(pg, err), "configs", pg)
		return
	}
	p.sessions.rememberConfig(rq.sess.id, cfg.ID)
	http.Redirect(w, rq.Request, "/portal/configs?created=1&id="+url.QueryEscape(cfg.ID), http.StatusSeeOther)
}

// --- payins

type payinsData struct {
	Payins    []*ivrpay.Payin
	ListError string
	Next      string
	Status    string
	Source    string
	Statuses  []string
	Sources   []string
	Query     string // the filters as a query string, for the next-page link
}

func (p *Portal) handlePayins(w http.ResponseWriter, rq *request) {
	pg := rq.basePage("Payins", "payins")
	q := rq.URL.Query()
	d := &payinsData{Status: q.Get("status"), Source: q.Get("source"), Statuses: ivrpay.PayinStatuses, Sources: ivrpay.PayinSources}
	filters := url.Values{}
	if d.Status != "" {
		filters.Set("status", d.Status)
	}
	if d.Source != "" {
		filters.Set("source", d.Source)
	}
	d.Query = filters.Encode()
	status := http.StatusOK
	if can(rq.key, "payin:read").OK {
		l, err := p.svc.Payins.ListPayins(rq.Context(), ivrpay.PayinFilter{Page: ivrpay.Page{Limit: listLimit, StartKey: q.Get("after")},
			Status: d.Status, Source: d.Source})
		if err != nil {
			d.ListError = p.errorText(err)
			status = statusFor(err)
		} else {
			d.Payins, d.Next = l.Results, nextCursor(l, listLimit)
		}
	}
	pg.Data = d
	p.render(w, rq.Request, status, "payins", pg)
}

type refundView struct {
	ID, Status, Reason string
	Amount             int64
	Raw                string
}

type payinData struct {
	Payin    *ivrpay.Payin
	Metadata string
	Refunds  []refundView
	// Chargebacks are the payin's disputes; ChargebacksInFull says whether
	// they carry deadlines and dashboard links (the key reads chargebacks).
	Chargebacks       []chargebackView
	ChargebacksInFull bool
	// Actions are capture, void and refund, each allowed or not.
	Actions []payinAction
	// IdempotencyKey makes a resubmitted void or refund form a repeat.
	IdempotencyKey string
	Reasons        []string
}

func (p *Portal) handlePayin(w http.ResponseWriter, rq *request) {
	pi, err := p.svc.Payins.FindPayin(rq.Context(), rq.PathValue("id"))
	if err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	pg := p.payinPage(rq, pi)
	pg.Notice = payinNotice(rq.URL.Query().Get("done"), pi)
	p.render(w, rq.Request, http.StatusOK, "payin", pg)
}

// payinPage is the payin's detail page with its actions.
func (p *Portal) payinPage(rq *request, pi *ivrpay.Payin) *page {
	pg := rq.basePage("Payin "+pi.ID, "payins")
	d := payinData{Payin: pi, Metadata: prettyJSON(pi.Metadata), Actions: payinActions(rq.key, pi),
		IdempotencyKey: newIdempotencyKey(), Reasons: ivrpay.RefundReasons,
		Chargebacks: p.payinChargebacks(rq, pi), ChargebacksInFull: p.svc.Chargebacks != nil && can(rq.key, "chargeback:read").OK}
	for _, r := range pi.Refunds {
		// Refunds arrive as the API shapes them; read the common fields.
		b, _ := json.Marshal(r)
		var v struct {
			ID     string `json:"refund_id"`
			Status string `json:"status"`
			Reason string `json:"reason"`
			Amount int64  `json:"amount"`
		}
		_ = json.Unmarshal(b, &v)
		d.Refunds = append(d.Refunds, refundView{ID: v.ID, Status: v.Status, Reason: v.Reason, Amount: v.Amount, Raw: prettyJSON(b)})
	}
	pg.Data = d
	return pg
}

// --- payment methods

type methodsData struct {
	Methods   []*ivrpay.PaymentMethod
	ListError string
	Next      string
}

func (p *Portal) handlePaymentMethods(w http.ResponseWriter, rq *request) {
	pg := rq.basePage("Payment methods", "methods")
	d := &methodsData{}
	status := http.StatusOK
	if can(rq.key, "payment_method:read").OK {
		l, err := p.svc.PaymentMethods.ListPaymentMethods(rq.Context(), ivrpay.Page{Limit: listLimit, StartKey: rq.URL.Query().Get("after")})
		if err != nil {
			d.ListError, status = p.errorText(err), statusFor(err)
		} else {
			d.Methods, d.Next = l.Results, nextCursor(l, listLimit)
		}
	}
	pg.Data = d
	p.render(w, rq.Request, status, "methods", pg)
}

type methodData struct {
	Method   *ivrpay.PaymentMethod
	Metadata string
}

func (p *Portal) handlePaymentMethod(w http.ResponseWriter, rq *request) {
	pm, err := p.svc.PaymentMethods.FindPaymentMethod(rq.Context(), rq.PathValue("id"))
	if err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	pg := rq.basePage("Payment method "+pm.ID, "methods")
	pg.Data = methodData{Method: pm, Metadata: prettyJSON(pm.Metadata)}
	p.render(w, rq.Request, http.StatusOK, "method", pg)
}
