package sqlstore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestNoCardDataAtRest runs charges, declines, refusals and tokenizations with
// canary card numbers and a canary Amex CID, then reads what the database
// holds — the raw bytes of the SQLite file and its WAL, or every row of every
// table on PostgreSQL — and finds neither a full PAN nor the CID: PANs are
// stored only encrypted and the CVV never (README.md, "Operating").
func TestNoCardDataAtRest(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		// A fixed clock keeps random-looking digits out of the stored
		// timestamps; its digits do not contain the CID.
		clock := newFakeClock(time.Date(2026, 3, 15, 10, 20, 30, 0, time.UTC))
		var logs paymentstest.LockedBuffer
		opts := paymentstest.Options(t)
		opts.Clock = clock
		opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		dsn := paymentstest.DSN(t, engine)
		s := openDSN(t, dsn, opts)
		b := setupOn(t, s, engine, opts)

		amex := func(req ivrpay.IVRRequest) ivrpay.IVRRequest {
			req.CardNumber, req.CVV = canaryAmex, canaryCID
			return req
		}
		// Store the Amex card, and charge it over IVR.
		pmc := b.pmConfig(t, b.merchant.ID)
		tok := process(t, b.pay, b.ivrCtx, amex(tokenizeReq(ivrpay.ParamPaymentMethodConfigID, pmc.ID, "CA-pci-tok", "")))
		mustSucceed(t, tok)
		cfg := b.payinConfig(t, 1000)
		charge := process(t, b.pay, b.ivrCtx, amex(chargeReq(cfg.ID, "CA-pci-charge", "", 1000)))
		mustSucceed(t, charge)
		// Its retry, and a different request under the same transaction_id.
		process(t, b.pay, b.ivrCtx, amex(chargeReq(cfg.ID, "CA-pci-charge", "", 1000)))
		dup := chargeReq(cfg.ID, "CA-pci-charge", canaryVisa, 1000)
		if r := process(t, b.pay, b.ivrCtx, dup); r.ErrorCode != ivrpay.ConnDuplicateTransaction {
			t.Fatalf("duplicate answered %+v", r)
		}
		// A decline by amount (a FAILED payin and a stored card), a refusal
		// before the processor, a malformed CID, and a used config.
		declined := process(t, b.pay, b.ivrCtx, amex(chargeReq(b.payinConfig(t, 5101).ID, "CA-pci-decline", "", 5101)))
		if declined.ErrorCode != ivrpay.RefusalDeclined {
			t.Fatalf("decline answered %+v", declined)
		}
		if r := process(t, b.pay, b.ivrCtx, amex(chargeReq(b.payinConfig(t, 1000).ID, "CA-pci-mismatch", "", 999))); r.ErrorCode != ivrpay.ConnAmountMismatch {
			t.Fatalf("amount mismatch answered %+v", r)
		}
		badCID := amex(chargeReq(b.payinConfig(t, 1000).ID, "CA-pci-badcid", "", 1000))
		badCID.CVV = canaryCID + "1"
		if r := process(t, b.pay, b.ivrCtx, badCID); r.ErrorCode != ivrpay.ConnInvalidCardSecurityCode {
			t.Fatalf("5-digit CID answered %+v", r)
		}
		if r := process(t, b.pay, b.ivrCtx, amex(chargeReq(cfg.ID, "CA-pci-used", "", 1000))); r.ErrorCode != ivrpay.ConnConfigAlreadyUsed {
			t.Fatalf("used config answered %+v", r)
		}
		// The Visa canary, charged and tokenized, with the CID-free Visa CVV.
		mustSucceed(t, process(t, b.pay, b.ivrCtx, chargeReq(b.payinConfig(t, 2000).ID, "CA-pci-visa", canaryVisa, 2000)))
		mustSucceed(t, process(t, b.pay, b.ivrCtx, tokenizeReq(ivrpay.ParamPaymentMethodIDAlias, b.pmConfig(t, "").ID, "CA-pci-visa-tok", canaryVisa)))
		// The stored Amex card charged over the API.
		if _, err := b.pay.ChargePaymentMethod(b.adminCtx, tok.ID, b.payinConfig(t, 3000).ID); err != nil {
			t.Fatal(err)
		}

		secrets := []string{canaryAmex, canaryVisa}
		columns := allColumns(t, s)
		for table, cols := range columns {
			for _, c := range cols {
				if c != "cvc_result_code" && regexp.MustCompile(`cvv|cvc|cid|security_code|card_?number|^pan$`).MatchString(c) {
					t.Errorf("column %s.%s looks like it holds card data", table, c)
				}
			}
		}
		mask, cidValues := storedValues(t, s, columns)
		for _, where := range cidValues {
			t.Errorf("%s holds the CID", where)
		}
		for where, data := range snapshot(t, s, dsn, columns) {
			for _, leak := range findLeaks(data, secrets, mask) {
				t.Errorf("%s: %s", where, leak)
			}
		}
		for _, leak := range findLeaks(logs.Bytes(), secrets, mask) {
			t.Errorf("the log: %s", leak)
		}

		// Control: a CID written into a stored JSON value is found, by the
		// look at every value and in the bytes, so the checks above can see one.
		if _, err := s.CreatePayinConfig(b.adminCtx, ivrpay.PayinConfigCreate{MerchantID: b.merchant.ID, IdempotencyKey: "control",
			Amount: "1000", CurrencyCode: "USD", Metadata: json.RawMessage(`{"note":"` + canaryCID + `"}`)}); err != nil {
			t.Fatal(err)
		}
		mask, cidValues = storedValues(t, s, columns)
		if len(cidValues) == 0 || slices.ContainsFunc(cidValues, func(where string) bool { return !strings.HasPrefix(where, "payin_configs.metadata") }) {
			t.Fatalf("control: a CID stored in metadata was found in %v, want payin_configs.metadata only; the value check is blind", cidValues)
		}
		found := false
		for _, data := range snapshot(t, s, dsn, columns) {
			found = found || len(findLeaks(data, secrets, mask)) > 0
		}
		if !found {
			t.Fatal("control: a CID stored in metadata was not found; the leak checks are blind")
		}

		if engine == sqlstore.EngineSQLite {
			// After the last connection closes, SQLite checkpoints the WAL
			// into the file; the control row is there, the card data is not.
			s.Close()
			mask = append(mask, []byte(`{"note":"`+canaryCID+`"}`))
			for where, data := range snapshot(t, nil, dsn, nil) {
				for _, leak := range findLeaks(data, secrets, mask) {
					t.Errorf("%s after close: %s", where, leak)
				}
			}
		}
	})
}

