package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ivrpay/ivrpay"
)

func pageFrom(r *http.Request) (ivrpay.Page, error) {
	q := r.URL.Query()
	p := ivrpay.Page{StartKey: q.Get("start_key")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > ivrpay.MaxPageLimit {
			return p, ivrpay.FieldErrorf("limit", "must be an integer from 1 to %d", ivrpay.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Statements json.RawMessage `json:"statements"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	statements, err := ivrpay.ParseStatements(body.Statements)
	if err != nil {
		return err
	}
	key, err := s.APIKeys.CreateAPIKey(r.Context(), statements)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, key)
	return nil
}

// handleCreateSession is POST /v1/sessions: a short-lived key for a browser
// form or one call. Statements without a platform constraint get the
// caller's platform.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.SessionCreateBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	in, err := body.Parse(ivrpay.PrincipalFromContext(r.Context()).PlatformID)
	if err != nil {
		return err
	}
	ses, err := s.Sessions.CreateSession(r.Context(), in)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, ses)
	return nil
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	l, err := s.APIKeys.ListAPIKeys(r.Context(), page)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetAPIKey(w http.ResponseWriter, r *http.Request) error {
	key, err := s.APIKeys.FindAPIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, key)
	return nil
}

func (s *Server) handleSetAPIKeyStatus(status string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		key, err := s.APIKeys.SetAPIKeyStatus(r.Context(), r.PathValue("id"), status)
		if err != nil {
			return err
		}
		writeData(w, http.StatusOK, key)
		return nil
	}
}

func (s *Server) handleDeleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.APIKeys.DeleteAPIKey(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	writeData(w, http.StatusOK, nil)
	return nil
}

func (s *Server) handleCreateMerchant(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.MerchantCreate
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	m, err := s.Merchants.CreateMerchant(r.Context(), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, m)
	return nil
}

func (s *Server) handleListMerchants(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	l, err := s.Merchants.ListMerchants(r.Context(), page)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetMerchant(w http.ResponseWriter, r *http.Request) error {
	m, err := s.Merchants.FindMerchant(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, m)
	return nil
}

func (s *Server) handleCreatePayinConfig(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.PayinConfigCreate
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	c, err := s.PayinConfigs.CreatePayinConfig(r.Context(), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleGetPayinConfig(w http.ResponseWriter, r *http.Request) error {
	c, err := s.PayinConfigs.FindPayinConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleCreatePaymentMethodConfig(w http.ResponseWriter, r *http.Request) error {
	var body ivrpay.PaymentMethodConfigCreate
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	c, err := s.PaymentMethodConfigs.CreatePaymentMethodConfig(r.Context(), body)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleGetPaymentMethodConfig(w http.ResponseWriter, r *http.Request) error {
	c, err := s.PaymentMethodConfigs.FindPaymentMethodConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleListPayins(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	l, err := s.Payins.ListPayins(r.Context(), ivrpay.PayinFilter{Page: page,
		MerchantID: q.Get("merchant_id"), Status: q.Get("status"), Source: q.Get("source")})
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetPayin(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Payins.FindPayin(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, p)
	return nil
}

func (s *Server) handleListPaymentMethods(w http.ResponseWriter, r *http.Request) error {
	page, err := pageFrom(r)
	if err != nil {
		return err
	}
	l, err := s.PaymentMethods.ListPaymentMethods(r.Context(), page)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, l)
	return nil
}

func (s *Server) handleGetPaymentMethod(w http.ResponseWriter, r *http.Request) error {
	pm, err := s.PaymentMethods.FindPaymentMethod(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, pm)
	return nil
}

func (s *Server) handleChargePaymentMethod(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		PayinConfigID string `json:"payin_config_id"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	p, err := s.Payins.ChargePaymentMethod(r.Context(), r.PathValue("id"), body.PayinConfigID)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, p)
	return nil
}

func (s *Server) handleDeactivatePaymentMethod(w http.ResponseWriter, r *http.Request) error {
	pm, err := s.PaymentMethods.DeactivatePaymentMethod(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, pm)
	return nil
}
