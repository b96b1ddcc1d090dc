package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// deployment is an ivrpay deployment driven as an operator does: the admin
// CLI on its database, and `ivrpay serve` in this process.
type deployment struct {
	t                 *testing.T
	mode, db, keyFile string
	base              string
	// logs is what serve and the admin commands wrote to stderr.
	logs paymentstest.LockedBuffer
}

func newDeployment(t *testing.T, mode string) *deployment {
	t.Helper()
	dir := t.TempDir()
	d := &deployment{t: t, mode: mode, db: filepath.Join(dir, "ivrpay.db"), keyFile: filepath.Join(dir, "vault.key")}
	paymentstest.WriteVaultKey(t, d.keyFile)
	return d
}

// admin runs `ivrpay admin` on the deployment's database and returns its exit
// code, its JSON output decoded (when there is one) and its stderr.
func (d *deployment) admin(args ...string) (int, any, string) {
	d.t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"admin", "--mode", d.mode, "--db", d.db, "--vault-key-file", d.keyFile}, args...), &out, io.MultiWriter(&errOut, &d.logs))
	d.logs.Write(out.Bytes())
	var v any
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			d.t.Fatalf("admin %v printed no JSON: %s", args, out.String())
		}
	}
	return code, v, errOut.String()
}

// withProcessorAccount adds a Stripe account (pointed nowhere) to the
// production database db, which production needs to start at all.
func withProcessorAccount(t *testing.T, db, keyFile string) {
	t.Helper()
	d := &deployment{t: t, mode: string(ivrpay.ModeProduction), db: db, keyFile: keyFile}
	secret := filepath.Join(t.TempDir(), "stripe.key")
	if err := os.WriteFile(secret, []byte("sk_live_ivrpaytests"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.mustAdmin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secret, "--api-base", "https://127.0.0.1:9")
}

func (d *deployment) mustAdmin(args ...string) map[string]any {
	d.t.Helper()
	code, v, stderr := d.admin(args...)
	if code != 0 {
		d.t.Fatalf("admin %v: exit %d: %s", args, code, stderr)
	}
	m, _ := v.(map[string]any)
	return m
}

func (d *deployment) serveArgs(extra ...string) []string {
	args := []string{"--addr", "127.0.0.1:0", "--mode", d.mode, "--db", d.db, "--vault-key-file", d.keyFile, "--sandbox-settle-after", "200ms"}
	if d.mode == string(ivrpay.ModeProduction) {
		args = append(args, "--base-url", "https://pay.example.com", "--behind-proxy")
	}
	return append(args, extra...)
}

// serve starts `ivrpay serve` and waits until it listens; it stops at cleanup.
func (d *deployment) serve() {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var stderr paymentstest.LockedBuffer
	go func() { exited <- runServe(ctx, d.serveArgs(), io.Discard, io.MultiWriter(&stderr, &d.logs)) }()
	d.t.Cleanup(func() { cancel(); <-exited })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listeningLine.FindStringSubmatch(stderr.String()); m != nil {
			d.base = "http://" + m[1]
			return
		}
		select {
		case code := <-exited:
			d.t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("serve did not listen:\n%s", stderr.String())
		}
	}
}

// mustAPI calls the REST API with key and returns the answer's data.
func (d *deployment) mustAPI(method, path, key string, body any) map[string]any {
	d.t.Helper()
	var data map[string]any
	if err := (&httpapi.Client{BaseURL: d.base, APIKey: key}).Do(context.Background(), method, path, body, &data); err != nil {
		d.t.Fatal(err)
	}
	return data
}

// charge posts a connector charge of amount on cfg and returns the answer.
func (d *deployment) charge(ivrKey, cfg string, amount int64) connectorAnswer {
	d.t.Helper()
	srv := &whServer{&serveProcess{baseURL: d.base}}
	return srv.connector(d.t, ivrKey, chargeBody(cfg, fmt.Sprintf("CA%d", time.Now().UnixNano()), ivrpay.FormatDollars(amount)))
}

