package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// inboxClock is the deployment's clock, moved by the tests.
type inboxClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *inboxClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Each reading moves a microsecond, so that the times written in order
	// (status_at, updated_at) sort in that order at the stored precision.
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *inboxClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// realAccount is the processor account name of payins made by a real
// processor in these tests (the sandbox processor's answers, under another
// account: no sandbox confirmation ever settles them).
const realAccount = "stripe-test"

// inboxRouter sends merchants in real to realAccount (with lookup, when
// set, as its processor) and every other payment to the sandbox account.
type inboxRouter struct {
	sandbox *sandbox.Processor
	real    map[string]bool
	lookup  ivrpay.Processor
}

func (r *inboxRouter) Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	if r.real[merchantID] {
		p, _ := r.Account(ctx, realAccount)
		return ivrpay.ProcessorAccountRef{Name: realAccount, Kind: "stripe"}, p, nil
	}
	return ivrpay.ProcessorAccountRef{Name: payments.SandboxAccount, Kind: sandbox.Kind}, r.sandbox, nil
}

func (r *inboxRouter) Account(ctx context.Context, name string) (ivrpay.Processor, error) {
	if name == realAccount && r.lookup != nil {
		return r.lookup, nil
	}
	return r.sandbox, nil
}

// inboxEnv is a deployment on one engine: store, service, clock, one
// platform with a sandbox merchant and a merchant of realAccount.
type inboxEnv struct {
	t            *testing.T
	engine       string
	opts         paymentstest.Config
	store        *sqlstore.Store
	pay          *payments.Service
	clock        *inboxClock
	router       *inboxRouter
	dsn          string
	adminCtx     context.Context
	ivrCtx       context.Context
	merchantID   string
	realMerchant string
	txn          atomic.Int64
}

func newInboxEnv(t *testing.T, engine string) *inboxEnv {
	t.Helper()
	e := &inboxEnv{t: t, engine: engine, clock: &inboxClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}}
	e.opts = paymentstest.Options(t)
	e.opts.Clock = e.clock
	// The sandbox's lost answers (5121) are given up on at once.
	e.opts.ProcessorTimeout = 100 * time.Millisecond
	e.router = &inboxRouter{sandbox: sandbox.New(), real: map[string]bool{}}
	e.opts.Router = e.router
	e.dsn = paymentstest.DSN(t, engine)
	e.store, e.pay = e.open()
	ctx := context.Background()
	p, admin, err := e.store.CreatePlatform(ctx, "Inbox platform", true)
	if err != nil {
		t.Fatal(err)
	}
	if admin, err = e.store.Authenticate(ctx, admin.Secret); err != nil {
		t.Fatal(err)
	}
	e.adminCtx = ivrpay.NewContextWithPrincipal(ctx, admin)
	for _, id := range []*string{&e.merchantID, &e.realMerchant} {
		m, err := e.store.CreateMerchant(e.adminCtx, ivrpay.MerchantCreate{Name: "Inbox shop"})
		if err != nil {
			t.Fatal(err)
		}
		*id = m.ID
	}
	e.router.real[e.realMerchant] = true
	key, err := e.store.CreateAPIKey(e.adminCtx, []ivrpay.Statement{{Permissions: []string{"payin:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: p.ID}}}})
	if err != nil {
		t.Fatal(err)
	}
	if key, err = e.store.Authenticate(ctx, key.Secret); err != nil {
		t.Fatal(err)
	}
	e.ivrCtx = ivrpay.NewContextWithPrincipal(ctx, key)
	return e
}

// open opens a store and service of its own on the environment's
// database: another process, as far as the database can tell.
func (e *inboxEnv) open() (*sqlstore.Store, *payments.Service) {
	e.t.Helper()
	s, err := sqlstore.Open(context.Background(), e.dsn, e.opts.StoreOptions())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s, e.opts.Payments(s)
}

// forEachInboxEngine runs f, in parallel, on a fresh environment of every
// engine.
func forEachInboxEngine(t *testing.T, f func(t *testing.T, e *inboxEnv)) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) { f(t, newInboxEnv(t, engine)) })
}

