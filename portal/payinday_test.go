package portal_test

// The platform's day in a real browser (issue 14 #4): the payin configs list
// (filter by merchant, used or not) with detail pages, and capture, void and
// refund on a payin, each permission-checked and shown as unavailable,
// naming the permission, to a key that lacks it.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/twilio"
)

// chargedConfig creates a payin config of cents in mode and charges it over
// the simulated call with the env's IVR key; it returns the config and payin ids.
func (e *env) chargedConfig(t *testing.T, cents int64, mode string) (cfgID, payinID string) {
	t.Helper()
	cfg, err := e.store.CreatePayinConfig(e.adminContext(), ivrpay.PayinConfigCreate{MerchantID: e.merchant.ID,
		IdempotencyKey: "day-" + strconv.FormatInt(time.Now().UnixNano(), 36), Amount: json.Number(strconv.FormatInt(cents, 10)),
		CurrencyCode: "USD", ProcessingMode: mode, Metadata: json.RawMessage(`{"order":"A-1001"}`)})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_sandbox", AmountCents: cents, PayinConfigID: cfg.ID})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := twilio.Simulate(context.Background(), twilio.SimulateOptions{Endpoint: e.srv.URL + "/vendor/twilio/pay_generic",
		APIKey: e.ivrKey.Secret, Pay: pay, Client: e.srv.Client(),
		Caller: twilio.CallerInput{CardNumber: "4111111111111111", Expiry: "12/39", CVV: "123", PostalCode: "94107"}})
	if err != nil {
		t.Fatal(err)
	}
	payinID = sim.Callback.Get("PayConnector_payin_id")
	if payinID == "" {
		t.Fatalf("no payin: %v", sim.Callback)
	}
	return cfg.ID, payinID
}

// clickAndWaitFor clicks sel and waits until the browser's location holds
// want (a click's page replaces one that already shows the same elements).
// A read of the location can meet the click's navigation half-way and fail
// ("Inspected target navigated or closed", the page it asked is gone): that
// read is a "not yet", as the old location is.
func (b *browser) clickAndWaitFor(sel, want string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		loc, err := chromedp.Run(b.ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, want) {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("after clicking %s the browser is at %s (%v), not at a location with %q", sel, loc, err, want)
		}
	}
	b.do(chromedp.WaitReady(chromedp.CSS("footer, body")))
}

