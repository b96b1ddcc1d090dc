package sqlstore_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestCreatedPayinConfigIsWhatAReadReturns: CreatePayinConfig answers with
// the config built from what it wrote, not read back; it must be exactly
// what a read returns, and a replay of its idempotency key must answer the
// same config.
func TestCreatedPayinConfigIsWhatAReadReturns(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		for _, row := range []struct {
			name   string
			adjust func(*ivrpay.PayinConfigCreate)
		}{
			{name: "minimal", adjust: func(c *ivrpay.PayinConfigCreate) { c.Metadata = nil }},
			{name: "every field", adjust: func(c *ivrpay.PayinConfigCreate) {
				c.BillingContact = &ivrpay.BillingContact{Name: "Ada", AddressLine1: "1 Main St", City: "Oakland", State: "CA",
					PostalCode: "94607", Country: "US", Email: "ada@example.com", Phone: "+15105550100"}
				c.Metadata = json.RawMessage(`{"order": "A-7", "n": 1}`)
				c.MethodMetadata = json.RawMessage(`{"customer":"c-1"}`)
				c.ProcessingMode = ivrpay.ProcessingModeAuthorize
			}},
		} {
			t.Run(row.name, func(t *testing.T) {
				var in ivrpay.PayinConfigCreate
				created := b.payinConfig(t, 1234, row.adjust, func(c *ivrpay.PayinConfigCreate) { in = *c })
				read, err := b.s.FindPayinConfig(b.adminCtx, created.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(created, read) {
					t.Fatalf("created %+v\nread    %+v", created, read)
				}
				replayed, err := b.s.CreatePayinConfig(b.adminCtx, in)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(replayed, read) {
					t.Fatalf("replayed %+v\nread     %+v", replayed, read)
				}
			})
		}
	})
}

// TestCreatePayinConfigChecksTheMerchantInItsInsert: the merchant's check is
// part of the config's insert (no read before it). A merchant that is not the
// caller's, or does not exist, is named in the error and nothing is written;
// a replay of a used key answers the first config; the same key with another
// body is a conflict, whatever the merchant.
func TestCreatePayinConfigChecksTheMerchantInItsInsert(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		other := setupOn(t, b.s, engine, b.opts)
		configs := func() int {
			return count(t, b.s.DB(), `SELECT COUNT(*) FROM payin_configs WHERE platform_id = $1`, b.platform.ID)
		}
		for _, row := range []struct{ name, merchantID string }{
			{"a merchant that does not exist", "sbx_mid_doesnotexist"},
			{"another platform's merchant", other.merchant.ID},
		} {
			t.Run(row.name, func(t *testing.T) {
				before := configs()
				_, err := b.s.CreatePayinConfig(b.adminCtx, ivrpay.PayinConfigCreate{MerchantID: row.merchantID,
					IdempotencyKey: newKey("cfg"), Amount: "1000", CurrencyCode: "USD"})
				wantCode(t, err, ivrpay.EINVALID)
				if ivrpay.ErrorField(err) != "merchant_id" || !strings.Contains(ivrpay.ErrorMessage(err), "not found on platform "+b.platform.ID) {
					t.Fatalf("error = %v (field %q), want merchant_id not found on the caller's platform", err, ivrpay.ErrorField(err))
				}
				if after := configs(); after != before {
					t.Fatalf("a refused config was written: %d configs, then %d", before, after)
				}
			})
		}
		t.Run("a replay answers the first config, another body under its key conflicts", func(t *testing.T) {
			in := ivrpay.PayinConfigCreate{MerchantID: b.merchant.ID, IdempotencyKey: newKey("cfg"), Amount: "1000", CurrencyCode: "USD"}
			first, err := b.s.CreatePayinConfig(b.adminCtx, in)
			if err != nil {
				t.Fatal(err)
			}
			if first.Merchant.Name != b.merchant.Name {
				t.Fatalf("config's merchant name = %q, want %q", first.Merchant.Name, b.merchant.Name)
			}
			again, err := b.s.CreatePayinConfig(b.adminCtx, in)
			if err != nil || again.ID != first.ID || again.Merchant.Name != b.merchant.Name {
				t.Fatalf("replay = %+v, %v; want config %s", again, err, first.ID)
			}
			in.Amount = "1001"
			_, err = b.s.CreatePayinConfig(b.adminCtx, in)
			wantCode(t, err, ivrpay.ECONFLICT)
			if ivrpay.ErrorField(err) != "idempotency_key" {
				t.Fatalf("conflict names field %q, want idempotency_key", ivrpay.ErrorField(err))
			}
		})
	})
}
