package twilio

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/card"
)

// Fields a Payments session captures (the Capture values of an Update), in
// the order Required lists them.
const (
	CaptureCardNumber   = "payment-card-number"
	CaptureExpiration   = "expiration-date"
	CaptureSecurityCode = "security-code"
	CapturePostalCode   = "postal-code"
	// matcherSuffix makes a Capture value the second entry of a field listed
	// in RequireMatchingInputs ("payment-card-number-matcher").
	matcherSuffix = "-matcher"
)

// ErrorType values the emulator adds to the <Pay> ones.
const (
	ErrorInputMatchingFailed = "input-matching-failed"
	// ErrorCaptureSequence is Twilio's ErrorType for a security code entered
	// before the card number, whose brand says how many digits it has.
	ErrorCaptureSequence = "invalid-card-number-security-code-capture-sequence"
)

// ResultCancelled is the emulator's Result for a session the agent cancelled
// (Status=cancel) or the caller refused at the confirmation prompt. Twilio
// does not document this value; see docs/simulator.md.
const ResultCancelled = "payment-cancelled"

// Twilio's Payments API errors (reference §3.6) the emulator answers.
const (
	errInvalidConnector  = 64004
	errCaptureOrStatus   = 64018
	errIncompleteInfo    = 64019
	errInvalidParameter  = 64020
	errInvalidOperation  = 64021
	errMissingParameter  = 64015
	errMethodUnsupported = 64013
	errInvalidAmount     = 64003
	errAuthenticate      = 20003
	errNotFound          = 20404
	errTooManyRequests   = 20429
)

// emulatorLimits keep the emulator's memory bounded whatever its clients
// send; past one, the request is Twilio's 429 (20429).
type emulatorLimits struct {
	// sessions is how many payment sessions the emulator keeps: the oldest
	// finished one is forgotten for a new one, and while all of them are in
	// progress a Create is refused.
	sessions int
	// updates is how many Updates one session answers.
	updates int
	// pendingCallbacks is how many status callbacks may wait to be sent (a
	// callback URL that does not answer); while that many do, the keypad
	// and the REST API are refused.
	pendingCallbacks int64
}

var defaultEmulatorLimits = emulatorLimits{sessions: 500, updates: 50, pendingCallbacks: 1000}

// maxEntry is the longest valid entry of each field typed on the keypad; a
// longer one ends the field as the validation error <Pay> reports for it.
var maxEntry = map[string]int{
	CaptureCardNumber:   19, // the longest PAN
	CaptureExpiration:   4,  // MMYY
	CaptureSecurityCode: 4,  // American Express
	CapturePostalCode:   ivrpay.MaxPostalCodeLength,
}

// entryTooLong is the ErrorType of an entry longer than its field takes.
var entryTooLong = map[string]string{
	CaptureCardNumber:   ErrorInvalidCardNumber,
	CaptureExpiration:   ErrorInvalidDate,
	CaptureSecurityCode: ErrorInvalidSecurityCode,
	CapturePostalCode:   ErrorInvalidPostalCode,
}

// EmulatorOptions configure an Emulator.
type EmulatorOptions struct {
	// AccountSid and AuthToken are the account's credentials: every REST
	// request authenticates with them, and every callback is signed with
	// the token.
	AccountSid, AuthToken string
	// Connectors maps a Generic Pay Connector's unique name to its ENDPOINT
	// URL, with the USERNAME and PASSWORD as user:password@ in it (the
	// username defaults to api_key).
	Connectors map[string]string
	// Timeout and Retries are Twilio's per-attempt timeout and retries;
	// 0 means DefaultTimeout and DefaultRetries, a negative Retries none.
	Timeout time.Duration
	Retries int
	// Client sends connector requests and callbacks; nil means a new client.
	Client *http.Client
	// Now is the clock of the expiry check and the resource dates; nil means time.Now.
	Now func() time.Time
	// NewTransactionID returns a connector transaction_id; nil means NewTransactionID.
	NewTransactionID func() string
	// Log, when set, gets one line per request and per connector exchange
	// (its HTTP status and error_code), so that a failing connector is
	// visible without a callback receiver. No line holds what the caller
	// types on the keypad, or a secret.
	Log io.Writer
}

