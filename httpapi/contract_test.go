package httpapi_test

// The contract test keeps the OpenAPI document (httpapi/openapi.json, served
// at GET /openapi.json) true. A scripted scenario drives every documented
// operation against the real handler on a real store, through an HTTP client
// whose transport validates every request and every answer against the
// document with kin-openapi, and fails the test on any mismatch:
//
//   - a request the scenario means to be valid must conform to the document,
//     and one it sends on purpose to provoke an error (an unknown field, no
//     credentials, a value outside an enum) must be one the document rejects;
//   - every answer must conform: a documented status code, the envelope and
//     data schema of that status (additionalProperties: false, so a field the
//     server adds and the document lacks fails too), and the documented headers;
//   - every operation of the document must have been exercised.
//
// TestContractRoutesDocumented checks the other direction: every route that
// server.go registers is an operation of the document.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/voice"
	"github.com/ivrpay/ivrpay/webhook"
)

// loadContractDoc parses the embedded document and validates it as OpenAPI.
func loadContractDoc(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPIDocument())
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// contractOperation is one operation of the document.
type contractOperation struct {
	method, path string
	op           *openapi3.Operation
}

func contractOperations(doc *openapi3.T) []contractOperation {
	var ops []contractOperation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			ops = append(ops, contractOperation{method: method, path: path, op: op})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

// TestContractDocumentIsValidOpenAPI checks that the document parses and
// validates as OpenAPI 3.1, and the conventions every operation follows.
func TestContractDocumentIsValidOpenAPI(t *testing.T) {
	doc := loadContractDoc(t)
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if !json.Valid(httpapi.OpenAPIDocument()) {
		t.Fatal("openapi.json is not valid JSON")
	}
	ids := map[string]string{}
	for _, o := range contractOperations(doc) {
		where := o.method + " " + o.path
		if o.op.OperationID == "" {
			t.Errorf("%s: no operationId", where)
		} else if prev, dup := ids[o.op.OperationID]; dup {
			t.Errorf("%s: operationId %s is also %s's", where, o.op.OperationID, prev)
		}
		ids[o.op.OperationID] = where
		if !strings.HasPrefix(o.path, "/v1/") {
			if o.op.Security == nil {
				t.Errorf("%s: outside /v1, an operation must declare its own security", where)
			}
			continue
		}
		// /v1: Bearer (the document's default), the version header, and the
		// error answers every /v1 request can get.
		if o.op.Security != nil {
			t.Errorf("%s: a /v1 operation uses the document's bearerAuth security", where)
		}
		if p := o.op.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Rainforest-Api-Version"); p == nil {
			t.Errorf("%s: no Rainforest-Api-Version header parameter", where)
		}
		want := []int{200, 400, 401, 403, 429, 500}
		if strings.Contains(o.path, "{id}") {
			want = append(want, 404)
		}
		for _, status := range want {
			if o.op.Responses.Status(status) == nil {
				t.Errorf("%s: no %d answer", where, status)
			}
		}
	}
}

// TestContractEventTypes: the document's event types and subscription
// patterns are the ones the code knows, no more and no fewer.
func TestContractEventTypes(t *testing.T) {
	doc := loadContractDoc(t)
	enum := func(s *openapi3.Schema) []string {
		var out []string
		for _, v := range s.Enum {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	if got := enum(doc.Components.Schemas["EventType"].Value); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ivrpay.EventTypes))) {
		t.Errorf("EventType enum %v, want ivrpay.EventTypes %v", got, ivrpay.EventTypes)
	}
	sub := doc.Components.Schemas["EventSubscription"].Value
	if len(sub.AnyOf) != 2 || sub.AnyOf[0].Ref != "#/components/schemas/EventType" {
		t.Fatalf("EventSubscription is not anyOf [EventType, the patterns]")
	}
	if got := enum(sub.AnyOf[1].Value); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ivrpay.EventPatterns))) {
		t.Errorf("EventSubscription patterns %v, want ivrpay.EventPatterns %v", got, ivrpay.EventPatterns)
	}
}

// serverRouteRE matches the patterns server.go registers: mux.Handle("GET /v1/…", …),
// and "POST "+p.Path() for every voice platform p.
var serverRouteRE = regexp.MustCompile(`mux\.Handle(?:Func)?\("([^"]*)"(\+p\.Path\(\))?`)

// undocumentedRoutes are served but deliberately not in the document.
var undocumentedRoutes = map[string]string{
	"GET /metrics": "Prometheus text format, and served on --metrics-addr when that is set",
	"/portal":      "the web portal: HTML pages, not API",
	"/portal/":     "the web portal: HTML pages, not API",
	"/v1/":         "the catch-all answering 404 EntityNotFound for unknown /v1 endpoints",
}

// TestContractRoutesDocumented checks that every route server.go registers
// is an operation of the document, and every operation a route.
func TestContractRoutesDocumented(t *testing.T) {
	doc := loadContractDoc(t)
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, m := range serverRouteRE.FindAllStringSubmatch(string(src), -1) {
		if m[2] != "" {
			for _, p := range voice.Platforms() {
				routes[m[1]+p.Path()] = true
			}
			continue
		}
		routes[m[1]] = true
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in server.go; has the way routes are registered changed?", len(routes))
	}
	documented := map[string]bool{}
	for _, o := range contractOperations(doc) {
		documented[o.method+" "+o.path] = true
	}
	for route := range routes {
		if _, skip := undocumentedRoutes[route]; skip {
			continue
		}
		if !documented[route] {
			t.Errorf("server.go serves %s, which openapi.json does not document", route)
		}
	}
	for op := range documented {
		if !routes[op] {
			t.Errorf("openapi.json documents %s, which server.go does not serve", op)
		}
	}
}

// TestContract runs the scenario on every engine.
func TestContract(t *testing.T) {
	doc := loadContractDoc(t)
	forEachEngine(t, func(t *testing.T, engine string) {
		c := newContract(t, doc, engine)
		c.run()
		c.checkCoverage()
	})
}

// ---- the validating transport ----

type violationKey struct{}

// contractTransport validates every request and answer against the document.
type contractTransport struct {
	c    *contract
	next http.RoundTripper
}

