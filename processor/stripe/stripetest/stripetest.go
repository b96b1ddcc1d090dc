// Package stripetest runs Stripe's official mock, stripe-mock, for tests:
// StartMock starts it on a loopback port, and Recorder is a reverse proxy in
// front of it that records every request (form, Idempotency-Key,
// Stripe-Account) and may rewrite answers into the states a real Stripe
// returns (stripe-mock answers canned objects: a PaymentIntent always reads
// requires_payment_method). Fake is a replaying Stripe of its own, steered by
// amount, for the outcomes stripe-mock cannot give (declines, lost answers,
// timeouts, 5xx).
package stripetest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the stripe-mock the tests are written against.
const Version = "v0.203.0"

// StartMock runs stripe-mock on a free loopback port until the test ends and
// returns its base URL. It skips when stripe-mock is not installed, except
// in CI (CI=true), where that is a failure.
func StartMock(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			if _, serr := os.Stat(home + "/go/bin/stripe-mock"); serr == nil {
				bin, err = home+"/go/bin/stripe-mock", nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("stripe-mock is not installed (go install github.com/stripe/stripe-mock@" + Version + ")")
		}
		t.Skip("stripe-mock is not installed (go install github.com/stripe/stripe-mock@" + Version + ")")
	}
	// Both listeners on loopback with system-chosen ports: stripe-mock opens
	// HTTPS on all interfaces at 12112 unless told otherwise.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(15 * time.Second):
		t.Fatal("stripe-mock did not start within 15 s")
	}
	// Listening is logged before serving; wait until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+"/v1/balance", nil)
		req.SetBasicAuth("sk_test_stripetest", "")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock at %s does not answer: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Request is one request that went through a Recorder.
type Request struct {
	Method, Path, Key, Account string
	// LiveKey: the request carried a live key (which the Recorder handed
	// stripe-mock, which only takes test keys, as a test key).
	LiveKey bool
	Form    url.Values
	Status  int
	Body    string // the answer, for failure messages
}

// Recorder is a reverse proxy in front of stripe-mock that keeps every
// request's form and headers and every answer's status.
type Recorder struct {
	// URL is where to send requests.
	URL string

	mu   sync.Mutex
	reqs []*Request
}

// NewRecorder starts a recording proxy to target. A live key (a production
// deployment's) reaches stripe-mock as a test key, since it takes no other.
// rewrite, when not nil,
// may change each answer's body (it gets the request and the body).
func NewRecorder(t testing.TB, target string, rewrite func(r *Request, body []byte) []byte) *Recorder {
	t.Helper()
	return newRecorder(t, target, rewrite, false)
}

// NewTLSRecorder is NewRecorder serving https with httptest's certificate
// (for 127.0.0.1), as a production deployment needs (SSL_CERT_FILE).
func NewTLSRecorder(t testing.TB, target string, rewrite func(r *Request, body []byte) []byte) *Recorder {
	t.Helper()
	return newRecorder(t, target, rewrite, true)
}

// startServer starts srv, with TLS when useTLS.
func startServer(srv *httptest.Server, useTLS bool) {
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
}

func newRecorder(t testing.TB, target string, rewrite func(r *Request, body []byte) []byte, useTLS bool) *Recorder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(res *http.Response) error {
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		r := res.Request.Context().Value(recordKey{}).(*Request)
		if rewrite != nil && res.StatusCode == http.StatusOK {
			body = rewrite(r, body)
			res.ContentLength = int64(len(body))
			res.Header.Del("Content-Length")
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		rec.mu.Lock()
		r.Status, r.Body = res.StatusCode, string(body)
		rec.mu.Unlock()
		return nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if req.Method == http.MethodGet {
			form = req.URL.Query()
		}
		r := &Request{Method: req.Method, Path: req.URL.Path, Key: req.Header.Get("Idempotency-Key"),
			Account: req.Header.Get("Stripe-Account"), Form: form}
		if auth := req.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer sk_live_") || strings.HasPrefix(auth, "Bearer rk_live_") {
			r.LiveKey = true
			req.Header.Set("Authorization", strings.Replace(auth, "_live_", "_test_", 1))
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r)
		rec.mu.Unlock()
		proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), recordKey{}, r)))
	}))
	startServer(srv, useTLS)
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

type recordKey struct{}

// Take returns the requests recorded since the last Take.
func (rec *Recorder) Take() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]Request, len(rec.reqs))
	for i, r := range rec.reqs {
		out[i] = *r
	}
	rec.reqs = nil
	return out
}
