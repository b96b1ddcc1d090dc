package paymentstest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// Cards the tests use. The canaries are Luhn-valid numbers that are not on
// any published test-card list, so finding one in the database can only mean
// a leak; their last four digits never contain CanaryCID.
const (
	VisaOK      = "4111111111111111"
	Mastercard  = "5555555555554444"
	CanaryVisa  = "4929831572064135"
	CanaryAmex  = "379451703625911"
	CanaryCID   = "8264" // 4-digit Amex CID, used only with CanaryAmex
	GoodCVV     = "123"
	GoodPostal  = "94111"
	ExpiryMonth = "08"
	ExpiryYear  = "39"
)

// Fixture is what most service and store tests need: a store, its payments
// service, one IVR-enabled platform with an ACTIVE merchant, its admin key
// and a restricted IVR key, both authenticated (so that Platform is loaded,
// as the transports do).
type Fixture struct {
	Store    *sqlstore.Store
	Pay      *payments.Service
	Opts     Config
	Engine   string
	Platform *ivrpay.Platform
	Merchant *ivrpay.Merchant
	Admin    *ivrpay.APIKey
	IVRKey   *ivrpay.APIKey
	AdminCtx context.Context
	IVRCtx   context.Context
}

// Setup opens a fresh store on engine (adjust may change the options first)
// and creates the fixture's platform, merchant and keys.
func Setup(tb testing.TB, engine string, adjust ...func(*Config)) *Fixture {
	tb.Helper()
	opts := Options(tb)
	for _, f := range adjust {
		f(&opts)
	}
	return SetupOn(tb, Open(tb, engine, opts), engine, opts)
}

// SetupOn creates the fixture's objects on an already opened store.
func SetupOn(tb testing.TB, s *sqlstore.Store, engine string, opts Config) *Fixture {
	tb.Helper()
	ctx := BoundedContext(tb)
	p, admin, err := s.CreatePlatform(ctx, "Acme Platform", true)
	if err != nil {
		tb.Fatalf("CreatePlatform: %v", err)
	}
	secret := admin.Secret
	admin = Authenticate(tb, s, secret)
	admin.Secret = secret
	adminCtx := ivrpay.NewContextWithPrincipal(ctx, admin)
	m, err := s.CreateMerchant(adminCtx, ivrpay.MerchantCreate{Name: "Acme Shop"})
	if err != nil {
		tb.Fatalf("CreateMerchant: %v", err)
	}
	if m.Status != ivrpay.MerchantStatusActive && opts.Mode != ivrpay.ModeProduction {
		tb.Fatalf("sandbox merchant status = %s, want ACTIVE", m.Status)
	}
	ivrKey := CreateKey(tb, s, adminCtx, PlatformStatement(p.ID, "", "payin:create", "payment_method:create"))
	return &Fixture{Store: s, Pay: opts.Payments(s), Opts: opts, Engine: engine, Platform: p, Merchant: m, Admin: admin, IVRKey: ivrKey,
		AdminCtx: adminCtx, IVRCtx: ivrpay.NewContextWithPrincipal(ctx, ivrKey)}
}

// testDeadline bounds every store call of a test, so that a regression that
// makes a retry wait forever fails the test instead of hanging it.
const testDeadline = 2 * time.Minute

// BoundedContext is a context that ends after testDeadline or with the test.
func BoundedContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	tb.Cleanup(cancel)
	return ctx
}

// Authenticate loads the key of secret with its platform, as a transport does.
func Authenticate(tb testing.TB, s *sqlstore.Store, secret string) *ivrpay.APIKey {
	tb.Helper()
	k, err := s.Authenticate(context.Background(), secret)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	if k.Platform == nil {
		tb.Fatalf("Authenticate returned key %s without its platform", k.ID)
	}
	return k
}

// PlatformStatement is one statement granting permissions on a platform and,
// when merchantID is not empty, only on that merchant.
func PlatformStatement(platformID, merchantID string, permissions ...string) ivrpay.Statement {
	st := ivrpay.Statement{Permissions: permissions, Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platformID}}}
	if merchantID != "" {
		st.Constraints.Merchant = &ivrpay.MerchantConstraint{MerchantID: merchantID}
	}
	return st
}

// CreateKey creates a key with the caller in ctx and returns it
// authenticated; Secret is copied over from the creation so tests can
// authenticate again.
func CreateKey(tb testing.TB, s *sqlstore.Store, ctx context.Context, statements ...ivrpay.Statement) *ivrpay.APIKey {
	tb.Helper()
	k, err := s.CreateAPIKey(ctx, statements)
	if err != nil {
		tb.Fatalf("CreateAPIKey: %v", err)
	}
	authed := Authenticate(tb, s, k.Secret)
	authed.Secret = k.Secret
	return authed
}

var idempotencySeq struct {
	sync.Mutex
	n int
}

// NewKey returns an idempotency key no other call in this process returns.
func NewKey(prefix string) string {
	idempotencySeq.Lock()
	defer idempotencySeq.Unlock()
	idempotencySeq.n++
	return fmt.Sprintf("%s-%d", prefix, idempotencySeq.n)
}

