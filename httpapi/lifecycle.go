package httpapi

import (
	"net/http"

	"github.com/ivrpay/ivrpay"
)

// handleCapturePayin captures an AUTHORIZED payin. The body is optional: no
// body, or no amount, captures the full authorized amount.
func (s *Server) handleCapturePayin(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.PayinCapture
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &body); err != nil {
			return err
		}
	}
	p, err := s.Lifecycle.CapturePayin(r.Context(), r.PathValue("id"), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, p)
	return nil
}

func (s *Server) handleVoidOrRefund(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.VoidOrRefund
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	res, err := s.Lifecycle.VoidOrRefund(r.Context(), r.PathValue("id"), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleGetRefund(w http.ResponseWriter, r *http.Request) error {
	refund, err := s.Lifecycle.FindRefund(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, refund)
	return nil
}

func (s *Server) handleListChargebacks(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	l, err := s.Chargebacks.ListChargebacks(r.Context(), ivrpay.ChargebackFilter{Page: page,
		MerchantID: q.Get("merchant_id"), PayinID: q.Get("payin_id"), Status: q.Get("status")})
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetChargeback(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Chargebacks.FindChargeback(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleCreateWebhookEndpoint(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.WebhookEndpointCreate
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	e, err := s.WebhookEndpoints.CreateWebhookEndpoint(r.Context(), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, e)
	return nil
}

func (s *Server) handleListWebhookEndpoints(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	l, err := s.WebhookEndpoints.ListWebhookEndpoints(r.Context(), page)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetWebhookEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := s.WebhookEndpoints.FindWebhookEndpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, e)
	return nil
}

// handleRotateWebhookSecret answers with the endpoint and its new secret,
// shown this once. No request body.
func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	e, err := s.WebhookEndpoints.RotateWebhookEndpointSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, e)
	return nil
}

func (s *Server) handleDeleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := s.WebhookEndpoints.DeleteWebhookEndpoint(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	writeData(w, http.StatusOK, nil)
	return nil
}

func (s *Server) handleListWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	l, err := s.WebhookEndpoints.ListWebhookDeliveries(r.Context(), r.PathValue("id"), page)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}
