package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// Cards the tests use. The canaries are Luhn-valid numbers that are not on
// any published test-card list, so finding one in the database can only mean
// a leak; their last four digits never contain canaryCID.
const (
	visaOK      = "4111111111111111"
	mastercard  = "5555555555554444"
	canaryVisa  = "4929831572064135"
	canaryAmex  = "379451703625911"
	canaryCID   = "8264" // 4-digit Amex CID, used only with canaryAmex
	goodCVV     = "123"
	goodPostal  = "94111"
	expiryMonth = "08"
	expiryYear  = "39"
)

// bundle is what most store tests need: a store, one IVR-enabled platform
// with an ACTIVE merchant, its admin key and a restricted IVR key, both
// authenticated (so that Platform is loaded, as the transports do).
type bundle struct {
	s        *sqlstore.Store
	pay      *payments.Service
	opts     paymentstest.Config
	engine   string
	platform *ivrpay.Platform
	merchant *ivrpay.Merchant
	admin    *ivrpay.APIKey
	ivrKey   *ivrpay.APIKey
	adminCtx context.Context
	ivrCtx   context.Context
}

// setup opens a fresh store on engine (opts may adjust the options first) and
// creates the bundle's platform, merchant and keys.
func setup(t testing.TB, engine string, adjust ...func(*paymentstest.Config)) *bundle {
	t.Helper()
	opts := paymentstest.Options(t)
	for _, f := range adjust {
		f(&opts)
	}
	s := paymentstest.Open(t, engine, opts)
	return setupOn(t, s, engine, opts)
}

// setupOn creates the bundle's objects on an already opened store.
func setupOn(t testing.TB, s *sqlstore.Store, engine string, opts paymentstest.Config) *bundle {
	t.Helper()
	ctx := boundedContext(t)
	p, admin, err := s.CreatePlatform(ctx, "Acme Platform", true)
	if err != nil {
		t.Fatalf("CreatePlatform: %v", err)
	}
	secret := admin.Secret
	admin = authenticate(t, s, secret)
	admin.Secret = secret
	adminCtx := ivrpay.NewContextWithPrincipal(ctx, admin)
	m, err := s.CreateMerchant(adminCtx, ivrpay.MerchantCreate{Name: "Acme Shop"})
	if err != nil {
		t.Fatalf("CreateMerchant: %v", err)
	}
	if m.Status != ivrpay.MerchantStatusActive && opts.Mode != ivrpay.ModeProduction {
		t.Fatalf("sandbox merchant status = %s, want ACTIVE", m.Status)
	}
	ivrKey := createKey(t, s, adminCtx, platformStatement(p.ID, "", "payin:create", "payment_method:create"))
	return &bundle{s: s, pay: opts.Payments(s), opts: opts, engine: engine, platform: p, merchant: m, admin: admin, ivrKey: ivrKey,
		adminCtx: adminCtx, ivrCtx: ivrpay.NewContextWithPrincipal(ctx, ivrKey)}
}

// testDeadline bounds every store call of a test, so that a regression that
// makes a retry wait forever fails the test instead of hanging it.
const testDeadline = 2 * time.Minute

// boundedContext is a context that ends after testDeadline or with the test.
func boundedContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// authenticate loads the key of secret with its platform, as a transport does.
func authenticate(t testing.TB, s *sqlstore.Store, secret string) *ivrpay.APIKey {
	t.Helper()
	k, err := s.Authenticate(context.Background(), secret)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if k.Platform == nil {
		t.Fatalf("Authenticate returned key %s without its platform", k.ID)
	}
	return k
}

// platformStatement is one statement granting permissions on a platform and,
// when merchantID is not empty, only on that merchant.
func platformStatement(platformID, merchantID string, permissions ...string) ivrpay.Statement {
	st := ivrpay.Statement{Permissions: permissions, Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platformID}}}
	if merchantID != "" {
		st.Constraints.Merchant = &ivrpay.MerchantConstraint{MerchantID: merchantID}
	}
	return st
}

// createKey creates a key with the caller in ctx and returns it
// authenticated; Secret is copied over from the creation so tests can
// authenticate again.
func createKey(t testing.TB, s *sqlstore.Store, ctx context.Context, statements ...ivrpay.Statement) *ivrpay.APIKey {
	t.Helper()
	k, err := s.CreateAPIKey(ctx, statements)
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	authed := authenticate(t, s, k.Secret)
	authed.Secret = k.Secret
	return authed
}

