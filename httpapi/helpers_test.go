package httpapi_test

// Shared helpers of the HTTP-level tests: a real store on every engine, the
// real handler behind a loopback httptest server, and small clients for the
// REST API (which check the envelope of every answer) and for the Twilio
// connector endpoint (which check the Twilio answer shape).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// tenant is a platform with IVR payments (unless created otherwise), one
// ACTIVE merchant and the platform's admin key (group#all).
type tenant struct {
	platformID string
	merchantID string
	admin      string // the admin key's secret
	adminID    string
}

// bundle is one running server on a real store, plus the platform the test
// works on.
type bundle struct {
	tenant
	t      *testing.T
	engine string
	store  *sqlstore.Store
	pay    *payments.Service
	log    *paymentstest.LockedBuffer
	logger *slog.Logger

	url    string
	client *http.Client

	ctMu   *sync.Mutex
	ctSeen map[string][]string // X-Request-Id → Content-Type values the server received on the connector

	// wire is the voice platform whose connector endpoint the connector
	// helpers speak to (Twilio's unless a test picks another).
	wire wire
}

// forEachEngine runs fn as a parallel subtest on every engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

// setup opens a fresh store on engine (adjust may change the configuration
// first) and serves it.
func setup(t *testing.T, engine string, adjust ...func(*paymentstest.Config)) *bundle {
	t.Helper()
	opts := paymentstest.Options(t)
	for _, f := range adjust {
		f(&opts)
	}
	log := &paymentstest.LockedBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(log, nil))
	s := paymentstest.Open(t, engine, opts)
	return serve(t, engine, s, opts, log)
}

// serve starts a server on s and creates the bundle's platform, merchant
// and admin key.
func serve(t *testing.T, engine string, s *sqlstore.Store, opts paymentstest.Config, log *paymentstest.LockedBuffer) *bundle {
	t.Helper()
	b := &bundle{t: t, engine: engine, store: s, pay: opts.Payments(s), log: log, logger: opts.Logger, ctMu: &sync.Mutex{}, ctSeen: map[string][]string{},
		wire: twilioWire}
	b.startServer()
	b.tenant = b.newTenant("Acme Platform", true)
	return b
}

// startServer serves the bundle's store exactly as cmd/ivrpay's
// newAPIServer wires it (without the optional limiter, metrics and portal),
// recording the Content-Type of every connector request it receives.
func (b *bundle) startServer() {
	s, pay := b.store, b.pay
	server := &httpapi.Server{Services: httpapi.NewServices(s, pay), Logger: b.logger}
	h := server.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/vendor/") {
			b.ctMu.Lock()
			b.ctSeen[r.Header.Get("X-Request-Id")] = r.Header.Values("Content-Type")
			b.ctMu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	b.t.Cleanup(srv.Close)
	b.url, b.client = srv.URL, srv.Client()
}

// on returns the bundle reporting to t, for a subtest.
func (b *bundle) on(t *testing.T) *bundle {
	c := *b
	c.t = t
	return &c
}

// server returns the server's URL and client.
func (b *bundle) server() (string, *http.Client) { return b.url, b.client }

// newTenant creates another platform (through the operator service, as
// `ivrpay admin platform create` does) with one ACTIVE merchant.
func (b *bundle) newTenant(name string, enableIVR bool) tenant {
	b.t.Helper()
	ctx := context.Background()
	p, admin, err := b.store.CreatePlatform(ctx, name, enableIVR)
	if err != nil {
		b.t.Fatalf("CreatePlatform: %v", err)
	}
	m, err := b.store.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: name + " merchant"})
	if err != nil {
		b.t.Fatalf("CreateMerchantAsOperator: %v", err)
	}
	return tenant{platformID: p.ID, merchantID: m.ID, admin: admin.Secret, adminID: admin.ID}
}

// ---- REST API client ----