// Emulator serves Twilio's Payments REST resource (agent-assisted payments)
// locally, with a keypad endpoint standing in for the caller's phone:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments.json        Create
//	POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Payments/{Sid}.json  Update (Capture or Status)
//	POST /emulator/Calls/{CallSid}/Digits                                       the caller types Digits ("#" ends a field)
//
// It posts the statusCallback events Twilio sends as the caller types and,
// on Status=complete, sends the Generic Pay Connector request exactly as the
// simulator does (connectorExchange) and posts the result. Card data is kept
// only in memory and never appears in an answer or a callback unmasked.
type Emulator struct {
	o          EmulatorOptions
	connectors map[string]*connectorExchange
	limits     emulatorLimits

	ctx    context.Context // cancelled by Close, for the connector requests in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*paymentSession // by Sid
	order    []string                   // Sids, oldest first
	byCall   map[string]*paymentSession // the call's latest session
	answers  map[string]storedAnswer    // by IdempotencyKey (and Sid for updates)
	lastPost chan struct{}              // closed when the latest callback is done
	pending  atomic.Int64               // callbacks not sent yet

	logMu sync.Mutex
}

type storedAnswer struct {
	sid    string // the session it created or updated
	status int
	body   []byte
}

// Session states.
const (
	sessionOpen       = "open"
	sessionConfirming = "confirming" // Confirmation=true: waiting for the caller's 1 or 2
	sessionProcessing = "processing"
	sessionDone       = "done"
)

// paymentSession is one Payments resource and what the caller typed into it.
type paymentSession struct {
	sid, callSid   string
	pay            *Pay
	method         string
	statusCallback string
	matching       map[string]bool // fields the caller enters twice
	confirmation   bool
	created        time.Time
	updated        time.Time
	state          string

	capture  string // what the caller is typing now ("" for nothing); may end in -matcher
	digits   string // the entry so far
	in       captured
	have     map[string]bool   // fields entered and valid
	firstOf  map[string]string // a matching field's first entry, until its matcher
	matched  map[string]bool
	attempts map[string]int
	updates  int // Updates answered
}

// NewEmulator checks the options and returns an Emulator; Close it when done.
func NewEmulator(o EmulatorOptions) (*Emulator, error) {
	if !strings.HasPrefix(o.AccountSid, "AC") || o.AuthToken == "" {
		return nil, errors.New("an AccountSid (AC…) and an auth token are required")
	}
	if len(o.Connectors) == 0 {
		return nil, errors.New("at least one connector NAME=URL is required")
	}
	connectorDefaults(&o.Timeout, &o.Retries, &o.Client, &o.NewTransactionID, &o.Now)
	e := &Emulator{o: o, connectors: map[string]*connectorExchange{}, limits: defaultEmulatorLimits, sessions: map[string]*paymentSession{},
		byCall: map[string]*paymentSession{}, answers: map[string]storedAnswer{}}
	for name, endpoint := range o.Connectors {
		u, err := url.Parse(endpoint)
		if name == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("connector %q: an http(s) URL is required", name)
		}
		x := &connectorExchange{timeout: o.Timeout, retries: o.Retries, client: o.Client}
		if x.endpoint, x.username, x.password, err = connectorCredentials(u, "", ""); err != nil {
			return nil, fmt.Errorf("connector %q: %w", name, err)
		}
		e.connectors[name] = x
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Close cancels the connector requests in flight and waits for their callbacks.
func (e *Emulator) Close() {
	e.cancel()
	e.wg.Wait()
}

// Wait waits until every completed session has posted its final callback.
func (e *Emulator) Wait() { e.wg.Wait() }

// Handler serves the emulator's endpoints.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/{rest...}", e.serveREST)
	mux.HandleFunc("POST /emulator/Calls/{CallSid}/Digits", e.serveDigits)
	if e.o.Log == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &answerRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		e.logf("%s %s %d%s", r.Method, r.URL.EscapedPath(), rec.status, rec.summary())
	})
}

// logf writes one line to the Log.
func (e *Emulator) logf(format string, args ...any) {
	if e.o.Log == nil {
		return
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.o.Log, "twilio-emulator: "+format+"\n", args...)
}

