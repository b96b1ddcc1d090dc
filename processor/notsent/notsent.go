// Package notsent tells a processor request that never left this process
// from one whose fate is unknown. Go's HTTP transport refuses some requests
// before it asks for a connection (a header value with a newline, an
// unsupported URL): such a request cannot have reached the processor, so
// the first attempt of an operation refused this way moved no money and is
// not an unknown outcome (SPEC §9).
package notsent

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Transport is an http.RoundTripper whose errors wrap ivrpay.ErrNotSent when
// the request failed before any connection was asked for.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip sends req through Base, watching whether it asked for a connection.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var asked atomic.Bool
	trace := &httptrace.ClientTrace{GetConn: func(string) { asked.Store(true) }}
	res, err := base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil && !asked.Load() {
		return nil, &notSentError{err}
	}
	return res, err
}

type notSentError struct{ err error }

func (e *notSentError) Error() string   { return fmt.Sprintf("%v (%v)", e.err, ivrpay.ErrNotSent) }
func (e *notSentError) Unwrap() []error { return []error{ivrpay.ErrNotSent, e.err} }

// Client returns a copy of c (nil: a client with timeout) whose transport
// is wrapped in a Transport.
func Client(c *http.Client, timeout time.Duration) *http.Client {
	out := &http.Client{Timeout: timeout}
	if c != nil {
		copied := *c
		out = &copied
	}
	out.Transport = &Transport{Base: out.Transport}
	return out
}
