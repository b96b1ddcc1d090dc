package sqlstore_test

import (
	"context"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// The store tests' names for paymentstest's fixtures and helpers.
const (
	visaOK      = paymentstest.VisaOK
	mastercard  = paymentstest.Mastercard
	canaryVisa  = paymentstest.CanaryVisa
	canaryAmex  = paymentstest.CanaryAmex
	canaryCID   = paymentstest.CanaryCID
	goodCVV     = paymentstest.GoodCVV
	goodPostal  = paymentstest.GoodPostal
	expiryMonth = paymentstest.ExpiryMonth
	expiryYear  = paymentstest.ExpiryYear
)

var (
	boundedContext    = paymentstest.BoundedContext
	authenticate      = paymentstest.Authenticate
	platformStatement = paymentstest.PlatformStatement
	createKey         = paymentstest.CreateKey
	newKey            = paymentstest.NewKey
	jsonNumber        = paymentstest.JSONNumber
	chargeReq         = paymentstest.ChargeReq
	tokenizeReq       = paymentstest.TokenizeReq
	process           = paymentstest.Process
	mustSucceed       = paymentstest.MustSucceed
	wantCode          = paymentstest.WantCode
	count             = paymentstest.Count
	newFakeClock      = paymentstest.NewFakeClock
	forEngine         = paymentstest.ForEngine
	on                = paymentstest.FromProvider
)

// bundle is paymentstest.Fixture under the store tests' field names.
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
	return bundleOf(paymentstest.Setup(t, engine, adjust...))
}

// setupOn creates the bundle's objects on an already opened store.
func setupOn(t testing.TB, s *sqlstore.Store, engine string, opts paymentstest.Config) *bundle {
	t.Helper()
	return bundleOf(paymentstest.SetupOn(t, s, engine, opts))
}

// bundleOf and fixture convert between the two names of one fixture.
func bundleOf(f *paymentstest.Fixture) *bundle {
	return &bundle{s: f.Store, pay: f.Pay, opts: f.Opts, engine: f.Engine, platform: f.Platform, merchant: f.Merchant,
		admin: f.Admin, ivrKey: f.IVRKey, adminCtx: f.AdminCtx, ivrCtx: f.IVRCtx}
}

func (b *bundle) fixture() *paymentstest.Fixture {
	return &paymentstest.Fixture{Store: b.s, Pay: b.pay, Opts: b.opts, Engine: b.engine, Platform: b.platform, Merchant: b.merchant,
		Admin: b.admin, IVRKey: b.ivrKey, AdminCtx: b.adminCtx, IVRCtx: b.ivrCtx}
}

// payinConfig creates a payin config of amount cents for the bundle's merchant.
func (b *bundle) payinConfig(t testing.TB, amount int64, adjust ...func(*ivrpay.PayinConfigCreate)) *ivrpay.PayinConfig {
	t.Helper()
	return b.fixture().PayinConfig(t, amount, adjust...)
}

// pmConfig creates a payment method config on the bundle's platform
// (for the merchant, when merchantID is not empty).
func (b *bundle) pmConfig(t testing.TB, merchantID string) *ivrpay.PaymentMethodConfig {
	t.Helper()
	return b.fixture().PMConfig(t, merchantID)
}
