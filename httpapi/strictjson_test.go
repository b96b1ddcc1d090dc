package httpapi_test

// JSON input is strict (SPEC §9): keys match exactly, a duplicated key is
// refused, and an amount is an integer (a string of digits only on the payin
// config, where Rainforest's older clients send one).

import (
	"testing"
)

func TestStrictJSON(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := func(idem string) string {
			return `{"merchant_id":"` + b.merchantID + `","idempotency_key":"` + idem + `","currency_code":"USD",`
		}
		before := b.counts()
		for _, tc := range []struct {
			name, path, body, field string
		}{
			{"amount twice, case differs", "/v1/payin_configs", cfg("s1") + `"amount":1000,"AMOUNT":7}`, "AMOUNT"},
			{"amount twice", "/v1/payin_configs", cfg("s2") + `"amount":1000,"amount":7}`, "amount"},
			{"amount in capitals only", "/v1/payin_configs", cfg("s3") + `"Amount":7}`, "Amount"},
			{"nested key in capitals", "/v1/payin_configs", cfg("s4") + `"amount":1000,"billing_contact":{"Postal_Code":"94111"}}`, "billing_contact.Postal_Code"},
			{"nested key twice", "/v1/payin_configs", cfg("s5") + `"amount":1000,"billing_contact":{"postal_code":"94111","postal_code":"00000"}}`, "billing_contact.postal_code"},
			{"metadata key twice", "/v1/payin_configs", cfg("s6") + `"amount":1000,"metadata":{"order":"a","order":"b"}}`, "metadata.order"},
			{"decimal string amount", "/v1/payin_configs", cfg("s7") + `"amount":"10.5"}`, "amount"},
			{"exponent string amount", "/v1/payin_configs", cfg("s8") + `"amount":"1e3"}`, "amount"},
			{"statements twice", "/v1/api_keys", `{"statements":` + statementsJSON(b.platformID, "", "payin:create") + `,"statements":` + statementsJSON(b.platformID, "", "group#all") + `}`, "statements"},
			{"merchant name in capitals", "/v1/merchants", `{"NAME":"Shop"}`, "NAME"},
			{"capture amount a string", "/v1/payins/sbx_pyi_000000000000000000000000000/capture", `{"amount":"600"}`, "amount"},
			{"refund amount a string", "/v1/payins/sbx_pyi_000000000000000000000000000/void_or_refund", `{"idempotency_key":"r1","amount":"300"}`, "amount"},
			{"refund key twice", "/v1/payins/sbx_pyi_000000000000000000000000000/void_or_refund", `{"idempotency_key":"r1","amount":300,"amount":1}`, "amount"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want400(t, b.api("POST", tc.path, b.admin, tc.body), tc.field)
			})
		}
		b.wantCounts(t, "strict JSON refusals", before)

		t.Run("string of digits tolerated on the payin config amount", func(t *testing.T) {
			r := b.api("POST", "/v1/payin_configs", b.admin, cfg("s-digits")+`"amount":"1000"}`)
			wantStatus(t, r, 200)
			if got := r.data(t)["amount"]; got != float64(1000) {
				t.Fatalf("amount = %v, want 1000", got)
			}
		})

		t.Run("connector refuses a duplicated amount", func(t *testing.T) {
			id := b.payinConfig(b.admin, b.merchantID, 1000, nil)
			body := mustJSON(with(chargeBody(id), "amount", nil))
			body = body[:len(body)-1] + `,"amount":"10.00","amount":"0.07"}`
			b.connector("api_key", b.admin, []byte(body), "").wantErr(t, "charge", "INVALID_REQUEST", 200)
			if n := b.count("payins"); n != 0 {
				t.Fatalf("%d payins after a refused request", n)
			}
		})
		t.Run("connector matches keys exactly", func(t *testing.T) {
			id := b.payinConfig(b.admin, b.merchantID, 1000, nil)
			body := mustJSON(chargeBody(id))
			body = body[:len(body)-1] + `,"AMOUNT":"0.07"}`
			pyi := b.connector("api_key", b.admin, []byte(body), "").wantOK(t, "charge")
			if got := b.api("GET", "/v1/payins/"+pyi, b.admin, nil).data(t)["amount"]; got != float64(1000) {
				t.Fatalf("payin amount = %v, want 1000 (AMOUNT is an unknown key)", got)
			}
		})
	})
}
