package sqlstore_test

import (
	"encoding/json"
	"reflect"
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