func TestPortalPlatformDay(t *testing.T) {
	t.Parallel()
	e := setup(t)
	other, err := e.store.CreateMerchantAsOperator(context.Background(), e.platform.ID, ivrpay.MerchantCreate{Name: "Harbor Deli"})
	if err != nil {
		t.Fatal(err)
	}
	authCfg, authPayin := e.chargedConfig(t, 3000, ivrpay.ProcessingModeAuthorize)
	_, voidPayin := e.chargedConfig(t, 1500, "")
	_, refundPayin := e.chargedConfig(t, 2000, "")
	unused := e.payinConfig(t)
	otherCfg, err := e.store.CreatePayinConfig(e.adminContext(), ivrpay.PayinConfigCreate{MerchantID: other.ID, IdempotencyKey: "deli-1",
		Amount: "700", CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	b.signIn(e.admin.Secret)

	// The list: every config, then filtered by merchant and by use.
	b.open("/portal/configs", "#configs-table")
	table := b.text("#configs-table")
	for _, id := range []string{authCfg, unused.ID, otherCfg.ID} {
		if !strings.Contains(table, id) {
			t.Errorf("the configs list lacks %s:\n%s", id, table)
		}
	}
	b.selectOption("#f-merchant", other.ID)
	b.clickAndWaitFor("#config-filters button", "merchant_id="+other.ID)
	b.do(chromedp.WaitVisible(chromedp.CSS("#configs-table")))
	if table := b.text("#configs-table"); !strings.Contains(table, otherCfg.ID) || strings.Contains(table, authCfg) {
		t.Errorf("filtered by merchant %s:\n%s", other.ID, table)
	}
	for _, c := range []struct {
		used      string
		want, not string
	}{{"unused", unused.ID, authCfg}, {"used", authCfg, unused.ID}} {
		b.open("/portal/configs?used="+c.used, "#configs-table")
		if table := b.text("#configs-table"); !strings.Contains(table, c.want) || strings.Contains(table, c.not) {
			t.Errorf("used=%s:\n%s", c.used, table)
		}
	}
	// The detail page of a used config links its payin.
	b.do(chromedp.Click(chromedp.CSS(`#configs-table a[href="/portal/configs/payin/`+authCfg+`"]`)), chromedp.WaitVisible(chromedp.CSS("#config-payin")))
	if got := b.text("#config-payin"); !strings.Contains(got, authPayin) || !strings.Contains(got, "AUTHORIZED") {
		t.Errorf("config detail payin %q", got)
	}
	if got := b.text("#config-amount"); !strings.Contains(got, "$30.00") {
		t.Errorf("config detail amount %q", got)
	}

	// Capture the AUTHORIZED payin.
	b.open("/portal/payins/"+authPayin, "#capture-button")
	b.clickAndWaitFor("#capture-button", "done=captured")
	if got := b.text("#payin-status"); got != ivrpay.PayinStatusProcessing {
		t.Errorf("after capture: status %s", got)
	}
	if !strings.Contains(b.text(".main"), "Captured") {
		t.Error("no notice after capture")
	}

	// Void the PROCESSING payin.
	b.open("/portal/payins/"+voidPayin, "#void-button")
	b.clickAndWaitFor("#void-button", "done=voided")
	if got := b.text("#payin-status"); got != ivrpay.PayinStatusCanceled {
		t.Errorf("after void: status %s", got)
	}

	// Refund part of a SUCCEEDED payin (settled now).
	paymentstest.Settle(t, e.store)
	b.open("/portal/payins/"+refundPayin, "#refund-button")
	b.do(chromedp.SendKeys(chromedp.CSS("#refund-amount"), "5.00"))
	b.clickAndWaitFor("#refund-button", "done=refunded")
	b.do(chromedp.WaitVisible(chromedp.CSS("#payin-refunds")))
	if got := b.text("#payin-refunds"); !strings.Contains(got, "$5.00") {
		t.Errorf("refunds after a 5.00 refund:\n%s", got)
	}
	pi, err := e.store.DB().Query(`SELECT refunded_amount FROM payins WHERE id = $1`, refundPayin)
	if err != nil {
		t.Fatal(err)
	}
	var refunded int64
	for pi.Next() {
		pi.Scan(&refunded)
	}
	pi.Close()
	if refunded != 500 {
		t.Errorf("refunded_amount %d, want 500", refunded)
	}

	// A key that may read payins but not act on them sees each action as
	// unavailable, naming the permission it lacks.
	reader, err := e.store.CreateAPIKey(e.adminContext(), []ivrpay.Statement{{Permissions: []string{"payin:read", "payin_config:read"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: e.platform.ID}}}})
	if err != nil {
		t.Fatal(err)
	}
	rb := newBrowser(t, e)
	rb.signIn(reader.Secret)
	rb.open("/portal/payins/"+refundPayin, "#payin-actions")
	for name, perm := range map[string]string{"capture": "payin:update", "void": "refund:create", "refund": "refund:create"} {
		if got := rb.text("#action-" + name); !strings.Contains(got, "unavailable: missing "+perm) {
			t.Errorf("%s for a read-only key: %q", name, got)
		}
	}
	// And the service refuses the action even if the form is posted anyway.
	c := e.newClient(t)
	token := c.signIn(reader.Secret)
	p := c.post("/portal/payins/"+refundPayin+"/refund", url.Values{"csrf_token": {token}, "idempotency_key": {"k-reader"}, "reason": {"DUPLICATE"}})
	if p.status != http.StatusForbidden || !strings.Contains(p.text(), "missing permission refund:create") {
		t.Errorf("refund by a read-only key: status %d:\n%s", p.status, p.text())
	}
	// Without the CSRF token, nothing happens.
	admin := e.newClient(t)
	admin.signIn(e.admin.Secret)
	p = admin.post("/portal/payins/"+refundPayin+"/refund", url.Values{"idempotency_key": {"k-nocsrf"}, "reason": {"DUPLICATE"}})
	if p.status != http.StatusForbidden || !strings.Contains(p.text(), "csrf_token") {
		t.Errorf("refund without csrf_token: status %d:\n%s", p.status, p.text())
	}
	var refunds int
	e.store.DB().QueryRow(`SELECT COUNT(*) FROM refunds WHERE payin_id = $1`, refundPayin).Scan(&refunds)
	if refunds != 1 {
		t.Errorf("%d refunds of %s, want only the one made in the browser", refunds, refundPayin)
	}

	// Screenshots of the new pages at desktop and phone widths.
	dir := os.Getenv("IVRPAY_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "portal-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, fresh := e.chargedConfig(t, 4500, ivrpay.ProcessingModeAuthorize)
	shots := []struct{ name, path, wait string }{
		{"payin-configs", "/portal/configs", "#configs-table"},
		{"payin-config-detail", "/portal/configs/payin/" + authCfg, "#config-payin"},
		{"payin-actions", "/portal/payins/" + fresh, "#capture-button"},
		{"payin-refunded", "/portal/payins/" + refundPayin, "#payin-refunds"},
	}
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		b.do(chromedp.EmulateViewport(size.width, size.height, opts...))
		for _, s := range shots {
			b.open(s.path, s.wait)
			if w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)); err != nil || w > size.width {
				t.Errorf("%s at %s: page is %d px wide in a %d px viewport (%v)", s.name, size.name, w, size.width, err)
			}
			ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil || !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") {
				t.Fatalf("screenshot %s: %v", s.name, err)
			}
			path := filepath.Join(dir, "portal-"+s.name+"-"+size.name+".png")
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
		}
	}
}
