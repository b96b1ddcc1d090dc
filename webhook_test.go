package ivrpay_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// fixedResolver answers every host with the same addresses, or an error.
type fixedResolver []string

func (r fixedResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if len(r) == 0 {
		return nil, errors.New("no such host")
	}
	var out []net.IPAddr
	for _, s := range r {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func TestCheckWebhookURL(t *testing.T) {
	t.Parallel()
	public := fixedResolver{"93.184.215.14"}
	for _, tc := range []struct {
		mode     ivrpay.Mode
		url      string
		resolver fixedResolver
		wantErr  string // "" for accepted
	}{
		{ivrpay.ModeSandbox, "http://127.0.0.1:8080/hooks", nil, ""},
		{ivrpay.ModeSandbox, "http://localhost/hooks", nil, ""},
		{ivrpay.ModeSandbox, "https://10.1.2.3/hooks", nil, ""},
		{ivrpay.ModeSandbox, "ftp://example.com/", nil, "http or https"},
		{ivrpay.ModeSandbox, "/relative", nil, "absolute"},
		{ivrpay.ModeSandbox, "http://", nil, "absolute"},
		{ivrpay.ModeProduction, "https://hooks.example.com/x", public, ""},
		{ivrpay.ModeProduction, "https://93.184.215.14/x", nil, ""},
		{ivrpay.ModeProduction, "http://hooks.example.com/x", public, "https"},
		{ivrpay.ModeProduction, "https://127.0.0.1/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://[::1]/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://10.0.0.8/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://192.168.1.1/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://169.254.169.254/latest/meta-data", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://100.64.0.1/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://0.0.0.0/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://[::ffff:127.0.0.1]/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://[fd00::1]/x", nil, "not a public address"},
		{ivrpay.ModeProduction, "https://localhost/x", public, "not a public host"},
		{ivrpay.ModeProduction, "https://internal.example.com/x", fixedResolver{"93.184.215.14", "10.0.0.1"}, "resolves to 10.0.0.1"},
		{ivrpay.ModeProduction, "https://nowhere.example.com/x", fixedResolver{}, "does not resolve"},
	} {
		err := ivrpay.CheckWebhookURL(context.Background(), tc.mode, tc.url, tc.resolver)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s %s: refused: %v", tc.mode, tc.url, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %s: error %v, want one containing %q", tc.mode, tc.url, err, tc.wantErr)
		case err != nil && (ivrpay.ErrorCode(err) != ivrpay.EINVALID || ivrpay.ErrorField(err) != "url"):
			t.Errorf("%s %s: error %v is not a 400 naming url", tc.mode, tc.url, err)
		}
	}
}

func TestWebhookEndpointCreateValidate(t *testing.T) {
	t.Parallel()
	c := ivrpay.WebhookEndpointCreate{URL: "https://example.com", Events: []string{"refund.succeeded", "payin.failed", "refund.succeeded"}}
	if err := c.Validate(); err != nil || len(c.Events) != 2 {
		t.Fatalf("Validate = %v, events %v; want duplicates removed", err, c.Events)
	}
	c = ivrpay.WebhookEndpointCreate{URL: "https://example.com", Events: []string{"payin.failed", "payin.exploded"}}
	if err := c.Validate(); ivrpay.ErrorField(err) != "events[1]" {
		t.Fatalf("Validate = %v, want a 400 naming events[1]", err)
	}
	if err := (&ivrpay.WebhookEndpointCreate{}).Validate(); ivrpay.ErrorField(err) != "url" {
		t.Fatalf("Validate = %v, want url required", err)
	}
	secret := ivrpay.NewWebhookSecret()
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("secret %q is not whsec_ and the base64 of 32 bytes", secret)
	}
}

func TestVoidOrRefundValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         ivrpay.VoidOrRefund
		wantAmount int64
		wantField  string
	}{
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "DUPLICATE"}, 0, ""},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "DUPLICATE", Amount: "0"}, 0, "amount"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "FRAUDULENT", Amount: "250", Type: "REFUND"}, 250, ""},
		{ivrpay.VoidOrRefund{Reason: "DUPLICATE"}, 0, "idempotency_key"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k"}, 0, "reason"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "CHANGED_MIND"}, 0, "reason"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "DUPLICATE", Amount: "-5"}, 0, "amount"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "DUPLICATE", Amount: "1.5"}, 0, "amount"},
		{ivrpay.VoidOrRefund{IdempotencyKey: "k", Reason: "DUPLICATE", Type: "CHARGEBACK"}, 0, "type"},
	} {
		got, err := tc.in.Validate()
		if ivrpay.ErrorField(err) != tc.wantField || (tc.wantField == "" && (err != nil || got != tc.wantAmount)) {
			t.Errorf("%+v: Validate = %d, %v; want %d, field %q", tc.in, got, err, tc.wantAmount, tc.wantField)
		}
	}
}

// TestFairShare: platforms take turns, deliveries already in flight count as
// turns taken, and no platform goes over its share.
func TestFairShare(t *testing.T) {
	t.Parallel()
	// The outbox's order: every platform's first turn, then the second turns, …
	due := []ivrpay.DueDelivery{{"A", 1}, {"B", 1}, {"C", 1}, {"A", 2}, {"C", 2}, {"A", 3}}
	for _, tc := range []struct {
		name  string
		claim ivrpay.WebhookClaim
		want  []int
	}{
		{"in turn", ivrpay.WebhookClaim{Limit: 4, PerPlatform: 3}, []int{0, 1, 2, 3}},
		{"limit", ivrpay.WebhookClaim{Limit: 2, PerPlatform: 3}, []int{0, 1}},
		{"share per platform", ivrpay.WebhookClaim{Limit: 6, PerPlatform: 1}, []int{0, 1, 2}},
		{"no share", ivrpay.WebhookClaim{Limit: 6}, []int{0, 1, 2, 3, 4, 5}},
		{"a busy platform waits its turn", ivrpay.WebhookClaim{Limit: 3, PerPlatform: 3, Busy: map[string]int{"A": 1}}, []int{1, 2, 0}},
		{"a platform at its share gets nothing", ivrpay.WebhookClaim{Limit: 6, PerPlatform: 2, Busy: map[string]int{"A": 2}}, []int{1, 2, 4}},
		{"the least busy first", ivrpay.WebhookClaim{Limit: 1, PerPlatform: 8, Busy: map[string]int{"A": 7, "C": 1}}, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.claim.FairShare(due); !slices.Equal(got, tc.want) {
				t.Errorf("FairShare = %v, want %v", got, tc.want)
			}
		})
	}
}
