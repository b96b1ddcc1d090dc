package twilio

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	twilioclient "github.com/twilio/twilio-go/client"
	twilioapi "github.com/twilio/twilio-go/rest/api/v2010"
)

const (
	emuAccount = "AC0123456789abcdef0123456789abcdef"
	emuToken   = "0123456789abcdef0123456789abcdef"
	emuCall    = "CAfedcba9876543210fedcba9876543210"
)

// toEmulator is an http.RoundTripper that sends twilio-go's requests for
// api.twilio.com to the emulator instead: the client is Twilio's, unchanged.
type toEmulator struct{ base *url.URL }

func (t toEmulator) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.base.Scheme, t.base.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

// TwilioGoClient returns twilio-go's 2010 API client for the emulator at base.
func twilioGoClient(t *testing.T, base, accountSid, token string) *twilioapi.ApiService {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c := &twilioclient.Client{Credentials: twilioclient.NewCredentials(accountSid, token), HTTPClient: &http.Client{Transport: toEmulator{u}}}
	c.SetAccountSid(accountSid)
	return twilioapi.NewApiServiceWithClient(c)
}

// emulatorSetup is an emulator with one connector ("ivrpay") and a status callback recorder.
type emulatorSetup struct {
	emu       *Emulator
	url       string
	api       *twilioapi.ApiService
	connector *fakeConnector
	hooks     *webhookRecorder
}

func newEmulatorSetup(t *testing.T, answer func(int, http.ResponseWriter, *http.Request), edit func(*EmulatorOptions)) *emulatorSetup {
	t.Helper()
	s := &emulatorSetup{connector: newFakeConnector(t, answer), hooks: newWebhookRecorder(t)}
	o := EmulatorOptions{AccountSid: emuAccount, AuthToken: emuToken,
		Connectors:       map[string]string{"ivrpay": strings.Replace(s.connector.URL, "http://", "http://api_key:"+testKey+"@", 1) + "/pay"},
		Now:              func() time.Time { return testNow },
		NewTransactionID: func() string { return "72500aba-328c-445c-a12e-da5700e10b17" }}
	if edit != nil {
		edit(&o)
	}
	emu, err := NewEmulator(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); emu.Close() })
	s.emu, s.url = emu, srv.URL
	s.api = twilioGoClient(t, srv.URL, emuAccount, emuToken)
	return s
}

func (s *emulatorSetup) create(t *testing.T, edit func(*twilioapi.CreatePaymentsParams)) string {
	t.Helper()
	p := (&twilioapi.CreatePaymentsParams{}).SetIdempotencyKey(NewSid("ik")).SetStatusCallback(s.hooks.URL + "/status?agent=7").
		SetPaymentConnector("ivrpay").SetChargeAmount(10).SetValidCardTypes(SupportedCardTypes).
		SetParameter(map[string]string{"payin_config_id": "cfg_1"})
	if edit != nil {
		edit(p)
	}
	res, err := s.api.CreatePayments(emuCall, p)
	if err != nil {
		t.Fatalf("CreatePayments: %v", err)
	}
	if res.Sid == nil || !strings.HasPrefix(*res.Sid, "PK") || *res.CallSid != emuCall || *res.AccountSid != emuAccount {
		t.Fatalf("created %+v", res)
	}
	return *res.Sid
}

func (s *emulatorSetup) update(sid string, capture, status string) error {
	p := (&twilioapi.UpdatePaymentsParams{}).SetIdempotencyKey(NewSid("ik")).SetStatusCallback(s.hooks.URL + "/status?agent=7")
	if capture != "" {
		p.SetCapture(capture)
	}
	if status != "" {
		p.SetStatus(status)
	}
	_, err := s.api.UpdatePayments(emuCall, sid, p)
	return err
}

// press types digits on the caller's keypad.
func (s *emulatorSetup) press(t *testing.T, digits string) {
	t.Helper()
	if status, answer := s.keypad(t, emuAccount, emuToken, digits); status != http.StatusOK {
		t.Fatalf("keypad %q: HTTP %d %v", digits, status, answer)
	}
}