// PayinConfig creates a payin config of amount cents for the fixture's merchant.
func (f *Fixture) PayinConfig(tb testing.TB, amount int64, adjust ...func(*ivrpay.PayinConfigCreate)) *ivrpay.PayinConfig {
	tb.Helper()
	in := ivrpay.PayinConfigCreate{MerchantID: f.Merchant.ID, IdempotencyKey: NewKey("cfg"), Amount: JSONNumber(amount),
		CurrencyCode: "USD", Metadata: []byte(`{"order":"A-1"}`)}
	for _, adj := range adjust {
		adj(&in)
	}
	cfg, err := f.Store.CreatePayinConfig(f.AdminCtx, in)
	if err != nil {
		tb.Fatalf("CreatePayinConfig: %v", err)
	}
	return cfg
}

// PMConfig creates a payment method config on the fixture's platform (for
// the merchant, when merchantID is not empty).
func (f *Fixture) PMConfig(tb testing.TB, merchantID string) *ivrpay.PaymentMethodConfig {
	tb.Helper()
	c, err := f.Store.CreatePaymentMethodConfig(f.AdminCtx, ivrpay.PaymentMethodConfigCreate{PlatformID: f.Platform.ID,
		IdempotencyKey: NewKey("pmc"), MerchantID: merchantID})
	if err != nil {
		tb.Fatalf("CreatePaymentMethodConfig: %v", err)
	}
	return c
}

// JSONNumber is cents as the API's amount field.
func JSONNumber(cents int64) json.Number { return json.Number(fmt.Sprint(cents)) }

// ChargeReq is the connector request Twilio sends to charge pan for cents on cfgID.
func ChargeReq(cfgID, txID, pan string, cents int64) ivrpay.IVRRequest {
	return ivrpay.IVRRequest{Method: ivrpay.IVRMethodCharge, TransactionID: txID, CardNumber: pan, CVV: GoodCVV,
		ExpiryMonth: ExpiryMonth, ExpiryYear: ExpiryYear, PostalCode: GoodPostal,
		Amount: ivrpay.ParseIVRAmount(true, ivrpay.FormatDollars(cents)), CurrencyCode: "USD", Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfgID}}
}

// TokenizeReq is the connector request Twilio sends to store pan with the
// payment method config pmcID under the custom parameter param.
func TokenizeReq(param, pmcID, txID, pan string) ivrpay.IVRRequest {
	return ivrpay.IVRRequest{Method: ivrpay.IVRMethodTokenize, TransactionID: txID, CardNumber: pan, CVV: GoodCVV,
		ExpiryMonth: ExpiryMonth, ExpiryYear: ExpiryYear, PostalCode: GoodPostal, CurrencyCode: "USD",
		Parameters: map[string]string{param: pmcID}}
}

// Process runs a connector request with the key in ctx and fails the test on an error.
func Process(tb testing.TB, s *payments.Service, ctx context.Context, req ivrpay.IVRRequest) ivrpay.IVRResult {
	tb.Helper()
	res, err := s.ProcessIVR(ctx, req)
	if err != nil {
		tb.Fatalf("ProcessIVR(%s %s): %v", req.Method, req.TransactionID, err)
	}
	return res
}

// MustSucceed fails the test unless res is a success.
func MustSucceed(tb testing.TB, res ivrpay.IVRResult) {
	tb.Helper()
	if res.ErrorCode != "" || res.ID == "" {
		tb.Fatalf("connector answer = %+v, want a success", res)
	}
}

// WantCode fails the test unless err carries the ivrpay error code.
func WantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := ivrpay.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// Count runs a COUNT(*) query on the store's database.
func Count(tb testing.TB, db *sql.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// FakeClock is a settable clock; a hook set with SetHook runs on every Now.
type FakeClock struct {
	mu    sync.Mutex
	t     time.Time
	onNow func()
}

// NewFakeClock returns a clock standing at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t.UTC()} }

// Now returns the clock's time, after running the hook.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	now, hook := c.t, c.onNow
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return now
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// SetHook makes f run on every Now (nil: none).
func (c *FakeClock) SetHook(f func()) {
	c.mu.Lock()
	c.onNow = f
	c.mu.Unlock()
}

// ForEngine runs f as a parallel subtest on every engine.
func ForEngine(t *testing.T, f func(t *testing.T, engine string)) {
	t.Helper()
	t.Parallel()
	for _, engine := range Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, engine)
		})
	}
}

// FromProvider returns req as provider sends it.
func FromProvider(provider ivrpay.IVRProvider, req ivrpay.IVRRequest) ivrpay.IVRRequest {
	req.Provider = provider
	return req
}

// LockedBuffer is a bytes.Buffer that goroutines may write while a test
// reads it: a logger shared by handlers, the output of a running server.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *LockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// String returns what was written.
func (b *LockedBuffer) String() string { return string(b.Bytes()) }

// LivePayins counts the payins that hold the config $1 (CREATED,
// PROCESSING, AUTHORIZED or SUCCEEDED).
const LivePayins = `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1 AND status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED')`
