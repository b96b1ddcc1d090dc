package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
)

// TestChargeReadFindsTheBlockThatWeighsMost: the read a new IVR charge starts
// with returns, of the blocks active on its config, merchant, caller and
// card, the first in ivrpay.RiskKinds' order; lifted and ended blocks do not
// count.
func TestChargeReadFindsTheBlockThatWeighsMost(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		bu := setup(t, engine)
		ctx := context.Background()
		cfg, err := bu.s.CreatePayinConfig(bu.adminCtx, ivrpay.PayinConfigCreate{MerchantID: bu.merchant.ID,
			IdempotencyKey: "risk-read", Amount: jsonNumber(1000), CurrencyCode: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		caller := ivrpay.CallerSubject(bu.platform.ID, "+14155550100")
		subjects := map[string]string{ivrpay.RiskKindConfig: cfg.ID, ivrpay.RiskKindMerchant: bu.merchant.ID,
			ivrpay.RiskKindCaller: caller, ivrpay.RiskKindCard: "fp-card"}
		read := func() string {
			t.Helper()
			risk := &ivrpay.RiskLookup{CardFingerprint: "fp-card", CallerSubject: caller, Now: now}
			key := ivrpay.ConnectorTransactionKey{PlatformID: bu.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: "tx-risk-read"}
			if r := chargeRead(t, bu.s, key, cfg.ID, risk); r.Found || r.Config == nil {
				t.Fatalf("read: %+v", r)
			}
			switch len(risk.Blocks) {
			case 0:
				return ""
			case 1:
				if b := risk.Blocks[0]; b.Value != subjects[b.Kind] || !b.Until.After(now) {
					t.Fatalf("block %+v is not the one recorded on its subject", b)
				}
				return risk.Blocks[0].Kind
			}
			t.Fatalf("read returned %d blocks, want at most one", len(risk.Blocks))
			return ""
		}
		if got := read(); got != "" {
			t.Fatalf("no block recorded, read found one on %s", got)
		}
		var blocks []ivrpay.RiskBlock
		for kind, subject := range subjects {
			blocks = append(blocks, ivrpay.RiskBlock{Kind: kind, Value: subject, PlatformID: bu.platform.ID, Rule: "test",
				Until: now.Add(time.Hour), CreatedAt: now})
		}
		// An ended block on the config comes back only as a row that no longer counts.
		if _, err := bu.s.RecordRiskBlocks(ctx, []ivrpay.RiskBlock{{Kind: ivrpay.RiskKindConfig, Value: cfg.ID,
			PlatformID: bu.platform.ID, Rule: "test", Until: now.Add(-time.Minute), CreatedAt: now.Add(-time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != "" {
			t.Fatalf("only an ended block recorded, read found one on %s", got)
		}
		if _, err := bu.s.RecordRiskBlocks(ctx, blocks); err != nil {
			t.Fatal(err)
		}
		for _, kind := range ivrpay.RiskKinds {
			if got := read(); got != kind {
				t.Fatalf("read found the block on %q, want %q (blocks left: %s onwards)", got, kind, kind)
			}
			if _, err := bu.s.ClearRiskBlock(ctx, kind, subjects[kind], now); err != nil {
				t.Fatal(err)
			}
		}
		if got := read(); got != "" {
			t.Fatalf("every block lifted, read found one on %s", got)
		}
	})
}
