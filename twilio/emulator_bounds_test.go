package twilio

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	twilioapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// syncBuffer is the emulator's Log, written from the connector's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEmulatorKeypadNeedsAuth: the keypad takes the account's Basic
// credentials like the REST API; without them nothing is typed.
func TestEmulatorKeypadNeedsAuth(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	sid := s.create(t, nil)
	if err := s.update(sid, CaptureCardNumber, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"wrong token", emuAccount, "ffffffffffffffffffffffffffffffff"},
		{"another account", "AC" + strings.Repeat("9", 32), emuToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, answer := s.keypad(t, c.user, c.pass, testPAN+"#")
			if status != http.StatusUnauthorized || answer["code"] != float64(errAuthenticate) {
				t.Fatalf("HTTP %d %v, want 401 with Twilio's code %d", status, answer, errAuthenticate)
			}
		})
	}
	if events := s.events(); len(events) != 0 {
		t.Fatalf("refused keypad requests posted %d callbacks: %v", len(events), events)
	}
	// The field is still being captured, and takes the caller's digits.
	s.press(t, testPAN+"#")
	if events := s.events(); len(events) != 1 || events[0].Get("ErrorType") != "" || events[0].Get("PaymentCardNumber") == "" {
		t.Fatalf("callbacks %v, want the card number entered", events)
	}
}

// TestEmulatorKeypadBounded: a field takes at most its longest valid entry;
// a digit more ends it as <Pay>'s validation error, whether it comes in one
// request or one at a time, and the session holds no more than that.
func TestEmulatorKeypadBounded(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("4", 60<<10)
	for _, c := range []struct {
		name, capture, before, errorType string
		max                              int
	}{
		{"card number", CaptureCardNumber, "", ErrorInvalidCardNumber, 19},
		{"expiration date", CaptureExpiration, "", ErrorInvalidDate, 4},
		{"security code", CaptureSecurityCode, testPAN, ErrorInvalidSecurityCode, 4},
		{"postal code", CapturePostalCode, "", ErrorInvalidPostalCode, 10},
		{"card number matcher", CaptureCardNumber + matcherSuffix, testPAN, ErrorInputMatchingFailed, 19},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newEmulatorSetup(t, answerJSON(approved), nil)
			sid := s.create(t, func(p *twilioapi.CreatePaymentsParams) { p.SetRequireMatchingInputs(CaptureCardNumber) })
			field := func() {
				t.Helper()
				if c.before != "" && !s.emu.sessions[sid].have[CaptureCardNumber] {
					s.enter(t, sid, CaptureCardNumber, c.before+"#") // a failed matcher asks for the card again
				}
				if err := s.update(sid, c.capture, ""); err != nil {
					t.Fatal(err)
				}
			}
			// All at once.
			field()
			status, answer := s.keypad(t, emuAccount, emuToken, huge)
			if status != http.StatusOK || answer["state"] != "entered" || answer["error_type"] != c.errorType {
				t.Fatalf("%d KiB of digits: HTTP %d %v, want the field entered with %s", len(huge)>>10, status, answer, c.errorType)
			}
			if status, _ := s.keypad(t, emuAccount, emuToken, "1"); status != http.StatusConflict {
				t.Fatalf("a digit after the field ended: HTTP %d, want 409 (nothing is captured)", status)
			}
			// One digit at a time: the longest entry is partial, one more ends it.
			field()
			for i := 0; i < c.max; i++ {
				if _, answer := s.keypad(t, emuAccount, emuToken, "4"); answer["state"] != "partial" {
					t.Fatalf("digit %d of at most %d: %v", i+1, c.max, answer)
				}
			}
			s.emu.mu.Lock()
			held := len(s.emu.sessions[sid].digits)
			s.emu.mu.Unlock()
			if held != c.max {
				t.Fatalf("the session holds %d digits, want %d", held, c.max)
			}
			if _, answer := s.keypad(t, emuAccount, emuToken, "4"); answer["state"] != "entered" || answer["error_type"] != c.errorType {
				t.Fatalf("digit %d: %v, want the field entered with %s", c.max+1, answer, c.errorType)
			}
			for _, ev := range s.events() {
				if n := len(ev.Get("PaymentCardNumber")); n > 19+len("xxxx") {
					t.Fatalf("a callback shows a %d-character card number: %v", n, ev)
				}
			}
		})
	}
}

