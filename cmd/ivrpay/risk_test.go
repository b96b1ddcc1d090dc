package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestAdminRisk: `ivrpay admin platform set-risk` changes only the flags
// given, refuses bad values naming the flag, and `risk list` / `risk clear`
// show and lift blocks (audited), with a card shown by fingerprint and last 4.
func TestAdminRisk(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, string(ivrpay.ModeSandbox))
	platformID := d.mustAdmin("platform", "create", "--name", "Risky", "--enable-ivr")["platform_id"].(string)

	risk := func(out map[string]any) map[string]any { return out["risk"].(map[string]any) }
	got := risk(d.mustAdmin("platform", "set-risk", platformID, "--card-declines", "5/1h", "--require-cvc-match"))
	if got["card_declines_per_hour"] != 5.0 || got["require_cvc_match"] != true || got["config_attempts"] != 5.0 || got["merchant_breaker"] != true {
		t.Fatalf("after set-risk --card-declines 5/1h --require-cvc-match: %v", got)
	}
	got = risk(d.mustAdmin("platform", "set-risk", platformID, "--merchant-breaker", "off", "--config-attempts", "2"))
	if got["card_declines_per_hour"] != 5.0 || got["require_cvc_match"] != true || got["merchant_breaker"] != false || got["config_attempts"] != 2.0 {
		t.Fatalf("a second set-risk lost the first one's values: %v", got)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--card-declines", "11"}, "card-declines"},
		{[]string{"--caller-declines", "3/24h"}, "window is 1h"},
		{[]string{"--merchant-breaker", "maybe"}, "neither on nor off"},
		{[]string{"--config-attempts", "x"}, "config-attempts"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := d.admin(append([]string{"platform", "set-risk", platformID}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", code, stderr, tc.says)
			}
		})
	}

	// A block as the service records it, then list and clear.
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, d.db, sqlstore.Options{Mode: ivrpay.ModeSandbox})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	fp := strings.Repeat("ab", 32)
	if _, err := s.RecordRiskBlocks(ctx, []ivrpay.RiskBlock{{Kind: ivrpay.RiskKindCard, Value: fp, PlatformID: platformID,
		Rule: ivrpay.RiskRuleCardVelocity, Detail: "VISA •••• 0002: 3 declines in 1h", Until: now.Add(time.Hour), CreatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, list, stderr := d.admin("risk", "list")
	blocks, _ := list.([]any)
	if code != 0 || len(blocks) != 1 || blocks[0].(map[string]any)["value"] != fp || !strings.Contains(blocks[0].(map[string]any)["detail"].(string), "0002") {
		t.Fatalf("risk list: exit %d, %v, %s", code, list, stderr)
	}
	d.mustAdmin("risk", "clear", "card", fp)
	if _, list, _ := d.admin("risk", "list"); len(list.([]any)) != 0 {
		t.Fatalf("the cleared block is still listed: %v", list)
	}
	if code, _, stderr := d.admin("risk", "clear", "card", fp); code == 0 || !strings.Contains(stderr, "no active risk block") {
		t.Fatalf("clearing it again: exit %d, %s", code, stderr)
	}
	if code, _, stderr := d.admin("risk", "clear", "phone", "x"); code == 0 || !strings.Contains(stderr, "unknown kind") {
		t.Fatalf("an unknown kind: exit %d, %s", code, stderr)
	}
	s, err = sqlstore.Open(ctx, d.db, sqlstore.Options{Mode: ivrpay.ModeSandbox})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events, err := s.ListAudit(ctx, ivrpay.AuditFilter{Action: "risk.clear", Limit: 10})
	if err != nil || len(events) != 1 || events[0].Actor != ivrpay.ActorOperator || events[0].Target != "card:"+fp {
		t.Fatalf("risk.clear audit rows: %+v, %v", events, err)
	}
}