// keypad posts Digits with the given credentials and returns the answer.
func (s *emulatorSetup) keypad(t *testing.T, user, pass, digits string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+"/emulator/Calls/"+emuCall+"/Digits", strings.NewReader(url.Values{"Digits": {digits}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("keypad answer: %v", err)
	}
	return resp.StatusCode, answer
}

// enter has the agent capture a field and the caller type it.
func (s *emulatorSetup) enter(t *testing.T, sid, capture, digits string) {
	t.Helper()
	if err := s.update(sid, capture, ""); err != nil {
		t.Fatalf("Capture %s: %v", capture, err)
	}
	s.press(t, digits)
}

func (s *emulatorSetup) enterCard(t *testing.T, sid string) {
	t.Helper()
	s.enter(t, sid, CaptureCardNumber, testPAN+"#")
	s.enter(t, sid, CaptureExpiration, "0827#")
	s.enter(t, sid, CaptureSecurityCode, testCVV+"#")
	s.enter(t, sid, CapturePostalCode, "94111#")
}

// events returns the callbacks' forms after the emulator has sent them all.
func (s *emulatorSetup) events() []url.Values {
	s.emu.Wait()
	var out []url.Values
	for _, r := range s.hooks.received() {
		out = append(out, r.form)
	}
	return out
}

func restCode(err error) int {
	var te *twilioclient.TwilioRestError
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestEmulatorChargeDrivenByTwilioGo(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	sid := s.create(t, nil)
	if err := s.update(sid, CaptureCardNumber, ""); err != nil {
		t.Fatal(err)
	}
	s.press(t, testPAN[:6])
	s.press(t, testPAN[6:]+"#")
	s.enter(t, sid, CaptureExpiration, "0827#")
	s.enter(t, sid, CaptureSecurityCode, testCVV+"#")
	s.enter(t, sid, CapturePostalCode, "94111#")
	if err := s.update(sid, "", "complete"); err != nil {
		t.Fatal(err)
	}
	events := s.events()
	if len(events) != 6 {
		t.Fatalf("%d callbacks, want a partial and 4 entries and the result: %v", len(events), events)
	}
	partial := events[0]
	if partial.Get("PartialResult") != "true" || partial.Get("Capture") != CaptureCardNumber || partial.Get("PaymentCardNumber") != "xxxxxx" {
		t.Errorf("partial event %v", partial)
	}
	wantRequired := []string{"payment-card-number,expiration-date,security-code,postal-code", "expiration-date,security-code,postal-code",
		"security-code,postal-code", "postal-code", ""}
	for i, ev := range events[:5] {
		if ev.Get("Required") != wantRequired[i] || ev.Get("Sid") != sid || ev.Get("CallSid") != emuCall || ev.Get("AccountSid") != emuAccount {
			t.Errorf("event %d: Required %q (want %q), Sid %q, CallSid %q, AccountSid %q", i, ev.Get("Required"), wantRequired[i], ev.Get("Sid"), ev.Get("CallSid"), ev.Get("AccountSid"))
		}
	}
	if e := events[4]; e.Get("PartialResult") != "false" || e.Get("PaymentCardNumber") != "xxxxxxxxxxxx1111" || e.Get("SecurityCode") != "***" ||
		e.Get("ExpirationDate") != "0827" || e.Get("PaymentCardPostalCode") != "94111" || e.Get("PaymentCardType") != "visa" {
		t.Errorf("last capture event %v", e)
	}
	final := events[5]
	if final.Get("Result") != ResultSuccess || final.Get("PaymentConfirmationCode") != "pyi_1" || final.Get("Sid") != sid {
		t.Errorf("final callback %v", final)
	}
	for k := range final {
		if strings.HasPrefix(k, "PayConnector_") {
			t.Errorf("final callback passes on %s; Twilio does not in this flow", k)
		}
	}

	reqs := s.connector.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d connector requests", len(reqs))
	}
	r := reqs[0]
	if r.user != "api_key" || r.password != testKey || r.header.Get("Content-Type") != "" {
		t.Errorf("connector request as %q:%q with Content-Type %q", r.user, r.password, r.header.Get("Content-Type"))
	}
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	want := `{"amount":"10","cardnumber":"4111111111111111","currency_code":"USD","cvv":"123","description":null,"expiry_month":"08","expiry_year":"27",` +
		`"method":"charge","parameters":{"payin_config_id":"cfg_1"},"postal_code":"94111","transaction_id":"72500aba-328c-445c-a12e-da5700e10b17"}`
	if got := mustJSON(t, body); got != want {
		t.Errorf("connector request\n got %s\nwant %s", got, want)
	}

	// Every callback is signed as Twilio signs: twilio-go's validator says so.
	right, wrong := twilioclient.NewRequestValidator(emuToken), twilioclient.NewRequestValidator("fedcba9876543210fedcba9876543210")
	for i, h := range s.hooks.received() {
		if !right.ValidateBody(h.url, h.body, h.signature) || wrong.ValidateBody(h.url, h.body, h.signature) {
			t.Errorf("callback %d: the signature is not Twilio's for the account's token", i)
		}
		if strings.Contains(string(h.body), testPAN) || strings.Contains(h.form.Get("SecurityCode"), testCVV) {
			t.Errorf("callback %d shows card data: %s", i, h.body)
		}
	}
}

func TestEmulatorTokenize(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(`{"token_id":"mtd_1","error_code":null,"error_message":null}`), nil)
	sid := s.create(t, func(p *twilioapi.CreatePaymentsParams) {
		p.ChargeAmount = nil
		p.SetTokenType("reusable").SetParameter(map[string]string{"payment_method_config_id": "pmc_1"})
	})
	s.enterCard(t, sid)
	if err := s.update(sid, "", "complete"); err != nil {
		t.Fatal(err)
	}
	events := s.events()
	if final := events[len(events)-1]; final.Get("Result") != ResultSuccess || final.Get("PaymentToken") != "mtd_1" || final.Get("PaymentConfirmationCode") != "" {
		t.Errorf("final callback %v", final)
	}
	var body map[string]any
	_ = json.Unmarshal(s.connector.recorded()[0].body, &body)
	if _, ok := body["amount"]; ok || body["method"] != MethodTokenize {
		t.Errorf("tokenize request %v", body)
	}
}

func TestEmulatorErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		do       func(t *testing.T, s *emulatorSetup) error
		wantCode int
	}{
		{name: "Capture and Status together", wantCode: 64018, do: func(t *testing.T, s *emulatorSetup) error {
			return s.update(s.create(t, nil), CaptureCardNumber, "complete")
		}},
		{name: "neither Capture nor Status", wantCode: 64018, do: func(t *testing.T, s *emulatorSetup) error {
			return s.update(s.create(t, nil), "", "")
		}},
		{name: "complete before the required fields", wantCode: 64019, do: func(t *testing.T, s *emulatorSetup) error {
			sid := s.create(t, nil)
			s.enter(t, sid, CaptureCardNumber, testPAN+"#")
			return s.update(sid, "", "complete")
		}},
		{name: "an operation on a cancelled session", wantCode: 64021, do: func(t *testing.T, s *emulatorSetup) error {
			sid := s.create(t, nil)
			if err := s.update(sid, "", "cancel"); err != nil {
				t.Fatal(err)
			}
			return s.update(sid, CaptureCardNumber, "")
		}},
		{name: "an operation on a completed session", wantCode: 64021, do: func(t *testing.T, s *emulatorSetup) error {
			sid := s.create(t, nil)
			s.enterCard(t, sid)
			if err := s.update(sid, "", "complete"); err != nil {
				t.Fatal(err)
			}
			return s.update(sid, "", "complete")
		}},
		{name: "an unknown connector", wantCode: 64004, do: func(t *testing.T, s *emulatorSetup) error {
			_, err := s.api.CreatePayments(emuCall, (&twilioapi.CreatePaymentsParams{}).SetIdempotencyKey("k").
				SetStatusCallback(s.hooks.URL).SetPaymentConnector("Default"))
			return err
		}},
		{name: "a wrong auth token", wantCode: 20003, do: func(t *testing.T, s *emulatorSetup) error {
			api := twilioGoClient(t, s.url, emuAccount, "fedcba9876543210fedcba9876543210")
			_, err := api.CreatePayments(emuCall, (&twilioapi.CreatePaymentsParams{}).SetIdempotencyKey("k").SetStatusCallback(s.hooks.URL))
			return err
		}},
		{name: "another account's path", wantCode: 20003, do: func(t *testing.T, s *emulatorSetup) error {
			_, err := s.api.CreatePayments(emuCall, (&twilioapi.CreatePaymentsParams{}).SetPathAccountSid("AC1").SetIdempotencyKey("k").SetStatusCallback(s.hooks.URL))
			return err
		}},
		{name: "an unknown session", wantCode: 20404, do: func(t *testing.T, s *emulatorSetup) error {
			return s.update("PK0", CaptureCardNumber, "")
		}},
		{name: "a matcher for a field without RequireMatchingInputs", wantCode: 64020, do: func(t *testing.T, s *emulatorSetup) error {
			return s.update(s.create(t, nil), CaptureCardNumber+"-matcher", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newEmulatorSetup(t, answerJSON(approved), nil)
			err := tt.do(t, s)
			if code := restCode(err); code != tt.wantCode {
				t.Fatalf("error %v (code %d), want Twilio's %d", err, code, tt.wantCode)
			}
			var te *twilioclient.TwilioRestError
			if errors.As(err, &te) && (te.Status < 400 || te.MoreInfo != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", te.Code) || te.Message == "") {
				t.Errorf("error shape %+v", te)
			}
		})
	}
}