// snapshot returns what the database holds: the SQLite file and its
// companions (-wal, -shm) as raw bytes, or on PostgreSQL every row of every
// table as JSON. s may be nil for SQLite (the store is closed).
func snapshot(t *testing.T, s *sqlstore.Store, dsn string, columns map[string][]string) map[string][]byte {
	t.Helper()
	if s == nil || s.Engine() == sqlstore.EngineSQLite {
		files := sqliteFiles(t, dsn)
		if _, ok := files[dsn+"-wal"]; !ok && s != nil {
			t.Fatalf("no WAL file next to %s (files: %v)", dsn, keys(files))
		}
		out := map[string][]byte{}
		for name, data := range files {
			out[filepath.Base(name)] = data
		}
		return out
	}
	out := map[string][]byte{}
	for table := range columns {
		rows, err := s.DB().Query(`SELECT row_to_json(t)::text FROM ` + table + ` t`)
		if err != nil {
			t.Fatal(err)
		}
		var dump bytes.Buffer
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(row)
			dump.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		out["table "+table] = dump.Bytes()
	}
	return out
}

// findLeaks reports full card numbers in data, and the CID written down
// (cidAlone) once the machine-made tokens are masked out.
func findLeaks(data []byte, pans []string, mask [][]byte) []string {
	var leaks []string
	for _, pan := range pans {
		if bytes.Contains(data, []byte(pan)) {
			leaks = append(leaks, fmt.Sprintf("full card number %s…%s", pan[:4], pan[len(pan)-4:]))
		}
	}
	masked := maskTokens(data, mask)
	if loc := cidAlone.FindIndex(masked); loc != nil {
		lo, hi := max(loc[0]-40, 0), min(loc[1]+40, len(masked))
		leaks = append(leaks, fmt.Sprintf("CID in …%q…", masked[lo:hi]))
	}
	return leaks
}

// cidAlone matches the CID as it is written down: a number of its own, not
// inside a longer run of letters and digits. Any 4 digits turn up by chance
// inside ids, hashes, base64 and a clock's microseconds, live or left over
// in freed pages; a CID in a JSON value, a log line or a column of its own
// stands alone. Masking the live tokens first (with '#', which is neither)
// keeps a CID written right after one visible.
var cidAlone = regexp.MustCompile(`(^|[^0-9A-Za-z])` + canaryCID + `([^0-9A-Za-z]|$)`)