type apiError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type apiResp struct {
	Status int
	Header http.Header
	Raw    []byte
	Data   json.RawMessage
	Errors []apiError
}

// err returns the only error of an error answer (the zero value otherwise).
func (r apiResp) err() apiError {
	if len(r.Errors) == 0 {
		return apiError{}
	}
	return r.Errors[0]
}

// data decodes the data of the answer into a map.
func (r apiResp) data(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("data is not an object: %v\n%s", err, r.Raw)
	}
	return m
}

// list decodes a list answer.
func (r apiResp) list(t *testing.T) (total int, results []map[string]any) {
	t.Helper()
	var l struct {
		TotalResults *int             `json:"total_results"`
		LastKey      *string          `json:"last_key"`
		Results      []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(r.Data, &l); err != nil || l.TotalResults == nil || l.LastKey == nil || l.Results == nil {
		t.Fatalf("data is not a list {total_results,last_key,results}: %v\n%s", err, r.Raw)
	}
	return *l.TotalResults, l.Results
}

type header struct{ name, value string }

var statusCodes = map[int]string{
	400: ivrpay.EINVALID, 401: ivrpay.EUNAUTHORIZED, 403: ivrpay.EFORBIDDEN, 404: ivrpay.ENOTFOUND,
	409: ivrpay.ECONFLICT, 429: ivrpay.ERATELIMITED, 500: ivrpay.EINTERNAL,
}

// api sends a REST request with key as the Bearer key ("" sends no
// Authorization header). body is nil, a string or []byte sent as is, or a
// value sent as JSON. Every answer's envelope is checked (checkEnvelope):
// the request is built by httpapi.Client, but the answer is read here, to
// check the wire format that the client takes for granted.
func (b *bundle) api(method, path, key string, body any, headers ...header) apiResp {
	b.t.Helper()
	if s, ok := body.(string); ok {
		body = []byte(s) // sent as is: some tests send malformed JSON on purpose
	}
	base, client := b.server()
	req, err := (&httpapi.Client{BaseURL: base, APIKey: key}).NewRequest(context.Background(), method, path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, h := range headers {
		req.Header.Set(h.name, h.value)
	}
	res, err := client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	r := apiResp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	b.checkEnvelope(method+" "+path, &r)
	return r
}

// checkEnvelope enforces {"status","data","errors"} exactly: SUCCESS with
// errors null, or ERROR with data null and one error whose code matches the
// HTTP status.
func (b *bundle) checkEnvelope(what string, r *apiResp) {
	b.t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		b.t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(r.Raw, &env); err != nil {
		b.t.Fatalf("%s: answer is not a JSON object: %v\n%s", what, err, r.Raw)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"data", "errors", "status"}) {
		b.t.Errorf("%s: envelope keys %v, want exactly status, data, errors\n%s", what, keys, r.Raw)
	}
	var status string
	json.Unmarshal(env["status"], &status)
	r.Data = env["data"]
	if r.Status < 300 {
		if status != "SUCCESS" || string(env["errors"]) != "null" {
			b.t.Errorf("%s: HTTP %d with status %q and errors %s, want SUCCESS and null", what, r.Status, status, env["errors"])
		}
		return
	}
	if err := json.Unmarshal(env["errors"], &r.Errors); err != nil || len(r.Errors) != 1 {
		b.t.Fatalf("%s: errors must be an array of one {field,code,message}: %v\n%s", what, err, r.Raw)
	}
	var e map[string]json.RawMessage
	var errs []json.RawMessage
	json.Unmarshal(env["errors"], &errs)
	json.Unmarshal(errs[0], &e)
	for _, k := range []string{"field", "code", "message"} {
		if _, ok := e[k]; !ok || len(e) != 3 {
			b.t.Errorf("%s: error object %s, want exactly field, code, message", what, errs[0])
		}
	}
	if status != "ERROR" || string(r.Data) != "null" {
		b.t.Errorf("%s: HTTP %d with status %q and data %s, want ERROR and null", what, r.Status, status, r.Data)
	}
	if want := statusCodes[r.Status]; r.err().Code != want {
		b.t.Errorf("%s: HTTP %d with code %q, want %q", what, r.Status, r.err().Code, want)
	}
	if r.err().Message == "" {
		b.t.Errorf("%s: error without a message", what)
	}
}

// wantStatus fails the test unless r has status.
func wantStatus(t *testing.T, r apiResp, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("HTTP %d, want %d\n%s", r.Status, status, r.Raw)
	}
}