func TestEmulatorIdempotentCreate(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	p := (&twilioapi.CreatePaymentsParams{}).SetIdempotencyKey("same").SetStatusCallback(s.hooks.URL).SetPaymentConnector("ivrpay").SetChargeAmount(10)
	a, errA := s.api.CreatePayments(emuCall, p)
	b, errB := s.api.CreatePayments(emuCall, p)
	if errA != nil || errB != nil || *a.Sid != *b.Sid {
		t.Errorf("two creates with one IdempotencyKey: %v %v, %v %v", a, errA, b, errB)
	}
	if _, err := time.Parse("Mon, 02 Jan 2006 15:04:05 -0700", *a.DateCreated); err != nil || !strings.HasSuffix(*a.Uri, *a.Sid+".json") {
		t.Errorf("date_created %q (%v), uri %q", *a.DateCreated, err, *a.Uri)
	}
}

func TestEmulatorCallerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		capture   string
		digits    string
		errorType string
	}{
		{"Luhn", CaptureCardNumber, "4111111111111112#", ErrorInvalidCardNumber},
		{"card type", CaptureCardNumber, "6200000000000005#", ErrorInvalidCardType},
		{"expired", CaptureExpiration, "0120#", ErrorInvalidDate},
		{"security code before the card", CaptureSecurityCode, "123#", ErrorCaptureSequence},
		{"no postal code", CapturePostalCode, "#", ErrorInvalidPostalCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newEmulatorSetup(t, answerJSON(approved), nil)
			sid := s.create(t, nil)
			s.enter(t, sid, tt.capture, tt.digits)
			events := s.events()
			if len(events) != 1 || events[0].Get("ErrorType") != tt.errorType || !strings.Contains(events[0].Get("Required"), tt.capture) {
				t.Errorf("events %v, want one with ErrorType %s and %s still required", events, tt.errorType, tt.capture)
			}
			if events[0].Get("PaymentCardNumber") != "" {
				t.Errorf("a refused entry is shown: %v", events[0])
			}
		})
	}
}