// config makes a payin config of amount cents for merchant in mode.
func (e *inboxEnv) config(merchant string, amount int64, mode string) *ivrpay.PayinConfig {
	e.t.Helper()
	cfg, err := e.store.CreatePayinConfig(e.adminCtx, ivrpay.PayinConfigCreate{MerchantID: merchant, IdempotencyKey: fmt.Sprint("cfg-", e.txn.Add(1)),
		Amount: json.Number(fmt.Sprint(amount)), CurrencyCode: "USD", ProcessingMode: mode})
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// charge charges a card for a new config over IVR and returns the payin.
func (e *inboxEnv) charge(merchant string, amount int64, mode string) *ivrpay.Payin {
	e.t.Helper()
	cfg := e.config(merchant, amount, mode)
	res, err := e.pay.ProcessIVR(e.ivrCtx, ivrpay.IVRRequest{Method: ivrpay.IVRMethodCharge, TransactionID: fmt.Sprint("CA-inbox-", e.txn.Add(1)),
		CardNumber: "4111111111111111", CVV: "123", ExpiryMonth: "08", ExpiryYear: "39", PostalCode: "94111",
		Amount: ivrpay.ParseIVRAmount(true, ivrpay.FormatDollars(amount)), CurrencyCode: "USD",
		Parameters: map[string]string{ivrpay.ParamPayinConfigID: cfg.ID}})
	if err != nil {
		e.t.Fatal(err)
	}
	id := res.ID
	if id == "" {
		id = res.Parameters["payin_id"]
	}
	return e.payin(id)
}

func (e *inboxEnv) payin(id string) *ivrpay.Payin {
	e.t.Helper()
	p, err := e.store.LoadPayin(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *inboxEnv) refundOf(payinID, refundID string) ivrpay.Refund {
	e.t.Helper()
	for _, r := range e.payin(payinID).Refunds {
		if r.ID == refundID {
			return r
		}
	}
	e.t.Fatalf("payin %s has no refund %s", payinID, refundID)
	return ivrpay.Refund{}
}

// settled is a SUCCEEDED sandbox payin of amount.
func (e *inboxEnv) settled(amount int64) *ivrpay.Payin {
	e.t.Helper()
	p := e.charge(e.merchantID, amount, ivrpay.ProcessingModeAuthorizeAndCapture)
	paymentstest.Settle(e.t, e.store)
	if p = e.payin(p.ID); p.Status != ivrpay.PayinStatusSucceeded {
		e.t.Fatalf("payin %s is %s after the sandbox confirmed it", p.ID, p.Status)
	}
	return p
}

// refund refunds amount of a SUCCEEDED payin; the refund is PROCESSING.
func (e *inboxEnv) refund(p *ivrpay.Payin, amount int64) ivrpay.Refund {
	e.t.Helper()
	res, err := e.pay.VoidOrRefund(e.adminCtx, p.ID, ivrpay.VoidOrRefund{IdempotencyKey: fmt.Sprint("r-", e.txn.Add(1)),
		Reason: ivrpay.RefundReasonRequestedByCustomer, Amount: json.Number(fmt.Sprint(amount))})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.refundOf(p.ID, string(res.RefundID))
}

// webhooks lists the types of the webhook events emitted about objectID, in order.
func (e *inboxEnv) webhooks(objectID string) []string {
	e.t.Helper()
	rows, err := e.store.DB().Query(`SELECT type FROM events WHERE object_id = $1 ORDER BY created_at, id`, objectID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

// receive hands an event to the inbox, as an endpoint does, and returns it as stored.
func (e *inboxEnv) receive(ev ivrpay.ProcessorEvent) ivrpay.InboxEvent {
	e.t.Helper()
	if err := e.pay.ReceiveProcessorEvent(context.Background(), ev); err != nil {
		e.t.Fatalf("ReceiveProcessorEvent(%s): %v", ev.ID, err)
	}
	stored, err := e.store.FindProcessorEvent(context.Background(), ev.Account, ev.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return stored
}

var eventSeq atomic.Int64

// paymentEvent is an event of p's account about p, by the processor's reference.
func paymentEvent(p *ivrpay.Payin, effect ivrpay.EventEffect) ivrpay.ProcessorEvent {
	return ivrpay.ProcessorEvent{Account: p.Processor.Account, Kind: p.Processor.Kind, ID: fmt.Sprint("evt_", eventSeq.Add(1)),
		Type: "test." + string(effect), Effect: effect, PaymentReference: string(p.Processor.Reference), Reference: p.ID,
		Amount: p.Amount, Currency: p.CurrencyCode}
}

// refundEvent is an event about refund r of p, by the processor's reference of the refund.
func refundEvent(p *ivrpay.Payin, r ivrpay.Refund, effect ivrpay.EventEffect, refundReference string) ivrpay.ProcessorEvent {
	e := paymentEvent(p, effect)
	e.Reference, e.RefundReference, e.Amount = "", refundReference, r.Amount
	return e
}

// refundReference reads the processor's id of a refund (not shown by the API).
func (e *inboxEnv) refundReference(id string) string {
	e.t.Helper()
	var ref string
	if err := e.store.DB().QueryRow(`SELECT processor_reference FROM refunds WHERE id = $1`, id).Scan(&ref); err != nil || ref == "" {
		e.t.Fatalf("refund %s processor reference %q: %v", id, ref, err)
	}
	return ref
}

// TestProcessorEventsMoveAsTheTableSays: on both engines, each effect,
// received through ReceiveProcessorEvent on the real store, moves its payin
// or refund as the transition table says, emits the webhook of the change
// (and no other), and leaves the event APPLIED, NO_CHANGE or PENDING.
func TestProcessorEventsMoveAsTheTableSays(t *testing.T) {
	type outcome struct {
		status      string   // the object's status afterwards
		webhooks    []string // the webhooks the event emitted
		eventStatus string   // the event's status in the inbox
	}
	const (
		processing = ivrpay.PayinStatusProcessing
		authorized = ivrpay.PayinStatusAuthorized
		succeeded  = ivrpay.PayinStatusSucceeded
		failed     = ivrpay.PayinStatusFailed
		canceled   = ivrpay.PayinStatusCanceled
		created    = ivrpay.PayinStatusCreated
		applied    = ivrpay.ProcessorEventApplied
		noChange   = ivrpay.ProcessorEventNoChange
		pending    = ivrpay.ProcessorEventPending
	)
	payinRows := []struct {
		name   string
		payin  func(e *inboxEnv) *ivrpay.Payin
		effect ivrpay.EventEffect
		want   outcome
		check  func(t *testing.T, e *inboxEnv, p *ivrpay.Payin)
	}{
		{"PROCESSING, capture confirmed", processingPayin, ivrpay.EffectPaymentCaptured, outcome{succeeded, []string{"payin.succeeded"}, applied}, nil},
		{"PROCESSING, authorization (older news)", processingPayin, ivrpay.EffectPaymentAuthorized, outcome{processing, nil, noChange}, nil},
		{"PROCESSING, stale failure", processingPayin, ivrpay.EffectPaymentFailed, outcome{processing, nil, noChange}, nil},
		{"PROCESSING, void confirmed", processingPayin, ivrpay.EffectPaymentCanceled, outcome{canceled, []string{"payin.canceled"}, applied}, nil},
		{"PROCESSING, capture failed", processingPayin, ivrpay.EffectPaymentCaptureFailed, outcome{failed, []string{"payin.failed"}, applied},
			func(t *testing.T, e *inboxEnv, p *ivrpay.Payin) {
				if p.RefusalCode != ivrpay.RefusalProcessingError {
					t.Errorf("refusal_code %q, want PROCESSING_ERROR", p.RefusalCode)
				}
			}},
		{"AUTHORIZED, authorization confirmed", authorizedPayin, ivrpay.EffectPaymentAuthorized, outcome{authorized, nil, noChange}, nil},
		{"AUTHORIZED, capture confirmed", authorizedPayin, ivrpay.EffectPaymentCaptured, outcome{succeeded, []string{"payin.succeeded"}, applied},
			func(t *testing.T, e *inboxEnv, p *ivrpay.Payin) {
				if p.CapturedAmount != p.AuthorizedAmount || p.RefundableAmount != p.AuthorizedAmount {
					t.Errorf("captured %d, refundable %d; want the authorized %d", p.CapturedAmount, p.RefundableAmount, p.AuthorizedAmount)
				}
			}},
		{"AUTHORIZED, void confirmed", authorizedPayin, ivrpay.EffectPaymentCanceled, outcome{canceled, []string{"payin.canceled"}, applied}, nil},
		{"AUTHORIZED, capture failed (the authorization stands)", authorizedPayin, ivrpay.EffectPaymentCaptureFailed, outcome{authorized, nil, noChange}, nil},
		{"SUCCEEDED, capture confirmed again", succeededPayin, ivrpay.EffectPaymentCaptured, outcome{succeeded, nil, noChange}, nil},
		{"SUCCEEDED, authorization after the capture", succeededPayin, ivrpay.EffectPaymentAuthorized, outcome{succeeded, nil, noChange}, nil},
		{"SUCCEEDED, stale failure", succeededPayin, ivrpay.EffectPaymentFailed, outcome{succeeded, nil, noChange}, nil},
		{"SUCCEEDED, void confirmed too late", succeededPayin, ivrpay.EffectPaymentCanceled, outcome{succeeded, nil, noChange}, nil},
		{"SUCCEEDED, capture failed after all", succeededPayin, ivrpay.EffectPaymentCaptureFailed, outcome{failed, []string{"payin.failed"}, applied}, nil},
		{"FAILED, capture confirmed", declinedPayin, ivrpay.EffectPaymentCaptured, outcome{failed, nil, noChange}, nil},
		{"CANCELED, capture confirmed", canceledPayin, ivrpay.EffectPaymentCaptured, outcome{canceled, nil, noChange}, nil},
		{"unknown outcome, capture confirmed: resolved approved, then settled", unknownPayin, ivrpay.EffectPaymentCaptured,
			outcome{succeeded, []string{"payin.processing", "payin.succeeded"}, applied},
			func(t *testing.T, e *inboxEnv, p *ivrpay.Payin) {
				if p.Processor.Outcome != ivrpay.ProcessorOutcomeApproved || p.CapturedAmount != p.Amount {
					t.Errorf("processor %+v, captured %d; want APPROVED and the whole amount", p.Processor, p.CapturedAmount)
				}
			}},
		{"unknown outcome, authorization: resolved approved", unknownPayin, ivrpay.EffectPaymentAuthorized,
			outcome{processing, []string{"payin.processing"}, applied}, nil},
		{"unknown outcome, payment failed: FAILED with the event's refusal, config free", unknownPayin, ivrpay.EffectPaymentFailed,
			outcome{failed, []string{"payin.failed"}, applied},
			func(t *testing.T, e *inboxEnv, p *ivrpay.Payin) {
				if p.RefusalCode != ivrpay.RefusalInsufficientFunds || p.RefusalDesc != "Insufficient funds" {
					t.Errorf("refusal %q %q, want the event's INSUFFICIENT_FUNDS, normalized", p.RefusalCode, p.RefusalDesc)
				}
				cfg, err := e.store.LoadPayinConfig(context.Background(), p.PayinConfigID)
				if err != nil || cfg.Payin != nil {
					t.Errorf("the config still holds payin %+v (%v); a FAILED payin frees it", cfg.Payin, err)
				}
			}},
		{"unknown outcome, canceled: FAILED with PROCESSING_ERROR", unknownPayin, ivrpay.EffectPaymentCanceled,
			outcome{failed, []string{"payin.failed"}, applied}, nil},
		{"CREATED being charged: the event waits for the charge's answer", chargingPayin, ivrpay.EffectPaymentCaptured,
			outcome{created, nil, pending}, nil},
	}
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		for _, row := range payinRows {
			t.Run(row.name, func(t *testing.T) {
				e.t = t
				p := row.payin(e)
				before := len(e.webhooks(p.ID))
				ev := paymentEvent(p, row.effect)
				if row.effect == ivrpay.EffectPaymentFailed {
					ev.RefusalCode, ev.RefusalDesc = ivrpay.RefusalInsufficientFunds, "issuer says: insufficient funds on account 1234"
				}
				stored := e.receive(ev)
				after := e.payin(p.ID)
				if after.Status != row.want.status {
					t.Errorf("payin is %s, want %s", after.Status, row.want.status)
				}
				hooks := e.webhooks(p.ID)[before:]
				hooks = slices.DeleteFunc(hooks, func(h string) bool { return h == ivrpay.EventPaymentMethodActive })
				if !slices.Equal(hooks, row.want.webhooks) {
					t.Errorf("webhooks %v, want %v", hooks, row.want.webhooks)
				}
				if stored.Status != row.want.eventStatus {
					t.Errorf("event %s (%s), want %s", stored.Status, stored.Note, row.want.eventStatus)
				}
				if stored.Status != pending && stored.ObjectID != p.ID {
					t.Errorf("event matched %q, want payin %s", stored.ObjectID, p.ID)
				}
				if row.check != nil {
					row.check(t, e, after)
				}
			})
		}
		refundRows := []struct {
			name    string
			refund  func(e *inboxEnv) (*ivrpay.Payin, ivrpay.Refund)
			effect  ivrpay.EventEffect
			want    outcome
			givenUp bool // the refund's amount is refundable again
		}{
			{"PROCESSING, succeeded", processingRefund, ivrpay.EffectRefundSucceeded, outcome{ivrpay.RefundStatusSucceeded, []string{"refund.succeeded"}, applied}, false},
			{"PROCESSING, failed", processingRefund, ivrpay.EffectRefundFailed, outcome{ivrpay.RefundStatusFailed, []string{"refund.failed"}, applied}, true},
			{"SUCCEEDED, failed later (the bank returned it)", succeededRefund, ivrpay.EffectRefundFailed, outcome{ivrpay.RefundStatusFailed, []string{"refund.failed"}, applied}, true},
			{"SUCCEEDED, succeeded again", succeededRefund, ivrpay.EffectRefundSucceeded, outcome{ivrpay.RefundStatusSucceeded, nil, noChange}, false},
			{"FAILED, succeeded (older news)", failedRefund, ivrpay.EffectRefundSucceeded, outcome{ivrpay.RefundStatusFailed, nil, noChange}, true},
		}
		for _, row := range refundRows {
			t.Run("refund "+row.name, func(t *testing.T) {
				e.t = t
				p, r := row.refund(e)
				before := len(e.webhooks(r.ID))
				stored := e.receive(refundEvent(p, r, row.effect, e.refundReference(r.ID)))
				after := e.refundOf(p.ID, r.ID)
				if after.Status != row.want.status {
					t.Errorf("refund is %s, want %s", after.Status, row.want.status)
				}
				if hooks := e.webhooks(r.ID)[before:]; !slices.Equal(hooks, row.want.webhooks) {
					t.Errorf("webhooks %v, want %v", hooks, row.want.webhooks)
				}
				if stored.Status != row.want.eventStatus || stored.ObjectID != r.ID {
					t.Errorf("event %s on %q (%s), want %s on %s", stored.Status, stored.ObjectID, stored.Note, row.want.eventStatus, r.ID)
				}
				want := p.CapturedAmount
				if !row.givenUp {
					want -= r.Amount
				}
				if got := e.payin(p.ID).RefundableAmount; got != want {
					t.Errorf("refundable %d, want %d", got, want)
				}
			})
		}
	})
}

func processingPayin(e *inboxEnv) *ivrpay.Payin {
	p := e.charge(e.realMerchant, 1000, ivrpay.ProcessingModeAuthorizeAndCapture)
	if p.Status != ivrpay.PayinStatusProcessing {
		e.t.Fatalf("payin is %s, want PROCESSING", p.Status)
	}
	return p
}

func authorizedPayin(e *inboxEnv) *ivrpay.Payin {
	p := e.charge(e.realMerchant, 1000, ivrpay.ProcessingModeAuthorize)
	if p.Status != ivrpay.PayinStatusAuthorized {
		e.t.Fatalf("payin is %s, want AUTHORIZED", p.Status)
	}
	return p
}

func succeededPayin(e *inboxEnv) *ivrpay.Payin {
	p := processingPayin(e)
	e.receive(paymentEvent(p, ivrpay.EffectPaymentCaptured))
	if p = e.payin(p.ID); p.Status != ivrpay.PayinStatusSucceeded {
		e.t.Fatalf("payin is %s, want SUCCEEDED", p.Status)
	}
	return p
}

func declinedPayin(e *inboxEnv) *ivrpay.Payin {
	p := e.charge(e.realMerchant, 5101, ivrpay.ProcessingModeAuthorizeAndCapture) // the sandbox's DECLINED amount
	if p.Status != ivrpay.PayinStatusFailed {
		e.t.Fatalf("payin is %s, want FAILED", p.Status)
	}
	return p
}

func canceledPayin(e *inboxEnv) *ivrpay.Payin {
	p := processingPayin(e)
	if _, err := e.pay.VoidOrRefund(e.adminCtx, p.ID, ivrpay.VoidOrRefund{IdempotencyKey: fmt.Sprint("v-", e.txn.Add(1)),
		Reason: ivrpay.RefundReasonDuplicate}); err != nil {
		e.t.Fatal(err)
	}
	return e.payin(p.ID)
}

// unknownPayin is a CREATED payin whose processor answer was lost (5121).
func unknownPayin(e *inboxEnv) *ivrpay.Payin {
	p := e.charge(e.realMerchant, sandbox.LostAnswersAmount, ivrpay.ProcessingModeAuthorizeAndCapture)
	if p.Status != ivrpay.PayinStatusCreated || p.Processor.Outcome != ivrpay.ProcessorOutcomeUnknown {
		e.t.Fatalf("payin is %s (%s), want CREATED with an unknown outcome", p.Status, p.Processor.Outcome)
	}
	return p
}

// chargingPayin is a CREATED payin whose charge is still at the processor.
func chargingPayin(e *inboxEnv) *ivrpay.Payin {
	cfg := e.config(e.realMerchant, 1000, ivrpay.ProcessingModeAuthorizeAndCapture)
	id := ivrpay.NewID(ivrpay.ModeSandbox, ivrpay.PrefixPayin, e.clock.Now())
	p, _, err := e.store.ReservePayin(context.Background(), ivrpay.PayinReservation{ID: id, Config: cfg, Source: ivrpay.PayinSourceAPIDirect,
		Processor: ivrpay.ProcessorAccountRef{Name: realAccount, Kind: "stripe"}, CreatedAt: e.clock.Now()})
	if err != nil || p == nil {
		e.t.Fatalf("ReservePayin: %v", err)
	}
	return e.payin(id)
}

func processingRefund(e *inboxEnv) (*ivrpay.Payin, ivrpay.Refund) {
	p := succeededPayin(e)
	return e.payin(p.ID), e.refund(p, 300)
}

func succeededRefund(e *inboxEnv) (*ivrpay.Payin, ivrpay.Refund) {
	p, r := processingRefund(e)
	e.receive(refundEvent(p, r, ivrpay.EffectRefundSucceeded, e.refundReference(r.ID)))
	return p, e.refundOf(p.ID, r.ID)
}

func failedRefund(e *inboxEnv) (*ivrpay.Payin, ivrpay.Refund) {
	p, r := processingRefund(e)
	e.receive(refundEvent(p, r, ivrpay.EffectRefundFailed, e.refundReference(r.ID)))
	return p, e.refundOf(p.ID, r.ID)
}

// TestProcessorEventsOnceInAnyOrder: a duplicate is acknowledged and not
// applied again (one webhook), and events received in reverse order change
// nothing backwards, for payins and refunds alike.
func TestProcessorEventsOnceInAnyOrder(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		t.Run("duplicate", func(t *testing.T) {
			e.t = t
			p := processingPayin(e)
			ev := paymentEvent(p, ivrpay.EffectPaymentCaptured)
			for range 3 {
				e.receive(ev)
			}
			if hooks := e.webhooks(p.ID); slices.Index(hooks, "payin.succeeded") != len(hooks)-1 || countOf(hooks, "payin.succeeded") != 1 {
				t.Fatalf("webhooks %v, want one payin.succeeded", hooks)
			}
			if n, err := e.pay.ApplyDueProcessorEvents(context.Background()); err != nil || n != 0 {
				t.Fatalf("a worker pass found %d events to apply (%v), want none", n, err)
			}
		})
		t.Run("capture confirmed, then the authorization", func(t *testing.T) {
			e.t = t
			p := authorizedPayin(e)
			e.receive(paymentEvent(p, ivrpay.EffectPaymentCaptured))
			late := e.receive(paymentEvent(p, ivrpay.EffectPaymentAuthorized))
			if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusSucceeded || late.Status != ivrpay.ProcessorEventNoChange {
				t.Fatalf("payin %s, late event %s; want SUCCEEDED and NO_CHANGE", got.Status, late.Status)
			}
		})
		t.Run("void confirmed, then a stale capture", func(t *testing.T) {
			e.t = t
			p := authorizedPayin(e)
			e.receive(paymentEvent(p, ivrpay.EffectPaymentCanceled))
			e.receive(paymentEvent(p, ivrpay.EffectPaymentCaptured))
			if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusCanceled {
				t.Fatalf("payin %s, want CANCELED", got.Status)
			}
		})
		t.Run("refund failed, then the older success", func(t *testing.T) {
			e.t = t
			p, r := processingRefund(e)
			ref := e.refundReference(r.ID)
			e.receive(refundEvent(p, r, ivrpay.EffectRefundFailed, ref))
			e.receive(refundEvent(p, r, ivrpay.EffectRefundSucceeded, ref))
			if got := e.refundOf(p.ID, r.ID); got.Status != ivrpay.RefundStatusFailed {
				t.Fatalf("refund %s, want FAILED", got.Status)
			}
			if hooks := e.webhooks(r.ID); !slices.Equal(hooks, []string{"refund.processing", "refund.failed"}) {
				t.Fatalf("webhooks %v", hooks)
			}
			if got := e.payin(p.ID); got.RefundableAmount != got.CapturedAmount {
				t.Fatalf("refundable %d of %d: the failed refund's amount was not given back once", got.RefundableAmount, got.CapturedAmount)
			}
		})
	})
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

// TestProcessorEventsUnmatched: an event for an object ivrpay does not know
// (yet) is kept PENDING and retried with a growing back-off; one whose
// object appears meanwhile is applied by the worker pass; one still
// unmatched after UnmatchedAfter is kept as UNMATCHED and listed. An
// account's events never move another account's payin.
func TestProcessorEventsUnmatched(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		stranger := e.receive(ivrpay.ProcessorEvent{Account: realAccount, Kind: "stripe", ID: "evt_stranger", Type: "payment_intent.succeeded",
			Effect: ivrpay.EffectPaymentCaptured, PaymentReference: "pi_made_in_the_dashboard"})
		if stranger.Status != ivrpay.ProcessorEventPending || stranger.Attempts != 1 {
			t.Fatalf("an event for an unknown payment: %s after %d attempts, want PENDING after 1", stranger.Status, stranger.Attempts)
		}

		// The payin's processor reference is recorded after its event came:
		// the retry finds it.
		p := processingPayin(e)
		ev := paymentEvent(p, ivrpay.EffectPaymentCaptured)
		ev.PaymentReference, ev.Reference = "pi_not_recorded_yet", ""
		if got := e.receive(ev); got.Status != ivrpay.ProcessorEventPending {
			t.Fatalf("early event %s", got.Status)
		}
		if _, err := e.store.DB().Exec(`UPDATE payins SET processor_reference = 'pi_not_recorded_yet' WHERE id = $1`, p.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := e.pay.ApplyDueProcessorEvents(ctx); n != 0 {
			t.Fatalf("the worker applied %d events before their back-off ended", n)
		}
		e.clock.advance(6 * time.Second)
		if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 2 {
			t.Fatalf("worker pass: %d events, %v; want the two waiting", n, err)
		}
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusSucceeded {
			t.Fatalf("payin %s after its early event was retried, want SUCCEEDED", got.Status)
		}

		// Another account's event naming this payin moves nothing.
		q := processingPayin(e)
		other := paymentEvent(q, ivrpay.EffectPaymentCaptured)
		other.Account = "adyen-elsewhere"
		e.receive(other)
		if got := e.payin(q.ID); got.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("another account's event moved payin %s to %s", q.ID, got.Status)
		}

		// The back-off grows, then the stranger is kept as UNMATCHED.
		var stored ivrpay.InboxEvent
		for range 20 {
			e.clock.advance(5 * time.Minute)
			if _, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil {
				t.Fatal(err)
			}
			if stored, _ = e.store.FindProcessorEvent(ctx, realAccount, "evt_stranger"); stored.Status != ivrpay.ProcessorEventPending {
				break
			}
		}
		if stored.Status != ivrpay.ProcessorEventUnmatched || stored.Attempts < 5 {
			t.Fatalf("the stranger is %s after %d attempts, want UNMATCHED after several", stored.Status, stored.Attempts)
		}
		list, err := e.store.ListProcessorEvents(ctx, ivrpay.ProcessorEventFilter{Status: ivrpay.ProcessorEventUnmatched})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, l := range list {
			ids = append(ids, l.EventID)
		}
		if !slices.Contains(ids, "evt_stranger") || !slices.Contains(ids, other.ID) {
			t.Fatalf("unmatched events %v, want the stranger's and the other account's", ids)
		}
	})
}

