package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

// connectorHandler is the connector endpoint of one voice platform (SPEC
// §5, §5.6): Twilio's Generic Pay Connector, Telnyx's, SignalWire's. The
// platform's wire format only reads the body and writes the answer; the
// credentials, the checks and the idempotency are the same for all. Missing
// or bad credentials answer 401 and rate limited ones 429; the rest is the
// platform's (Twilio and Telnyx: 200 for every authenticated request, so
// that error_code is passed on; SignalWire: 402 for a refusal).
func (s *Server) connectorHandler(platform voice.Platform) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.handleConnector(w, r, platform) }
}

func (s *Server) handleConnector(w http.ResponseWriter, r *http.Request, platform voice.Platform) {
	info := infoFrom(r.Context())
	// The body is JSON whatever the Content-Type: Twilio may send none, and a
	// form content type must not make anything parse a form.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, twilio.MaxRequestBytes+1))
	req, parseErr := platform.ParseRequest(body)
	respond := func(res ivrpay.IVRResult) {
		info.outcome = res.ErrorCode
		if info.outcome == "" {
			info.outcome = "OK"
		}
		status, b := platform.Answer(req.Method, res)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}
	refuse := func(code, message string) { respond(ivrpay.IVRResult{ErrorCode: code, ErrorMessage: message}) }

	// 1. Credentials: username api_key, password an API key.
	user, password, ok := r.BasicAuth()
	addr := s.limitAddress(r)
	credLimit, addrLimit := s.connectorLimits(r, addr)
	if s.rateLimited(w, r, credLimit.key, addrLimit.key, credLimit.key) {
		refuse(ivrpay.ConnRateLimited, "too many failed authentications with these credentials or from this address; check the connector's Username and Password")
		return
	}
	if !ok || user != "api_key" || password == "" {
		s.authFailed(r, addr, credLimit, addrLimit)
		refuse(ivrpay.ConnUnauthorized, "unauthorized: set the connector's Username to api_key and its Password to an IVR API key (in a connector URL: https://api_key:KEY@…)")
		return
	}
	key, err := s.Auth.Authenticate(r.Context(), password)
	if err != nil {
		if ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED {
			s.authFailed(r, addr, credLimit, addrLimit)
			refuse(ivrpay.ConnUnauthorized, "unauthorized: the connector's Password is not an enabled API key of this deployment")
		} else {
			info.err = err
			refuse(ivrpay.ConnInternal, "internal error before the payment was looked at; nothing was charged: try the payment again")
		}
		return
	}
	info.keyID, info.platformID = key.ID, key.PlatformID
	s.authSucceeded(r, credLimit.key)

	// 2. The body.
	switch {
	case readErr != nil:
		refuse(ivrpay.ConnInvalidRequest, "the request body could not be read")
		return
	case len(body) > twilio.MaxRequestBytes:
		refuse(ivrpay.ConnInvalidRequest, "the request body is larger than 64 KiB")
		return
	case parseErr != nil:
		refuse(ivrpay.ConnInvalidRequest, parseErr.Error())
		return
	}

	ctx := ivrpay.NewContextWithPrincipal(r.Context(), key)
	res, err := s.Connector.ProcessIVR(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			info.outcome = "client gone"
			return // the platform hung up; its retry gets the answer.
		}
		info.err = err
		refuse(ivrpay.ConnInternal, internalErrorMessage)
		return
	}
	respond(res)
}

// internalErrorMessage answers a connector request that failed inside
// ivrpay. The voice platforms do not retry an answered request (SPEC §5.2),
// so the message says how to learn the outcome instead of promising a retry.
const internalErrorMessage = "internal error: the payment's outcome could not be given; the same request sent again with the same transaction_id returns it"