// want400 checks a 400 that names field.
func want400(t *testing.T, r apiResp, field string) {
	t.Helper()
	if r.Status != http.StatusBadRequest || r.err().Field != field {
		t.Fatalf("HTTP %d field %q, want 400 naming %q\n%s", r.Status, r.err().Field, field, r.Raw)
	}
}

// ---- fixtures through the REST API ----

// createKey creates an API key with the admin key; statements is JSON text.
func (b *bundle) createKey(admin, statements string) (secret, id string) {
	b.t.Helper()
	r := b.api("POST", "/v1/api_keys", admin, `{"statements":`+statements+`}`)
	wantStatus(b.t, r, 200)
	d := r.data(b.t)
	return d["api_key"].(string), d["api_key_id"].(string)
}

// statementsJSON builds a one-statement array.
func statementsJSON(platformID, merchantID string, perms ...string) string {
	p, _ := json.Marshal(perms)
	c := fmt.Sprintf(`{"platform":{"platform_id":%q}}`, platformID)
	if merchantID != "" {
		c = fmt.Sprintf(`{"platform":{"platform_id":%q},"merchant":{"merchant_id":%q}}`, platformID, merchantID)
	}
	return fmt.Sprintf(`[{"permissions":%s,"constraints":%s}]`, p, c)
}

// ivrKey creates a restricted key holding perms on the bundle's platform.
func (b *bundle) ivrKey(perms ...string) string {
	b.t.Helper()
	secret, _ := b.createKey(b.admin, statementsJSON(b.platformID, "", perms...))
	return secret
}

// payinConfig creates a payin config of amount cents for merchantID with the
// admin key; extra fields are merged into the body.
func (b *bundle) payinConfig(admin, merchantID string, amount int64, extra map[string]any) string {
	b.t.Helper()
	body := map[string]any{"merchant_id": merchantID, "idempotency_key": newIdempotencyKey(), "amount": amount,
		"currency_code": "USD", "metadata": map[string]any{"channel": "twilio"}}
	for k, v := range extra {
		body[k] = v
	}
	r := b.api("POST", "/v1/payin_configs", admin, body)
	wantStatus(b.t, r, 200)
	return r.data(b.t)["payin_config_id"].(string)
}

// paymentMethodConfig creates a payment method config on the platform of
// admin (merchantID may be empty for a platform-level config).
func (b *bundle) paymentMethodConfig(admin, platformID, merchantID string, extra map[string]any) string {
	b.t.Helper()
	body := map[string]any{"platform_id": platformID, "idempotency_key": newIdempotencyKey()}
	if merchantID != "" {
		body["merchant_id"] = merchantID
	}
	for k, v := range extra {
		body[k] = v
	}
	r := b.api("POST", "/v1/payment_method_configs", admin, body)
	wantStatus(b.t, r, 200)
	return r.data(b.t)["payment_method_config_id"].(string)
}