// answerRecorder keeps the status and the start of an answer, for its log
// line. Answers are the emulator's own JSON, which never holds what the
// caller typed or a secret.
type answerRecorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (r *answerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *answerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if room := 2048 - len(r.body); room > 0 {
		r.body = append(r.body, b[:min(room, len(b))]...)
	}
	return r.ResponseWriter.Write(b)
}

// summary is what the log line says of the answer: the resource's sid, a
// Twilio error's code and message, or what the keypad did.
func (r *answerRecorder) summary() string {
	var a struct {
		Sid       string `json:"sid"`
		Code      int    `json:"code"`
		Message   string `json:"message"`
		Capture   string `json:"capture"`
		State     string `json:"state"`
		ErrorType string `json:"error_type"`
		Error     string `json:"error"`
	}
	if json.Unmarshal(r.body, &a) != nil {
		return ""
	}
	var b strings.Builder
	for _, f := range []struct {
		name, value string
		quoted      bool
	}{
		{"sid", a.Sid, false}, {"code", strconv.Itoa(a.Code), false}, {"capture", a.Capture, false}, {"state", a.State, false},
		{"error_type", a.ErrorType, false}, {"message", a.Message, true}, {"error", a.Error, true},
	} {
		switch {
		case f.value == "" || f.value == "0":
		case f.quoted:
			fmt.Fprintf(&b, " %s=%q", f.name, f.value)
		default:
			fmt.Fprintf(&b, " %s=%s", f.name, f.value)
		}
	}
	return b.String()
}

// twilioError writes Twilio's REST error shape.
func twilioError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// authenticated checks HTTP Basic AccountSid:AuthToken, answering Twilio's
// 401 when it does not hold.
func (e *Emulator) authenticated(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(e.o.AccountSid)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(e.o.AuthToken)) != 1 {
		twilioError(w, http.StatusUnauthorized, errAuthenticate, "Authenticate")
		return false
	}
	return true
}

// callbacksBehind answers 429 while too many status callbacks wait to be
// sent (a callback URL that does not answer), so that they cannot pile up.
func (e *Emulator) callbacksBehind(w http.ResponseWriter) bool {
	if e.pending.Load() < e.limits.pendingCallbacks {
		return false
	}
	twilioError(w, http.StatusTooManyRequests, errTooManyRequests, "Too Many Requests: the status callbacks already sent are not answered yet")
	return true
}

func (e *Emulator) serveREST(w http.ResponseWriter, r *http.Request) {
	if !e.authenticated(w, r) {
		return
	}
	if r.PathValue("AccountSid") != e.o.AccountSid {
		twilioError(w, http.StatusUnauthorized, errAuthenticate, "Authenticate")
		return
	}
	if e.callbacksBehind(w) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, errInvalidParameter, "the request body is not a form")
		return
	}
	callSid, rest := r.PathValue("CallSid"), r.PathValue("rest")
	if rest == "Payments.json" {
		e.create(w, callSid, r.PostForm)
		return
	}
	if sid, ok := strings.CutPrefix(rest, "Payments/"); ok && strings.HasSuffix(sid, ".json") && !strings.Contains(sid, "/") {
		e.update(w, callSid, strings.TrimSuffix(sid, ".json"), r.PostForm)
		return
	}
	twilioError(w, http.StatusNotFound, errNotFound, "The requested resource was not found")
}

// resource is the Payments resource as Twilio's 2010 API returns it.
func (e *Emulator) resource(s *paymentSession) map[string]any {
	const rfc2822 = "Mon, 02 Jan 2006 15:04:05 -0700"
	return map[string]any{
		"account_sid":  e.o.AccountSid,
		"call_sid":     s.callSid,
		"sid":          s.sid,
		"date_created": s.created.UTC().Format(rfc2822),
		"date_updated": s.updated.UTC().Format(rfc2822),
		"uri":          fmt.Sprintf("/2010-04-01/Accounts/%s/Calls/%s/Payments/%s.json", e.o.AccountSid, s.callSid, s.sid),
	}
}