var idempotencySeq struct {
	sync.Mutex
	n int
}

// newKey returns an idempotency key no other call in this process returns.
func newKey(prefix string) string {
	idempotencySeq.Lock()
	defer idempotencySeq.Unlock()
	idempotencySeq.n++
	return fmt.Sprintf("%s-%d", prefix, idempotencySeq.n)
}

// payinConfig creates a payin config of amount cents for the bundle's merchant.
func (b *bundle) payinConfig(t testing.TB, amount int64, adjust ...func(*ivrpay.PayinConfigCreate)) *ivrpay.PayinConfig {
	t.Helper()
	in := ivrpay.PayinConfigCreate{MerchantID: b.merchant.ID, IdempotencyKey: newKey("cfg"), Amount: jsonNumber(amount),
		CurrencyCode: "USD", Metadata: []byte(`{"order":"A-1"}`)}
	for _, f := range adjust {
		f(&in)
	}
	cfg, err := b.s.CreatePayinConfig(b.adminCtx, in)
	if err != nil {
		t.Fatalf("CreatePayinConfig: %v", err)
	}
	return cfg
}

// pmConfig creates a payment method config on the bundle's platform
// (for the merchant, when merchantID is not empty).
func (b *bundle) pmConfig(t testing.TB, merchantID string) *ivrpay.PaymentMethodConfig {
	t.Helper()
	c, err := b.s.CreatePaymentMethodConfig(b.adminCtx, ivrpay.PaymentMethodConfigCreate{PlatformID: b.platform.ID,
		IdempotencyKey: newKey("pmc"), MerchantID: merchantID})
	if err != nil {
		t.Fatalf("CreatePaymentMethodConfig: %v", err)
	}
	return c
}

func jsonNumber(cents int64) json.Number { return json.Number(fmt.Sprint(cents)) }

// chargeReq is the connector request Twilio sends to charge pan for cents on cfgID.
func chargeReq(cfgID, txID, pan string, cents int64) ivrpay.IVRRequest {
	return ivrpay.IVRRequest{Method: ivrpay.IVRMethodCharge, TransactionID: txID, CardNumber: pan, CVV: goodCVV,
		ExpiryMonth: expiryMonth, ExpiryYear: expiryYear, PostalCode: goodPostal,
		Amount: ivrpay.ParseIVRAmount(true, ivrpay.FormatDollars(cents)), CurrencyCode: "USD", Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfgID}}
}

// tokenizeReq is the connector request Twilio sends to store pan with the
// payment method config pmcID under the custom parameter param.
func tokenizeReq(param, pmcID, txID, pan string) ivrpay.IVRRequest {
	return ivrpay.IVRRequest{Method: ivrpay.IVRMethodTokenize, TransactionID: txID, CardNumber: pan, CVV: goodCVV,
		ExpiryMonth: expiryMonth, ExpiryYear: expiryYear, PostalCode: goodPostal, CurrencyCode: "USD",
		Parameters: map[string]string{param: pmcID}}
}

// process runs a connector request with the key in ctx and fails the test on an error.
func process(t testing.TB, s *payments.Service, ctx context.Context, req ivrpay.IVRRequest) ivrpay.IVRResult {
	t.Helper()
	res, err := s.ProcessIVR(ctx, req)
	if err != nil {
		t.Fatalf("ProcessIVR(%s %s): %v", req.Method, req.TransactionID, err)
	}
	return res
}

// mustSucceed fails the test unless res is a success.
func mustSucceed(t testing.TB, res ivrpay.IVRResult) {
	t.Helper()
	if res.ErrorCode != "" || res.ID == "" {
		t.Fatalf("connector answer = %+v, want a success", res)
	}
}

// wantCode fails the test unless err carries the ivrpay error code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := ivrpay.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// count runs a COUNT(*) query on the store's database.
func count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// fakeClock is a settable clock; onNow, when set, is called on every Now.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	onNow func()
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t.UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	now, hook := c.t, c.onNow
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) setHook(f func()) {
	c.mu.Lock()
	c.onNow = f
	c.mu.Unlock()
}

// forEngine runs f as a parallel subtest on every engine.
func forEngine(t *testing.T, f func(t *testing.T, engine string)) {
	t.Helper()
	t.Parallel()
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, engine)
		})
	}
}