func (tr *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := tr.c
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	withBody := func(r *http.Request) *http.Request {
		r = r.Clone(r.Context())
		if body == nil {
			r.Body, r.GetBody = http.NoBody, nil
		} else {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return r
	}
	what := req.Method + " " + req.URL.RequestURI()
	violation, _ := req.Context().Value(violationKey{}).(string)

	vreq := withBody(req)
	route, pathParams, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Errorf("%s: no operation of openapi.json matches: %v", what, err)
		return tr.next.RoundTrip(withBody(req))
	}
	if strings.HasPrefix(route.Path, "/vendor/") && vreq.Header.Get("Content-Type") == "" {
		// Twilio sends no Content-Type; the document says the body is JSON
		// whatever the header says, so the copy the validator reads has one.
		vreq.Header.Set("Content-Type", "application/json")
	}
	input := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: pathParams, Route: route, Options: c.options}
	reqErr := openapi3filter.ValidateRequest(req.Context(), input)
	switch {
	case violation == "" && reqErr != nil:
		c.t.Errorf("%s: the request does not conform to openapi.json: %v", what, reqErr)
	case violation != "" && reqErr == nil:
		c.t.Errorf("%s: the request was sent to violate openapi.json (%s), but the document accepts it", what, violation)
	}

	res, err := tr.next.RoundTrip(withBody(req))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(raw))
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: res.StatusCode,
		Header: res.Header, Options: c.options}
	rin.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(req.Context(), rin); err != nil {
		c.t.Errorf("%s → %d: the answer does not conform to openapi.json: %v\n%s", what, res.StatusCode, err, raw)
	}
	c.mu.Lock()
	if c.seen[route.Operation.OperationID] == nil {
		c.seen[route.Operation.OperationID] = map[int]int{}
	}
	c.seen[route.Operation.OperationID][res.StatusCode]++
	c.mu.Unlock()
	return res, nil
}

// contractAuth accepts the document's security schemes when their
// credentials are present; whether they are right is the server's business
// (a wrong key is a request the document allows, answered 401).
func contractAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch strings.ToLower(in.SecurityScheme.Scheme) {
	case "bearer":
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || strings.TrimSpace(tok) == "" {
			return errors.New("no Bearer credentials")
		}
		return nil
	case "basic":
		if _, _, ok := r.BasicAuth(); !ok {
			return errors.New("no Basic credentials")
		}
		return nil
	}
	return fmt.Errorf("unexpected security scheme %s", in.SecuritySchemeName)
}

// ---- the scenario's harness ----

type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	engine string
	store  *sqlstore.Store
	url    string
	client *http.Client

	options *openapi3filter.Options
	// limiterOffset moves the auth limiter's clock forward (nanoseconds).
	limiterOffset atomic.Int64

	platformID, merchantID, admin string

	mu   sync.Mutex
	seen map[string]map[int]int // operationId → status → count

	// inbox receives the processor events the scenario posts.
	inbox *recordingInbox
}