func TestEmulatorRequireMatchingInputs(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	sid := s.create(t, func(p *twilioapi.CreatePaymentsParams) { p.SetRequireMatchingInputs("payment-card-number") })
	s.enterCard(t, sid)
	if err := s.update(sid, "", "complete"); restCode(err) != 64019 {
		t.Fatalf("complete without the matcher: %v, want 64019", err)
	}
	s.enter(t, sid, CaptureCardNumber+"-matcher", "5555555555554444#")
	if err := s.update(sid, "", "complete"); restCode(err) != 64019 {
		t.Fatalf("complete after a mismatch: %v, want 64019", err)
	}
	s.enter(t, sid, CaptureCardNumber, testPAN+"#")
	s.enter(t, sid, CaptureCardNumber+"-matcher", testPAN+"#")
	if err := s.update(sid, "", "complete"); err != nil {
		t.Fatal(err)
	}
	events := s.events()
	var mismatch url.Values
	for _, ev := range events {
		if ev.Get("ErrorType") == ErrorInputMatchingFailed {
			mismatch = ev
		}
	}
	if mismatch == nil || mismatch.Get("Capture") != "payment-card-number-matcher" || !strings.HasPrefix(mismatch.Get("Required"), "payment-card-number,payment-card-number-matcher") {
		t.Errorf("no input-matching-failed event with the card required again: %v", events)
	}
	if final := events[len(events)-1]; final.Get("Result") != ResultSuccess {
		t.Errorf("final callback %v", final)
	}
	if n := len(s.connector.recorded()); n != 1 {
		t.Errorf("%d connector requests", n)
	}
}

func TestEmulatorConfirmation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		press    string
		result   string
		requests int
	}{
		{"the caller confirms with 1", "1", ResultSuccess, 1},
		{"the caller cancels with 2", "2", ResultCancelled, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newEmulatorSetup(t, answerJSON(approved), nil)
			sid := s.create(t, func(p *twilioapi.CreatePaymentsParams) { p.SetConfirmation("true") })
			s.enterCard(t, sid)
			if err := s.update(sid, "", "complete"); err != nil {
				t.Fatal(err)
			}
			s.emu.Wait()
			if n := len(s.connector.recorded()); n != 0 {
				t.Fatalf("%d connector requests before the caller confirmed", n)
			}
			s.press(t, tt.press)
			events := s.events()
			if final := events[len(events)-1]; final.Get("Result") != tt.result {
				t.Errorf("final callback %v, want Result %s", final, tt.result)
			}
			if n := len(s.connector.recorded()); n != tt.requests {
				t.Errorf("%d connector requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestEmulatorRetriesLikeTwilio(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, slowFirstAnswer(approved), func(o *EmulatorOptions) { o.Timeout = time.Second })
	sid := s.create(t, nil)
	s.enterCard(t, sid)
	if err := s.update(sid, "", "complete"); err != nil {
		t.Fatal(err)
	}
	events := s.events()
	reqs := s.connector.recorded()
	if len(reqs) != 2 || string(reqs[0].body) != string(reqs[1].body) {
		t.Fatalf("%d connector requests, want the same one twice", len(reqs))
	}
	if final := events[len(events)-1]; final.Get("Result") != ResultSuccess {
		t.Errorf("final callback %v", final)
	}
}

func TestEmulatorDeclineAndUnauthorized(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, answer          string
		status                int
		connError, paymentErr string
	}{
		{"decline", `{"charge_id":null,"error_code":"DECLINED","error_message":"The card was declined"}`, 200, "DECLINED", "The card was declined"},
		{"401", `Unauthorized`, 401, "", "HTTP 401 from the connector"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newEmulatorSetup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.answer))
			}, nil)
			sid := s.create(t, nil)
			s.enterCard(t, sid)
			if err := s.update(sid, "", "complete"); err != nil {
				t.Fatal(err)
			}
			events := s.events()
			final := events[len(events)-1]
			if final.Get("Result") != ResultPaymentConnectorError || final.Get("ConnectorError") != tt.connError || final.Get("PaymentError") != tt.paymentErr {
				t.Errorf("final callback %v", final)
			}
		})
	}
}

func TestNewEmulatorOptions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		o    EmulatorOptions
		want string
	}{
		{"no account", EmulatorOptions{AuthToken: "t", Connectors: map[string]string{"c": "http://x"}}, "AccountSid"},
		{"no connector", EmulatorOptions{AccountSid: emuAccount, AuthToken: "t"}, "connector"},
		{"bad URL", EmulatorOptions{AccountSid: emuAccount, AuthToken: "t", Connectors: map[string]string{"c": "ftp://x"}}, "http"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewEmulator(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
