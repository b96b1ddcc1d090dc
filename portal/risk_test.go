package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
)

// TestRiskBlocksPage: the portal lists the platform's active risk blocks and
// tells, on a payin a rule refused, that it never reached the processor.
func TestRiskBlocksPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := e.store.RecordRiskBlocks(ctx, []ivrpay.RiskBlock{{Kind: ivrpay.RiskKindMerchant, Value: e.merchant.ID,
		PlatformID: e.platform.ID, MerchantID: e.merchant.ID, Rule: ivrpay.RiskRuleMerchantBreaker,
		Detail: "20 declines of 24 IVR attempts in 10m", Until: now.Add(15 * time.Minute), CreatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := e.store.CreatePayinConfig(ivrpay.NewContextWithPrincipal(ctx, e.admin), ivrpay.PayinConfigCreate{
		MerchantID: e.merchant.ID, IdempotencyKey: "risk-page", Amount: "1000", CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"method": "charge", "transaction_id": "CA-risk-page", "cardnumber": "4111111111111111",
		"cvv": "123", "expiry_month": "12", "expiry_year": "39", "postal_code": "94111", "amount": "10.00", "currency_code": "usd",
		"parameters": map[string]string{"payin_config_id": cfg.ID}})
	req, _ := http.NewRequest("POST", e.srv.URL+httpapi.ConnectorPath, bytes.NewReader(body))
	req.SetBasicAuth("api_key", e.ivrKey.Secret)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ErrorCode  string            `json:"error_code"`
		Parameters map[string]string `json:"parameters"`
	}
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if answer.ErrorCode != ivrpay.ConnRiskBlocked {
		t.Fatalf("the charge of a paused merchant answered %q", answer.ErrorCode)
	}

	c := e.newClient(t)
	c.signIn(e.admin.Secret)
	mustContain(t, c.get("/portal/risk"), "Risk blocks", e.merchant.ID, ivrpay.RiskRuleMerchantBreaker, "20 declines of 24 IVR attempts")
	mustContain(t, c.get("/portal/payins/"+answer.Parameters["payin_id"]), "RISK_BLOCKED", "merchant breaker", "Refused by a risk rule before the card reached the processor")
	// A key without payin:read sees the page, not the blocks.
	c = e.newClient(t)
	c.signIn(e.ivrKey.Secret)
	if p := c.get("/portal/risk"); p.status != http.StatusOK || bytes.Contains([]byte(p.body), []byte(e.merchant.ID)) {
		t.Fatalf("a key without payin:read: status %d, the block shown: %t", p.status, bytes.Contains([]byte(p.body), []byte(e.merchant.ID)))
	}
}
