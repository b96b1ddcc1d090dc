package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// handleConnector is Twilio's Generic Pay Connector endpoint. It answers 401
// for missing or bad credentials, 429 while the credentials are rate limited,
// and 200 for every request that authenticated, declines and validation
// errors included, so that Twilio passes error_code on as ConnectorError.
func (s *Server) handleConnector(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	// The body is JSON whatever the Content-Type: Twilio may send none, and a
	// form content type must not make anything parse a form.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, twilio.MaxRequestBytes+1))
	req, parseErr := twilio.ParseConnectorRequest(body)
	respond := func(res ivrpay.IVRResult) {
		info.outcome = res.ErrorCode
		if info.outcome == "" {
			info.outcome = "OK"
		}
		// MarshalJSON directly: json.Marshal would re-validate and compact its bytes.
		b, _ := twilio.ConnectorResponse{Method: req.Method, ID: res.ID, ErrorCode: res.ErrorCode,
			ErrorMessage: res.ErrorMessage, Parameters: res.Parameters}.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(connectorStatus(res.ErrorCode))
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
		refuse(ivrpay.ConnUnauthorized, "unauthorized: set the connector's Username to api_key and its Password to an IVR API key")
		return
	}
	key, err := s.Auth.Authenticate(r.Context(), password)
	if err != nil {
		if ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED {
			s.authFailed(r, addr, credLimit, addrLimit)
			refuse(ivrpay.ConnUnauthorized, "unauthorized: the connector's Password is not an enabled API key of this deployment")
		} else {
			info.err = err
			refuse(ivrpay.ConnInternal, "internal error; Twilio may retry")
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
	res, err := s.Connector.ProcessIVR(ctx, ivrpay.IVRRequest{
		Method: req.Method, TransactionID: req.TransactionID, CardNumber: req.CardNumber, CVV: req.CVV,
		ExpiryMonth: req.ExpiryMonth, ExpiryYear: req.ExpiryYear, PostalCode: req.PostalCode, ACH: req.IsACH(),
		Amount: ivrpay.ParseIVRAmount(req.AmountPresent, req.Amount), CurrencyCode: req.CurrencyCode, Parameters: req.Parameters,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			info.outcome = "client gone"
			return // Twilio hung up; its retry gets the answer.
		}
		info.err = err
		refuse(ivrpay.ConnInternal, "internal error; Twilio may retry with the same transaction_id")
		return
	}
	respond(res)
}

// connectorStatus is the HTTP status of a connector answer: the one place
// where a connector error code becomes a status.
func connectorStatus(code string) int {
	switch code {
	case ivrpay.ConnUnauthorized:
		return http.StatusUnauthorized
	case ivrpay.ConnRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusOK
}