// TestProcessorEventRetryBackOff: the inbox waits longer after each
// attempt, from 5 s, doubling, up to 5 min.
func TestProcessorEventRetryBackOff(t *testing.T) {
	t.Parallel()
	e := newInboxEnv(t, sqlstore.EngineSQLite)
	e.receive(ivrpay.ProcessorEvent{Account: realAccount, Kind: "stripe", ID: "evt_backoff", Type: "charge.refunded",
		Effect: ivrpay.EffectRefundSucceeded, RefundReference: "re_unknown"})
	var waits []time.Duration
	for len(waits) < len(backOff) {
		waits = append(waits, e.untilClaimed())
	}
	if !slices.Equal(waits, backOff) {
		t.Fatalf("waits between attempts %v, want %v", waits, backOff)
	}
}

// backOff is the inbox's wait after each of an event's first nine attempts.
var backOff = []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
	300 * time.Second, 300 * time.Second, 300 * time.Second}

// untilClaimed moves the clock a second at a time until a worker pass
// claims the one event waiting, and returns how long that took.
func (e *inboxEnv) untilClaimed() time.Duration {
	e.t.Helper()
	before := e.clock.Now()
	for {
		e.clock.advance(time.Second)
		if n, err := e.pay.ApplyDueProcessorEvents(context.Background()); err != nil {
			e.t.Fatal(err)
		} else if n == 1 {
			return e.clock.Now().Sub(before).Round(time.Second)
		}
	}
}