// answerOnce replays the stored answer to a repeated IdempotencyKey, or runs
// do and stores its answer, as one of session sid's (do may create it). Only
// successes are stored, so a corrected retry of a refused request is not
// refused again.
func (e *Emulator) answerOnce(w http.ResponseWriter, key string, sid func() string, do func() (int, any)) {
	if a, ok := e.answers[key]; ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
		return
	}
	status, v := do()
	if te, ok := v.(twilioErr); ok {
		twilioError(w, status, te.code, te.message)
		return
	}
	body, _ := json.Marshal(v)
	e.answers[key] = storedAnswer{sid(), status, body}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type twilioErr struct {
	code    int
	message string
}

func fail(status, code int, format string, args ...any) (int, any) {
	return status, twilioErr{code, fmt.Sprintf(format, args...)}
}

func (e *Emulator) create(w http.ResponseWriter, callSid string, form url.Values) {
	key, callback := form.Get("IdempotencyKey"), form.Get("StatusCallback")
	if key == "" || callback == "" {
		twilioError(w, http.StatusBadRequest, errMissingParameter, "IdempotencyKey and StatusCallback are required")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var sid string
	e.answerOnce(w, "create "+callSid+" "+key, func() string { return sid }, func() (int, any) {
		if len(e.sessions) >= e.limits.sessions && !e.forgetOldestFinished() {
			return fail(http.StatusTooManyRequests, errTooManyRequests, "Too Many Requests: %d payment sessions are in progress", len(e.sessions))
		}
		s, status, err := e.newSession(callSid, form)
		if err != nil {
			return status, err
		}
		sid = s.sid
		e.sessions[s.sid] = s
		e.order = append(e.order, s.sid)
		e.byCall[callSid] = s
		return http.StatusCreated, e.resource(s)
	})
}

// forgetOldestFinished forgets the oldest finished session and its stored
// answers; false when every session is still in progress.
func (e *Emulator) forgetOldestFinished() bool {
	for i, sid := range e.order {
		s := e.sessions[sid]
		if s.state != sessionDone {
			continue
		}
		e.order = append(e.order[:i:i], e.order[i+1:]...)
		delete(e.sessions, sid)
		if e.byCall[s.callSid] == s {
			delete(e.byCall, s.callSid)
		}
		for key, a := range e.answers {
			if a.sid == sid {
				delete(e.answers, key)
			}
		}
		return true
	}
	return false
}

// newSession reads Create's parameters into the <Pay> they stand for, so that
// the checks and the connector request are the simulator's.
func (e *Emulator) newSession(callSid string, form url.Values) (*paymentSession, int, any) {
	p := &Pay{
		PaymentConnector: form.Get("PaymentConnector"), ChargeAmount: form.Get("ChargeAmount"), Currency: form.Get("Currency"),
		PaymentMethod: form.Get("PaymentMethod"), TokenType: form.Get("TokenType"), ValidCardTypes: form.Get("ValidCardTypes"),
		SecurityCode: form.Get("SecurityCode"), PostalCode: form.Get("PostalCode"), Description: form.Get("Description"),
		StatusCallback: form.Get("StatusCallback"),
	}
	if p.PaymentConnector == "" {
		p.PaymentConnector = "Default"
	}
	if _, ok := e.connectors[p.PaymentConnector]; !ok {
		st, v := fail(http.StatusBadRequest, errInvalidConnector, "PaymentConnector %q is not a connector of this account", p.PaymentConnector)
		return nil, st, v
	}
	if m := strings.ToLower(p.PaymentMethod); m != "" && m != "credit-card" {
		st, v := fail(http.StatusBadRequest, errMethodUnsupported, "the emulator plays credit-card payments only")
		return nil, st, v
	}
	method, err := p.Method()
	if err != nil {
		st, v := fail(http.StatusBadRequest, errInvalidAmount, "ChargeAmount %q is not a decimal amount", p.ChargeAmount)
		return nil, st, v
	}
	for _, name := range []string{"SecurityCode", "PostalCode"} {
		if v := strings.ToLower(form.Get(name)); v != "" && v != "true" && v != "false" {
			st, v := fail(http.StatusBadRequest, errInvalidParameter, "%s must be true or false", name)
			return nil, st, v
		}
	}
	if raw := form.Get("Parameter"); raw != "" {
		params := map[string]string{}
		if err := parseParameters(json.RawMessage(raw), params); err != nil {
			st, v := fail(http.StatusBadRequest, errInvalidParameter, "Parameter must be a single-level JSON object")
			return nil, st, v
		}
		names := make([]string, 0, len(params))
		for n := range params {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p.Parameters = append(p.Parameters, Parameter{n, params[n]})
		}
	}
	s := &paymentSession{
		sid: NewSid("PK"), callSid: callSid, pay: p, method: method, statusCallback: p.StatusCallback,
		matching: map[string]bool{}, confirmation: strings.EqualFold(form.Get("Confirmation"), "true"),
		state: sessionOpen, have: map[string]bool{}, firstOf: map[string]string{}, matched: map[string]bool{}, attempts: map[string]int{},
	}
	s.created = e.o.Now()
	s.updated = s.created
	for _, f := range strings.Split(form.Get("RequireMatchingInputs"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !s.collects(f) {
			st, v := fail(http.StatusBadRequest, errInvalidParameter, "RequireMatchingInputs: %q is not a field this session collects", f)
			return nil, st, v
		}
		s.matching[f] = true
	}
	return s, 0, nil
}

// fields are what the session must collect, in Required's order.
func (s *paymentSession) fields() []string {
	f := []string{CaptureCardNumber, CaptureExpiration}
	if s.pay.asksSecurityCode() {
		f = append(f, CaptureSecurityCode)
	}
	if s.pay.asksPostalCode() {
		f = append(f, CapturePostalCode)
	}
	return f
}

func (s *paymentSession) collects(field string) bool {
	for _, f := range s.fields() {
		if f == field {
			return true
		}
	}
	return false
}

// required lists what is still to collect, a matching field's matcher included.
func (s *paymentSession) required() []string {
	var out []string
	for _, f := range s.fields() {
		if !s.have[f] {
			out = append(out, f)
		}
		if s.matching[f] && !s.matched[f] {
			out = append(out, f+matcherSuffix)
		}
	}
	return out
}

func (e *Emulator) update(w http.ResponseWriter, callSid, sid string, form url.Values) {
	key := form.Get("IdempotencyKey")
	if key == "" || form.Get("StatusCallback") == "" {
		twilioError(w, http.StatusBadRequest, errMissingParameter, "IdempotencyKey and StatusCallback are required")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.sessions[sid]
	if !ok || s.callSid != callSid {
		twilioError(w, http.StatusNotFound, errNotFound, "The requested resource was not found")
		return
	}
	e.answerOnce(w, "update "+sid+" "+key, func() string { return sid }, func() (int, any) {
		capture, status := form.Get("Capture"), form.Get("Status")
		if s.updates >= e.limits.updates {
			return fail(http.StatusTooManyRequests, errTooManyRequests, "Too Many Requests: the payment session has had %d updates", s.updates)
		}
		s.updates++
		switch {
		case (capture == "") == (status == ""):
			return fail(http.StatusBadRequest, errCaptureOrStatus, "give either Capture or Status")
		case s.state != sessionOpen:
			return fail(http.StatusBadRequest, errInvalidOperation, "the payment session is %s", s.state)
		}
		s.statusCallback = form.Get("StatusCallback")
		s.updated = e.o.Now()
		if capture != "" {
			field := strings.TrimSuffix(capture, matcherSuffix)
			switch {
			case !s.collects(field) || (field != capture && !s.matching[field]):
				return fail(http.StatusBadRequest, errInvalidParameter, "Capture %q is not a field this session collects", capture)
			case field != capture && !s.have[field]:
				return fail(http.StatusBadRequest, errInvalidOperation, "capture %s before %s", field, capture)
			}
			s.capture, s.digits = capture, ""
			return http.StatusAccepted, e.resource(s)
		}
		switch status {
		case "cancel":
			s.state = sessionDone
			e.finish(s, CallbackFields{{"Result", ResultCancelled}})
		case "complete":
			if req := s.required(); len(req) > 0 {
				return fail(http.StatusBadRequest, errIncompleteInfo, "required payment information is incomplete: %s", strings.Join(req, ","))
			}
			if s.confirmation {
				s.state = sessionConfirming // the caller hears the last 4 digits and presses 1 or 2
			} else {
				e.process(s)
			}
		default:
			return fail(http.StatusBadRequest, errInvalidParameter, "Status must be complete or cancel, not %q", status)
		}
		return http.StatusAccepted, e.resource(s)
	})
}

// serveDigits is the caller's keypad: the digits go to the field being
// captured, "#" ends it, and so does a digit past the field's longest valid
// entry (an invalid entry); during the confirmation prompt 1 confirms and 2
// cancels. It needs the account's credentials like the REST API.
func (e *Emulator) serveDigits(w http.ResponseWriter, r *http.Request) {
	if !e.authenticated(w, r) || e.callbacksBehind(w) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the request body is not a form"})
		return
	}
	digits := r.PostForm.Get("Digits")
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byCall[r.PathValue("CallSid")]
	switch {
	case s == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no payment session on this call"})
		return
	case s.state == sessionConfirming:
		switch strings.TrimSuffix(digits, "#") {
		case "1":
			e.process(s)
		case "2":
			s.state = sessionDone
			e.finish(s, CallbackFields{{"Result", ResultCancelled}})
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the caller is asked to press 1 to confirm or 2 to cancel"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"state": s.state})
		return
	case s.state != sessionOpen || s.capture == "":
		writeJSON(w, http.StatusConflict, map[string]string{"error": "nothing is being captured: Update the payment with Capture first"})
		return
	}
	entry, ended := digits, false
	if i := strings.IndexByte(digits, '#'); i >= 0 {
		entry, ended = digits[:i], true
	}
	for _, c := range entry {
		if c < '0' || c > '9' {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Digits holds 0-9, and # to end the field"})
			return
		}
	}
	capture := s.capture
	if limit := maxEntry[strings.TrimSuffix(capture, matcherSuffix)]; len(s.digits)+len(entry) > limit {
		// One digit more than the field takes is enough to fail its check.
		entry, ended = entry[:limit+1-len(s.digits)], true
	}
	s.digits += entry
	if !ended {
		e.event(s, capture, true, "")
		writeJSON(w, http.StatusOK, map[string]string{"capture": capture, "state": "partial"})
		return
	}
	errorType := s.enter(capture, s.digits, e.o.Now())
	s.capture, s.digits = "", ""
	e.event(s, capture, false, errorType)
	writeJSON(w, http.StatusOK, map[string]string{"capture": capture, "state": "entered", "error_type": errorType})
}

// enter checks one finished entry as <Pay> would and returns its ErrorType.
func (s *paymentSession) enter(capture, value string, now time.Time) string {
	field := strings.TrimSuffix(capture, matcherSuffix)
	s.attempts[capture]++
	if field != capture { // the second entry of a matching field
		if value != s.firstOf[field] {
			delete(s.firstOf, field)
			s.have[field], s.matched[field] = false, false
			s.in.forget(field)
			return ErrorInputMatchingFailed
		}
		s.matched[field] = true
		return ""
	}
	var problem string
	switch {
	case len(value) > maxEntry[field]:
		problem = entryTooLong[field]
	case field == CaptureCardNumber:
		problem = s.in.enterCardNumber(s.pay, value)
		if problem == "" && s.have[CaptureSecurityCode] && s.in.enterSecurityCode(s.in.cvv) != "" {
			// A new brand can make the security code already entered the wrong length.
			s.have[CaptureSecurityCode] = false
		}
	case field == CaptureExpiration:
		problem = s.in.enterExpiry(value, now)
	case field == CaptureSecurityCode && !s.have[CaptureCardNumber]:
		problem = ErrorCaptureSequence
	case field == CaptureSecurityCode:
		problem = s.in.enterSecurityCode(value)
	case field == CapturePostalCode:
		problem = s.in.enterPostalCode(value)
	}
	s.have[field] = problem == ""
	s.matched[field] = false
	delete(s.firstOf, field)
	if problem == "" && s.matching[field] {
		s.firstOf[field] = value
	}
	if problem != "" {
		s.in.forget(field)
	}
	return problem
}

// forget drops a field that failed its check, so it is neither shown nor sent.
func (in *captured) forget(field string) {
	switch field {
	case CaptureCardNumber:
		in.pan, in.brand = "", ""
	case CaptureExpiration:
		in.expiry = card.Expiry{}
	case CaptureSecurityCode:
		in.cvv = ""
	case CapturePostalCode:
		in.postal = ""
	}
}

// event posts one statusCallback event of a capture: what is known so far,
// masked, what is still required, and the ErrorType of a failed entry. A
// partial result shows only how many digits have arrived.
func (e *Emulator) event(s *paymentSession, capture string, partial bool, errorType string) {
	f := CallbackFields{{"Sid", s.sid}, {"Capture", capture}, {"PartialResult", fmt.Sprint(partial)}}
	f.add("Required", strings.Join(s.required(), ","))
	f.add("ErrorType", errorType)
	for _, m := range s.in.maskedFields() {
		if partial && capture == CaptureCardNumber && (m.Name == "PaymentCardNumber" || m.Name == "PaymentCardType") {
			continue
		}
		f = append(f, m)
	}
	if partial && capture == CaptureCardNumber {
		// Only how many digits have arrived: nothing of the card is revealed.
		f.add("PaymentCardNumber", strings.Repeat("x", len(s.digits)))
	}
	e.post(s, f)
}

// process sends the session to its connector in the background, as Twilio
// answers the Update at once and posts the result when it has it.
func (e *Emulator) process(s *paymentSession) {
	s.state = sessionProcessing
	x := e.connectors[s.pay.PaymentConnector]
	req := s.pay.connectorRequest(s.method, e.o.NewTransactionID(), s.in)
	redact := redactor(s.in.pan, s.in.cvv)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		out, err := x.run(e.ctx, req, redact)
		if err != nil {
			out.result, out.paymentError = "internal-error", "the emulator stopped before the connector answered"
		}
		e.logf("connector %s for %s: %s", s.pay.PaymentConnector, s.sid, out.summary())
		var f CallbackFields
		f.add("Result", out.result)
		f.addConfirmation(s.method, out.reading())
		f.add("ConnectorError", out.connectorError)
		f.add("PaymentError", out.paymentError)
		// The gateway's parameters are not passed on in this flow, as with Twilio.
		e.mu.Lock()
		s.state = sessionDone
		e.finish(s, f)
		e.mu.Unlock()
	}()
}

// finish posts the session's final callback: the result, then the fields
// as Twilio shows them.
func (e *Emulator) finish(s *paymentSession, result CallbackFields) {
	f := append(CallbackFields{{"Sid", s.sid}}, result...)
	f = append(f, s.in.maskedFields()...)
	f.add("PaymentMethod", "credit-card")
	e.post(s, f)
}

// post sends a callback in the background, after the one before it, so that
// callbacks arrive in order and a handler may call the REST API back without
// waiting on itself. Close waits for them. Called with e.mu held.
func (e *Emulator) post(s *paymentSession, f CallbackFields) {
	p := webhookPoster{client: e.o.Client, accountSid: e.o.AccountSid, callSid: s.callSid, authToken: e.o.AuthToken, timeout: e.o.Timeout}
	target, prev, done := s.statusCallback, e.lastPost, make(chan struct{})
	e.lastPost = done
	e.pending.Add(1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(done)
		defer e.pending.Add(-1)
		if prev != nil {
			<-prev
		}
		_, _ = p.post(context.WithoutCancel(e.ctx), target, f)
	}()
}

// summary is the log line of a connector exchange: the last attempt's HTTP
// status (or why there was none), the connector's error_code, how many
// attempts it took, and the Result Twilio reports. It holds no card data:
// attempt errors are redacted, and the connector's message is left out.
func (out exchangeOutcome) summary() string {
	var b strings.Builder
	if n := len(out.attempts); n > 0 && out.attempts[n-1].StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", out.attempts[n-1].StatusCode)
	} else {
		b.WriteString("no answer")
	}
	if out.connectorError != "" {
		fmt.Fprintf(&b, " error_code=%s", out.connectorError)
	}
	if len(out.attempts) == 1 {
		b.WriteString(", 1 attempt")
	} else {
		fmt.Fprintf(&b, ", %d attempts", len(out.attempts))
	}
	fmt.Fprintf(&b, " → %s", out.result)
	if out.response != nil && out.response.ID != "" {
		fmt.Fprintf(&b, " (%s)", out.response.ID)
	}
	return b.String()
}
