package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/twilio"
)

// chromiumPath is Debian's chromium; the tests never let a tool download a browser.
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium tab driven by chromedp.
type browser struct {
	t   *testing.T
	ctx context.Context
	e   *env
}

// newBrowser starts a fresh headless Chromium (its own user data directory).
// Without chromium the test is skipped, except under CI=true, where it fails.
func newBrowser(t *testing.T, e *env) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (CI=true): install it with apt-get install chromium", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install chromium to run the browser tests", chromiumPath)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser; it must not carry a timeout of its own.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, e: e}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("browser at %s: %v\npage text:\n%s", loc, err, body)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

func (b *browser) open(path string, waitFor string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

// selectOption picks an option the way a user does, so the change event fires.
func (b *browser) selectOption(sel, value string) {
	b.t.Helper()
	js := `(function(){var el=document.querySelector(` + jsString(sel) + `);el.value=` + jsString(value) +
		`;el.dispatchEvent(new Event('change',{bubbles:true}));return el.value;})()`
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil || got != value {
		b.t.Fatalf("select %s = %s: got %q, %v", sel, value, got, err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (b *browser) signIn(secret string) {
	b.t.Helper()
	b.open("/portal/signin", "#api_key")
	b.do(chromedp.SendKeys(chromedp.CSS("#api_key"), secret), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("nav.nav")))
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return buf.String()
}

// TestPortalEndToEnd walks the guide in a real browser: sign in with the
// admin key, create an "IVR: process payins" key for one merchant, create a
// payin config, run the test call with the new key, find the payin as an IVR
// payin, and sign out. The browser reaches two portal servers through a
// round-robin proxy (setupShared: nothing shared but the database), so its
// session and forms must work on both.
func TestPortalEndToEnd(t *testing.T) {
	t.Parallel()
	e, _, pages := setupShared(t, sqlstore.EngineSQLite)
	b := newBrowser(t, e)

	b.signIn(e.admin.Secret)
	if !strings.Contains(b.text(".main"), "What this key can do") {
		t.Fatalf("home page: %s", b.text(".main"))
	}

	// An IVR key for payins, constrained to the merchant.
	b.open("/portal/keys", "#create-key")
	b.do(chromedp.Click(chromedp.CSS(`input[name=preset][value=payins]`)))
	b.selectOption("#merchant_id", e.merchant.ID)
	// The Advanced editor follows the choices (its script).
	b.do(chromedp.Click(chromedp.CSS("#advanced > summary")), chromedp.WaitVisible(chromedp.CSS("#statements")))
	want := `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + e.platform.ID +
		`"},"merchant":{"merchant_id":"` + e.merchant.ID + `"}}}]`
	if got := compactJSON(t, b.value("#statements")); got != want {
		t.Errorf("the Advanced editor shows %s, want %s", got, want)
	}
	b.do(chromedp.Click(chromedp.CSS("#create-preset")), chromedp.WaitVisible(chromedp.CSS("#statements-json")))
	if got := compactJSON(t, b.text("#statements-json")); got != want {
		t.Errorf("the created key's statements are %s, want exactly the guide's shape %s", got, want)
	}
	secret := b.value("#secret")
	if !strings.HasPrefix(secret, "sbx_apikey_") || len(secret) != len("sbx_apikey_")+64 {
		t.Fatalf("shown secret %q", secret)
	}
	b.do(chromedp.Click(chromedp.CSS("#copy-secret")))

	// A payin config for testing.
	b.open("/portal/configs", "#create-payin-config")
	b.selectOption("#pc-merchant", e.merchant.ID)
	b.do(chromedp.SendKeys(chromedp.CSS("#pc-amount"), "10.00"), chromedp.Click(chromedp.CSS("#create-payin-config-button")),
		chromedp.WaitVisible(chromedp.CSS("#config-id")))
	cfgID := strings.TrimSpace(b.text("#config-id"))
	if amount := b.text("#config-amount"); amount != "$10.00" {
		t.Errorf("config amount shown %q", amount)
	}

	// IVR setup: the connector fields, the TwiML, and the test call.
	b.do(chromedp.Click(chromedp.CSS("#open-ivr")), chromedp.WaitVisible(chromedp.CSS("#test-call")))
	if got := b.text("#f-endpoint"); got != e.srv.URL+"/vendor/twilio/pay_generic" {
		t.Errorf("Endpoint URL %q", got)
	}
	if twiml := b.text("#twiml"); !strings.Contains(twiml, `chargeAmount="10.00"`) || !strings.Contains(twiml, cfgID) {
		t.Errorf("TwiML:\n%s", twiml)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#tc-api-key"), secret), chromedp.Click(chromedp.CSS("#run-test-call")),
		chromedp.WaitVisible(chromedp.CSS("#call-result")))
	if got := b.text("#call-result"); got != twilio.ResultSuccess {
		t.Fatalf("test call result %q:\n%s", got, b.text("#test-call-section"))
	}
	fields := b.text("#callback-fields")
	if !strings.Contains(fields, "xxxxxxxxxxxx1111") || strings.Contains(fields, "4111111111111111") {
		t.Errorf("callback fields:\n%s", fields)
	}
	payinID := strings.TrimSpace(b.text("#call-payin"))
	if v := b.value("#tc-api-key"); v != "" {
		t.Error("the test call form kept the pasted key")
	}

	// The payin, listed as an IVR payin.
	b.open("/portal/payins", "#payin-filters")
	b.selectOption("#f-source", ivrpay.PayinSourceIVR)
	// The filtered page replaces one that already shows the table: wait for its URL.
	b.clickAndWaitFor("#payin-filters button", "source=IVR")
	b.do(chromedp.WaitVisible(chromedp.CSS("#payins-table")))
	table := b.text("#payins-table")
	// The list shows an id's prefix and end; its link holds the whole id (clicked below).
	if !strings.Contains(table, "sbx_pyi_…"+payinID[len(payinID)-6:]) || !strings.Contains(table, "IVR") || !strings.Contains(table, "$10.00") {
		t.Errorf("payins list:\n%s", table)
	}
	b.do(chromedp.Click(chromedp.CSS(`#payins-table a[href="/portal/payins/`+payinID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#payin-source")))
	if got := b.text("#payin-source"); got != "IVR" {
		t.Errorf("payin source %q", got)
	}
	if got := b.text("#payin-card"); !strings.Contains(got, "VISA ···· 1111") {
		t.Errorf("payin card %q", got)
	}

	// Sign out: the session ends.
	b.do(chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#api_key")))
	if !strings.HasSuffix(b.location(), "/portal/signin") {
		t.Errorf("after sign-out at %s", b.location())
	}
	b.open("/portal/keys", "#api_key")
	if pages[0].Load() < 5 || pages[1].Load() < 5 {
		t.Errorf("the two servers served %d and %d pages; the proxy did not spread them", pages[0].Load(), pages[1].Load())
	}
}

// checkTableFits: at desktop width a list (the payins, the chargebacks)
// shows every column without scrolling sideways (its table is no wider than
// the box that would scroll it), and a row is one line tall, two when a
// code under its status (a payin's refusal, a chargeback's reason) needs a
// second; it shows at least minRows rows.
func checkTableFits(t *testing.T, b *browser, table string, minRows int) {
	t.Helper()
	type fit struct {
		Table, Box int64
		Rows       []struct {
			Height, Line float64
			TwoLines     bool
		}
	}
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[fit](`(function(){
		var table = document.querySelector(`+jsString(table)+`), box = table.parentElement;
		var rows = Array.from(table.tBodies[0].rows).map(function(r){
			var cell = r.cells[0], style = getComputedStyle(cell);
			return {Height: r.getBoundingClientRect().height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom),
				Line: parseFloat(style.lineHeight), TwoLines: r.querySelector('.refusal') !== null};
		});
		return {Table: table.scrollWidth, Box: box.clientWidth, Rows: rows};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Table > got.Box {
		t.Errorf("%s is %d px wide in a %d px box: it scrolls sideways at desktop width", table, got.Table, got.Box)
	}
	if len(got.Rows) < minRows {
		t.Fatalf("%s shows %d rows, want at least %d", table, len(got.Rows), minRows)
	}
	for i, r := range got.Rows {
		lines := 1.0
		if r.TwoLines {
			lines = 2
		}
		// A line and a half of slack: a badge is a little taller than text.
		if r.Height > (lines+0.5)*r.Line {
			t.Errorf("%s row %d is %.0f px tall, over %v lines of %.0f px", table, i+1, r.Height, lines, r.Line)
		}
	}
}

// TestPortalScreenshots saves PNGs of the main pages at desktop and phone
// widths into $IVRPAY_ARTIFACTS_DIR (or a temporary directory).
func TestPortalScreenshots(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := newBrowser(t, e)
	dir := os.Getenv("IVRPAY_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "portal-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Data to show: configs charged over IVR, declines (the longest brand and
	// refusal code among them), and a stored card charged over the API.
	ctx := ivrpay.NewContextWithPrincipal(context.Background(), e.admin)
	var payinID, cfgID string
	for i, c := range []struct {
		amount   int64
		pan, cvv string
	}{{2500, "4111111111111111", "123"}, {4200, "4000000000000002", "123"}, {1999, "5555555555554444", "123"},
		{5102, "378282246310005", "1234"}} {
		cfg, err := e.store.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: e.merchant.ID, IdempotencyKey: "shot-" + string(rune('a'+i)),
			Amount: json.Number(strconv.FormatInt(c.amount, 10)), CurrencyCode: "USD", Metadata: json.RawMessage(`{"integration":"twilio_ivr","order":"A-1001"}`)})
		if err != nil {
			t.Fatal(err)
		}
		pay, err := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_sandbox", AmountCents: c.amount, PayinConfigID: cfg.ID})
		if err != nil {
			t.Fatal(err)
		}
		sim, err := twilio.Simulate(context.Background(), twilio.SimulateOptions{Endpoint: e.srv.URL + "/vendor/twilio/pay_generic",
			APIKey: e.ivrKey.Secret, Pay: pay, Client: e.srv.Client(),
			Caller: twilio.CallerInput{CardNumber: c.pan, Expiry: "12/39", CVV: c.cvv, PostalCode: "94107"}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			payinID = sim.Callback.Get("PayConnector_payin_id")
		}
		cfgID = cfg.ID
	}
	if payinID == "" {
		t.Fatal("no payin made")
	}
	api := &httpapi.Client{BaseURL: e.srv.URL, APIKey: e.admin.Secret, HTTP: e.srv.Client()}
	first, err := api.GetPayin(ctx, payinID)
	if err != nil {
		t.Fatal(err)
	}
	storedCfg, err := api.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: e.merchant.ID, IdempotencyKey: "shot-stored",
		Amount: "3100", CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChargePaymentMethod(ctx, string(first.PaymentMethodID), storedCfg.ID); err != nil {
		t.Fatal(err)
	}

	// A dispute of the first payin, awaiting the merchant's answer.
	respondBy := time.Now().UTC().Add(10 * 24 * time.Hour).Truncate(time.Hour)
	cb := e.dispute(t, payinID, "du_shot_1", ivrpay.ChargebackStatusDisputeActionRequired, &respondBy, "https://dashboard.example/disputes/du_shot_1")

	shots := []struct{ name, path, wait string }{
		{"keys", "/portal/keys", "#create-key"},
		{"ivr-setup", "/portal/ivr?config=" + cfgID, "#test-call"},
		{"payins", "/portal/payins", "#payins-table"},
		{"payin-detail", "/portal/payins/" + payinID, "#payin-source"},
		{"chargebacks", "/portal/chargebacks", "#chargebacks-table"},
		{"webhooks", "/portal/webhooks", "#create-webhook"},
	}
	sizes := []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}

	var paths []string
	shoot := func(name, size string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s is not a PNG", name)
		}
		path := filepath.Join(dir, "portal-"+name+"-"+size+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	for _, size := range sizes {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		b.do(chromedp.EmulateViewport(size.width, size.height, opts...))
		b.open("/portal/signin", "#api_key")
		shoot("signin", size.name)
		b.signIn(e.admin.Secret)
		for _, s := range shots {
			b.open(s.path, s.wait)
			// The page must fit the viewport's width: no sideways scrolling of the page itself.
			if w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)); err != nil || w > size.width {
				t.Errorf("%s at %s: page is %d px wide in a %d px viewport (%v)", s.name, size.name, w, size.width, err)
			}
			if s.name == "payins" && !size.mobile {
				checkTableFits(t, b, "#payins-table", 5)
			}
			if s.name == "chargebacks" && !size.mobile {
				checkTableFits(t, b, "#chargebacks-table", 1)
			}
			if s.name == "payin-detail" {
				if got := b.text("#payin-processor"); !strings.Contains(got, "sandbox") || !strings.Contains(got, "reference") {
					t.Errorf("the payin page's processor reads %q, want its account, kind and reference", got)
				}
				if got := b.text("#chargeback-" + cb.ID); !strings.Contains(got, "DISPUTE_ACTION_REQUIRED") || !strings.Contains(got, "respond by") {
					t.Errorf("the payin page's chargeback badge reads %q, want its status and deadline", got)
				}
			}
			shoot(s.name, size.name)
		}
		b.do(chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#api_key")))
	}
	for _, p := range paths {
		t.Logf("screenshot: %s", p)
	}
}