// TestProcessorEventAppliedOnceAcrossProcesses: two stores on one database
// (two processes, as far as the database can tell) receive the same event
// at once, many times over, and the sandbox confirms the same payin from
// both at once: each event is stored once and applied once, with one
// webhook. Two writes of the same event's change race, and one wins.
func TestProcessorEventAppliedOnceAcrossProcesses(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		store2, pay2 := e.open()
		services := []*payments.Service{e.pay, pay2}
		p := processingPayin(e)
		sandboxed := e.charge(e.merchantID, 1000, ivrpay.ProcessingModeAuthorizeAndCapture)
		ev := paymentEvent(p, ivrpay.EffectPaymentCaptured)
		errs := make(chan error, 32)
		paymentstest.AllAtOnce(16, func(i int) {
			pay := services[i%2]
			if i%4 == 3 {
				_, err := pay.ConfirmSandboxDue(context.Background(), 0)
				errs <- err
				return
			}
			errs <- pay.ReceiveProcessorEvent(context.Background(), ev)
		})
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("receive: %v", err)
			}
		}
		for _, id := range []string{p.ID, sandboxed.ID} {
			if got := e.payin(id); got.Status != ivrpay.PayinStatusSucceeded {
				t.Errorf("payin %s is %s, want SUCCEEDED", id, got.Status)
			}
			if hooks := e.webhooks(id); countOf(hooks, "payin.succeeded") != 1 {
				t.Errorf("payin %s webhooks %v, want one payin.succeeded", id, hooks)
			}
		}
		var events int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM processor_events`).Scan(&events); err != nil || events != 2 {
			t.Errorf("%d events stored (%v), want 2", events, err)
		}

		// The same change written twice at once: one write wins.
		q := processingPayin(e)
		late := paymentEvent(q, ivrpay.EffectPaymentCaptured)
		holder := payments.New(e.store, e.opts.Vault, e.router, payments.Options{Mode: ivrpay.ModeSandbox, Clock: e.clock, HoldProcessorEvents: true})
		if err := holder.ReceiveProcessorEvent(context.Background(), late); err != nil {
			t.Fatal(err)
		}
		change := ivrpay.PayinEventChange{Account: late.Account, EventID: late.ID, PayinID: q.ID, From: ivrpay.PayinStatusProcessing,
			To: ivrpay.PayinStatusSucceeded, At: e.clock.Now()}
		var won, done atomic.Int64
		var race sync.WaitGroup
		for i := range 8 {
			race.Add(1)
			go func() {
				defer race.Done()
				store := []*sqlstore.Store{e.store, store2}[i%2]
				_, err := store.ApplyPayinEventChange(context.Background(), change)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, ivrpay.ErrEventDone):
					done.Add(1)
				default:
					t.Errorf("ApplyPayinEventChange: %v", err)
				}
			}()
		}
		race.Wait()
		if won.Load() != 1 || done.Load() != 7 {
			t.Fatalf("%d writes applied the change and %d found it applied; want 1 and 7", won.Load(), done.Load())
		}
		if hooks := e.webhooks(q.ID); countOf(hooks, "payin.succeeded") != 1 {
			t.Fatalf("webhooks %v, want one payin.succeeded", hooks)
		}
	})
}

// TestSandboxConfirmations: the built-in sandbox processor confirms its own
// payins and refunds through the inbox once they have been PROCESSING for
// the settle delay, and never before; a refund of 51.40, or of a payin of
// 51.40, fails by event and its amount is refundable again; a real
// account's payin is never settled by the sandbox, however long it waits.
func TestSandboxConfirmations(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		const delay = time.Minute
		p := e.charge(e.merchantID, 10000, ivrpay.ProcessingModeAuthorizeAndCapture)
		real := processingPayin(e)
		if n, err := e.pay.ConfirmSandboxDue(ctx, delay); err != nil || n != 0 {
			t.Fatalf("before the delay the sandbox sent %d events (%v)", n, err)
		}
		e.clock.advance(delay)
		if n, err := e.pay.ConfirmSandboxDue(ctx, delay); err != nil || n != 1 {
			t.Fatalf("after the delay the sandbox sent %d events (%v), want 1", n, err)
		}
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusSucceeded {
			t.Fatalf("sandbox payin %s after its confirmation", got.Status)
		}
		if got := e.payin(real.ID); got.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("a real account's payin is %s; only its processor's event settles it", got.Status)
		}
		stored, err := e.store.FindProcessorEvent(ctx, ivrpay.SandboxAccount, p.ID+":PAYMENT_CAPTURED")
		if err != nil || stored.Status != ivrpay.ProcessorEventApplied || stored.Kind != sandbox.Kind {
			t.Fatalf("the sandbox's event: %+v, %v", stored, err)
		}

		fails := e.settled(sandbox.RefundFailsAmount)
		p = e.payin(p.ID)
		refunds := []ivrpay.Refund{e.refund(p, 500), e.refund(p, sandbox.RefundFailsAmount), e.refund(fails, 1000)}
		e.clock.advance(delay)
		if n, err := e.pay.ConfirmSandboxDue(ctx, delay); err != nil || n != 3 {
			t.Fatalf("the sandbox sent %d refund events (%v), want 3", n, err)
		}
		for i, want := range []string{ivrpay.RefundStatusSucceeded, ivrpay.RefundStatusFailed, ivrpay.RefundStatusFailed} {
			r := refunds[i]
			got := e.refundOf(r.PayinID, r.ID)
			if got.Status != want {
				t.Errorf("refund %d of %d cents: %s, want %s", i, r.Amount, got.Status, want)
			}
			var wantCode ivrpay.OptString
			if want == ivrpay.RefundStatusFailed {
				wantCode = ivrpay.RefusalProcessingError
			}
			if got.RefusalCode != wantCode {
				t.Errorf("refund %d refusal_code %q, want %q", i, got.RefusalCode, wantCode)
			}
			if hooks := e.webhooks(r.ID); hooks[len(hooks)-1] != "refund."+strings.ToLower(want) {
				t.Errorf("refund %d webhooks %v", i, hooks)
			}
		}
		if got := e.payin(p.ID); got.RefundableAmount != 10000-500 {
			t.Errorf("refundable %d after a 5.00 refund and a failed 51.40 one, want 95.00", got.RefundableAmount)
		}
		if got := e.payin(fails.ID); got.RefundableAmount != sandbox.RefundFailsAmount {
			t.Errorf("the 51.40 payin's refundable %d after its refund failed, want all of it", got.RefundableAmount)
		}
		if n, err := e.pay.ConfirmSandboxDue(ctx, delay); err != nil || n != 0 {
			t.Fatalf("a second pass sent %d events (%v), want none", n, err)
		}
	})
}

// lookingProcessor is the sandbox processor with a status look-up that
// answers what the test sets, as Stripe's retrieve would.
type lookingProcessor struct {
	*sandbox.Processor
	mu              sync.Mutex
	payment, refund ivrpay.EventEffect
	card            ivrpay.ProcessorEvent // the card network's answer a payment look-up carries
	err             error                 // what a payment look-up fails with
	lookups         int
}

func (l *lookingProcessor) answer(payment, refund ivrpay.EventEffect) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.payment, l.refund = payment, refund
}

// answerCard makes a payment look-up find the payment captured with the
// card network's answer card, or fail with err.
func (l *lookingProcessor) answerCard(card ivrpay.ProcessorEvent, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.payment, l.card, l.err = ivrpay.EffectPaymentCaptured, card, err
}

func (l *lookingProcessor) LookupPayment(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lookups++
	e := l.card
	e.Type, e.Effect, e.PaymentReference, e.Amount = "payment_intent.looked_up", l.payment, op.Reference, op.Amount
	return e, l.err
}

func (l *lookingProcessor) LookupRefund(ctx context.Context, op ivrpay.PaymentOperation, ref string) (ivrpay.ProcessorEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lookups++
	return ivrpay.ProcessorEvent{Type: "refund.looked_up", Effect: l.refund, PaymentReference: op.Reference, RefundReference: ref}, nil
}

func (l *lookingProcessor) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lookups
}

// TestLookUpFallback: when no event comes, a real account's payin or
// refund PROCESSING for --processor-check-after is looked up at its
// processor, with back-off while the processor says it is pending, and
// the answer moves it through the inbox like an event. A processor with
// no look-up (Adyen) leaves it PROCESSING, listed as stale after 24 h.
func TestLookUpFallback(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		looker := &lookingProcessor{Processor: sandbox.New()}
		e.router.lookup = looker
		p := processingPayin(e)
		sandboxed := e.charge(e.merchantID, 1000, ivrpay.ProcessingModeAuthorizeAndCapture)
		lookUp := func(want int) {
			t.Helper()
			if n, err := e.pay.LookUpProcessingDue(ctx); err != nil || n != want {
				t.Fatalf("look-up pass: %d looked up (%v), want %d", n, err, want)
			}
		}
		e.clock.advance(payments.DefaultProcessorCheckAfter - time.Minute)
		lookUp(0)

		e.clock.advance(time.Minute)
		looker.answer(ivrpay.EffectNone, ivrpay.EffectNone)
		lookUp(1)
		lookUp(0) // backed off
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("payin %s while its processor says it is pending", got.Status)
		}
		e.clock.advance(8 * time.Minute) // a quarter of the time it has been PROCESSING, and more
		looker.answer(ivrpay.EffectPaymentCaptured, ivrpay.EffectNone)
		lookUp(1)
		if got := e.payin(p.ID); got.Status != ivrpay.PayinStatusSucceeded {
			t.Fatalf("payin %s after the look-up found it captured", got.Status)
		}
		ev, err := e.store.FindProcessorEvent(ctx, realAccount, "lookup:"+p.ID+":PAYMENT_CAPTURED")
		if err != nil || ev.Status != ivrpay.ProcessorEventApplied || ev.Kind != "stripe" {
			t.Fatalf("the look-up's event: %+v, %v", ev, err)
		}
		if hooks := e.webhooks(p.ID); countOf(hooks, "payin.succeeded") != 1 {
			t.Fatalf("webhooks %v", hooks)
		}
		if got := e.payin(sandboxed.ID); got.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("the sandbox's payin is %s: only the sandbox's own events settle it", got.Status)
		}

		r := e.refund(e.payin(p.ID), 400)
		e.clock.advance(payments.DefaultProcessorCheckAfter)
		looker.answer(ivrpay.EffectNone, ivrpay.EffectRefundFailed)
		lookUp(1)
		if got := e.refundOf(p.ID, r.ID); got.Status != ivrpay.RefundStatusFailed {
			t.Fatalf("refund %s after the look-up found it failed", got.Status)
		}
		if got := e.payin(p.ID); got.RefundableAmount != got.CapturedAmount {
			t.Fatalf("refundable %d, want all %d again", got.RefundableAmount, got.CapturedAmount)
		}
		before := looker.count()

		// A processor without a look-up: the payin waits for its
		// notification, and is listed as stale after 24 h.
		e.router.lookup = nil
		quiet := processingPayin(e)
		e.clock.advance(payments.DefaultProcessorCheckAfter)
		lookUp(0)
		if stale, err := e.store.ListStaleObjects(ctx, e.clock.Now().Add(-ivrpay.StaleAfter), 100); err != nil || len(stale) != 0 {
			t.Fatalf("stale after 30 min: %+v, %v", stale, err)
		}
		e.clock.advance(ivrpay.StaleAfter)
		stale, err := e.store.ListStaleObjects(ctx, e.clock.Now().Add(-ivrpay.StaleAfter), 100)
		if err != nil || len(stale) != 1 || stale[0].ID != quiet.ID || stale[0].Object != "payin" || stale[0].Account != realAccount {
			t.Fatalf("stale after a day: %+v, %v; want payin %s alone", stale, err, quiet.ID)
		}
		if looker.count() != before {
			t.Fatal("a processor without a look-up was asked")
		}
	})
}

// TestEventResolutionCardAnswer: an event that resolves a payin's unknown
// outcome gives the payin the card network's answer it carries, also when
// a later worker pass applies it (the event is stored with it); an
// approval's network transaction id reaches the card stored with the
// payin, and a refusal keeps its AVS and CVC results but no auth code. A
// CVC mismatch on an approval leaves it approved: the money has moved.
func TestEventResolutionCardAnswer(t *testing.T) {
	forEachInboxEngine(t, func(t *testing.T, e *inboxEnv) {
		ctx := context.Background()
		holder := payments.New(e.store, e.opts.Vault, e.router, payments.Options{Mode: ivrpay.ModeSandbox, Clock: e.clock, HoldProcessorEvents: true})
		for _, tc := range []struct {
			name     string
			effect   ivrpay.EventEffect
			status   string
			authCode string
			nti      string
		}{
			{"approved", ivrpay.EffectPaymentAuthorized, ivrpay.PayinStatusProcessing, "A1B2C3", "586214590330745"},
			{"refused", ivrpay.EffectPaymentFailed, ivrpay.PayinStatusFailed, "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.t = t
				p := unknownPayin(e)
				ev := paymentEvent(p, tc.effect)
				ev.AuthCode, ev.AVSResultCode, ev.CVCResultCode, ev.NetworkTransactionID = "A1B2C3", "Y", "N", "586214590330745"
				if err := holder.ReceiveProcessorEvent(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if n, err := e.pay.ApplyDueProcessorEvents(ctx); err != nil || n != 1 {
					t.Fatalf("the worker pass claimed %d events (%v), want 1", n, err)
				}
				got := e.payin(p.ID)
				if got.Status != tc.status || string(got.AuthCode) != tc.authCode || got.AVSResultCode != "Y" || got.CVCResultCode != "N" ||
					string(got.Processor.NetworkTransactionID) != tc.nti {
					t.Fatalf("payin %s: auth_code %q, avs %q, cvc %q, network transaction id %q; want %s, %q, Y, N, %q",
						got.Status, got.AuthCode, got.AVSResultCode, got.CVCResultCode, got.Processor.NetworkTransactionID, tc.status, tc.authCode, tc.nti)
				}
				if _, nti, err := e.store.LoadPaymentMethodCard(ctx, string(got.PaymentMethodID)); err != nil || nti != tc.nti {
					t.Fatalf("the stored card's network transaction id is %q (%v), want %q", nti, err, tc.nti)
				}
			})
		}
	})
}
