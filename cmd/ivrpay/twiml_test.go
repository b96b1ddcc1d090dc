package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI prints exactly what the twilio package's golden files hold for the
// same options, so it compares with them rather than keeping copies.
const (
	goldenPayinID = "sbx_cfg_2abcDEF345ghiJKL678mnoPQR90"
	goldenPMCID   = "sbx_pmc_2abcDEF345ghiJKL678mnoPQR90"
)

func twilioGolden(t *testing.T, name string) string { t.Helper(); return testdata(t, "twilio", name) }

// testdata reads a file of a package's testdata.
func testdata(t *testing.T, pkg, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", pkg, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The ids and connector URL of voice/testdata's goldens.
const (
	voicePayinID       = "sbx_cfg_3N8Y0gUGYIj3dUsq758HbYohGOy"
	voicePMCID         = "sbx_pmc_3N8Y0gUGYIj3dUsq758HbYohGOz"
	voiceSignalWireURL = "https://api_key:sbx_apikey_0123@ivr.example.com/vendor/signalwire/pay"
)

// voiceGolden reads a golden document of package voice.
func voiceGolden(t *testing.T, name string) string { t.Helper(); return testdata(t, "voice", name) }

// fakeAPI serves GET /v1/payin_configs/{id} and /v1/payment_method_configs/{id}
// with the API's envelope, for the key "admin_key" only.
func fakeAPI(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.Header.Get("Authorization") != "Bearer admin_key" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"status":"ERROR","data":null,"errors":[{"field":"","code":"AuthUnauthorized","message":"invalid API key"}]}`)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /v1/payin_configs/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		switch id := r.PathValue("id"); id {
		case goldenPayinID:
			_, _ = io.WriteString(w, `{"status":"SUCCESS","data":{"payin_config_id":"`+id+`","amount":1000,"currency_code":"USD",`+
				`"billing_contact":{"name":"Ada","postal_code":"94111"},"payin":null},"errors":null}`)
		case "sbx_cfg_used":
			_, _ = io.WriteString(w, `{"status":"SUCCESS","data":{"payin_config_id":"`+id+`","amount":250,"currency_code":"USD",`+
				`"billing_contact":null,"payin":{"payin_id":"sbx_pyi_1"}},"errors":null}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"status":"ERROR","data":null,"errors":[{"field":"id","code":"EntityNotFound","message":"payin config not found"}]}`)
		}
	}))
	mux.HandleFunc("GET /v1/payment_method_configs/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"SUCCESS","data":{"payment_method_config_id":"`+r.PathValue("id")+`","billing_contact":null,"payment_method":null},"errors":null}`)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func runCLI(f func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = f(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTwiMLCommand(t *testing.T) {
	t.Parallel()
	api := fakeAPI(t)
	payinFlags := []string{"--connector", "ivrpay_sandbox", "--action", "https://example.com/pay/done?call=1&step=2",
		"--status-callback", "https://example.com/pay/status"}
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string // file of twilio/testdata that stdout must equal
		stderr string // substring of stderr
		// stderrGolden is a file of twilio/testdata that stderr must equal.
		stderrGolden string
	}{
		{name: "payin", args: append([]string{"--amount", "10.00", "--payin-config-id", goldenPayinID}, payinFlags...), golden: "payin.twiml.golden"},
		{name: "payin, studio", args: append([]string{"--amount", "10", "--payin-config-id", goldenPayinID, "--format", "studio"}, payinFlags...), golden: "payin.studio.golden", stderrGolden: "payin.studio-widget.golden"},
		{name: "payin with the caller", args: append([]string{"--amount", "10.00", "--payin-config-id", goldenPayinID, "--caller"}, payinFlags...), golden: "payin-caller.twiml.golden"},
		{name: "payin with the caller, studio", args: append([]string{"--amount", "10", "--payin-config-id", goldenPayinID, "--caller", "--format", "studio"}, payinFlags...), golden: "payin-caller.studio.golden", stderrGolden: "payin-caller.studio-widget.golden"},
		{name: "payment method", args: []string{"--payment-method-config-id", goldenPMCID, "--connector", "ivrpay_sandbox"}, golden: "payment_method.twiml.golden"},
		{name: "payment method, studio", args: []string{"--payment-method-config-id", goldenPMCID, "--connector", "ivrpay_sandbox", "--format=studio"}, golden: "payment_method.studio.golden", stderrGolden: "payment_method.studio-widget.golden"},
		{name: "payin config read from the API", args: append([]string{"--config", goldenPayinID, "--api-key", "admin_key", "--base-url", api.URL + "/"}, payinFlags...), golden: "payin.twiml.golden"},
		{name: "payment method config read from the API", args: []string{"--config", goldenPMCID, "--api-key", "admin_key", "--base-url", api.URL, "--connector", "ivrpay_sandbox"}, golden: "payment_method.twiml.golden"},
		{name: "used config warns", args: []string{"--config", "sbx_cfg_used", "--api-key", "admin_key", "--base-url", api.URL, "--connector", "c"}, stderr: "CONFIG_ALREADY_USED"},
		{name: "--amount disagrees with the config", code: 1, args: []string{"--config", goldenPayinID, "--amount", "10.50", "--api-key", "admin_key", "--base-url", api.URL, "--connector", "c"}, stderr: "--amount 10.50 does not match payin config amount 10.00"},
		{name: "unknown config", code: 1, args: []string{"--config", "cfg_nope", "--api-key", "admin_key", "--base-url", api.URL, "--connector", "c"}, stderr: "EntityNotFound"},
		{name: "bad key", code: 1, args: []string{"--config", goldenPayinID, "--api-key", "wrong", "--base-url", api.URL, "--connector", "c"}, stderr: "401"},
		{name: "config id of no known kind", code: 2, args: []string{"--config", "pyi_1", "--api-key", "k", "--base-url", api.URL, "--connector", "c"}, stderr: "cfg_"},
		{name: "config without base URL", code: 2, args: []string{"--config", goldenPayinID, "--api-key", "k", "--connector", "c"}, stderr: "--base-url"},
		{name: "no connector", code: 2, args: []string{"--amount", "1.00", "--payin-config-id", "cfg_1"}, stderr: "connector"},
		{name: "bad amount", code: 2, args: []string{"--amount", "ten", "--payin-config-id", "cfg_1", "--connector", "c"}, stderr: "--amount"},
		{name: "payin without amount", code: 2, args: []string{"--payin-config-id", "cfg_1", "--connector", "c"}, stderr: "amount"},
		{name: "no config at all", code: 2, args: []string{"--connector", "c"}, stderr: "config id"},
		{name: "bad format", code: 2, args: []string{"--payment-method-config-id", "pmc_1", "--connector", "c", "--format", "xml"}, stderr: "--format"},
		{name: "unknown flag", code: 2, args: []string{"--colour"}, stderr: "colour"},
		{name: "stray argument", code: 2, args: []string{"chek", "file.xml"}, stderr: "check"},
		{name: "help", code: 0, args: []string{"--help"}, stderr: "Usage"},
		// The other platforms' documents (goldens of voice/testdata).
		{name: "telnyx payin", args: []string{"--provider", "telnyx", "--amount", "10.00", "--payin-config-id", voicePayinID, "--connector", "ivrpay_sandbox",
			"--status-callback", "https://example.com/status"}, golden: "voice:payin.texml.golden"},
		{name: "signalwire payin", args: []string{"--provider", "signalwire", "--amount", "10.00", "--payin-config-id", voicePayinID, "--connector", voiceSignalWireURL,
			"--status-callback", "https://example.com/status"}, golden: "voice:payin.cxml.golden"},
		{name: "signalwire payment method, swml", args: []string{"--provider", "SignalWire", "--format", "swml", "--payment-method-config-id", voicePMCID,
			"--connector", voiceSignalWireURL}, golden: "voice:payment_method.swml.golden"},
		{name: "unknown provider", code: 2, args: []string{"--provider", "vonage", "--payment-method-config-id", "pmc_1", "--connector", "c"}, stderr: "--provider must be twilio, telnyx or signalwire"},
		{name: "telnyx has no studio", code: 2, args: []string{"--provider", "telnyx", "--format", "studio", "--payment-method-config-id", "pmc_1", "--connector", "c"}, stderr: "--format must be texml"},
		{name: "signalwire without connector", code: 2, args: []string{"--provider", "signalwire", "--payment-method-config-id", "pmc_1"}, stderr: "https://api_key:<IVR API key>@"},
		{name: "signalwire connector without credentials", code: 2, args: []string{"--provider", "signalwire", "--payment-method-config-id", "pmc_1",
			"--connector", "https://ivr.example.com/vendor/signalwire/pay"}, stderr: "carries no credentials"},
		{name: "swml has no action", code: 2, args: []string{"--provider", "signalwire", "--format", "swml", "--payment-method-config-id", "pmc_1",
			"--connector", voiceSignalWireURL, "--action", "https://example.com/done"}, stderr: "no action URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(runTwiML, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if name, ok := strings.CutPrefix(tt.golden, "voice:"); ok {
				if stdout != voiceGolden(t, name) {
					t.Errorf("stdout differs from voice/testdata/%s:\n%s", name, stdout)
				}
			} else if tt.golden != "" && stdout != twilioGolden(t, tt.golden) {
				t.Errorf("stdout differs from twilio/testdata/%s:\n%s", tt.golden, stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			if tt.stderrGolden != "" && stderr != twilioGolden(t, tt.stderrGolden) {
				t.Errorf("stderr differs from twilio/testdata/%s:\n%s", tt.stderrGolden, stderr)
			}
			if strings.Contains(stdout+stderr, "admin_key") {
				t.Error("the API key was printed")
			}
		})
	}
}

func TestTwiMLCheckCommand(t *testing.T) {
	t.Parallel()
	api := fakeAPI(t)
	dir := t.TempDir()
	write := func(name, doc string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.xml", twilioGolden(t, "payin-caller.twiml.golden"))
	noCaller := write("nocaller.xml", twilioGolden(t, "payin.twiml.golden"))
	store := write("store.xml", twilioGolden(t, "payment_method.twiml.golden"))
	noPostal := write("nopostal.xml", strings.Replace(twilioGolden(t, "payin-caller.twiml.golden"), `postalCode="true"`, `postalCode="false"`, 1))
	fewTypes := write("few.xml", strings.Replace(twilioGolden(t, "payin-caller.twiml.golden"), ` discover jcb diners-club`, ``, 1))
	broken := write("broken.xml", `<Response><Pay>`)
	studio := filepath.Join("..", "..", "twilio", "testdata", "studio_flow.json")
	printedFlow := write("printed.json", twilioGolden(t, "payin-caller.studio.golden"))
	texml := write("pay.texml", voiceGolden(t, "payin-caller.texml.golden"))
	cxml := write("pay.cxml", voiceGolden(t, "payin-caller.cxml.golden"))
	swml := write("pay.swml.json", voiceGolden(t, "payin-caller.swml.golden"))
	used := write("used.xml", strings.NewReplacer(`chargeAmount="10.00"`, `chargeAmount="2.50"`, goldenPayinID, "sbx_cfg_used").Replace(twilioGolden(t, "payin-caller.twiml.golden")))

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings, in order
	}{
		{name: "clean", args: []string{good, "--amount", "10.00"}, stdout: []string{good + ": no problems found"}},
		{name: "no caller parameter is a warning", args: []string{noCaller, "--amount", "10.00"}, stdout: []string{
			`warning Pay[1] Parameter: the step passes no caller parameter`, `Fix: add <Parameter name="caller" value="{{From}}"/> inside <Pay>`,
			noCaller + ": 0 errors, 1 warning"}},
		{name: "amount mismatch, flag after FILE", args: []string{good, "--amount", "10.50"}, code: 1, stdout: []string{
			"error Pay[1] chargeAmount: chargeAmount 10.00 does not match payin config amount 10.50; the connector answers AMOUNT_MISMATCH. Fix: set chargeAmount=\"10.50\"",
			": 1 error, 0 warnings"}},
		{name: "flag before FILE", args: []string{"--amount", "10.50", good}, code: 1, stdout: []string{"AMOUNT_MISMATCH"}},
		{name: "warnings only exit 0", args: []string{fewTypes}, stdout: []string{"warning Pay[1] validCardTypes:", ": 0 errors, 1 warning"}},
		{name: "postal code off without the config", args: []string{noPostal}, code: 1, stdout: []string{"error Pay[1] postalCode:", "MISSING_POSTAL_CODE"}},
		{name: "postal code off, the config has one", args: []string{noPostal, "--config", goldenPayinID, "--api-key", "admin_key", "--base-url", api.URL}, stdout: []string{"no problems found"}},
		{name: "payment method config against a payin document", args: []string{good, "--config", goldenPMCID, "--api-key", "admin_key", "--base-url", api.URL}, code: 1, stdout: []string{"error Pay[1] chargeAmount:", "error Pay[1] Parameter:"}},
		{name: "store document and its config", args: []string{store, "--config", goldenPMCID, "--api-key", "admin_key", "--base-url", api.URL}, stdout: []string{"no problems found"}},
		{name: "studio flow without the caller", args: []string{studio, "--amount", "10.00"}, stdout: []string{"warning capture_payment parameters:", "{{trigger.call.From}}", ": 0 errors, 1 warning"}},
		{name: "the flow `twiml --format studio` prints", args: []string{printedFlow, "--amount", "10.00"}, stdout: []string{printedFlow + ": no problems found"}},
		{name: "the printed flow against its config", args: []string{printedFlow, "--config", goldenPayinID, "--api-key", "admin_key", "--base-url", api.URL}, stdout: []string{"no problems found"}},
		{name: "a used config is a counted warning", args: []string{used, "--config", "sbx_cfg_used", "--api-key", "admin_key", "--base-url", api.URL},
			stdout: []string{"warning sbx_cfg_used: config sbx_cfg_used was already used by sbx_pyi_1", used + ": 0 errors, 1 warning"}},
		{name: "studio flow, wrong amount", args: []string{studio, "--amount", "12.00"}, code: 1, stdout: []string{"error capture_payment payment_amount:"}},
		{name: "malformed document", args: []string{broken}, code: 1, stdout: []string{"error " + broken + ":", "well-formed"}},
		{name: "no FILE", args: []string{"--amount", "1.00"}, code: 2},
		{name: "two FILEs", args: []string{good, store}, code: 2},
		{name: "missing FILE", args: []string{filepath.Join(dir, "nope.xml")}, code: 2},
		{name: "bad amount", args: []string{good, "--amount", "1,00"}, code: 2},
		{name: "unknown flag", args: []string{good, "--strict"}, code: 2},
		// The other platforms' markups: the same mistake, in each one's terms.
		{name: "TeXML", args: []string{texml, "--provider", "telnyx", "--amount", "10.00"}, stdout: []string{texml + ": no problems found"}},
		{name: "TeXML, amount mismatch", args: []string{texml, "--provider", "telnyx", "--amount", "10.50"}, code: 1, stdout: []string{
			"error Pay[1] chargeAmount: chargeAmount 10.00 does not match payin config amount 10.50; the connector answers AMOUNT_MISMATCH. Fix: set chargeAmount=\"10.50\""}},
		{name: "cXML", args: []string{cxml, "--provider", "signalwire", "--amount", "10.00"}, stdout: []string{cxml + ": no problems found"}},
		{name: "SWML, amount mismatch", args: []string{swml, "--provider", "signalwire", "--amount", "10.50"}, code: 1, stdout: []string{
			"error sections.main[0].pay charge_amount: charge_amount 10.00 does not match payin config amount 10.50; the connector answers AMOUNT_MISMATCH. Fix: set pay.charge_amount to \"10.50\""}},
		{name: "cXML checked as TwiML", args: []string{cxml, "--amount", "10.00"}, code: 1, stdout: []string{"error Pay[1] paymentConnector:"}},
		{name: "unknown provider", args: []string{good, "--provider", "plivo"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(runTwiML, append([]string{"check"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			rest := stdout
			for _, w := range tt.stdout {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", w, stdout)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