// TestCIDMatcher: the matcher finds the CID wherever it would be written in
// clear, and not where 4 digits occur by chance.
func TestCIDMatcher(t *testing.T) {
	token := "sbx_cfg_3Ayg48w2aXImaQ7kO3DuhtRLwG"
	for _, tc := range []struct {
		name  string
		data  string
		found bool
	}{
		{"a JSON string", `{"note":"` + canaryCID + `"}`, true},
		{"a JSON number", `{"cvv":` + canaryCID + `}`, true},
		{"a log line", "level=INFO msg=charge cvv=" + canaryCID + "\n", true},
		{"a value alone", canaryCID, true},
		{"between binary record bytes", "\x00\x13\x81" + canaryCID + "\x07\x00", true},
		{"right after a live token", token + canaryCID + "\x00", true},
		{"in the middle of an id", "sbx_cfg_3Ayg48w2aXIma" + canaryCID + "O3DuhtRLwG", false},
		{"in a clock's microseconds", `"tstamp":"2026-12-07T10:23:10.0` + canaryCID + `9"`, false},
		{"in hex", "9f3a0c" + canaryCID + "e1b7d2", false},
		{"in a longer number", "1" + canaryCID + "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaks := findLeaks([]byte(tc.data), []string{canaryAmex}, [][]byte{[]byte(token)})
			if found := len(leaks) > 0; found != tc.found {
				t.Fatalf("findLeaks(%q) = %v, want found %v", tc.data, leaks, tc.found)
			}
		})
	}
	t.Run("a full card number", func(t *testing.T) {
		if leaks := findLeaks([]byte("x"+canaryAmex+"y"), []string{canaryAmex}, nil); len(leaks) != 1 {
			t.Fatalf("findLeaks = %v, want the card number", leaks)
		}
	})
}

// sqliteFiles reads the database file and its companions (-wal, -shm).
func sqliteFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	matches, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		out[m] = data
	}
	if _, ok := out[path]; !ok {
		t.Fatalf("database file %s not found", path)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// allColumns lists the columns of every table of the store's schema.
func allColumns(t *testing.T, s *sqlstore.Store) map[string][]string {
	t.Helper()
	tables := paymentstest.Tables(t, s)
	if len(tables) < 8 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	out := map[string][]string{}
	for _, table := range tables {
		out[table], _ = paymentstest.ReadRows(t, s.DB(), `SELECT * FROM `+table+` WHERE 1 = 0`)
	}
	return out
}

// tokenPattern matches stored values that are machine-made tokens: ids,
// hashes, fingerprints, ciphertexts, masked secrets, timestamps. A 4-digit
// string can occur inside such random text by chance; it cannot be a CID
// that was written down, which would stand alone or inside JSON.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_.:*+/=-]{12,}$`)

// storedValues reads every value stored in the tables, looking into JSON
// text as well. It returns the token-like ones (to mask in the raw bytes)
// and where a value holds the CID standing alone ("table.column").
func storedValues(t *testing.T, s *sqlstore.Store, columns map[string][]string) (tokens [][]byte, cidIn []string) {
	t.Helper()
	seen := map[string]bool{}
	var add func(where string, v any)
	add = func(where string, v any) {
		switch x := v.(type) {
		case string:
			if cidAlone.MatchString(x) {
				cidIn = append(cidIn, where)
			}
			if tokenPattern.MatchString(x) {
				seen[x] = true
				return
			}
			var j any
			if (strings.HasPrefix(x, "{") || strings.HasPrefix(x, "[")) && json.Unmarshal([]byte(x), &j) == nil {
				add(where+" (JSON)", j)
			}
		case []byte:
			add(where, string(x))
		case map[string]any:
			for _, e := range x {
				add(where, e)
			}
		case []any:
			for _, e := range x {
				add(where, e)
			}
		}
	}
	for table, cols := range columns {
		_, rows := paymentstest.ReadRows(t, s.DB(), `SELECT * FROM `+table)
		for _, vals := range rows {
			for i, v := range vals {
				add(table+"."+cols[i], v)
			}
		}
	}
	for k := range seen {
		if k == canaryAmex || k == canaryVisa {
			continue // never mask what the test looks for
		}
		tokens = append(tokens, []byte(k))
	}
	// JSON escapes "/" in some encoders; mask that spelling too.
	for _, k := range slicesClone(tokens) {
		if bytes.Contains(k, []byte("/")) {
			tokens = append(tokens, bytes.ReplaceAll(k, []byte("/"), []byte(`\/`)))
		}
	}
	return tokens, cidIn
}

func slicesClone(in [][]byte) [][]byte { return append([][]byte(nil), in...) }

// maskTokens blanks every occurrence of the tokens in data.
func maskTokens(data []byte, tokens [][]byte) []byte {
	out := bytes.Clone(data)
	for _, tok := range tokens {
		blank := bytes.Repeat([]byte{'#'}, len(tok))
		for i := 0; ; {
			j := bytes.Index(out[i:], tok)
			if j < 0 {
				break
			}
			copy(out[i+j:], blank)
			i += j + len(tok)
		}
	}
	return out
}