// count counts the rows of a table.
func (b *bundle) count(table string) int {
	b.t.Helper()
	var n int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		b.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// ---- connector clients (Twilio, Telnyx, SignalWire) ----

// wire is a voice platform's connector format as the tests speak it. The
// tests write Twilio's bodies; encode turns one into the platform's.
type wire struct {
	provider ivrpay.IVRProvider
	path     string
	// refusal is the HTTP status of an authenticated request's refusal,
	// internal that of INTERNAL_ERROR.
	refusal, internal int
	// encode is a Twilio connector body as this platform sends it.
	encode func(body map[string]any) map[string]any
	// methodOf is the method an encoded body asks for: charge, tokenize,
	// or "" when the platform cannot tell.
	methodOf func(body map[string]any) string
}

var (
	twilioWire = wire{provider: ivrpay.ProviderTwilio, path: httpapi.ConnectorPath, refusal: 200, internal: 200,
		encode: func(body map[string]any) map[string]any { return body }, methodOf: twilioMethodOf}
	// Telnyx speaks Twilio's format field for field, on its own endpoint.
	telnyxWire = wire{provider: ivrpay.ProviderTelnyx, path: httpapi.TelnyxConnectorPath, refusal: 200, internal: 200,
		encode: func(body map[string]any) map[string]any { return body }, methodOf: twilioMethodOf}
	// SignalWire answers a refusal with 402, since it reads any 200 as a success.
	signalWireWire = wire{provider: ivrpay.ProviderSignalWire, path: httpapi.SignalWireConnectorPath, refusal: 402, internal: 500,
		encode: signalWireBody, methodOf: signalWireMethodOf}
	// wires are the platforms the connector suite runs over.
	wires = []wire{twilioWire, telnyxWire, signalWireWire}
)

func twilioMethodOf(body map[string]any) string {
	switch m, _ := body["method"].(string); strings.ToLower(m) {
	case "charge", "tokenize":
		return strings.ToLower(m)
	}
	return ""
}

// signalWireBody is a Twilio body as SignalWire sends it (signalwire/docs,
// cXML <Pay>): a charge with method credit-card and the amount as
// chargeAmount; a tokenize without method, with token_type and an amount 0
// unless the body has one. Another method is left as it is.
func signalWireBody(body map[string]any) map[string]any {
	out := with(body)
	switch twilioMethodOf(body) {
	case "charge":
		out["method"] = "credit-card"
		if amount, ok := body["amount"]; ok {
			delete(out, "amount")
			out["chargeAmount"] = amount
		}
	case "tokenize":
		delete(out, "method")
		out["token_type"] = "reusable"
		if _, ok := body["amount"]; !ok {
			out["amount"] = 0
		}
	}
	return out
}

// signalWireMethodOf: a chargeAmount that is there and not 0 charges;
// anything else stores the card.
func signalWireMethodOf(body map[string]any) string {
	amount, ok := body["chargeAmount"]
	if !ok || amount == nil {
		return "tokenize"
	}
	raw, _ := json.Marshal(amount)
	if string(raw) == "null" {
		return "tokenize"
	}
	var text string
	if json.Unmarshal(raw, &text) != nil {
		text = string(raw)
	}
	if cents, err := ivrpay.ParseDollars(strings.TrimSpace(text)); strings.TrimSpace(text) == "" || (err == nil && cents == 0) {
		return "tokenize"
	}
	return "charge"
}

// status is the HTTP status this platform answers where Twilio answers twilioStatus.
func (w wire) status(code string, twilioStatus int) int {
	switch {
	case twilioStatus != 200:
		return twilioStatus
	case code == ivrpay.ConnInternal:
		return w.internal
	}
	return w.refusal
}

// body is a Twilio body encoded for the bundle's platform, as JSON.
func (b *bundle) body(body map[string]any) []byte { return []byte(mustJSON(b.wire.encode(body))) }

// methodOf is the method body (a Twilio body) asks the bundle's platform for.
func (b *bundle) methodOf(body map[string]any) string { return b.wire.methodOf(b.wire.encode(body)) }

// connResp is an answer of the connector endpoint.
type connResp struct {
	wire        wire
	Status      int
	ContentType string
	Raw         []byte
	Keys        []string // top-level keys, in order
	Vals        map[string]json.RawMessage
	Params      map[string]string
}

// connector posts body to the bundle's platform's connector endpoint
// exactly as Twilio does: Basic auth (skipped when user and pass are both
// empty) and, unless contentType is set, no Content-Type header at all.
func (b *bundle) connector(user, pass string, body []byte, contentType string, hdrs ...header) connResp {
	b.t.Helper()
	base, client := b.server()
	req, err := http.NewRequest("POST", base+b.wire.path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Del("Content-Type")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "AHC/2.1")
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	for _, h := range hdrs {
		req.Header.Set(h.name, h.value)
	}
	reqID := "test-" + randHex(8)
	req.Header.Set("X-Request-Id", reqID)
	res, err := client.Do(req)
	if err != nil {
		b.t.Fatalf("connector: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.ctMu.Lock()
	seen := b.ctSeen[reqID]
	b.ctMu.Unlock()
	if contentType == "" && len(seen) != 0 {
		b.t.Fatalf("the server received Content-Type %q; the test meant to send none", seen)
	}
	r := connResp{wire: b.wire, Status: res.StatusCode, ContentType: res.Header.Get("Content-Type"), Raw: raw}
	b.parseConn(&r)
	return r
}

// ivr posts a connector request (a Twilio body, encoded for the bundle's
// platform) with key as the connector's Password.
func (b *bundle) ivr(key string, body map[string]any) connResp {
	b.t.Helper()
	return b.connector("api_key", key, b.body(body), "")
}

// parseConn checks the Twilio shape: a JSON object whose values are strings
// or null, except parameters, an object of strings.
func (b *bundle) parseConn(r *connResp) {
	b.t.Helper()
	if r.ContentType != "application/json" {
		b.t.Errorf("connector Content-Type %q, want application/json", r.ContentType)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		b.t.Fatalf("connector answer is not a JSON object: %s", r.Raw)
	}
	r.Vals = map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			b.t.Fatalf("connector answer: %v: %s", err, r.Raw)
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			b.t.Fatalf("connector answer: %v: %s", err, r.Raw)
		}
		r.Keys = append(r.Keys, k)
		r.Vals[k] = v
		if k == "parameters" {
			if err := json.Unmarshal(v, &r.Params); err != nil || r.Params == nil {
				b.t.Errorf("parameters must be an object of strings: %s", v)
			}
			continue
		}
		if string(v) != "null" && (len(v) == 0 || v[0] != '"') {
			b.t.Errorf("connector answer key %s must be a string or null, got %s", k, v)
		}
	}
}

// str returns a string value and whether it is non-null.
func (r connResp) str(key string) (string, bool) {
	var s *string
	json.Unmarshal(r.Vals[key], &s)
	if s == nil {
		return "", false
	}
	return *s, true
}

func idKeysFor(method string) []string {
	switch method {
	case "charge":
		return []string{"charge_id"}
	case "tokenize":
		return []string{"token_id"}
	}
	return []string{"charge_id", "token_id"}
}

// wantOK checks a successful answer for method and returns its id.
func (r connResp) wantOK(t *testing.T, method string) string {
	t.Helper()
	keys := append(idKeysFor(method), "error_code", "error_message", "parameters")
	if r.Status != 200 || !slices.Equal(r.Keys, keys) {
		t.Fatalf("HTTP %d keys %v, want 200 and keys %v\n%s", r.Status, r.Keys, keys, r.Raw)
	}
	id, ok := r.str(keys[0])
	if !ok || id == "" {
		t.Fatalf("%s is null on success\n%s", keys[0], r.Raw)
	}
	if string(r.Vals["error_code"]) != "null" || string(r.Vals["error_message"]) != "null" {
		t.Fatalf("error_code/error_message must be null on success\n%s", r.Raw)
	}
	return id
}

// wantErr checks a failed answer for method: HTTP status (Twilio's; the
// platform's own where it differs), the id key(s) present and null,
// error_code code, a message; it returns the message.
func (r connResp) wantErr(t *testing.T, method, code string, status int) string {
	t.Helper()
	if r.wire.path != "" {
		status = r.wire.status(code, status)
	}
	keys := append(idKeysFor(method), "error_code", "error_message", "parameters")
	if r.Status != status || !slices.Equal(r.Keys, keys) {
		t.Fatalf("HTTP %d keys %v, want %d and keys %v\n%s", r.Status, r.Keys, status, keys, r.Raw)
	}
	for _, k := range idKeysFor(method) {
		if string(r.Vals[k]) != "null" {
			t.Fatalf("%s = %s, want null on failure\n%s", k, r.Vals[k], r.Raw)
		}
	}
	got, _ := r.str("error_code")
	msg, ok := r.str("error_message")
	if got != code || !ok || msg == "" {
		t.Fatalf("error_code %q, want %q (with a message)\n%s", got, code, r.Raw)
	}
	return msg
}

// futureYear is a two-digit expiry year three years ahead.
func futureYear() string { return fmt.Sprintf("%02d", (time.Now().UTC().Year()+3)%100) }

// chargeBody is a connector charge as Twilio sends it (all strings, no
// Content-Type, a fresh transaction_id) for a 10.00 USD payin config.
func chargeBody(cfgID string) map[string]any {
	return map[string]any{
		"method": "charge", "transaction_id": newTxID(), "cardnumber": "4111111111111111", "cvv": "123",
		"amount": "10.00", "currency_code": "USD", "expiry_month": "08", "expiry_year": futureYear(),
		"description": "pizza", "postal_code": "94111",
		"parameters": map[string]any{"payin_config_id": cfgID},
	}
}

// tokenizeBody is a connector tokenize as Twilio sends it (no amount or currency).
func tokenizeBody(pmcID string) map[string]any {
	return map[string]any{
		"method": "tokenize", "transaction_id": newTxID(), "cardnumber": "4111111111111111", "cvv": "123",
		"expiry_month": "08", "expiry_year": futureYear(), "description": "pizza", "postal_code": "94111",
		"parameters": map[string]any{"payment_method_config_id": pmcID},
	}
}

// with returns a copy of body with fields set; a nil value deletes the field.
func with(body map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(body))
	for k, v := range body {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// jsonNull is a field value that marshals as JSON null (with deletes fields on nil).
var jsonNull = json.RawMessage("null")

func newTxID() string {
	var b [16]byte
	rand.Read(b[:])
	return uuidOf(b)
}

// uuidOf writes b as a canonical UUID (8-4-4-4-12 hexadecimal digits).
func uuidOf(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newIdempotencyKey is a fresh idempotency key for a fixture.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return idempotencyKeyOf(b)
}

// idempotencyKeyOf is the fixtures' idempotency key made of the random
// bytes b. Its random part is a UUID, which the API's check for card
// numbers in identifiers never reads as one (SPEC §9), whatever its digits:
// 16 random hexadecimal characters, as the keys were, are all decimal digits
// once in about 1,900 draws, and those digits a card number about once in
// 16, so about one fixture in 31,000 was refused with a 400 naming
// idempotency_key (TestFixtureIdempotencyKeys).
func idempotencyKeyOf(b [16]byte) string { return "idem-" + uuidOf(b) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	idRE     = regexp.MustCompile(`^sbx_(plt|mid|api|cfg|pyi|pmc|mtd|ses|rfd|chb)_[0-9A-Za-z]{27}$`)
	secretRE = regexp.MustCompile(`^sbx_apikey_[0-9a-f]{64}$`)
)

// wantID checks a sandbox id with prefix ("cfg_", …).
func wantID(t *testing.T, id any, prefix string) string {
	t.Helper()
	s, _ := id.(string)
	if !idRE.MatchString(s) || !strings.HasPrefix(s, "sbx_"+prefix) {
		t.Fatalf("id %v, want sbx_%s followed by 27 base62 characters", id, prefix)
	}
	return s
}
