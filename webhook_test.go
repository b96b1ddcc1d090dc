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
	// Patterns: "*" and a whole family followed by ".*", kept as given;
	// anything else naming the element it is.
	for _, tc := range []struct {
		events []string
		field  string // "" when accepted
		msg    string // what the refusal says, or (accepted) the events stored, comma-separated
	}{
		{[]string{"chargeback.*"}, "", "chargeback.*"},
		{[]string{"payin.*", "refund.*", "payment_method.*", "merchant.*"}, "", "payin.*,refund.*,payment_method.*,merchant.*"},
		{[]string{"*"}, "", "*"},
		{[]string{"chargeback.*", "chargeback.lost", "chargeback.*"}, "", "chargeback.*,chargeback.lost"},
		{[]string{"payin.failed", "charge*"}, "events[1]", "pattern"},
		{[]string{"chargeback."}, "events[0]", "unknown event type"},
		{[]string{"*.lost"}, "events[0]", "pattern"},
		{[]string{"chargeback.**"}, "events[0]", "pattern"},
		{[]string{"chargeback.*.lost"}, "events[0]", "pattern"},
		{[]string{"invoice.*"}, "events[0]", "pattern"},
		{[]string{"chargeback*"}, "events[0]", "pattern"},
		{[]string{"**"}, "events[0]", "pattern"},
		{[]string{".*"}, "events[0]", "pattern"},
		{[]string{"Chargeback.*"}, "events[0]", "pattern"},
		{[]string{"chargeback"}, "events[0]", "unknown event type"},
	} {
		t.Run(strings.Join(tc.events, ","), func(t *testing.T) {
			c := ivrpay.WebhookEndpointCreate{URL: "https://example.com", Events: slices.Clone(tc.events)}
			err := c.Validate()
			if tc.field == "" {
				if err != nil || strings.Join(c.Events, ",") != tc.msg {
					t.Fatalf("Validate = %v, events %v", err, c.Events)
				}
				return
			}
			if ivrpay.ErrorCode(err) != ivrpay.EINVALID || ivrpay.ErrorField(err) != tc.field || !strings.Contains(err.Error(), tc.msg) ||
				!strings.Contains(err.Error(), "chargeback.*") {
				t.Fatalf("Validate = %v, want a 400 naming %s that says %q and lists chargeback.*", err, tc.field, tc.msg)
			}
		})
	}
	if err := (&ivrpay.WebhookEndpointCreate{}).Validate(); ivrpay.ErrorField(err) != "url" {
		t.Fatalf("Validate = %v, want url required", err)
	}
	secret := ivrpay.NewWebhookSecret()
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("secret %q is not whsec_ and the base64 of 32 bytes", secret)
	}
}

// TestWebhookEndpointWants: an endpoint gets the events it names, those of
// a family it subscribed to with "<family>.*", and all with "*" or none.
func TestWebhookEndpointWants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		events []string
		want   []string // of the event types below, those delivered
	}{
		{nil, []string{"payin.succeeded", "payment_method.active", "chargeback.dispute_action_required", "chargeback.lost", "merchant.risk_paused"}},
		{[]string{"*"}, []string{"payin.succeeded", "payment_method.active", "chargeback.dispute_action_required", "chargeback.lost", "merchant.risk_paused"}},
		{[]string{"chargeback.*"}, []string{"chargeback.dispute_action_required", "chargeback.lost"}},
		{[]string{"chargeback.lost", "payin.*"}, []string{"payin.succeeded", "chargeback.lost"}},
		{[]string{"payin.*"}, []string{"payin.succeeded"}}, // payment_method is another family, not payin's prefix
		{[]string{"merchant.risk_paused"}, []string{"merchant.risk_paused"}},
	} {
		t.Run(strings.Join(tc.events, ","), func(t *testing.T) {
			e := &ivrpay.WebhookEndpoint{Events: tc.events}
			var got []string
			for _, ev := range []string{"payin.succeeded", "payment_method.active", "chargeback.dispute_action_required", "chargeback.lost", "merchant.risk_paused"} {
				if e.Wants(ev) {
					got = append(got, ev)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Wants: %v, want %v", got, tc.want)
			}
		})
	}
	// Every family of EventTypes has its pattern, and each pattern covers some event type.
	for _, et := range ivrpay.EventTypes {
		family, _, _ := strings.Cut(et, ".")
		if !slices.Contains(ivrpay.EventPatterns, family+".*") {
			t.Errorf("EventPatterns %v lacks %s.*", ivrpay.EventPatterns, family)
		}
	}
	for _, p := range ivrpay.EventPatterns {
		if !slices.ContainsFunc(ivrpay.EventTypes, func(et string) bool { return ivrpay.EventMatches(p, et) }) {
			t.Errorf("pattern %s covers no event type", p)
		}
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
