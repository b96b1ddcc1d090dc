package ivrpay_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestChargebackTransitions is the chargeback transition table, every pair
// of statuses: a dispute moves only forward, and WON and LOST are final.
func TestChargebackTransitions(t *testing.T) {
	const (
		iar = ivrpay.ChargebackStatusInquiryActionRequired
		ip  = ivrpay.ChargebackStatusInquiryProcessing
		dar = ivrpay.ChargebackStatusDisputeActionRequired
		cp  = ivrpay.ChargebackStatusChargebackProcessing
		pw  = ivrpay.ChargebackStatusProvisionalWin
		won = ivrpay.ChargebackStatusWon
		ls  = ivrpay.ChargebackStatusLost
	)
	allowed := map[string][]string{
		iar: {ip, dar, cp, pw, won, ls}, // an inquiry may be answered, escalate to a dispute, or close
		ip:  {dar, cp, pw, won, ls},     // an answered inquiry may still escalate
		dar: {cp, pw, won, ls},
		cp:  {pw, won, ls},
		pw:  {won, ls}, // Adyen's CHARGEBACK_REVERSED, then PREARBITRATION_WON or SECOND_CHARGEBACK
		won: {},
		ls:  {},
	}
	if len(allowed) != len(ivrpay.ChargebackStatuses) {
		t.Fatalf("the test covers %d statuses, the domain has %d", len(allowed), len(ivrpay.ChargebackStatuses))
	}
	for _, from := range ivrpay.ChargebackStatuses {
		for _, to := range ivrpay.ChargebackStatuses {
			want := slices.Contains(allowed[from], to)
			t.Run(from+"→"+to, func(t *testing.T) {
				if got := ivrpay.ChargebackCanMove(from, to); got != want {
					t.Errorf("ChargebackCanMove(%s, %s) = %v, want %v", from, to, got, want)
				}
			})
		}
	}
	for _, s := range ivrpay.ChargebackStatuses {
		t.Run("final "+s, func(t *testing.T) {
			if got, want := ivrpay.ChargebackStatusFinal(s), s == won || s == ls; got != want {
				t.Errorf("ChargebackStatusFinal(%s) = %v, want %v", s, got, want)
			}
		})
	}
	t.Run("unknown statuses move nowhere", func(t *testing.T) {
		if ivrpay.ChargebackCanMove("OPEN", won) || ivrpay.ChargebackCanMove(dar, "CLOSED") || ivrpay.ChargebackStatusFinal("CLOSED") {
			t.Error("a status outside the table moved or counted as final")
		}
	})
}

func TestChargebackEventTypes(t *testing.T) {
	for _, tc := range []struct{ status, event string }{
		{ivrpay.ChargebackStatusDisputeActionRequired, "chargeback.dispute_action_required"},
		{ivrpay.ChargebackStatusLost, "chargeback.lost"},
		{ivrpay.ChargebackStatusInquiryActionRequired, "chargeback.inquiry_action_required"},
		{ivrpay.ChargebackStatusWon, "chargeback.won"},
	} {
		t.Run(tc.status, func(t *testing.T) {
			if got := ivrpay.ChargebackEventType(tc.status); got != tc.event {
				t.Errorf("ChargebackEventType(%s) = %q, want %q", tc.status, got, tc.event)
			}
			// A webhook endpoint may subscribe to it.
			c := ivrpay.WebhookEndpointCreate{URL: "https://example.com/hooks", Events: []string{tc.event}}
			if err := c.Validate(); err != nil {
				t.Errorf("an endpoint subscribing to %s: %v", tc.event, err)
			}
		})
	}
	c := ivrpay.WebhookEndpointCreate{URL: "https://example.com/hooks", Events: []string{"chargeback.opened"}}
	if err := c.Validate(); ivrpay.ErrorField(err) != "events[0]" {
		t.Errorf("chargeback.opened accepted or refused on another field: %v", err)
	}
}

func TestChargebackFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     ivrpay.ChargebackFilter
		field string
	}{
		{"none", ivrpay.ChargebackFilter{}, ""},
		{"all", ivrpay.ChargebackFilter{MerchantID: "sbx_mid_1", PayinID: "pyi_2", Status: "LOST"}, ""},
		{"merchant id of another kind", ivrpay.ChargebackFilter{MerchantID: "sbx_pyi_1"}, "merchant_id"},
		{"payin id of another kind", ivrpay.ChargebackFilter{PayinID: "sbx_mid_1"}, "payin_id"},
		{"unknown status", ivrpay.ChargebackFilter{Status: "lost"}, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if got := ivrpay.ErrorField(err); got != tc.field || (tc.field == "") != (err == nil) {
				t.Errorf("Validate() = %v (field %q), want field %q", err, got, tc.field)
			}
		})
	}
}

func TestCheckDispute(t *testing.T) {
	ok := ivrpay.DisputeDetails{Reference: "du_1", Status: ivrpay.ChargebackStatusLost, Amount: 100}
	for _, tc := range []struct {
		name string
		d    *ivrpay.DisputeDetails
		want string // part of the error; empty: valid
	}{
		{"valid", &ok, ""},
		{"missing", nil, "without dispute details"},
		{"no reference", &ivrpay.DisputeDetails{Status: ivrpay.ChargebackStatusLost}, "reference"},
		{"unmapped status", &ivrpay.DisputeDetails{Reference: "du_1", Status: "lost"}, "unknown chargeback status"},
		{"negative amount", &ivrpay.DisputeDetails{Reference: "du_1", Status: ivrpay.ChargebackStatusLost, Amount: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ivrpay.CheckDispute(tc.d)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckDispute = %v, want %q", err, tc.want)
			}
		})
	}
}
