package adyen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/processortest"
)

// TestAmountTriggers: a test account with AmountTriggers asks Adyen's test
// platform for the refusal of each sandbox decline amount, and only for
// those; a live account cannot have them.
func TestAmountTriggers(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AdditionalData map[string]string `json:"additionalData"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		got = append(got, body.AdditionalData["RequestedTestAcquirerResponseCode"])
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"pspReference":"XB7XNCQ8HXSKGK82","resultCode":"Refused","refusalReason":"Refused","refusalReasonCode":"2"}`))
	}))
	t.Cleanup(srv.Close)
	p, err := New(Config{APIKey: "k", MerchantAccount: "M", APIBase: srv.URL, AmountTriggers: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		amount int64
		code   string
	}{{5101, "2"}, {5102, "12"}, {5103, "27"}, {5105, "4"}, {1000, ""}} {
		t.Run(ivrpay.FormatDollars(tc.amount), func(t *testing.T) {
			got = nil
			if _, err := p.Authorize(context.Background(), processortest.Payment("pyi_trigger", tc.amount, true)); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.code {
				t.Fatalf("RequestedTestAcquirerResponseCode %q, want %q", got, tc.code)
			}
		})
	}
	if _, err := New(Config{APIKey: "k", MerchantAccount: "M", APIBase: "https://x-checkout-live.adyenpayments.com/checkout/v71", Live: true, AmountTriggers: true}); err == nil {
		t.Fatal("a live account accepted amount triggers")
	}
}
