package sqlstore

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/ivrpay/ivrpay"
)

// TestStoredContactIsRead: the billing contact a reservation answers with,
// built from what it wrote, is the one a read of the stored text returns,
// whatever its strings hold (invalid UTF-8 included), and shares nothing
// with the caller's.
func TestStoredContactIsRead(t *testing.T) {
	text := rapid.OneOf(rapid.String(), rapid.StringOf(rapid.RuneFrom([]rune(`az09 _-"\<>&`+"\x00\u2028é"))),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }))
	rapid.Check(t, func(t *rapid.T) {
		var c ivrpay.BillingContact
		v := reflect.ValueOf(&c).Elem()
		for i := range v.NumField() {
			if v.Field(i).Kind() != reflect.String {
				t.Fatalf("BillingContact.%s is not a string: storedContact's check needs it", v.Type().Field(i).Name)
			}
			if rapid.Bool().Draw(t, "set") {
				v.Field(i).SetString(text.Draw(t, v.Type().Field(i).Name))
			}
		}
		for _, in := range []*ivrpay.BillingContact{&c, nil} {
			bc, err := jsonText(in)
			if err != nil {
				t.Fatal(err)
			}
			got, want := storedContact(in, bc), billingContact(bc)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("storedContact(%#v) = %#v, a read returns %#v", in, got, want)
			}
			if in != nil && got == in {
				t.Fatal("storedContact returned the caller's contact, not a copy")
			}
		}
	})
}

// BenchmarkStoredContact is the billing contact of an IVR charge's reserved
// payin (the config's, with the caller's postal code), built from what was
// written (storedContact) and decoded from it (billingContact, as before):
//
//	go test ./sqlstore -run '^$' -bench StoredContact -benchmem
func BenchmarkStoredContact(b *testing.B) {
	c := (*ivrpay.BillingContact)(nil).WithPostalCode("94111")
	bc, err := jsonText(c)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("copied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			storedContact(c, bc)
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			billingContact(bc)
		}
	})
}
