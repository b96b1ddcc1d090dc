package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// DefaultAccountSid is the AccountSid the simulator puts on its callbacks
// when none is given: a fixed test value, so that a handler's logs compare.
const DefaultAccountSid = "AC0123456789abcdef0123456789abcdef"

// SignatureHeader is the header Twilio signs its webhook requests with.
const SignatureHeader = "X-Twilio-Signature"

// userAgent is what the simulator and the emulator call themselves; Twilio
// sends "TwilioProxy/1.1", and a handler that checks for it is told apart.
const userAgent = "TwilioProxy/1.1 (ivrpay)"

// NewSid returns a Twilio-style SID: the two-letter prefix ("CA", "PK", …)
// and 32 random hex digits.
func NewSid(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// Signature computes X-Twilio-Signature as Twilio does for a form POST: the
// base64 HMAC-SHA1, keyed with the auth token, of the full URL followed by
// each parameter's name and value, sorted by name (a repeated name's values
// sorted too).
func Signature(authToken, fullURL string, form url.Values) string {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, name := range names {
		values := append([]string(nil), form[name]...)
		sort.Strings(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// webhookPoster posts callbacks as Twilio does: form-encoded, with the
// call's AccountSid and CallSid, and signed when there is an auth token.
type webhookPoster struct {
	client                         *http.Client
	accountSid, callSid, authToken string
	timeout                        time.Duration
}

// post sends fields to target and returns the answer's HTTP status; a
// non-2xx answer is an error too.
func (p webhookPoster) post(ctx context.Context, target string, fields CallbackFields) (int, error) {
	form := url.Values{}
	form.Set("AccountSid", p.accountSid)
	form.Set("CallSid", p.callSid)
	for _, f := range fields {
		form.Set(f.Name, f.Value)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	if p.authToken != "" {
		req.Header.Set(SignatureHeader, Signature(p.authToken, target, form))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