// TestEmulatorBoundsSessions: a Create past the session limit forgets the
// oldest finished session, or is Twilio's 429 while every session is in
// progress; a session takes a bounded number of Updates.
func TestEmulatorBoundsSessions(t *testing.T) {
	t.Parallel()
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	s.emu.limits = emulatorLimits{sessions: 3, updates: 4, pendingCallbacks: 1000}
	var sids []string
	for range 3 {
		sids = append(sids, s.create(t, nil))
	}
	full := (&twilioapi.CreatePaymentsParams{}).SetIdempotencyKey("full").SetStatusCallback(s.hooks.URL).SetPaymentConnector("ivrpay")
	if _, err := s.api.CreatePayments(emuCall, full); restCode(err) != errTooManyRequests {
		t.Fatalf("a fourth session in progress: %v, want Twilio's %d", err, errTooManyRequests)
	}
	if err := s.update(sids[0], "", "cancel"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.api.CreatePayments(emuCall, full); err != nil {
		t.Fatalf("a session once the oldest is finished: %v", err)
	}
	if err := s.update(sids[0], CaptureCardNumber, ""); restCode(err) != errNotFound {
		t.Fatalf("the forgotten session answered %v, want %d", err, errNotFound)
	}
	s.emu.mu.Lock()
	for key, a := range s.emu.answers {
		if a.sid == sids[0] {
			t.Errorf("answer %q of the forgotten session is still kept", key)
		}
	}
	s.emu.mu.Unlock()
	for i := range 4 {
		if err := s.update(sids[1], CaptureCardNumber, ""); err != nil {
			t.Fatalf("update %d: %v", i+1, err)
		}
	}
	if err := s.update(sids[1], CaptureCardNumber, ""); restCode(err) != errTooManyRequests {
		t.Fatalf("update 5 of at most 4: %v, want %d", err, errTooManyRequests)
	}
}

// TestEmulatorBoundsPendingCallbacks: while status callbacks wait for a
// callback URL that does not answer, the keypad is refused rather than
// piling them up.
func TestEmulatorBoundsPendingCallbacks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	s := newEmulatorSetup(t, answerJSON(approved), nil)
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) }) // runs first: the emulator's Close then finds its callbacks done
	s.emu.limits.pendingCallbacks = 2
	sid := s.create(t, func(p *twilioapi.CreatePaymentsParams) { p.SetStatusCallback(stuck.URL) })
	capture := (&twilioapi.UpdatePaymentsParams{}).SetIdempotencyKey("c").SetStatusCallback(stuck.URL).SetCapture(CaptureCardNumber)
	if _, err := s.api.UpdatePayments(emuCall, sid, capture); err != nil {
		t.Fatal(err)
	}
	s.press(t, "4")
	s.press(t, "1")
	if status, answer := s.keypad(t, emuAccount, emuToken, "1"); status != http.StatusTooManyRequests || answer["code"] != float64(errTooManyRequests) {
		t.Fatalf("a third callback waiting: HTTP %d %v, want 429", status, answer)
	}
}

// TestEmulatorLogLines: one line per request and per connector exchange,
// with the status, Twilio's error code and the connector's error_code, and
// nothing of the card.
func TestEmulatorLogLines(t *testing.T) {
	t.Parallel()
	log := &syncBuffer{}
	s := newEmulatorSetup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"charge_id":null,"error_code":"UNAUTHORIZED","error_message":"unauthorized","parameters":{}}`))
	}, func(o *EmulatorOptions) { o.Log = log })
	sid := s.create(t, nil)
	if err := s.update(sid, "", "complete"); err == nil {
		t.Fatal("complete before the card was entered was accepted")
	}
	s.enterCard(t, sid)
	if err := s.update(sid, "", "complete"); err != nil {
		t.Fatal(err)
	}
	s.events()
	got := log.String()
	payments := "/2010-04-01/Accounts/" + emuAccount + "/Calls/" + emuCall + "/Payments"
	for _, want := range []string{
		"twilio-emulator: POST " + payments + ".json 201 sid=" + sid + "\n",
		"twilio-emulator: POST " + payments + "/" + sid + ".json 400 code=64019 message=",
		"twilio-emulator: POST /emulator/Calls/" + emuCall + "/Digits 200 capture=payment-card-number state=entered\n",
		"twilio-emulator: connector ivrpay for " + sid + ": HTTP 401 error_code=UNAUTHORIZED, 1 attempt → payment-connector-error\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the log lacks %q:\n%s", want, got)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^twilio-emulator: POST `).FindAllString(got, -1)); n != 11 {
		t.Errorf("%d request lines, want 11 (create, a refused complete, 4 captures, 4 keypad entries, complete):\n%s", n, got)
	}
	withoutAccount := strings.ReplaceAll(got, emuAccount, "AC…") // the test's token is the end of its AccountSid
	for _, secret := range []string{testPAN, testPAN[6:], fmt.Sprintf("cvv=%s", testCVV), testKey, emuToken} {
		if strings.Contains(withoutAccount, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
