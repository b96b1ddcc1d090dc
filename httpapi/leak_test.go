package httpapi_test

// Card data and key secrets never reach the log or the database in the clear
// (docs/operations.md, "Logs"; README.md, "Operating").

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

func TestConnectorNoCardDataAtRest(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		opts := paymentstest.Options(t)
		log := &paymentstest.LockedBuffer{}
		opts.Logger = slog.New(slog.NewJSONHandler(log, nil))
		var dsn, dbPath string
		if engine == sqlstore.EngineSQLite {
			dbPath = filepath.Join(t.TempDir(), "leak.db")
			dsn = dbPath
		} else {
			dsn = paymentstest.DSN(t, engine)
		}
		s, err := sqlstore.Open(context.Background(), dsn, opts.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		b := serve(t, engine, s, opts, log)

		// Distinctive Luhn-valid cards, and CVVs that are no year, last 4,
		// postal code or amount of this test.
		visa := luhnComplete("491761739205843") // 16 digits
		amex := luhnComplete("37146082951736")  // 15 digits
		const visaCVV, amexCVV = "739", "8264"
		secrets := []string{b.admin}
		key := b.ivrKey("payin:create", "payment_method:create")
		secrets = append(secrets, key)

		var answers []connResp
		run := func(body map[string]any) connResp {
			t.Helper()
			r := b.ivr(key, body)
			answers = append(answers, r)
			return r
		}
		cfg := func(cents int64, extra map[string]any) string {
			return b.payinConfig(b.admin, b.merchantID, cents, extra)
		}
		pmc := func() string { return b.paymentMethodConfig(b.admin, b.platformID, "", nil) }
		card := func(body map[string]any, pan, cvv, tx string) map[string]any {
			return with(body, "cardnumber", pan, "cvv", cvv, "transaction_id", tx)
		}

		// Approved charges and tokenizes, and their retries.
		ok1 := card(chargeBody(cfg(1000, nil)), visa, visaCVV, "leak-charge-visa")
		run(ok1).wantOK(t, "charge")
		run(ok1).wantOK(t, "charge")
		run(card(chargeBody(cfg(1000, nil)), amex, amexCVV, "leak-charge-amex")).wantOK(t, "charge")
		stored := run(card(tokenizeBody(pmc()), visa, visaCVV, "leak-tokenize-visa")).wantOK(t, "tokenize")
		run(card(tokenizeBody(pmc()), amex, amexCVV, "leak-tokenize-amex")).wantOK(t, "tokenize")
		// Declines.
		run(card(with(chargeBody(cfg(5101, nil)), "amount", "51.01"), visa, visaCVV, "leak-decline-amount")).wantErr(t, "charge", "DECLINED", 200)
		run(card(with(chargeBody(cfg(1000, nil)), "postal_code", "00000"), amex, amexCVV, "leak-decline-avs")).wantErr(t, "charge", "INCORRECT_PAYMENT_INFORMATION", 200)
		run(card(with(tokenizeBody(pmc()), "postal_code", "00000"), visa, visaCVV, "leak-decline-tokenize")).wantErr(t, "tokenize", "INCORRECT_PAYMENT_INFORMATION", 200)
		// Validation failures at every stage.
		c := cfg(1000, nil)
		run(card(with(chargeBody(c), "amount", "10.50"), visa, visaCVV, "leak-mismatch")).wantErr(t, "charge", "AMOUNT_MISMATCH", 200)
		run(card(with(chargeBody(c), "expiry_year", "20"), visa, visaCVV, "leak-expired")).wantErr(t, "charge", "EXPIRED_CARD", 200)
		run(card(with(chargeBody(c), "expiry_month", "13"), amex, amexCVV, "leak-bad-expiry")).wantErr(t, "charge", "INVALID_EXPIRATION_DATE", 200)
		run(card(with(chargeBody(c), "postal_code", jsonNull), visa, visaCVV, "leak-no-postal")).wantErr(t, "charge", "MISSING_POSTAL_CODE", 200)
		run(card(with(chargeBody(c), "currency_code", "EUR"), visa, visaCVV, "leak-currency")).wantErr(t, "charge", "UNSUPPORTED_CURRENCY", 200)
		run(card(chargeBody("sbx_cfg_000000000000000000000000000"), visa, visaCVV, "leak-not-found")).wantErr(t, "charge", "CONFIG_NOT_FOUND", 200)
		run(card(chargeBody(c), visa[:15]+"0", visaCVV, "leak-luhn")).wantErr(t, "charge", "INVALID_CARD_NUMBER", 200)
		run(card(chargeBody(c), amex, visaCVV, "leak-cvv")).wantErr(t, "charge", "INVALID_CARD_SECURITY_CODE", 200)
		run(card(with(chargeBody(c), "amount", "10.51"), visa, visaCVV, "leak-charge-visa")).wantErr(t, "charge", "DUPLICATE_TRANSACTION", 200)
		run(card(with(chargeBody(c), "parameters", []any{visa}), visa, visaCVV, "leak-invalid")).wantErr(t, "charge", "INVALID_REQUEST", 200)
		run(card(with(chargeBody(c), "method", visa), visa, visaCVV, "leak-invalid-method"))
		// A card number typed into free text is refused (400 naming the
		// field; INVALID_REQUEST on the connector) and stored nowhere.
		typed := luhnComplete("601100099013942") // Discover, 16 digits
		spaced := typed[:4] + " " + typed[4:8] + " " + typed[8:12] + " " + typed[12:]
		dashed := strings.ReplaceAll(spaced, " ", "-")
		var refused []string
		for _, tc := range []struct {
			path, field string
			body        map[string]any
		}{
			{"/v1/payin_configs", "billing_contact.postal_code", map[string]any{"merchant_id": b.merchantID, "idempotency_key": "leak-free-1",
				"amount": 1000, "currency_code": "USD", "billing_contact": map[string]any{"postal_code": typed}}},
			{"/v1/payin_configs", "billing_contact.name", map[string]any{"merchant_id": b.merchantID, "idempotency_key": "leak-free-2",
				"amount": 1000, "currency_code": "USD", "billing_contact": map[string]any{"name": "Ada " + spaced}}},
			{"/v1/payin_configs", "metadata.order.note", map[string]any{"merchant_id": b.merchantID, "idempotency_key": "leak-free-3",
				"amount": 1000, "currency_code": "USD", "metadata": map[string]any{"order": map[string]any{"note": "card " + dashed}}}},
			{"/v1/payment_method_configs", "metadata.card", map[string]any{"platform_id": b.platformID, "idempotency_key": "leak-free-4",
				"metadata": map[string]any{"card": json.Number(typed)}}},
			{"/v1/merchants", "dba_name", map[string]any{"name": "Shop", "dba_name": spaced}},
		} {
			r := b.api("POST", tc.path, b.admin, tc.body)
			want400(t, r, tc.field)
			refused = append(refused, string(r.Raw))
		}
		for _, pc := range []string{typed, spaced} {
			run(with(chargeBody(c), "postal_code", pc, "transaction_id", "leak-free-postal-"+pc[:4]+pc[len(pc)-2:])).wantErr(t, "charge", "INVALID_REQUEST", 200)
			run(with(tokenizeBody(pmc()), "postal_code", pc)).wantErr(t, "tokenize", "INVALID_REQUEST", 200)
		}
		for _, r := range []connResp{
			b.connector("api_key", "sbx_apikey_"+strings.Repeat("a", 64), []byte(mustJSON(card(chargeBody(c), visa, visaCVV, "leak-401"))), ""),
			b.connector("apikey", key, []byte(mustJSON(card(chargeBody(c), amex, amexCVV, "leak-401-user"))), ""),
		} {
			r.wantErr(t, "charge", "UNAUTHORIZED", 401)
			answers = append(answers, r)
		}
		// The stored card charged later.
		p := b.api("POST", "/v1/payment_methods/"+stored+"/payin", b.admin, map[string]any{"payin_config_id": cfg(1000, nil)})
		wantStatus(t, p, 200)

		// Read back everything the API shows.
		var shown []string
		for _, path := range []string{"/v1/payins", "/v1/payment_methods", "/v1/api_keys"} {
			shown = append(shown, string(b.api("GET", path, b.admin, nil).Raw))
		}
		for _, a := range answers {
			shown = append(shown, string(a.Raw))
		}
		shown = append(shown, refused...)

		pans := []string{visa, amex, typed, spaced, dashed}
		cvvs := []string{visaCVV, amexCVV}
		// A CVV leaks as a number of its own: not inside a longer run of
		// digits or letters (an id, a hash, a timestamp's microseconds).
		alone := func(cvv string) *regexp.Regexp {
			return regexp.MustCompile(`(^|[^0-9A-Za-z])` + cvv + `([^0-9A-Za-z]|$)`)
		}
		check := func(where, text string, cvvToo bool) {
			t.Helper()
			for _, pan := range pans {
				if strings.Contains(text, pan) {
					t.Errorf("%s contains the full card number %s", where, pan)
				}
			}
			for _, sec := range secrets {
				if strings.Contains(text, sec) || strings.Contains(text, strings.TrimPrefix(sec, "sbx_apikey_")) {
					t.Errorf("%s contains an API key secret", where)
				}
			}
			if cvvToo {
				for _, cvv := range cvvs {
					if loc := alone(cvv).FindStringIndex(text); loc != nil {
						from, to := max(loc[0]-60, 0), min(loc[1]+60, len(text))
						t.Errorf("%s contains the CVV %s: …%q…", where, cvv, text[from:to])
					}
				}
			}
		}

		logText := log.String()
		if !strings.Contains(logText, "leak") && !strings.Contains(logText, "request") {
			t.Fatalf("the server logged nothing; the scan would prove nothing:\n%s", logText)
		}
		check("the server log", logText, true)
		for i, text := range shown {
			check(fmt.Sprintf("API answer %d", i), text, true)
		}

		// Every column of every table, as text.
		dump := dumpTables(t, b.store)
		if !strings.Contains(dump, visa[len(visa)-4:]) {
			t.Fatal("the database dump lacks even the card's last 4; the scan would prove nothing")
		}
		check("the database", dump, true)

		// The SQLite files themselves, write-ahead log included.
		if dbPath != "" {
			n := 0
			for _, path := range []string{dbPath, dbPath + "-wal"} {
				raw, err := os.ReadFile(path)
				if os.IsNotExist(err) {
					continue
				} else if err != nil {
					t.Fatal(err)
				}
				n += len(raw)
				// Binary pages hold arbitrary bytes, so only the PANs, the
				// secrets and the 4-digit CVV (standing alone) are searched.
				text := string(raw)
				for _, pan := range pans {
					if strings.Contains(text, pan) {
						t.Errorf("%s contains the full card number %s", filepath.Base(path), pan)
					}
				}
				for _, sec := range secrets {
					if strings.Contains(text, strings.TrimPrefix(sec, "sbx_apikey_")) {
						t.Errorf("%s contains an API key secret", filepath.Base(path))
					}
				}
				if alone(amexCVV).MatchString(text) {
					t.Errorf("%s contains the CVV %s", filepath.Base(path), amexCVV)
				}
			}
			if n == 0 {
				t.Fatal("no database file to scan")
			}
		}
	})
}

// dumpTables renders every row of every table of the schema as text.
func dumpTables(t *testing.T, s *sqlstore.Store) string {
	t.Helper()
	// Every table, including those other features add (audit, outbox, …).
	tables := paymentstest.Tables(t, s)
	if !slices.Contains(tables, "payins") || !slices.Contains(tables, "connector_transactions") {
		t.Fatalf("tables %v lack the payment tables", tables)
	}
	var out strings.Builder
	for _, table := range tables {
		cols, rows := paymentstest.ReadRows(t, s.DB(), `SELECT * FROM "`+table+`"`)
		for _, vals := range rows {
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, "%s.%s=%v\n", table, cols[i], v)
			}
		}
	}
	return out.String()
}
