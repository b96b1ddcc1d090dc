package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// handleConnector is Twilio's Generic Pay Connector endpoint. It answers 401
// for bad credentials and 200 for everything else, declines and validation
// errors included, so that Twilio passes error_code on as ConnectorError.
func (s *Server) handleConnector(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	// The body is JSON whatever the Content-Type: Twilio may send none, and a
	// form content type must not make anything parse a form.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, twilio.MaxRequestBytes+1))
	req, parseErr := twilio.ParseConnectorRequest(body)
	respond := func(status int, res twilio.ConnectorResponse) {
		res.Method = req.Method
		info.outcome = res.ErrorCode
		if info.outcome == "" {
			info.outcome = "OK"
		}
		b, _ := json.Marshal(res)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}

	// 1. Credentials: username api_key, password an API key.
	user, password, ok := r.BasicAuth()
	credLimit, addrLimit := s.connectorLimits(r)
	if s.rateLimited(w, r, credLimit.key) || (!s.Limiter.KnownGood(credLimit.key) && s.rateLimited(w, r, addrLimit.key)) {
		respond(http.StatusTooManyRequests, twilio.ConnectorResponse{ErrorCode: "RATE_LIMITED",
			ErrorMessage: "too many failed authentications with these credentials or from this address; check the connector's Username and Password"})
		return
	}
	if !ok || user != "api_key" || password == "" {
		s.authFailed(r, credLimit, addrLimit)
		respond(http.StatusUnauthorized, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnUnauthorized,
			ErrorMessage: "unauthorized: set the connector's Username to api_key and its Password to an IVR API key"})
		return
	}
	key, err := s.Auth.Authenticate(r.Context(), password)
	if err != nil {
		if ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED {
			s.authFailed(r, credLimit, addrLimit)
			respond(http.StatusUnauthorized, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnUnauthorized,
				ErrorMessage: "unauthorized: the connector's Password is not an enabled API key of this deployment"})
		} else {
			info.err = err
			respond(http.StatusOK, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnInternal, ErrorMessage: "internal error; Twilio may retry"})
		}
		return
	}
	info.keyID, info.platformID = key.ID, key.PlatformID
	s.Limiter.Succeeded(credLimit.key)

	// 2. The body.
	switch {
	case readErr != nil:
		respond(http.StatusOK, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnInvalidRequest, ErrorMessage: "the request body could not be read"})
		return
	case len(body) > twilio.MaxRequestBytes:
		respond(http.StatusOK, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnInvalidRequest, ErrorMessage: "the request body is larger than 64 KiB"})
		return
	case parseErr != nil:
		respond(http.StatusOK, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnInvalidRequest, ErrorMessage: parseErr.Error()})
		return
	}

	ctx := ivrpay.NewContextWithPrincipal(r.Context(), key)
	res, err := s.Connector.ProcessIVR(ctx, ivrpay.IVRRequest{
		Method: req.Method, TransactionID: req.TransactionID, CardNumber: req.CardNumber, CVV: req.CVV,
		ExpiryMonth: req.ExpiryMonth, ExpiryYear: req.ExpiryYear, PostalCode: req.PostalCode, ACH: req.IsACH(),
		AmountPresent: req.AmountPresent, Amount: req.Amount, CurrencyCode: req.CurrencyCode, Parameters: req.Parameters,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			info.outcome = "client gone"
			return // Twilio hung up; its retry gets the answer.
		}
		info.err = err
		respond(http.StatusOK, twilio.ConnectorResponse{ErrorCode: ivrpay.ConnInternal, ErrorMessage: "internal error; Twilio may retry with the same transaction_id"})
		return
	}
	respond(http.StatusOK, twilio.ConnectorResponse{ID: res.ID, ErrorCode: res.ErrorCode, ErrorMessage: res.ErrorMessage, Parameters: res.Parameters})
}
