package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	twilioclient "github.com/twilio/twilio-go/client"
	twilioapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/twilio"
)

const (
	emuAccount = "AC11111111111111111111111111111111"
	emuToken   = "22222222222222222222222222222222"
)

// emulatorProcess is `ivrpay twilio-emulator` run in this process.
type emulatorProcess struct {
	url    string
	api    *twilioapi.ApiService
	stdout *paymentstest.LockedBuffer // what it prints
}

var emulatorListening = regexp.MustCompile(`listening on (http://\S+)`)

func startEmulator(t *testing.T, args ...string) *emulatorProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr = &paymentstest.LockedBuffer{}, &paymentstest.LockedBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- runTwilioEmulator(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("the emulator did not stop")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := emulatorListening.FindStringSubmatch(stdout.String()); m != nil {
			u, _ := url.Parse(m[1])
			// twilio-go, unchanged, with its transport pointed at the emulator.
			c := &twilioclient.Client{Credentials: twilioclient.NewCredentials(emuAccount, emuToken),
				HTTPClient: &http.Client{Transport: rewriteHost{u}}}
			c.SetAccountSid(emuAccount)
			return &emulatorProcess{url: m[1], api: twilioapi.NewApiServiceWithClient(c), stdout: stdout}
		}
		select {
		case code := <-exited:
			t.Fatalf("the emulator exited %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not listen:\n%s%s", stdout.String(), stderr.String())
		}
	}
}

type rewriteHost struct{ base *url.URL }

func (r rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = r.base.Scheme, r.base.Host, ""
	return http.DefaultTransport.RoundTrip(req)
}

// agentApp is the platform's status callback handler: it validates each
// request as a handler in production would, with twilio-go.
type agentApp struct {
	*httptest.Server
	mu     sync.Mutex
	events []url.Values
	forged int // requests whose signature the validator refused
}

func newAgentApp(t *testing.T, token string) *agentApp {
	t.Helper()
	a := &agentApp{}
	validator := twilioclient.NewRequestValidator(token)
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		a.mu.Lock()
		defer a.mu.Unlock()
		if !validator.ValidateBody("http://"+r.Host+r.URL.RequestURI(), body, r.Header.Get(twilio.SignatureHeader)) {
			a.forged++
			w.WriteHeader(http.StatusForbidden)
			return
		}
		a.events = append(a.events, form)
	}))
	t.Cleanup(a.Close)
	return a
}

// final waits for the callback that carries a Result.
func (a *agentApp) final(t *testing.T) url.Values {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		a.mu.Lock()
		for _, ev := range a.events {
			if ev.Get("Result") != "" {
				a.mu.Unlock()
				return ev
			}
		}
		a.mu.Unlock()
	}
	t.Fatal("no final callback within 20s")
	return nil
}