// processorEvent hands e to the deployment's inbox as its processor's
// verified event would arrive (through a service on the same database: the
// serving process and this one share only the database), and returns the
// payin's status afterwards.
func (d *deployment) processorEvent(e ivrpay.ProcessorEvent, payinID string) string {
	d.t.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, d.db, sqlstore.Options{Mode: ivrpay.Mode(d.mode)})
	if err != nil {
		d.t.Fatal(err)
	}
	defer s.Close()
	if err := payments.New(s, nil, nil, payments.Options{Mode: ivrpay.Mode(d.mode)}).ReceiveProcessorEvent(ctx, e); err != nil {
		d.t.Fatalf("receive %s: %v", e.Type, err)
	}
	p, err := s.LoadPayin(ctx, payinID)
	if err != nil {
		d.t.Fatal(err)
	}
	return p.Status
}

// eventsListed checks `ivrpay admin events list` on a deployment whose
// Adyen payin psp got AUTHORISATION and CAPTURE events and whose payin
// stale was captured with no CAPTURE event since: the events are listed
// (no secret among them); an unmatched one only with --unmatched; the
// payin with --stale once it has been PROCESSING for over a day.
func (d *deployment) eventsListed(stale, psp string) {
	t := d.t
	t.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, d.db, sqlstore.Options{Mode: ivrpay.Mode(d.mode)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stranger := ivrpay.ProcessorEvent{Account: "adyen-test", Kind: "adyen", ID: "ZX000000000000:REFUND:true", Type: "REFUND",
		Effect: ivrpay.EffectRefundSucceeded, RefundReference: "ZX000000000000"}
	at := time.Now()
	if _, err := s.InsertProcessorEvent(ctx, stranger, at, 0); err != nil {
		t.Fatal(err)
	}
	// Stored due at once (no hold): its claim is at.
	if err := s.FinishProcessorEvent(ctx, ivrpay.ProcessorEventDone{Account: stranger.Account, EventID: stranger.ID, Claim: at,
		Status: ivrpay.ProcessorEventUnmatched, Note: "no refund matches", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) []map[string]any {
		t.Helper()
		code, v, stderr := d.admin(append([]string{"events", "list"}, args...)...)
		if code != 0 {
			t.Fatalf("events list %v: exit %d: %s", args, code, stderr)
		}
		out, _ := json.Marshal(v)
		if strings.Contains(string(out), "AQEyhmfx") || strings.Contains(string(out), "4111111111111111") {
			t.Fatalf("events list %v shows a secret or a card: %s", args, out)
		}
		var rows []map[string]any
		json.Unmarshal(out, &rows)
		return rows
	}
	statuses := map[string]any{}
	for _, e := range list() {
		statuses[e["event_id"].(string)] = e["status"]
	}
	if statuses[psp+":AUTHORISATION:true"] != ivrpay.ProcessorEventNoChange || statuses[psp+":CAPTURE:true"] != ivrpay.ProcessorEventApplied ||
		statuses[stranger.ID] != ivrpay.ProcessorEventUnmatched {
		t.Fatalf("events list: %v", statuses)
	}
	if rows := list("--unmatched"); len(rows) != 1 || rows[0]["event_id"] != stranger.ID || rows[0]["note"] != "no refund matches" {
		t.Fatalf("events list --unmatched: %v", rows)
	}
	if rows := list("--stale"); len(rows) != 0 {
		t.Fatalf("events list --stale lists %v within a day", rows)
	}
	if _, err := s.DB().Exec(`UPDATE payins SET updated_at = $2 WHERE id = $1`, stale, ivrpay.FormatTime(time.Now().Add(-25*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if rows := list("--stale"); len(rows) != 1 || rows[0]["id"] != stale || rows[0]["kind"] != "adyen" || rows[0]["status"] != ivrpay.PayinStatusProcessing {
		t.Fatalf("events list --stale: %v, want payin %s", rows, stale)
	}
	if code, _, stderr := d.admin("events", "list", "--stale", "--unmatched"); code != 2 || !strings.Contains(stderr, "one of them") {
		t.Fatalf("events list --stale --unmatched: exit %d, %q", code, stderr)
	}
}

// stripeStates turns stripe-mock's canned answers into what a real Stripe
// answers (stripe-mock checked the request against Stripe's OpenAPI
// already): a confirmed PaymentIntent succeeded or requires_capture, a
// captured one succeeded, a cancelled one canceled.
func stripeStates(r *stripetest.Request, body []byte) []byte {
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	amount := func(field string) float64 {
		var n float64
		fmt.Sscan(r.Form.Get(field), &n)
		return n
	}
	switch {
	case r.Path == "/v1/payment_intents" && r.Method == "POST":
		obj["amount"] = amount("amount")
		if r.Form.Get("capture_method") == "manual" {
			obj["status"], obj["amount_capturable"], obj["amount_received"] = "requires_capture", amount("amount"), 0
		} else {
			obj["status"], obj["amount_capturable"], obj["amount_received"] = "succeeded", 0, amount("amount")
		}
	case strings.HasSuffix(r.Path, "/capture"):
		obj["status"], obj["amount_received"] = "succeeded", amount("amount_to_capture")
	case strings.HasSuffix(r.Path, "/cancel"):
		obj["status"] = "canceled"
	case r.Path == "/v1/refunds":
		obj["status"], obj["amount"] = "succeeded", amount("amount")
	}
	out, _ := json.Marshal(obj)
	return out
}

// TestProductionWithStripe is the operator's day one on a production
// deployment whose Stripe account points at stripe-mock: it refuses to start
// without a processor account, refuses test keys, keeps the secret out of
// the database and every output, refuses payins for merchants no account
// serves, and then a connector charge, a capture, a void and a partial
// refund each reach Stripe with the MOTO flag and an idempotency key.
func TestProductionWithStripe(t *testing.T) {
	t.Parallel()
	// Production sends to https only: the recorder serves TLS, trusted through
	// SSL_CERT_FILE (TestMain).
	rec := stripetest.NewTLSRecorder(t, stripetest.StartMock(t), stripeStates)
	d := newDeployment(t, string(ivrpay.ModeProduction))
	p := d.mustAdmin("platform", "create", "--name", "Acme", "--enable-ivr")
	platformID, admin := p["platform_id"].(string), p["api_key"].(string)

	// No processor account: production refuses to start, in one line.
	var stderr bytes.Buffer
	if code := runServe(context.Background(), d.serveArgs(), io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no processor account") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Fatalf("serve without a processor account: exit %d, %q", code, stderr.String())
	}

	secretFile := filepath.Join(t.TempDir(), "stripe.key")
	const liveKey = "sk_live_51IvrpayDistinctiveSecret0123456789"
	for _, tc := range []struct {
		name, secret, want string
	}{
		{"test key in production", "sk_test_51Ivrpay", "test key"},
		{"not a Stripe key", "hello", "not a Stripe secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(secretFile, []byte(tc.secret), 0o600)
			code, _, errOut := d.admin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", rec.URL)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a refusal saying %q", code, errOut, tc.want)
			}
		})
	}
	if err := os.WriteFile(secretFile, []byte(liveKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	added := d.mustAdmin("processor", "add", "--name", "stripe-main", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", rec.URL)
	if added["name"] != "stripe-main" || added["kind"] != "stripe" {
		t.Fatalf("processor add printed %v", added)
	}
	_, list, _ := d.admin("processor", "list")
	if out, _ := json.Marshal(list); strings.Contains(string(out), "sk_live") || !strings.Contains(string(out), "stripe-main") {
		t.Fatalf("processor list: %s", out)
	}

	d.serve()
	m := d.mustAPI("POST", "/v1/merchants", admin, map[string]any{"name": "Corner Bakery"})
	merchant := m["merchant_id"].(string)
	d.mustAdmin("merchant", "activate", merchant)
	ivrKey := d.mustAPI("POST", "/v1/api_keys", admin, ivrKeyRequest(platformID))["api_key"].(string)
	config := func(amount int64, mode string) string {
		return d.mustAPI("POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": fmt.Sprint("k", time.Now().UnixNano()),
			"amount": amount, "currency_code": "USD", "processing_mode": mode})["payin_config_id"].(string)
	}

	// No account routes the merchant yet: refused before any card data leaves.
	if a := d.charge(ivrKey, config(1000, "AUTHORIZE_AND_CAPTURE"), 1000); a.ErrorCode == nil || *a.ErrorCode != ivrpay.ConnProcessorNotConfigured {
		t.Fatalf("charge for a merchant without a processor account: %+v", a)
	}
	if reqs := rec.Take(); len(reqs) != 0 {
		t.Fatalf("%d requests reached Stripe for a merchant without an account", len(reqs))
	}
	d.mustAdmin("platform", "set-processor", platformID, "stripe-main")

	payin := func(a connectorAnswer) map[string]any {
		t.Helper()
		if a.ChargeID == nil {
			p := d.mustAPI("GET", "/v1/payins/"+a.Parameters["payin_id"], admin, nil)
			t.Fatalf("charge refused: %+v: %v %v", a, p["refusal_code"], p["refusal_desc"])
		}
		p := d.mustAPI("GET", "/v1/payins/"+*a.ChargeID, admin, nil)
		proc := p["processor"].(map[string]any)
		if proc["kind"] != "stripe" || proc["account"] != "stripe-main" || !strings.HasPrefix(fmt.Sprint(proc["reference"]), "pi_") {
			t.Fatalf("payin processor %v", proc)
		}
		return p
	}
	// Capture of an AUTHORIZE payin.
	authorized := payin(d.charge(ivrKey, config(1500, "AUTHORIZE"), 1500))
	if authorized["status"] != ivrpay.PayinStatusAuthorized {
		t.Fatalf("AUTHORIZE payin is %v", authorized["status"])
	}
	d.mustAPI("POST", "/v1/payins/"+authorized["payin_id"].(string)+"/capture", admin, map[string]any{})
	// Void of another.
	toVoid := payin(d.charge(ivrKey, config(1200, "AUTHORIZE"), 1200))
	d.mustAPI("POST", "/v1/payins/"+toVoid["payin_id"].(string)+"/void_or_refund", admin, map[string]any{"idempotency_key": "void-1", "reason": "DUPLICATE"})
	// Partial refund of a captured payin, once Stripe confirmed it: no timer
	// settles a real account's payin, however long --sandbox-settle-after
	// (200 ms here) has passed.
	captured := payin(d.charge(ivrKey, config(2000, "AUTHORIZE_AND_CAPTURE"), 2000))
	time.Sleep(time.Second)
	if status := d.mustAPI("GET", "/v1/payins/"+captured["payin_id"].(string), admin, nil)["status"]; status != ivrpay.PayinStatusProcessing {
		t.Fatalf("a Stripe payin is %v without an event, want PROCESSING", status)
	}
	if status := d.processorEvent(ivrpay.ProcessorEvent{Account: "stripe-main", Kind: "stripe", ID: "evt_captured_1", Type: "payment_intent.succeeded",
		Effect: ivrpay.EffectPaymentCaptured, PaymentReference: captured["processor"].(map[string]any)["reference"].(string), Amount: 2000},
		captured["payin_id"].(string)); status != ivrpay.PayinStatusSucceeded {
		t.Fatalf("after payment_intent.succeeded the payin is %s", status)
	}
	refund := d.mustAPI("POST", "/v1/payins/"+captured["payin_id"].(string)+"/void_or_refund", admin, map[string]any{"idempotency_key": "refund-1",
		"reason": "REQUESTED_BY_CUSTOMER", "amount": 500})
	if refund["type"] != ivrpay.VoidOrRefundTypeRefund || refund["amount"] != float64(500) {
		t.Fatalf("refund %v", refund)
	}

	reqs := rec.Take()
	var intents, captures, cancels, refunds int
	for _, r := range reqs {
		if r.Status != 200 {
			t.Errorf("stripe-mock refused %s %s (%d): %s", r.Method, r.Path, r.Status, r.Body)
		}
		if r.Method == "POST" && r.Key == "" {
			t.Errorf("%s %s without an Idempotency-Key", r.Method, r.Path)
		}
		if !r.LiveKey {
			t.Errorf("%s %s did not carry the account's live key", r.Method, r.Path)
		}
		switch {
		case r.Path == "/v1/payment_intents":
			intents++
			if r.Form.Get("payment_method_options[card][moto]") != "true" || r.Form.Get("confirm") != "true" {
				t.Errorf("PaymentIntent without the MOTO flag or confirm: %v", r.Form)
			}
		case strings.HasSuffix(r.Path, "/capture"):
			captures++
		case strings.HasSuffix(r.Path, "/cancel"):
			cancels++
		case r.Path == "/v1/refunds":
			refunds++
			if r.Form.Get("amount") != "500" {
				t.Errorf("refund amount %q, want 500", r.Form.Get("amount"))
			}
		}
	}
	if intents != 3 || captures != 1 || cancels != 1 || refunds != 1 {
		t.Fatalf("Stripe saw %d payment intents, %d captures, %d cancels, %d refunds; want 3, 1, 1, 1", intents, captures, cancels, refunds)
	}

	// The secret is nowhere in the database files, nor in anything the
	// commands and the server printed or logged.
	for _, f := range []string{d.db, d.db + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(liveKey)) {
			t.Fatalf("%s holds the Stripe secret in clear", f)
		}
	}
	if logs := d.logs.String(); strings.Contains(logs, liveKey) || strings.Contains(logs, "DistinctiveSecret") || !strings.Contains(logs, "listening") {
		t.Fatalf("the logs hold the Stripe secret (or were not captured): %.300s", logs)
	}
	if code, _, errOut := d.admin("processor", "remove", "stripe-main"); code != 1 || !strings.Contains(errOut, "used by") {
		t.Fatalf("removing a used account: exit %d %q", code, errOut)
	}
}

// adyenDouble answers Adyen's Checkout API v71 as its documentation shows
// (Authorised with a pspReference, modifications received) and records each
// request's path, headers and body.
type adyenDouble struct {
	mu   sync.Mutex
	reqs []adyenRequest
	n    int
}

type adyenRequest struct {
	Path, APIKey, IdempotencyKey string
	Body                         map[string]any
}

// listeningLine finds the listening address in the text (sandbox) or JSON
// (production) log.
var listeningLine = regexp.MustCompile(`msg"?[=:]"?listening"?,?\s*"?addr"?[=:]"?([0-9.]+:[0-9]+)`)

var adyenModification = regexp.MustCompile(`^/payments/([^/]+)/(captures|cancels|refunds)$`)

func (a *adyenDouble) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	a.mu.Lock()
	a.n++
	psp := fmt.Sprintf("AB%014d", a.n)
	a.reqs = append(a.reqs, adyenRequest{Path: r.URL.Path, APIKey: r.Header.Get("X-API-Key"), IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body})
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if m := adyenModification.FindStringSubmatch(strings.TrimPrefix(r.URL.Path, "/v71")); m != nil {
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"merchantAccount": body["merchantAccount"], "paymentPspReference": m[1],
			"pspReference": psp, "reference": body["reference"], "status": "received"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"pspReference": psp, "resultCode": "Authorised", "merchantReference": body["reference"],
		"additionalData": map[string]any{"authCode": "081234", "avsResult": "7 Both postal code and address match", "cvcResult": "1 Matches",
			"networkTxReference": "999888777666555"}})
}

// TestSandboxMerchantWithAdyen routes a sandbox merchant to an Adyen test
// account (a local double of Adyen's documented answers): the charge, a
// capture, a void and a refund reach Adyen with the API key, an
// idempotency key and shopperInteraction Moto, and the payin shows Adyen's
// pspReference.
func TestSandboxMerchantWithAdyen(t *testing.T) {
	t.Parallel()
	double := &adyenDouble{}
	srv := httptest.NewServer(double)
	t.Cleanup(srv.Close)
	d := newDeployment(t, string(ivrpay.ModeSandbox))
	p := d.mustAdmin("platform", "create", "--name", "Acme", "--enable-ivr")
	platformID, admin := p["platform_id"].(string), p["api_key"].(string)
	keyFile := filepath.Join(t.TempDir(), "adyen.key")
	os.WriteFile(keyFile, []byte("AQEyhmfxDistinctiveAdyenKey"), 0o600)
	d.mustAdmin("processor", "add", "--name", "adyen-test", "--kind", "adyen", "--api-key-file", keyFile,
		"--merchant-account", "AcmeMOTO", "--api-base", srv.URL+"/v71")
	d.serve()
	merchant := d.mustAPI("POST", "/v1/merchants", admin, map[string]any{"name": "Corner Bakery"})["merchant_id"].(string)
	d.mustAdmin("merchant", "set-processor", merchant, "adyen-test", "--account-ref", "BakeryMOTO")
	ivrKey := d.mustAPI("POST", "/v1/api_keys", admin, ivrKeyRequest(platformID))["api_key"].(string)
	config := func(mode string) string {
		return d.mustAPI("POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": fmt.Sprint("k", time.Now().UnixNano()),
			"amount": 1000, "currency_code": "USD", "processing_mode": mode})["payin_config_id"].(string)
	}
	charge := func(mode string) string {
		a := d.charge(ivrKey, config(mode), 1000)
		if a.ChargeID == nil {
			t.Fatalf("charge: %+v", a)
		}
		proc := d.mustAPI("GET", "/v1/payins/"+*a.ChargeID, admin, nil)["processor"].(map[string]any)
		if proc["kind"] != "adyen" || !strings.HasPrefix(fmt.Sprint(proc["reference"]), "AB") || proc["network_transaction_id"] != "999888777666555" {
			t.Fatalf("payin processor %v", proc)
		}
		return *a.ChargeID
	}
	captured := charge("AUTHORIZE")
	d.mustAPI("POST", "/v1/payins/"+captured+"/capture", admin, map[string]any{})
	d.mustAPI("POST", "/v1/payins/"+charge("AUTHORIZE")+"/void_or_refund", admin, map[string]any{"idempotency_key": "v1", "reason": "DUPLICATE"})
	settled := charge("AUTHORIZE_AND_CAPTURE")
	// Adyen's CAPTURE notification settles it, not --sandbox-settle-after.
	time.Sleep(time.Second)
	psp := d.mustAPI("GET", "/v1/payins/"+settled, admin, nil)["processor"].(map[string]any)["reference"].(string)
	if status := d.processorEvent(ivrpay.ProcessorEvent{Account: "adyen-test", Kind: "adyen", ID: psp + ":AUTHORISATION:true", Type: "AUTHORISATION",
		Effect: ivrpay.EffectPaymentAuthorized, PaymentReference: psp, Amount: 1000}, settled); status != ivrpay.PayinStatusProcessing {
		t.Fatalf("after AUTHORISATION the payin is %s, want PROCESSING until the capture is confirmed", status)
	}
	if status := d.processorEvent(ivrpay.ProcessorEvent{Account: "adyen-test", Kind: "adyen", ID: psp + ":CAPTURE:true", Type: "CAPTURE",
		Effect: ivrpay.EffectPaymentCaptured, PaymentReference: psp, Amount: 1000}, settled); status != ivrpay.PayinStatusSucceeded {
		t.Fatalf("after CAPTURE the payin is %s", status)
	}
	d.mustAPI("POST", "/v1/payins/"+settled+"/void_or_refund", admin, map[string]any{"idempotency_key": "r1", "reason": "REQUESTED_BY_CUSTOMER", "amount": 300})
	d.eventsListed(captured, psp)

	double.mu.Lock()
	defer double.mu.Unlock()
	seen := map[string]int{}
	for _, r := range double.reqs {
		if r.APIKey != "AQEyhmfxDistinctiveAdyenKey" || r.IdempotencyKey == "" {
			t.Errorf("%s: X-API-Key or Idempotency-Key missing", r.Path)
		}
		if r.Body["merchantAccount"] != "BakeryMOTO" {
			t.Errorf("%s: merchantAccount %v, want the merchant's BakeryMOTO", r.Path, r.Body["merchantAccount"])
		}
		kind := "payments"
		if m := adyenModification.FindStringSubmatch(strings.TrimPrefix(r.Path, "/v71")); m != nil {
			kind = m[2]
		} else if r.Body["shopperInteraction"] != "Moto" {
			t.Errorf("payment without shopperInteraction Moto: %v", r.Body["shopperInteraction"])
		}
		seen[kind]++
	}
	if seen["payments"] != 3 || seen["captures"] != 1 || seen["cancels"] != 1 || seen["refunds"] != 1 {
		t.Fatalf("Adyen saw %v; want 3 payments, 1 capture, 1 cancel, 1 refund", seen)
	}
}
