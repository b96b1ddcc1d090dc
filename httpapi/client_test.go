package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestClient runs every typed method of httpapi.Client against the real
// server on loopback, and checks that error answers come back as
// *httpapi.Error with the status and the envelope's code and field.
func TestClient(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstore.EngineSQLite)
	ctx := context.Background()
	admin := &httpapi.Client{BaseURL: b.url + "/", APIKey: b.admin, HTTP: b.client}

	m, err := admin.CreateMerchant(ctx, ivrpay.MerchantCreate{Name: "Client shop"})
	if err != nil || m.ID == "" || m.PlatformID != b.platformID {
		t.Fatalf("CreateMerchant = %+v, %v", m, err)
	}
	merchants, err := admin.ListMerchants(ctx, ivrpay.Page{Limit: 1})
	if err != nil || len(merchants.Results) != 1 || merchants.TotalResults < 2 {
		t.Fatalf("ListMerchants(limit 1) = %+v, %v", merchants, err)
	}

	key, err := admin.CreateAPIKey(ctx, []ivrpay.Statement{{Permissions: []string{"payin:create", "payment_method:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: b.platformID}}}})
	if err != nil || key.Secret == "" {
		t.Fatalf("CreateAPIKey = %+v, %v", key, err)
	}
	ivr := &httpapi.Client{BaseURL: b.url, APIKey: key.Secret, HTTP: b.client}
	_, err = ivr.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: b.merchantID, IdempotencyKey: "k", Amount: "1000", CurrencyCode: "USD"})
	var apiErr *httpapi.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || apiErr.Code != ivrpay.EFORBIDDEN || apiErr.Message == "" {
		t.Fatalf("CreatePayinConfig with the IVR key: %v, want a 403 *httpapi.Error", err)
	}
	_, err = admin.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: b.merchantID, IdempotencyKey: "k", Amount: "1000", CurrencyCode: "EUR"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Field != "currency_code" {
		t.Fatalf("CreatePayinConfig in EUR: %v, want a 400 naming currency_code", err)
	}
	if _, err := admin.GetPayin(ctx, "sbx_pyi_nope"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("GetPayin of an unknown id: %v, want 404", err)
	}

	cfg, err := admin.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: b.merchantID, IdempotencyKey: "client-1", Amount: "1000", CurrencyCode: "USD",
		Metadata: json.RawMessage(`{"channel":"client"}`)})
	if err != nil || cfg.Amount != 1000 {
		t.Fatalf("CreatePayinConfig = %+v, %v", cfg, err)
	}
	if got, err := admin.GetPayinConfig(ctx, cfg.ID); err != nil || got.ID != cfg.ID || got.Payin != nil {
		t.Fatalf("GetPayinConfig = %+v, %v", got, err)
	}
	payinID := b.ivr(key.Secret, chargeBody(cfg.ID)).wantOK(t, "charge")
	p, err := admin.GetPayin(ctx, payinID)
	if err != nil || p.PayinConfigID != cfg.ID || p.Source != ivrpay.PayinSourceIVR || p.IVR == nil {
		t.Fatalf("GetPayin = %+v, %v", p, err)
	}
	payins, err := admin.ListPayins(ctx, ivrpay.PayinFilter{Source: ivrpay.PayinSourceIVR, Page: ivrpay.Page{Limit: 10}})
	if err != nil || len(payins.Results) != 1 || payins.Results[0].ID != payinID {
		t.Fatalf("ListPayins(source IVR) = %+v, %v", payins, err)
	}
	void, err := admin.VoidOrRefund(ctx, payinID, ivrpay.VoidOrRefund{IdempotencyKey: "void-1", Reason: "REQUESTED_BY_CUSTOMER"})
	if err != nil || void.Type != "VOID" || void.PayinStatus != ivrpay.PayinStatusCanceled {
		t.Fatalf("VoidOrRefund = %+v, %v", void, err)
	}

	pmc, err := admin.CreatePaymentMethodConfig(ctx, ivrpay.PaymentMethodConfigCreate{PlatformID: b.platformID, IdempotencyKey: "card-1"})
	if err != nil || pmc.ID == "" {
		t.Fatalf("CreatePaymentMethodConfig = %+v, %v", pmc, err)
	}
	if got, err := admin.GetPaymentMethodConfig(ctx, pmc.ID); err != nil || got.ID != pmc.ID {
		t.Fatalf("GetPaymentMethodConfig = %+v, %v", got, err)
	}
	pmID := b.ivr(key.Secret, tokenizeBody(pmc.ID)).wantOK(t, "tokenize")
	if pm, err := admin.GetPaymentMethod(ctx, pmID); err != nil || pm.ID != pmID || pm.Card == nil {
		t.Fatalf("GetPaymentMethod = %+v, %v", pm, err)
	}

	// Capture needs AUTHORIZE, which needs API version 2024-10-16.
	v2024 := &httpapi.Client{BaseURL: b.url, APIKey: b.admin, HTTP: b.client, APIVersion: string(ivrpay.APIVersion20241016)}
	authCfg, err := v2024.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: b.merchantID, IdempotencyKey: "client-2", Amount: "700", CurrencyCode: "USD",
		ProcessingMode: ivrpay.ProcessingModeAuthorize})
	if err != nil {
		t.Fatalf("CreatePayinConfig(AUTHORIZE) at 2024-10-16: %v", err)
	}
	authorized, err := v2024.ChargePaymentMethod(ctx, pmID, authCfg.ID)
	if err != nil || authorized.Status != ivrpay.PayinStatusAuthorized {
		t.Fatalf("ChargePaymentMethod = %+v, %v", authorized, err)
	}
	captured, err := v2024.CapturePayin(ctx, authorized.ID, ivrpay.PayinCapture{})
	if err != nil || captured.CapturedAmount != 700 {
		t.Fatalf("CapturePayin = %+v, %v", captured, err)
	}

	hook, err := admin.CreateWebhookEndpoint(ctx, ivrpay.WebhookEndpointCreate{URL: "https://hooks.example.com/ivrpay"})
	if err != nil || hook.ID == "" || hook.Secret == "" {
		t.Fatalf("CreateWebhookEndpoint = %+v, %v", hook, err)
	}
	if _, err := admin.ListWebhookDeliveries(ctx, hook.ID, ivrpay.Page{}); err != nil {
		t.Fatalf("ListWebhookDeliveries: %v", err)
	}

	// Do is the generic call: any path, the data into any value.
	var keys ivrpay.List[json.RawMessage]
	if err := admin.Do(ctx, "GET", "/v1/api_keys?limit=1", nil, &keys); err != nil || len(keys.Results) != 1 {
		t.Fatalf("Do(GET /v1/api_keys?limit=1) = %+v, %v", keys, err)
	}
}

// TestClientErrorOfNoEnvelope checks the error of an answer that is not the
// API's envelope (a proxy's error page): the status is kept, the code is
// empty and the message quotes the answer.
func TestClientErrorOfNoEnvelope(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "502 bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	c := &httpapi.Client{BaseURL: srv.URL, APIKey: "k"}
	err := c.Do(context.Background(), "GET", "/v1/merchants", nil, nil)
	var apiErr *httpapi.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || apiErr.Code != "" || !strings.Contains(apiErr.Message, "bad gateway") {
		t.Fatalf("GET through a failing proxy: %v, want a 502 *httpapi.Error quoting the answer", err)
	}
}