// pay runs an agent-assisted payment: the agent's twilio-go calls, the
// caller's keypad, then Status=complete.
func (e *emulatorProcess) pay(t *testing.T, callSid, statusCallback string, create *twilioapi.CreatePaymentsParams, pan, cvv string) {
	t.Helper()
	create.SetIdempotencyKey(callSid + "-create").SetStatusCallback(statusCallback)
	res, err := e.api.CreatePayments(callSid, create)
	if err != nil {
		t.Fatalf("CreatePayments: %v", err)
	}
	exp := time.Now().AddDate(2, 0, 0).Format("0106")
	steps := [][2]string{{"payment-card-number", pan}, {"expiration-date", exp}, {"security-code", cvv}, {"postal-code", "94111"}}
	if create.PostalCode != nil && !*create.PostalCode {
		steps = steps[:3]
	}
	for _, step := range steps {
		up := (&twilioapi.UpdatePaymentsParams{}).SetIdempotencyKey(callSid + step[0]).SetStatusCallback(statusCallback).SetCapture(step[0])
		if _, err := e.api.UpdatePayments(callSid, *res.Sid, up); err != nil {
			t.Fatalf("Capture %s: %v", step[0], err)
		}
		req, err := http.NewRequest("POST", e.url+"/emulator/Calls/"+callSid+"/Digits", strings.NewReader(url.Values{"Digits": {step[1] + "#"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(emuAccount, emuToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("keypad: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	up := (&twilioapi.UpdatePaymentsParams{}).SetIdempotencyKey(callSid + "-complete").SetStatusCallback(statusCallback).SetStatus("complete")
	if _, err := e.api.UpdatePayments(callSid, *res.Sid, up); err != nil {
		t.Fatalf("Status=complete: %v", err)
	}
}

// TestAgentAssistedPaymentThroughTheEmulator is the acceptance: an
// agent app on twilio-go, the emulator, and a real ivrpay serve.
func TestAgentAssistedPaymentThroughTheEmulator(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	admin, ivrKey, merchant := srv.sandboxKeys(t)
	platform := srv.bootstrap(t, "platform_id")
	connector := strings.Replace(srv.baseURL, "http://", "http://api_key:"+ivrKey+"@", 1) + httpapi.ConnectorPath
	wrongKey := strings.Replace(srv.baseURL, "http://", "http://api_key:sbx_apikey_"+strings.Repeat("0", 64)+"@", 1) + httpapi.ConnectorPath
	emu := startEmulator(t, "--account-sid", emuAccount, "--auth-token", emuToken, "--connector", "ivrpay_sandbox="+connector,
		"--connector", "wrong_key="+wrongKey)
	api := &httpapi.Client{BaseURL: srv.baseURL, APIKey: admin}
	ctx := context.Background()

	t.Run("charge", func(t *testing.T) {
		cfg, err := demoPayinConfig(ctx, api, merchant, "agent-1", 1250)
		if err != nil {
			t.Fatal(err)
		}
		app := newAgentApp(t, emuToken)
		create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("ivrpay_sandbox").SetChargeAmount(12.5).
			SetValidCardTypes(twilio.SupportedCardTypes).SetParameter(map[string]string{"payin_config_id": cfg})
		emu.pay(t, "CA00000000000000000000000000000001", app.URL+"/status", create, "4111111111111111", "123")
		final := app.final(t)
		code := final.Get("PaymentConfirmationCode")
		if final.Get("Result") != twilio.ResultSuccess || code == "" {
			t.Fatalf("final callback %v", final)
		}
		payin, err := api.GetPayin(ctx, code)
		if err != nil {
			t.Fatalf("GET /v1/payins/%s: %v", code, err)
		}
		if payin.ID != code || payin.PayinConfigID != cfg || payin.Amount != 1250 || payin.Source != "IVR" {
			t.Errorf("payin %+v", payin)
		}
		app.mu.Lock()
		defer app.mu.Unlock()
		if app.forged != 0 || len(app.events) < 5 {
			t.Errorf("%d callbacks refused by twilio-go's validator, %d accepted", app.forged, len(app.events))
		}
	})

	t.Run("tokenize", func(t *testing.T) {
		pmc, err := api.CreatePaymentMethodConfig(ctx, ivrpay.PaymentMethodConfigCreate{PlatformID: platform, IdempotencyKey: "agent-card-1"})
		if err != nil {
			t.Fatal(err)
		}
		app := newAgentApp(t, emuToken)
		create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("ivrpay_sandbox").SetTokenType("reusable").
			SetValidCardTypes(twilio.SupportedCardTypes).SetParameter(map[string]string{"payment_method_config_id": pmc.ID})
		emu.pay(t, "CA00000000000000000000000000000002", app.URL+"/status", create, "5555555555554444", "321")
		final := app.final(t)
		token := final.Get("PaymentToken")
		if final.Get("Result") != twilio.ResultSuccess || token == "" {
			t.Fatalf("final callback %v", final)
		}
		pm, err := api.GetPaymentMethod(ctx, token)
		if err != nil || pm.ID != token {
			t.Fatalf("GET /v1/payment_methods/%s: %+v %v", token, pm, err)
		}
	})

	t.Run("a connector that refuses the key is printed", func(t *testing.T) {
		cfg, err := demoPayinConfig(ctx, api, merchant, "agent-401", 700)
		if err != nil {
			t.Fatal(err)
		}
		app := newAgentApp(t, emuToken)
		create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("wrong_key").SetChargeAmount(7).
			SetParameter(map[string]string{"payin_config_id": cfg})
		emu.pay(t, "CA00000000000000000000000000000005", app.URL+"/status", create, "4111111111111111", "123")
		final := app.final(t)
		if final.Get("Result") != twilio.ResultPaymentConnectorError || final.Get("ConnectorError") != ivrpay.ConnUnauthorized {
			t.Fatalf("final callback %v", final)
		}
		line := regexp.MustCompile(`(?m)^twilio-emulator: connector wrong_key for (PK[0-9a-f]{32}): HTTP 401 error_code=UNAUTHORIZED, 1 attempt → payment-connector-error$`)
		if m := line.FindStringSubmatch(emu.stdout.String()); m == nil || m[1] != final.Get("Sid") {
			t.Fatalf("the emulator printed no line for the connector's 401 of session %s:\n%s", final.Get("Sid"), emu.stdout.String())
		}
		if strings.Contains(emu.stdout.String(), "4111111111111111") || strings.Contains(emu.stdout.String(), ivrKey) {
			t.Fatalf("the emulator printed the card or the IVR key:\n%s", emu.stdout.String())
		}
	})

	t.Run("no postal code names the Payments API's PostalCode", func(t *testing.T) {
		cfg, err := demoPayinConfig(ctx, api, merchant, "agent-postal", 800)
		if err != nil {
			t.Fatal(err)
		}
		app := newAgentApp(t, emuToken)
		create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("ivrpay_sandbox").SetChargeAmount(8).SetPostalCode(false).
			SetParameter(map[string]string{"payin_config_id": cfg})
		emu.pay(t, "CA00000000000000000000000000000006", app.URL+"/status", create, "4111111111111111", "123")
		final := app.final(t)
		if final.Get("ConnectorError") != ivrpay.ConnMissingPostalCode || !strings.Contains(final.Get("PaymentError"), "PostalCode=true") {
			t.Fatalf("final callback %v, want MISSING_POSTAL_CODE naming the PostalCode parameter", final)
		}
	})

	t.Run("a wrong auth token signs nothing the app accepts", func(t *testing.T) {
		cfg, err := demoPayinConfig(ctx, api, merchant, "agent-2", 500)
		if err != nil {
			t.Fatal(err)
		}
		app := newAgentApp(t, "33333333333333333333333333333333")
		create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("ivrpay_sandbox").SetChargeAmount(5).
			SetParameter(map[string]string{"payin_config_id": cfg})
		emu.pay(t, "CA00000000000000000000000000000003", app.URL+"/status", create, "4111111111111111", "123")
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			app.mu.Lock()
			forged, accepted := app.forged, len(app.events)
			app.mu.Unlock()
			if accepted != 0 {
				t.Fatalf("the app accepted %d callbacks signed with another token", accepted)
			}
			if forged >= 5 { // the four captures and the result
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d callbacks arrived", forged)
			}
		}
	})
}

func TestTwilioEmulatorFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "no auth token", args: []string{"--connector", "c=http://x"}, code: 2, stderr: "--auth-token"},
		{name: "no connector", args: []string{"--auth-token", "t"}, code: 2, stderr: "--connector"},
		{name: "connector without a name", args: []string{"--auth-token", "t", "--connector", "http://x"}, code: 2, stderr: "NAME=URL"},
		{name: "connector not http", args: []string{"--auth-token", "t", "--connector", "c=ftp://x"}, code: 2, stderr: "http"},
		{name: "account sid not AC", args: []string{"--auth-token", "t", "--connector", "c=http://x", "--account-sid", "XX1"}, code: 2, stderr: "AccountSid"},
		{name: "negative retries", args: []string{"--auth-token", "t", "--connector", "c=http://x", "--retries", "-1"}, code: 2, stderr: "--retries"},
		{name: "auth token twice", args: []string{"--auth-token", "t", "--auth-token-file", "f", "--connector", "c=http://x"}, code: 2, stderr: "give it once"},
		{name: "auth token file missing", args: []string{"--auth-token-file", "/nonexistent/token", "--connector", "c=http://x"}, code: 2, stderr: "--auth-token-file"},
		{name: "password of no connector", args: []string{"--auth-token", "t", "--connector", "c=http://x", "--connector-password-file", "d=f"}, code: 2, stderr: "no --connector d=URL"},
		{name: "password twice", args: []string{"--auth-token", "t", "--connector", "c=http://u:p@x", "--connector-password-file", "c=f"}, code: 2, stderr: "give it once"},
		{name: "password file not NAME=FILE", args: []string{"--auth-token", "t", "--connector", "c=http://x", "--connector-password-file", "f"}, code: 2, stderr: "NAME=FILE"},
		{name: "help", args: []string{"--help"}, code: 0, stderr: "Digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(runTwilioEmulator, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// TestTwilioEmulatorSecretsOffTheCommandLine: the auth token and a
// connector's password come from IVRPAY_* variables or from files, so that
// ps shows neither. Not parallel: it sets the environment.
func TestTwilioEmulatorSecretsOffTheCommandLine(t *testing.T) {
	srv := serveInProcess(t)
	admin, ivrKey, merchant := srv.sandboxKeys(t)
	api := &httpapi.Client{BaseURL: srv.baseURL, APIKey: admin}
	noPassword := strings.Replace(srv.baseURL, "http://", "http://api_key@", 1) + httpapi.ConnectorPath
	dir := t.TempDir()
	tokenFile, keyFile := filepath.Join(dir, "token"), filepath.Join(dir, "ivr.key")
	if err := os.WriteFile(tokenFile, []byte(emuToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(ivrKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"variables", map[string]string{"IVRPAY_AUTH_TOKEN": emuToken, "IVRPAY_CONNECTOR_PASSWORD_IVRPAY_SANDBOX": ivrKey}, nil},
		{"files", nil, []string{"--auth-token-file", tokenFile, "--connector-password-file", "ivrpay_sandbox=" + keyFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--account-sid", emuAccount, "--connector", "ivrpay_sandbox=" + noPassword}, c.args...)
			for _, a := range args {
				if strings.Contains(a, emuToken) || strings.Contains(a, ivrKey) {
					t.Fatalf("argument %q holds a secret", a)
				}
			}
			emu := startEmulator(t, args...)
			cfg, err := demoPayinConfig(context.Background(), api, merchant, "secrets-"+c.name, 900)
			if err != nil {
				t.Fatal(err)
			}
			app := newAgentApp(t, emuToken) // the callbacks are signed with the token read
			create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("ivrpay_sandbox").SetChargeAmount(9).
				SetParameter(map[string]string{"payin_config_id": cfg})
			emu.pay(t, "CA00000000000000000000000000000007", app.URL+"/status", create, "4111111111111111", "123")
			if final := app.final(t); final.Get("Result") != twilio.ResultSuccess {
				t.Fatalf("final callback %v", final)
			}
		})
	}
}

// TestTwilioEmulatorTimeoutAndRetries proves --timeout and --retries: a
// connector that never answers gets 1 + retries attempts of --timeout each.
func TestTwilioEmulatorTimeoutAndRetries(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		attempts int
	)
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client giving up
		mu.Lock()
		attempts++
		mu.Unlock()
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	emu := startEmulator(t, "--account-sid", emuAccount, "--auth-token", emuToken, "--connector", "slow="+hang.URL,
		"--timeout", "300ms", "--retries", "2")
	app := newAgentApp(t, emuToken)
	create := (&twilioapi.CreatePaymentsParams{}).SetPaymentConnector("slow").SetChargeAmount(10).SetParameter(map[string]string{"payin_config_id": "cfg_1"})
	emu.pay(t, "CA00000000000000000000000000000004", app.URL+"/status", create, "4111111111111111", "123")
	final := app.final(t)
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 || final.Get("Result") != twilio.ResultPaymentConnectorError || !strings.Contains(final.Get("PaymentError"), "300ms in 3 attempts") {
		t.Errorf("%d attempts, final %v; want 3 attempts of 300ms", attempts, final)
	}
}
