package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
)

// TestDeepJSONRefused checks the depth limit on the REST API and on the connector.
func TestDeepJSONRefused(t *testing.T) {
	t.Parallel()
	url, admin, _, _ := limitedServer(t)
	deep := `{"name":"x","metadata":` + strings.Repeat(`{"a":`, ivrpay.MaxJSONDepth+5) + `1` + strings.Repeat("}", ivrpay.MaxJSONDepth+5) + `}`
	req, _ := http.NewRequest("POST", url+"/v1/merchants", strings.NewReader(deep))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"body"`) || !strings.Contains(body, "deeper than") {
		t.Fatalf("deep REST body: %d %s", resp.StatusCode, body)
	}
	conn := `{"method":"charge","transaction_id":"t","parameters":` + strings.Repeat(`{"a":`, ivrpay.MaxJSONDepth+5) + `"1"` + strings.Repeat("}", ivrpay.MaxJSONDepth+5) + `}`
	req, _ = http.NewRequest("POST", url+httpapi.ConnectorPath, strings.NewReader(conn))
	req.SetBasicAuth("api_key", admin)
	resp, body = do(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"error_code":"INVALID_REQUEST"`) || !strings.Contains(body, `"charge_id":null`) {
		t.Fatalf("deep connector body: %d %s", resp.StatusCode, body)
	}
}