// contractEncrypt seals a processor secret with the scenario's vault.
func contractEncrypt(t *testing.T, opts paymentstest.Config, secret string) string {
	t.Helper()
	ct, err := opts.Vault.Encrypt(secret)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func newContract(t *testing.T, doc *openapi3.T, engine string) *contract {
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	opts := paymentstest.Options(t)
	opts.Logger = slog.New(slog.DiscardHandler)
	store := paymentstest.Open(t, engine, opts)
	pay := opts.Payments(store)
	c := &contract{t: t, doc: doc, router: router, engine: engine, store: store, seen: map[string]map[int]int{},
		options: &openapi3filter.Options{
			AuthenticationFunc:                contractAuth,
			IncludeResponseStatus:             true, // an undocumented status is a mismatch
			RejectWhenRequestBodyNotSpecified: true,
			SkipSettingDefaults:               true, // never rewrite the body the server gets
		}}
	limiter := httpapi.NewAuthLimiter()
	limiter.Now = func() time.Time { return time.Now().Add(time.Duration(c.limiterOffset.Load())) }
	services := httpapi.NewServices(store, pay)
	// Processor accounts whose events the scenario posts.
	for _, a := range []ivrpay.ProcessorAccount{
		{Name: "stripe-contract", Kind: ivrpay.ProcessorKindStripe, SecretCiphertext: contractEncrypt(t, opts, "sk_test_51Contract"),
			EventsSecretCiphertext: contractEncrypt(t, opts, eventsWhsec)},
		{Name: "adyen-contract", Kind: ivrpay.ProcessorKindAdyen, MerchantAccount: adyentest.MerchantAccount,
			SecretCiphertext: contractEncrypt(t, opts, "AQEcontract"), EventsSecretCiphertext: contractEncrypt(t, opts, adyentest.HMACKey)},
	} {
		if err := store.CreateProcessorAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	c.inbox = &recordingInbox{}
	services.EventSecrets, services.ProcessorEvents = &payments.AccountRouter{Store: store, Vault: opts.Vault}, c.inbox
	server := &httpapi.Server{Logger: opts.Logger, Limiter: limiter, Services: services}
	srv := httptest.NewServer(server.Handler())
	t.Cleanup(srv.Close)
	c.url = srv.URL
	c.client = &http.Client{Transport: &contractTransport{c: c, next: srv.Client().Transport}}

	ctx := context.Background()
	p, admin, err := store.CreatePlatform(ctx, "Contract Platform", true)
	if err != nil {
		t.Fatalf("CreatePlatform: %v", err)
	}
	m, err := store.CreateMerchantAsOperator(ctx, p.ID, ivrpay.MerchantCreate{Name: "Contract Merchant"})
	if err != nil {
		t.Fatalf("CreateMerchantAsOperator: %v", err)
	}
	c.platformID, c.merchantID, c.admin = p.ID, m.ID, admin.Secret
	return c
}

// creq is a request being built.
type creq struct {
	c                    *contract
	method, path         string
	bearer               string
	basic                bool
	basicUser, basicPass string
	body                 []byte
	headers              map[string]string
	violation            string
}

func (c *contract) req(method, path string) *creq {
	return &creq{c: c, method: method, path: path, headers: map[string]string{}}
}

// key authenticates with a Bearer key.
func (r *creq) key(secret string) *creq { r.bearer = secret; return r }

// connector authenticates as Twilio does: Basic auth.
func (r *creq) basicAuth(user, pass string) *creq {
	r.basic, r.basicUser, r.basicPass = true, user, pass
	return r
}

// json sets the body: a string is sent as is, anything else marshaled.
func (r *creq) json(v any) *creq {
	if s, ok := v.(string); ok {
		r.body = []byte(s)
		return r
	}
	b, err := json.Marshal(v)
	if err != nil {
		r.c.t.Fatal(err)
	}
	r.body = b
	return r
}

func (r *creq) header(name, value string) *creq { r.headers[name] = value; return r }

// violates marks a request sent on purpose to break the document: the
// transport then checks that the document does reject it.
func (r *creq) violates(why string) *creq { r.violation = why; return r }

// canswer is an answer: the /v1 envelope decoded when there is one.
type canswer struct {
	status int
	header http.Header
	raw    []byte
	data   json.RawMessage
	errs   []struct{ Field, Code, Message string }
}

// send sends the request and returns the answer whatever its status.
func (r *creq) send() canswer {
	t := r.c.t
	t.Helper()
	ctx := context.Background()
	if r.violation != "" {
		ctx = context.WithValue(ctx, violationKey{}, r.violation)
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.c.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != nil && !strings.HasPrefix(r.path, "/vendor/") {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.basic {
		req.SetBasicAuth(r.basicUser, r.basicPass)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := r.c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := canswer{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(r.path, "/v1/") {
		var env struct {
			Data   json.RawMessage
			Errors []struct{ Field, Code, Message string }
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", r.method, r.path, err, raw)
		}
		a.data, a.errs = env.Data, env.Errors
	}
	return a
}

// expect sends the request and fails the test unless the answer has status.
func (r *creq) expect(status int) canswer {
	r.c.t.Helper()
	a := r.send()
	if a.status != status {
		r.c.t.Fatalf("%s %s: HTTP %d, want %d\n%s", r.method, r.path, a.status, status, a.raw)
	}
	return a
}

// field returns the field the error names.
func (a canswer) field() string {
	if len(a.errs) == 0 {
		return ""
	}
	return a.errs[0].Field
}

// obj decodes data (or, on the connector, the whole answer) as an object.
func (a canswer) obj(t *testing.T) map[string]any {
	t.Helper()
	src := a.data
	if src == nil {
		src = a.raw
	}
	var m map[string]any
	if err := json.Unmarshal(src, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, a.raw)
	}
	return m
}

// str returns a string field of an object answer ("" when absent or null).
func (a canswer) str(t *testing.T, key string) string {
	t.Helper()
	s, _ := a.obj(t)[key].(string)
	return s
}

// clist is a list answer's data.
type clist struct {
	Total   int              `json:"total_results"`
	LastKey string           `json:"last_key"`
	Results []map[string]any `json:"results"`
}

// list decodes a list answer's data.
func (a canswer) list(t *testing.T) clist {
	t.Helper()
	var l clist
	if err := json.Unmarshal(a.data, &l); err != nil {
		t.Fatalf("not a list: %v\n%s", err, a.raw)
	}
	return l
}

// wantField fails the test unless the error answer names field.
func (a canswer) wantField(t *testing.T, field string) {
	t.Helper()
	if a.field() != field {
		t.Fatalf("HTTP %d names field %q, want %q\n%s", a.status, a.field(), field, a.raw)
	}
}

func contractYear() string { return fmt.Sprintf("%02d", (time.Now().UTC().Year()+3)%100) }

var contractTx atomic.Int64

func contractTxID() string {
	return fmt.Sprintf("contract-%d-%d", time.Now().UnixNano(), contractTx.Add(1))
}

// charge is a Twilio charge of amount dollars for cfgID.
func contractCharge(cfgID, card, amount string) map[string]any {
	return map[string]any{
		"method": "charge", "transaction_id": contractTxID(), "cardnumber": card, "cvv": "123",
		"expiry_month": "08", "expiry_year": contractYear(), "postal_code": "94111", "amount": amount,
		"currency_code": "USD", "description": "contract test", "parameters": map[string]any{"payin_config_id": cfgID},
	}
}

// contractWith returns a copy of body with the key/value pairs set.
func contractWith(body map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(body)+len(kv)/2)
	for k, v := range body {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// ---- the scenario ----

func (c *contract) run() {
	t := c.t
	ctx := context.Background()
	admin := c.admin
	bogusKey := "sbx_apikey_" + strings.Repeat("0", 64)

	// Operations.
	c.req("GET", "/health").expect(200)
	a := c.req("GET", "/openapi.json").expect(200)
	if !bytes.Equal(a.raw, httpapi.OpenAPIDocument()) || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /openapi.json: Content-Type %q and %d bytes, want application/json and the embedded document",
			a.header.Get("Content-Type"), len(a.raw))
	}

	// Webhook endpoints first, so that the scenario's events are delivered.
	var hookMu sync.Mutex
	hooks := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hooks++
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // deliveries to it fail: attempts with an error
	a = c.req("POST", "/v1/webhook_endpoints").key(admin).
		json(map[string]any{"url": receiver.URL + "/hooks", "events": []string{"payin.processing", "payin.succeeded", "refund.processing", "chargeback.*"}}).
		expect(200)
	hookOK := a.str(t, "webhook_endpoint_id")
	if !strings.HasPrefix(a.str(t, "secret"), "whsec_") {
		t.Fatalf("webhook endpoint created without its secret: %s", a.raw)
	}
	hookGone := c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": gone.URL + "/hooks"}).
		expect(200).str(t, "webhook_endpoint_id")
	c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": receiver.URL, "retries": 3}).
		violates("unknown field").expect(400).wantField(t, "retries")
	c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": receiver.URL, "events": []string{"payin.exploded"}}).
		violates("unknown event type").expect(400).wantField(t, "events[0]")
	c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": receiver.URL, "events": []string{"payin.*", "charge*"}}).
		violates("not a documented pattern").expect(400).wantField(t, "events[1]")

	// API keys.
	ivrStatements := fmt.Sprintf(`[{"permissions":["payin:create","payment_method:create"],"constraints":{"platform":{"platform_id":%q}}}]`, c.platformID)
	a = c.req("POST", "/v1/api_keys").key(admin).json(`{"statements":` + ivrStatements + `}`).expect(200)
	ivr, ivrID := a.str(t, "api_key"), a.str(t, "api_key_id")
	c.req("POST", "/v1/api_keys").key(admin).json(`{"statements":`+ivrStatements+`,"name":"ivr"}`).
		violates("unknown field").expect(400).wantField(t, "name")
	c.req("POST", "/v1/api_keys").key(admin).
		json(fmt.Sprintf(`{"statements":[{"permissions":["payin:fly"],"constraints":{"platform":{"platform_id":%q}}}]}`, c.platformID)).
		violates("unknown permission").expect(400).wantField(t, "statements[0].permissions[0]")
	c.req("POST", "/v1/api_keys").json(`{"statements":` + ivrStatements + `}`).violates("no credentials").expect(401)
	c.req("POST", "/v1/api_keys").key(bogusKey).json(`{"statements":` + ivrStatements + `}`).expect(401)
	c.req("POST", "/v1/api_keys").key(ivr).json(`{"statements":` + ivrStatements + `}`).expect(403)

	a = c.req("GET", "/v1/api_keys?limit=1").key(admin).expect(200)
	page := a.list(t)
	if page.Total < 2 || len(page.Results) != 1 || page.LastKey == "" {
		t.Fatalf("GET /v1/api_keys?limit=1: %s", a.raw)
	}
	c.req("GET", "/v1/api_keys?limit=1&start_key="+page.LastKey).key(admin).expect(200)
	c.req("GET", "/v1/api_keys?limit=0").key(admin).violates("limit below 1").expect(400).wantField(t, "limit")
	c.req("GET", "/v1/api_keys?limit=1001").key(admin).violates("limit above 1000").expect(400).wantField(t, "limit")
	c.req("GET", "/v1/api_keys").key(ivr).expect(403)
	a = c.req("GET", "/v1/api_keys/"+ivrID).key(admin).header("Rainforest-Api-Version", "2024-10-16").expect(200)
	if a.str(t, "api_key") != "" || a.header.Get("Rainforest-Api-Version") != "2024-10-16" {
		t.Fatalf("GET /v1/api_keys/{id}: secret shown or version header missing\n%v\n%s", a.header, a.raw)
	}
	c.req("GET", "/v1/api_keys/"+ivrID).key(admin).header("Rainforest-Api-Version", "2023-12-01").
		expect(400).wantField(t, "Rainforest-Api-Version") // known, but older than the platform's minimum
	c.req("GET", "/v1/api_keys/"+ivrID).key(admin).header("Rainforest-Api-Version", "1999-01-01").
		violates("unknown API version").expect(400).wantField(t, "Rainforest-Api-Version")
	c.req("GET", "/v1/api_keys/sbx_api_nope").key(admin).expect(404)

	if s := c.req("POST", "/v1/api_keys/"+ivrID+"/disable").key(admin).expect(200).str(t, "status"); s != "DISABLED" {
		t.Fatalf("disable: status %s", s)
	}
	c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(contractCharge("sbx_cfg_none", "4111111111111111", "10.00")).expect(401)
	if s := c.req("POST", "/v1/api_keys/"+ivrID+"/enable").key(admin).expect(200).str(t, "status"); s != "ENABLED" {
		t.Fatalf("enable: status %s", s)
	}
	c.req("POST", "/v1/api_keys/"+ivrID+"/disable").key(ivr).expect(403)
	c.req("POST", "/v1/api_keys/sbx_api_nope/enable").key(admin).expect(404)

	// Sessions: OpenEMR's shape (no platform constraint), then the refusals.
	sessionBody := fmt.Sprintf(`{"ttl":3600,"statements":[{"permissions":["group#payment_component"],"constraints":{"merchant":{"merchant_id":%q}}}]}`, c.merchantID)
	a = c.req("POST", "/v1/sessions").key(admin).json(sessionBody).expect(200)
	sessionKey := a.str(t, "session_key")
	if !strings.HasPrefix(sessionKey, "sbx_session_") || !strings.HasPrefix(a.str(t, "session_id"), "sbx_ses_") {
		t.Fatalf("POST /v1/sessions: %s", a.raw)
	}
	c.req("POST", "/v1/sessions").key(admin).json(`{"statements":[{"permissions":["payin:read"],"constraints":{}}]}`).expect(200)
	c.req("POST", "/v1/sessions").key(admin).json(`{"ttl":30,"statements":[{"permissions":["payin:read"],"constraints":{}}]}`).
		violates("ttl below 60").expect(400).wantField(t, "ttl")
	c.req("POST", "/v1/sessions").json(sessionBody).violates("no credentials").expect(401)
	c.req("POST", "/v1/sessions").key(ivr).json(sessionBody).expect(403)
	c.req("POST", "/v1/sessions").key(sessionKey).json(sessionBody).expect(403)
	c.req("POST", "/v1/api_keys").key(sessionKey).json(`{"statements":` + ivrStatements + `}`).expect(403)

	// Merchants.
	a = c.req("POST", "/v1/merchants").key(admin).json(map[string]any{"name": "Contract Shop", "dba_name": "The Shop", "email": "shop@example.com"}).expect(200)
	shopID := a.str(t, "merchant_id")
	c.req("POST", "/v1/merchants").key(admin).json(map[string]any{"name": "Plain Shop"}).expect(200)
	c.req("POST", "/v1/merchants").key(admin).json(map[string]any{"name": "X", "nickname": "x"}).
		violates("unknown field").expect(400).wantField(t, "nickname")
	c.req("POST", "/v1/merchants").key(admin).json(map[string]any{"dba_name": "X"}).
		violates("name is required").expect(400).wantField(t, "name")
	c.req("POST", "/v1/merchants").key(ivr).json(map[string]any{"name": "X"}).expect(403)
	c.req("GET", "/v1/merchants?limit=10").key(admin).expect(200)
	c.req("GET", "/v1/merchants").key(ivr).expect(403)
	c.req("GET", "/v1/merchants/"+shopID).key(admin).expect(200)
	c.req("GET", "/v1/merchants/"+shopID).key(ivr).expect(403)
	c.req("GET", "/v1/merchants/sbx_mid_nope").key(admin).expect(404)

	// Payin configs.
	billing := map[string]any{"name": "Jane Smith", "address_line_1": "1 Market St", "address_line_2": "Suite 2",
		"city": "San Francisco", "state": "CA", "postal_code": "94111", "country": "US",
		"email": "jane@example.com", "phone": "+14155550100"}
	cfgBody := map[string]any{"merchant_id": c.merchantID, "idempotency_key": "contract-cfg-1", "amount": 1000,
		"currency_code": "USD", "billing_contact": billing, "metadata": map[string]any{"order": "1001"},
		"method_metadata": map[string]any{"note": "ivr"}, "processing_mode": "AUTHORIZE_AND_CAPTURE"}
	a = c.req("POST", "/v1/payin_configs").key(admin).json(cfgBody).expect(200)
	cfg1 := a.str(t, "payin_config_id")
	if c.req("POST", "/v1/payin_configs").key(admin).json(cfgBody).expect(200).str(t, "payin_config_id") != cfg1 {
		t.Fatal("a repeat of a payin config creation made a new config")
	}
	c.req("POST", "/v1/payin_configs").key(admin).json(contractWith(cfgBody, "amount", 2000)).expect(409).wantField(t, "idempotency_key")
	c.req("POST", "/v1/payin_configs").key(admin).json(contractWith(cfgBody, "idempotency_key", "contract-cfg-x", "tip", 5)).
		violates("unknown field").expect(400).wantField(t, "tip")
	c.req("POST", "/v1/payin_configs").key(admin).json(contractWith(cfgBody, "idempotency_key", "contract-cfg-x", "currency_code", "EUR")).
		violates("currency not USD").expect(400).wantField(t, "currency_code")
	c.req("POST", "/v1/payin_configs").key(ivr).json(contractWith(cfgBody, "idempotency_key", "contract-cfg-x")).expect(403)
	newCfg := func(key string, amount int, mode string) string {
		return c.req("POST", "/v1/payin_configs").key(admin).json(map[string]any{"merchant_id": c.merchantID,
			"idempotency_key": key, "amount": amount, "currency_code": "USD", "processing_mode": mode}).
			expect(200).str(t, "payin_config_id")
	}
	cfgDecline := newCfg("contract-cfg-decline", 1000, "AUTHORIZE_AND_CAPTURE")
	cfgAuth := newCfg("contract-cfg-auth", 1500, "AUTHORIZE")
	cfgVoid := newCfg("contract-cfg-void", 700, "AUTHORIZE_AND_CAPTURE")
	cfgStored := newCfg("contract-cfg-stored", 2500, "AUTHORIZE_AND_CAPTURE")
	if a = c.req("GET", "/v1/payin_configs/"+cfg1).key(admin).expect(200); a.obj(t)["payin"] != nil {
		t.Fatalf("unused payin config: %s", a.raw)
	}
	c.req("GET", "/v1/payin_configs/sbx_cfg_nope").key(admin).expect(404)
	c.req("GET", "/v1/payin_configs/"+cfg1).key(ivr).expect(403)

	// Payment method configs.
	pmcBody := map[string]any{"platform_id": c.platformID, "idempotency_key": "contract-pmc-1", "merchant_id": c.merchantID,
		"billing_contact": map[string]any{"name": "Jane Smith", "postal_code": "94111"}, "metadata": map[string]any{"customer": "42"}}
	pmc := c.req("POST", "/v1/payment_method_configs").key(admin).json(pmcBody).expect(200).str(t, "payment_method_config_id")
	if c.req("POST", "/v1/payment_method_configs").key(admin).json(pmcBody).expect(200).str(t, "payment_method_config_id") != pmc {
		t.Fatal("a repeat of a payment method config creation made a new config")
	}
	c.req("POST", "/v1/payment_method_configs").key(admin).json(contractWith(pmcBody, "metadata", map[string]any{"customer": "43"})).
		expect(409).wantField(t, "idempotency_key")
	c.req("POST", "/v1/payment_method_configs").key(admin).json(contractWith(pmcBody, "idempotency_key", "contract-pmc-x", "label", "x")).
		violates("unknown field").expect(400).wantField(t, "label")
	c.req("POST", "/v1/payment_method_configs").key(ivr).json(contractWith(pmcBody, "idempotency_key", "contract-pmc-x")).expect(403)
	platformPMC := c.req("POST", "/v1/payment_method_configs").key(admin).
		json(map[string]any{"platform_id": c.platformID, "idempotency_key": "contract-pmc-platform"}).
		expect(200).str(t, "payment_method_config_id")
	c.req("GET", "/v1/payment_method_configs/"+platformPMC).key(admin).expect(200)
	c.req("GET", "/v1/payment_method_configs/sbx_pmc_nope").key(admin).expect(404)

	// The IVR call: the Twilio connector.
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(200)
	payin1 := a.str(t, "charge_id")
	if payin1 == "" {
		t.Fatalf("charge: %s", a.raw)
	}
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(contractCharge(cfgDecline, "4000000000000002", "10.00")).expect(200)
	if a.str(t, "error_code") != "DECLINED" {
		t.Fatalf("decline: %s", a.raw)
	}
	params, _ := a.obj(t)["parameters"].(map[string]any)
	declined, _ := params["payin_id"].(string)
	if declined == "" {
		t.Fatalf("a decline names its FAILED payin in parameters.payin_id: %s", a.raw)
	}
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(contractCharge(cfgAuth, "5555555555554444", "15.00")).expect(200)
	payinAuth := a.str(t, "charge_id")
	c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", "sbx_apikey_"+strings.Repeat("1", 64)).
		json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(401)
	c.req("POST", httpapi.ConnectorPath).basicAuth("admin", ivr).json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(401)
	c.req("POST", httpapi.ConnectorPath).json(contractCharge(cfg1, "4111111111111111", "10.00")).violates("no credentials").expect(401)
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(contractWith(contractCharge(cfg1, "4111111111111111", "10.00"), "method", "refund")).
		violates("unknown method").expect(200)
	if a.str(t, "error_code") != "INVALID_REQUEST" {
		t.Fatalf("unknown method: %s", a.raw)
	}
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).json(map[string]any{
		"method": "tokenize", "transaction_id": contractTxID(), "cardnumber": "4111111111111111", "cvv": "123",
		"expiry_month": "08", "expiry_year": contractYear(), "postal_code": "94111", "amount": nil, "currency_code": nil,
		"parameters": map[string]any{"payment_method_config_id": pmc}}).expect(200)
	method := a.str(t, "token_id")
	if method == "" {
		t.Fatalf("tokenize: %s", a.raw)
	}
	a = c.req("GET", "/v1/payment_method_configs/"+pmc).key(admin).expect(200)
	if ref, _ := a.obj(t)["payment_method"].(map[string]any); ref["payment_method_id"] != method {
		t.Fatalf("payment method config after tokenize: %s", a.raw)
	}

	// Payins.
	a = c.req("GET", "/v1/payins?source=IVR&status=PROCESSING&merchant_id="+c.merchantID+"&limit=10").key(admin).expect(200)
	page = a.list(t)
	if page.Total != 1 || page.Results[0]["payin_id"] != payin1 {
		t.Fatalf("GET /v1/payins filtered: %s", a.raw)
	}
	c.req("GET", "/v1/payins?limit=1").key(admin).expect(200)
	c.req("GET", "/v1/payins?status=BOGUS").key(admin).violates("unknown status").expect(400).wantField(t, "status")
	c.req("GET", "/v1/payins?source=PHONE").key(admin).violates("unknown source").expect(400).wantField(t, "source")
	c.req("GET", "/v1/payins").key(ivr).expect(403)
	a = c.req("GET", "/v1/payins/"+payin1).key(admin).expect(200)
	if a.str(t, "source") != "IVR" || a.str(t, "status") != "PROCESSING" {
		t.Fatalf("IVR payin: %s", a.raw)
	}
	payin1Method := a.str(t, "payment_method_id")
	if ref, _ := c.req("GET", "/v1/payin_configs/"+cfg1).key(admin).expect(200).obj(t)["payin"].(map[string]any); ref["payin_id"] != payin1 {
		t.Fatalf("payin config %s does not point to its payin %s", cfg1, payin1)
	}
	if a = c.req("GET", "/v1/payins/"+declined).key(admin).expect(200); a.str(t, "refusal_code") != "DECLINED" {
		t.Fatalf("declined payin: %s", a.raw)
	}
	c.req("GET", "/v1/payins/"+payin1).key(ivr).expect(403)
	c.req("GET", "/v1/payins/sbx_pyi_nope").key(admin).expect(404)

	// Capture.
	if s := c.req("GET", "/v1/payins/"+payinAuth).key(admin).expect(200).str(t, "status"); s != "AUTHORIZED" {
		t.Fatalf("payin of an AUTHORIZE config is %s", s)
	}
	c.req("POST", "/v1/payins/"+payinAuth+"/capture").key(admin).json(map[string]any{"amount": 1500, "final": true}).
		violates("unknown field").expect(400).wantField(t, "final")
	c.req("POST", "/v1/payins/"+payinAuth+"/capture").key(ivr).expect(403)
	if s := c.req("POST", "/v1/payins/"+payinAuth+"/capture").key(admin).json(map[string]any{"amount": 1500}).expect(200).str(t, "status"); s != "PROCESSING" {
		t.Fatalf("captured payin is %s", s)
	}
	c.req("POST", "/v1/payins/"+payinAuth+"/capture").key(admin).expect(409)
	c.req("POST", "/v1/payins/sbx_pyi_nope/capture").key(admin).expect(404)

	// Settlement, then refunds and a void.
	paymentstest.Settle(t, c.store)
	refundBody := map[string]any{"idempotency_key": "contract-refund-1", "reason": "REQUESTED_BY_CUSTOMER", "amount": 300,
		"metadata": map[string]any{"ticket": "T-77"}}
	a = c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(refundBody).expect(200)
	refund := a.str(t, "refund_id")
	if a.str(t, "type") != "REFUND" || refund == "" {
		t.Fatalf("refund: %s", a.raw)
	}
	if c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(refundBody).expect(200).str(t, "refund_id") != refund {
		t.Fatal("a repeat of a refund made a new refund")
	}
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(contractWith(refundBody, "amount", 400)).
		expect(409).wantField(t, "idempotency_key")
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(contractWith(refundBody, "idempotency_key", "contract-refund-2", "amount", 5000)).
		expect(409)
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(contractWith(refundBody, "idempotency_key", "contract-refund-3", "note", "x")).
		violates("unknown field").expect(400).wantField(t, "note")
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(contractWith(refundBody, "idempotency_key", "contract-refund-3", "reason", "BECAUSE")).
		violates("unknown reason").expect(400).wantField(t, "reason")
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(admin).json(contractWith(refundBody, "idempotency_key", "contract-refund-3", "metadata", "T-77")).
		violates("metadata not an object").expect(400).wantField(t, "metadata")
	c.req("POST", "/v1/payins/"+payin1+"/void_or_refund").key(ivr).json(contractWith(refundBody, "idempotency_key", "contract-refund-3")).expect(403)
	c.req("POST", "/v1/payins/sbx_pyi_nope/void_or_refund").key(admin).json(contractWith(refundBody, "idempotency_key", "contract-refund-3")).expect(404)
	a = c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", ivr).
		json(contractWith(contractCharge(cfgVoid, "378282246310005", "7.00"), "cvv", "1234")).expect(200) // Amex: 4-digit CVV
	payinVoid := a.str(t, "charge_id")
	if payinVoid == "" {
		t.Fatalf("charge: %s", a.raw)
	}
	a = c.req("POST", "/v1/payins/"+payinVoid+"/void_or_refund").key(admin).
		json(map[string]any{"idempotency_key": "contract-void-1", "reason": "DUPLICATE", "type": "VOID"}).expect(200)
	if a.str(t, "type") != "VOID" || a.str(t, "payin_status") != "CANCELED" || a.str(t, "refund_id") != "" {
		t.Fatalf("void: %s", a.raw)
	}
	c.req("GET", "/v1/refunds/"+refund).key(admin).expect(200)
	c.req("GET", "/v1/refunds/"+refund).key(ivr).expect(403)
	c.req("GET", "/v1/refunds/sbx_rfd_nope").key(admin).expect(404)
	paymentstest.Settle(t, c.store)
	if s := c.req("GET", "/v1/refunds/"+refund).key(admin).expect(200).str(t, "status"); s != "SUCCEEDED" {
		t.Fatalf("settled refund is %s", s)
	}
	a = c.req("GET", "/v1/payins/"+payin1).key(admin).expect(200)
	if refunds, _ := a.obj(t)["refunds"].([]any); len(refunds) != 1 {
		t.Fatalf("refunded payin: %s", a.raw)
	}

	// Chargebacks: a dispute of payin1 as the processor reports it, then read.
	respondBy := time.Now().Add(7 * 24 * time.Hour)
	chb := paymentstest.Receive(t, c.store, ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: "sandbox", ID: "evt_contract_1",
		Type: "test.dispute", Effect: ivrpay.EffectDispute, Reference: payin1, Dispute: &ivrpay.DisputeDetails{Reference: "du_contract_1",
			Status: ivrpay.ChargebackStatusDisputeActionRequired, Amount: 1000, Currency: "USD", ReasonCode: "fraudulent",
			RespondBy: &respondBy, DashboardURL: "https://dashboard.example/disputes/du_contract_1"}})
	c.req("GET", "/v1/chargebacks").key(admin).expect(200)
	a = c.req("GET", "/v1/chargebacks?limit=10&merchant_id="+c.merchantID+"&payin_id="+payin1+"&status=DISPUTE_ACTION_REQUIRED").key(admin).expect(200)
	if l := a.obj(t); l["total_results"] != float64(1) {
		t.Fatalf("chargebacks of payin1: %s", a.raw)
	}
	c.req("GET", "/v1/chargebacks?status=OPEN").key(admin).violates("unknown status").expect(400).wantField(t, "status")
	c.req("GET", "/v1/chargebacks?payin_id="+c.merchantID).key(admin).expect(400).wantField(t, "payin_id")
	c.req("GET", "/v1/chargebacks").key(ivr).expect(403)
	c.req("GET", "/v1/chargebacks/"+chb.ObjectID).key(admin).expect(200)
	c.req("GET", "/v1/chargebacks/"+chb.ObjectID).key(ivr).expect(403)
	c.req("GET", "/v1/chargebacks/sbx_chb_nope").key(admin).expect(404)
	a = c.req("GET", "/v1/payins/"+payin1).key(admin).expect(200)
	if cbs, _ := a.obj(t)["chargebacks"].([]any); len(cbs) != 1 || a.str(t, "status") != "SUCCEEDED" {
		t.Fatalf("disputed payin: %s", a.raw)
	}

	// Payment methods.
	c.req("GET", "/v1/payment_methods?limit=50").key(admin).expect(200)
	c.req("GET", "/v1/payment_methods").key(ivr).expect(403)
	c.req("GET", "/v1/payment_methods/"+method).key(admin).expect(200)
	c.req("GET", "/v1/payment_methods/"+payin1Method).key(admin).expect(200)
	c.req("GET", "/v1/payment_methods/sbx_mtd_nope").key(admin).expect(404)
	a = c.req("POST", "/v1/payment_methods/"+method+"/payin").key(admin).json(map[string]any{"payin_config_id": cfgStored}).expect(200)
	if a.str(t, "source") != "API_STORED_PAYMENT_METHOD" {
		t.Fatalf("stored payment method payin: %s", a.raw)
	}
	c.req("POST", "/v1/payment_methods/"+method+"/payin").key(admin).json(map[string]any{"payin_config_id": cfgStored}).expect(409)
	c.req("POST", "/v1/payment_methods/"+method+"/payin").key(admin).json(map[string]any{"payin_config_id": cfgStored, "amount": 1}).
		violates("unknown field").expect(400).wantField(t, "amount")
	c.req("POST", "/v1/payment_methods/sbx_mtd_nope/payin").key(admin).json(map[string]any{"payin_config_id": cfgStored}).expect(404)
	c.req("POST", "/v1/payment_methods/"+method+"/deactivate").key(ivr).expect(403)
	if s := c.req("POST", "/v1/payment_methods/"+method+"/deactivate").key(admin).expect(200).str(t, "status"); s != "DEACTIVATED" {
		t.Fatalf("deactivated payment method is %s", s)
	}
	c.req("POST", "/v1/payment_methods/sbx_mtd_nope/deactivate").key(admin).expect(404)

	// Webhook deliveries.
	worker := &webhook.Worker{Outbox: c.store, AllowPrivate: true, Timeout: 5 * time.Second}
	for {
		n, err := worker.RunOnce(ctx) // one pass: at most Concurrency deliveries
		if err != nil {
			t.Fatalf("webhook worker: %v", err)
		}
		if n == 0 {
			break
		}
	}
	c.req("GET", "/v1/webhook_endpoints?limit=10").key(admin).expect(200)
	c.req("GET", "/v1/webhook_endpoints").key(ivr).expect(403)
	c.req("GET", "/v1/webhook_endpoints/"+hookOK).key(admin).expect(200)
	c.req("GET", "/v1/webhook_endpoints/sbx_whe_nope").key(admin).expect(404)
	for _, id := range []string{hookOK, hookGone} {
		a = c.req("GET", "/v1/webhook_endpoints/"+id+"/deliveries?limit=100").key(admin).expect(200)
		page = a.list(t)
		if page.Total == 0 || page.Results[0]["attempt_count"] == float64(0) {
			t.Fatalf("deliveries of %s: %s", id, a.raw)
		}
	}
	c.req("GET", "/v1/webhook_endpoints/"+hookOK+"/deliveries").key(ivr).expect(403)
	c.req("GET", "/v1/webhook_endpoints/sbx_whe_nope/deliveries").key(admin).expect(404)
	a = c.req("POST", "/v1/webhook_endpoints/"+hookOK+"/rotate_secret").key(admin).expect(200)
	if !strings.HasPrefix(a.str(t, "secret"), "whsec_") || a.str(t, "previous_secret_expires_at") == "" {
		t.Fatalf("rotate_secret answered without the new secret or when the old one stops: %s", a.raw)
	}
	if a = c.req("GET", "/v1/webhook_endpoints/"+hookOK).key(admin).expect(200); a.str(t, "secret") != "" || a.str(t, "previous_secret_expires_at") == "" {
		t.Fatalf("a rotated endpoint read back: %s", a.raw)
	}
	c.req("POST", "/v1/webhook_endpoints/"+hookOK+"/rotate_secret").key(ivr).expect(403)
	c.req("POST", "/v1/webhook_endpoints/sbx_whe_nope/rotate_secret").key(admin).expect(404)
	// The cap: fill the platform up to 16 enabled endpoints; the next is a 409.
	var filler []string
	for n := c.req("GET", "/v1/webhook_endpoints?limit=100").key(admin).expect(200).list(t).Total; n < ivrpay.MaxWebhookEndpointsPerPlatform; n++ {
		filler = append(filler, c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": receiver.URL + "/filler"}).
			expect(200).str(t, "webhook_endpoint_id"))
	}
	if a = c.req("POST", "/v1/webhook_endpoints").key(admin).json(map[string]any{"url": receiver.URL + "/one-too-many"}).expect(409); !strings.Contains(a.errs[0].Message, "at most 16") {
		t.Fatalf("the 17th endpoint's 409 does not name the limit: %s", a.raw)
	}
	for _, id := range filler {
		c.req("DELETE", "/v1/webhook_endpoints/"+id).key(admin).expect(200)
	}
	c.req("DELETE", "/v1/webhook_endpoints/"+hookGone).key(ivr).expect(403)
	c.req("DELETE", "/v1/webhook_endpoints/"+hookGone).key(admin).expect(200)
	c.req("DELETE", "/v1/webhook_endpoints/"+hookGone).key(admin).expect(404)
	hookMu.Lock()
	if hooks == 0 {
		t.Error("the webhook receiver got no event")
	}
	hookMu.Unlock()

	// Deleting a key.
	temp, tempID := func() (string, string) {
		a := c.req("POST", "/v1/api_keys").key(admin).json(fmt.Sprintf(
			`{"statements":[{"permissions":["merchant:read"],"constraints":{"platform":{"platform_id":%q},"merchant":{"merchant_id":%q}}}]}`,
			c.platformID, c.merchantID)).expect(200)
		return a.str(t, "api_key"), a.str(t, "api_key_id")
	}()
	c.req("GET", "/v1/merchants").key(temp).expect(200)
	c.req("DELETE", "/v1/api_keys/"+tempID).key(ivr).expect(403)
	c.req("DELETE", "/v1/api_keys/"+tempID).key(admin).expect(200)
	c.req("DELETE", "/v1/api_keys/"+tempID).key(admin).expect(404)
	c.req("GET", "/v1/merchants").key(temp).expect(401)

	// Telnyx posts Twilio's body; SignalWire its own, and only a success is a 200.
	a = c.req("POST", httpapi.TelnyxConnectorPath).basicAuth("api_key", ivr).
		json(contractCharge(newCfg("contract-cfg-telnyx", 1000, "AUTHORIZE_AND_CAPTURE"), "4111111111111111", "10.00")).expect(200)
	if a.str(t, "charge_id") == "" {
		t.Fatalf("Telnyx charge: %s", a.raw)
	}
	c.req("POST", httpapi.TelnyxConnectorPath).basicAuth("api_key", "sbx_apikey_"+strings.Repeat("3", 64)).
		json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(401)
	signalWireCharge := func(cfgID, card string, amount any) map[string]any {
		return map[string]any{"method": "credit-card", "transaction_id": contractTxID(), "cardnumber": card, "cvv": "123",
			"expiry_month": "08", "expiry_year": contractYear(), "postal_code": "94111", "chargeAmount": amount,
			"currency_code": "USD", "description": "contract test", "parameters": map[string]any{"payin_config_id": cfgID}}
	}
	a = c.req("POST", httpapi.SignalWireConnectorPath).basicAuth("api_key", ivr).
		json(signalWireCharge(newCfg("contract-cfg-signalwire", 1000, "AUTHORIZE_AND_CAPTURE"), "4111111111111111", 10.00)).expect(200)
	if a.str(t, "charge_id") == "" {
		t.Fatalf("SignalWire charge: %s", a.raw)
	}
	a = c.req("POST", httpapi.SignalWireConnectorPath).basicAuth("api_key", ivr).
		json(signalWireCharge(newCfg("contract-cfg-signalwire-decline", 1000, "AUTHORIZE_AND_CAPTURE"), "4000000000000002", "10.00")).expect(402)
	if a.str(t, "error_code") != "DECLINED" {
		t.Fatalf("SignalWire decline: %s", a.raw)
	}
	pmcSignalWire := c.req("POST", "/v1/payment_method_configs").key(admin).
		json(map[string]any{"platform_id": c.platformID, "idempotency_key": "contract-pmc-signalwire"}).expect(200).str(t, "payment_method_config_id")
	a = c.req("POST", httpapi.SignalWireConnectorPath).basicAuth("api_key", ivr).json(map[string]any{
		"transaction_id": contractTxID(), "cardnumber": "4111111111111111", "cvv": "123", "postal_code": "94111",
		"description": "save card", "amount": 0, "token_type": "reusable", "expiry_month": "08", "expiry_year": contractYear(),
		"currency_code": "USD", "parameters": map[string]any{"payment_method_config_id": pmcSignalWire}}).expect(200)
	if a.str(t, "token_id") == "" {
		t.Fatalf("SignalWire tokenize: %s", a.raw)
	}
	c.req("POST", httpapi.SignalWireConnectorPath).basicAuth("api_key", "sbx_apikey_"+strings.Repeat("4", 64)).
		json(signalWireCharge(cfg1, "4111111111111111", "10.00")).expect(401)
	c.req("POST", httpapi.SignalWireConnectorPath).basicAuth("api_key", ivr).
		json(signalWireCharge(cfg1, "4111111111111111", []string{"10.00"})).violates("chargeAmount an array").expect(402)

	// Processor events: signed by the account's events secret, no API key.
	stripeEvent := stripetest.Event("evt_1Contract", "payment_intent.succeeded", map[string]any{"id": "pi_3Contract", "object": "payment_intent",
		"amount": 1000, "amount_received": 1000, "currency": "usd", "status": "succeeded", "metadata": map[string]any{"ivrpay_reference": "pyn_contract"}})
	a = c.req("POST", "/vendor/stripe/events/stripe-contract").header("Stripe-Signature", stripetest.Sign(stripeEvent, time.Now(), eventsWhsec)).
		json(string(stripeEvent)).expect(200)
	if got := c.inbox.take(); len(got) != 1 || got[0].Effect != ivrpay.EffectPaymentCaptured {
		t.Fatalf("the Stripe event reached the inbox as %+v", got)
	}
	c.req("POST", "/vendor/stripe/events/stripe-contract").header("Stripe-Signature", stripetest.Sign(stripeEvent, time.Now(), "whsec_wrong")).
		json(string(stripeEvent)).expect(400)
	c.req("POST", "/vendor/stripe/events/stripe-contract").json(string(stripeEvent)).violates("no Stripe-Signature").expect(400)
	c.req("POST", "/vendor/stripe/events/adyen-contract").header("Stripe-Signature", stripetest.Sign(stripeEvent, time.Now(), eventsWhsec)).
		json(string(stripeEvent)).expect(404)
	capture := adyentest.Item{EventCode: "CAPTURE", Success: true, PSPReference: "MODCONTRACT00001", OriginalReference: "PSPCONTRACT00001",
		MerchantReference: "capture_pyn_contract", Value: 1000, Currency: "USD"}
	c.req("POST", "/vendor/adyen/notifications/adyen-contract").json(string(adyentest.Notification(adyentest.HMACKey, capture))).expect(200)
	if got := c.inbox.take(); len(got) != 1 || got[0].Effect != ivrpay.EffectPaymentCaptured {
		t.Fatalf("the Adyen notification reached the inbox as %+v", got)
	}
	c.req("POST", "/vendor/adyen/notifications/adyen-contract").json(string(adyentest.Notification(strings.Repeat("0F", 32), capture))).expect(400)
	c.req("POST", "/vendor/adyen/notifications/nobody").json(string(adyentest.Notification(adyentest.HMACKey, capture))).expect(404)

	// Rate limiting: failed authentications block the client address (REST)
	// or the address and credential (connector), except for credentials that
	// authenticated from the address before.
	fresh := c.req("POST", "/v1/api_keys").key(admin).json(fmt.Sprintf(
		`{"statements":[{"permissions":["merchant:read"],"constraints":{"platform":{"platform_id":%q}}}]}`, c.platformID)).expect(200).str(t, "api_key")
	blocked := false
	for i := 0; i <= httpapi.AuthFailureLimit && !blocked; i++ {
		a := c.req("GET", "/v1/merchants").key(bogusKey).send()
		switch a.status {
		case 401:
		case 429:
			blocked = true
		default:
			t.Fatalf("bad key: HTTP %d\n%s", a.status, a.raw)
		}
	}
	if !blocked {
		t.Fatalf("no 429 after %d failed authentications", httpapi.AuthFailureLimit+1)
	}
	c.req("GET", "/v1/merchants").key(fresh).expect(429)
	c.req("GET", "/v1/merchants").key(admin).expect(200)
	badConnector := "sbx_apikey_" + strings.Repeat("2", 64)
	for i := 0; i < httpapi.AuthFailureLimit; i++ {
		c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", badConnector).json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(401)
	}
	if a := c.req("POST", httpapi.ConnectorPath).basicAuth("api_key", badConnector).json(contractCharge(cfg1, "4111111111111111", "10.00")).expect(429); a.str(t, "error_code") != "RATE_LIMITED" {
		t.Fatalf("rate limited connector: %s", a.raw)
	}
	c.limiterOffset.Store(int64(httpapi.AuthBlockDuration + time.Minute))
	c.req("GET", "/v1/merchants").key(fresh).expect(200)

	// Internal errors: the database is gone.
	if err := c.store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	c.req("GET", "/health").expect(500)
	c.req("GET", "/v1/merchants").key(admin).expect(500)
}

// checkCoverage fails the test for every operation of the document that the
// scenario never exercised, and logs what it did exercise.
func (c *contract) checkCoverage() {
	c.mu.Lock()
	defer c.mu.Unlock()
	statuses := map[int]bool{}
	for _, o := range contractOperations(c.doc) {
		seen := c.seen[o.op.OperationID]
		if len(seen) == 0 {
			c.t.Errorf("%s %s (%s) is documented but the contract scenario never exercised it", o.method, o.path, o.op.OperationID)
			continue
		}
		var got []string
		for status, n := range seen {
			statuses[status] = true
			got = append(got, fmt.Sprintf("%d×%d", status, n))
		}
		slices.Sort(got)
		c.t.Logf("%-26s %-7s %-45s %s", o.op.OperationID, o.method, o.path, strings.Join(got, " "))
	}
	for _, status := range []int{200, 400, 401, 403, 404, 409, 429, 500} {
		if !statuses[status] {
			c.t.Errorf("no operation answered %d in the contract scenario", status)
		}
	}
}
