package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/adyen"
	"github.com/ivrpay/ivrpay/processor/stripe"
)

// MaxProcessorEventBytes bounds an event delivery's body. It is larger than
// MaxBodyBytes: a Stripe dispute event carries the dispute's evidence text,
// which may run to some 150 KB, and a delivery refused for its size would
// be refused again at every retry and lost.
const MaxProcessorEventBytes = 1 << 20

// eventWire is one processor's side of the event endpoints: how a delivery
// is verified and acknowledged.
type eventWire struct {
	kind string
	// verify checks the delivery's signatures with the account's secrets
	// and returns its events (errors wrapping ivrpay.ErrEventSignature are
	// authentication failures).
	verify func(account string, body []byte, r *http.Request, secrets []string) ([]ivrpay.ProcessorEvent, error)
	// ack answers a delivery whose every event the receiver took.
	ack func(w http.ResponseWriter)
}

var (
	stripeEvents = eventWire{
		kind: ivrpay.ProcessorKindStripe,
		verify: func(account string, body []byte, r *http.Request, secrets []string) ([]ivrpay.ProcessorEvent, error) {
			return stripe.VerifyEvent(account, body, r.Header.Get("Stripe-Signature"), secrets)
		},
		ack: func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"received": true}) },
	}
	adyenNotifications = eventWire{
		kind: ivrpay.ProcessorKindAdyen,
		verify: func(account string, body []byte, _ *http.Request, secrets []string) ([]ivrpay.ProcessorEvent, error) {
			return adyen.VerifyNotifications(account, body, secrets)
		},
		ack: func(w http.ResponseWriter) { writeText(w, http.StatusOK, adyen.Accepted) },
	}
)

// processorEventsHandler serves one processor's event endpoint (SPEC §4.2).
// There is no API key: the processor's signature, made with the account's
// events secret, authenticates each delivery. An account that does not
// exist, is of another kind or has no events secret answers 404; a missing
// or bad signature 400, applying nothing, counted and audited as an
// authentication failure (per client address and account, and per address,
// like the connector's credentials) and rate limited (429). Every event of
// a verified delivery goes to the receiver, which stores it durably (and
// dedupes it) before the delivery is acknowledged; a receiver that fails
// answers 500, and the processor delivers again.
func (s *Server) processorEventsHandler(wire eventWire) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		name := r.PathValue("name")
		addr := s.limitAddress(r)
		credential, address := limit{}, limit{EventsAddressKey(addr), ConnectorAddressFailureLimit}
		if s.Limiter != nil {
			credential = limit{s.Limiter.EventsCredentialKey(addr, name), AuthFailureLimit}
		}
		if s.rateLimited(w, r, credential.key, address.key, credential.key) {
			writeText(w, http.StatusTooManyRequests, "too many deliveries with bad signatures from this address; retry after the time in Retry-After")
			return
		}
		kind, secrets, err := "", []string(nil), error(nil)
		if s.EventSecrets != nil && s.ProcessorEvents != nil {
			kind, secrets, err = s.EventSecrets.EventsSecrets(r.Context(), name)
		}
		switch {
		case err != nil && ivrpay.ErrorCode(err) != ivrpay.ENOTFOUND:
			info.err = err
			writeText(w, http.StatusInternalServerError, "internal error; deliver the events again")
			return
		case err != nil || kind != wire.kind:
			// The name is not echoed: it came from the URL.
			info.outcome = "NO_ACCOUNT"
			writeText(w, http.StatusNotFound, fmt.Sprintf("no %s processor account of this name has an events secret "+
				"(ivrpay admin processor set-events-secret NAME --events-secret-file F)", wire.kind))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxProcessorEventBytes+1))
		switch {
		case err != nil:
			writeText(w, http.StatusBadRequest, "the request body could not be read")
			return
		case len(body) > MaxProcessorEventBytes:
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d KiB", MaxProcessorEventBytes>>10))
			return
		}
		events, err := wire.verify(name, body, r, secrets)
		if errors.Is(err, ivrpay.ErrEventSignature) {
			info.outcome = "BAD_SIGNATURE"
			s.authFailed(r, addr, credential, address)
			writeText(w, http.StatusBadRequest, fmt.Sprintf("the %s signature is missing, too old or not made with this account's events secret; nothing was applied", wire.kind))
			return
		} else if err != nil {
			// Signed with the account's secret, but not something ivrpay can
			// read: the operator sees it in the processor's dashboard and here.
			info.outcome, info.err = "UNREADABLE_EVENT", err
			writeText(w, http.StatusBadRequest, "the delivery is signed but is not an event ivrpay can read; nothing was applied")
			return
		}
		s.authSucceeded(r, credential.key)
		for _, e := range events {
			if err := s.ProcessorEvents.ReceiveProcessorEvent(r.Context(), e); err != nil {
				info.err = fmt.Errorf("receiving %s event %s: %w", e.Kind, e.ID, err)
				writeText(w, http.StatusInternalServerError, "internal error; deliver the events again")
				return
			}
		}
		info.outcome = "OK"
		wire.ack(w)
	}
}

// writeText answers a plain-text body.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, text)
}
