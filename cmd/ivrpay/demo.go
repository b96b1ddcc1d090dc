package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/twilio"
)

// runDemo tells the whole story on a throw-away SQLite database: an
// in-process server, a platform with IVR enabled, the restricted IVR key, a
// $10.00 payin config, the TwiML to paste, a simulated call, the resulting
// payin, a declined call, a stored card, and then the rest of the money's
// way: settlement, a refund, a chargeback opened and lost (the sandbox's
// trigger 5130), and signed webhooks verified by a receiver.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the demo database directory instead of deleting it")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if err := demo(ctx, stdout, *keep); err != nil {
		fmt.Fprintf(stderr, "ivrpay demo: %v\n", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer, keep bool) error {
	dir, err := os.MkdirTemp("", "ivrpay-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	sc := storeConfig{db: filepath.Join(dir, "demo.db"), mode: string(ivrpay.ModeSandbox), vaultKeyFile: filepath.Join(dir, "vault.key")}
	store, v, mode, err := sc.open(ctx, slog.New(slog.DiscardHandler), io.Discard, "")
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	service := newPayments(store, v, mode, slog.New(slog.DiscardHandler), paymentsConfig{reconcileAfter: payments.DefaultReconcileAfter}, io.Discard)
	srv := newHTTPServer(newAPIServer(store, service, slog.New(slog.DiscardHandler)).Handler())
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	endpoint := base + httpapi.ConnectorPath

	step := func(n int, title string) { fmt.Fprintf(out, "\n== %d. %s\n", n, title) }
	fmt.Fprintf(out, "ivrpay demo: a sandbox on %s with a throw-away database in %s\n", base, dir)

	step(1, "The operator creates a platform with IVR payments enabled (ivrpay admin platform create --enable-ivr)")
	platform, admin, err := store.CreatePlatform(ctx, "Demo platform", true)
	if err != nil {
		return err
	}
	merchant, err := store.CreateMerchantAsOperator(ctx, platform.ID, ivrpay.MerchantCreate{Name: "Demo pizzeria"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "platform %s, merchant %s (ACTIVE), admin key %s\n", platform.ID, merchant.ID, ivrpay.MaskAPIKeySecret(admin.Secret))

	api := &httpapi.Client{BaseURL: base, APIKey: admin.Secret}
	step(2, "The platform creates the restricted IVR key (POST /v1/api_keys, the guide's statements)")
	statements := []ivrpay.Statement{{Permissions: []string{"payin:create", "payment_method:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platform.ID}}}}
	ivrKey, err := api.CreateAPIKey(ctx, statements)
	if err != nil {
		return err
	}
	statementsJSON, _ := json.Marshal(statements)
	// The id and the secret look alike (sbx_api_… and sbx_apikey_…): say which goes into Twilio.
	fmt.Fprintf(out, "statements: %s\nIVR key id      %s   (api_key_id: to read, disable or delete the key)\n"+
		"IVR key secret  %s   (api_key: the connector's Password, step 3)\nThe IVR key cannot create payin configs:\n",
		statementsJSON, ivrKey.ID, ivrKey.Secret)
	ivrAPI := &httpapi.Client{BaseURL: base, APIKey: ivrKey.Secret}
	if _, err := ivrAPI.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: merchant.ID, IdempotencyKey: "x", Amount: "1000", CurrencyCode: "USD"}); err != nil {
		fmt.Fprintf(out, "  with the IVR key, %v\n", err)
	} else {
		return errors.New("the IVR key could create a payin config")
	}

	step(3, "Twilio Generic Pay Connector settings to paste")
	fmt.Fprintf(out, "Unique Name   ivrpay_demo\nUsername      api_key\nPassword      %s   (the IVR key's secret, not its id)\nEndpoint URL  %s\n", ivrKey.Secret, endpoint)

	step(4, "Before the call, the platform creates a $10.00 payin config (POST /v1/payin_configs)")
	cfgID, err := demoPayinConfig(ctx, api, merchant.ID, "demo-order-1", 1000)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "payin config %s, amount 1000 cents\n", cfgID)

	step(5, "The <Pay> TwiML for this config (ivrpay twiml --amount 10.00 --payin-config-id … --connector ivrpay_demo)")
	pay, err := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_demo", AmountCents: 1000, PayinConfigID: cfgID})
	if err != nil {
		return err
	}
	out.Write(pay.TwiML())

	step(6, "A simulated call: the caller types Visa 4111 1111 1111 1111 (ivrpay simulate)")
	sim, err := demoCall(ctx, endpoint, ivrKey.Secret, pay, "4111111111111111", "123")
	if err != nil {
		return err
	}
	printJSON(out, "action callback Twilio would post", sim.Callback)
	if sim.Result() != twilio.ResultSuccess {
		return fmt.Errorf("the demo charge did not succeed: %s", sim.Callback.Get("ConnectorError"))
	}
	var payin json.RawMessage
	if err := api.Do(ctx, "GET", "/v1/payins/"+sim.Callback.Get("PaymentConfirmationCode"), nil, &payin); err != nil {
		return err
	}
	printJSON(out, "GET /v1/payins/"+sim.Callback.Get("PaymentConfirmationCode"), payin)

	step(7, "A declined call: card 4000 0000 0000 0002 on a new $10.00 payin config")
	cfg2, err := demoPayinConfig(ctx, api, merchant.ID, "demo-order-2", 1000)
	if err != nil {
		return err
	}
	pay2, _ := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_demo", AmountCents: 1000, PayinConfigID: cfg2})
	sim2, err := demoCall(ctx, endpoint, ivrKey.Secret, pay2, "4000000000000002", "123")
	if err != nil {
		return err
	}
	printJSON(out, "action callback Twilio would post", sim2.Callback)

	step(8, "Storing a card: a payment method config and a <Pay> with chargeAmount=\"0\"")
	pmc, err := api.CreatePaymentMethodConfig(ctx, ivrpay.PaymentMethodConfigCreate{PlatformID: platform.ID, IdempotencyKey: "demo-card-1"})
	if err != nil {
		return err
	}
	pay3, _ := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_demo", PaymentMethodConfigID: pmc.ID})
	sim3, err := demoCall(ctx, endpoint, ivrKey.Secret, pay3, "5555555555554444", "321")
	if err != nil {
		return err
	}
	printJSON(out, "action callback Twilio would post", sim3.Callback)
	var pm json.RawMessage
	if err := api.Do(ctx, "GET", "/v1/payment_methods/"+sim3.Callback.Get("PaymentToken"), nil, &pm); err != nil {
		return err
	}
	printJSON(out, "GET /v1/payment_methods/"+sim3.Callback.Get("PaymentToken"), pm)

	step(9, "An agent-assisted payment without a phone: Twilio's Payments API played by ivrpay twilio-emulator")
	if err := demoAgentAssisted(ctx, out, api, merchant.ID, endpoint, ivrKey.Secret); err != nil {
		return fmt.Errorf("agent-assisted payment: %w", err)
	}
	if err := demoMoneyFlow(ctx, out, step, 10, store, service, api, endpoint, ivrKey.Secret, merchant.ID); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDone. Next: `ivrpay serve` for a sandbox that keeps its data, and README.md for the guide's steps with curl.\n")
	return nil
}

func demoCall(ctx context.Context, endpoint, key string, pay *twilio.Pay, pan, cvv string) (*twilio.Simulation, error) {
	exp := time.Now().AddDate(2, 0, 0).Format("01/06")
	return twilio.Simulate(ctx, twilio.SimulateOptions{Endpoint: endpoint, APIKey: key, Pay: pay,
		Caller: twilio.CallerInput{CardNumber: pan, Expiry: exp, CVV: cvv, PostalCode: "94111"}})
}

func printJSON(out io.Writer, title string, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(out, "%s:\n%s\n", title, b)
}

// demoPayinConfig creates a payin config of cents, marked as made for IVR.
func demoPayinConfig(ctx context.Context, api *httpapi.Client, merchantID, idempotencyKey string, cents int64) (string, error) {
	cfg, err := api.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: merchantID, IdempotencyKey: idempotencyKey,
		Amount: json.Number(strconv.FormatInt(cents, 10)), CurrencyCode: "USD", Metadata: json.RawMessage(`{"channel":"twilio-ivr"}`)})
	if err != nil {
		return "", err
	}
	return cfg.ID, nil
}

// demoAgentAssisted runs one agent-assisted payment through the emulator:
// the agent app's REST calls, the caller's keypad, the status callbacks,
// and the payin the final callback names.
func demoAgentAssisted(ctx context.Context, out io.Writer, api *httpapi.Client, merchantID, endpoint, ivrKey string) error {
	cfgID, err := demoPayinConfig(ctx, api, merchantID, "demo-order-3", 2500)
	if err != nil {
		return err
	}
	authToken := strings.TrimPrefix(twilio.NewSid("xx"), "xx")
	connector := strings.Replace(endpoint, "http://", "http://"+twilio.DefaultUsername+":"+ivrKey+"@", 1)
	emu, err := twilio.NewEmulator(twilio.EmulatorOptions{AccountSid: twilio.DefaultAccountSid, AuthToken: authToken,
		Connectors: map[string]string{"ivrpay_demo": connector}})
	if err != nil {
		return err
	}
	defer emu.Close()
	emuURL, stopEmu, err := demoListen(emu.Handler())
	if err != nil {
		return err
	}
	defer stopEmu()
	// The agent app: its status callback URL, where Twilio reports progress.
	events := make(chan url.Values, 64)
	appURL, stopApp, err := demoListen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() == nil {
			events <- r.PostForm
		}
	}))
	if err != nil {
		return err
	}
	defer stopApp()
	fmt.Fprintf(out, "emulator on %s (ivrpay twilio-emulator --auth-token … --connector ivrpay_demo=%s), payin config %s for $25.00\n",
		emuURL, strings.Replace(connector, ivrKey, "IVR_KEY", 1), cfgID)

	callSid := twilio.NewSid("CA")
	payments := emuURL + "/2010-04-01/Accounts/" + twilio.DefaultAccountSid + "/Calls/" + callSid + "/Payments"
	// post sends a form with the account's credentials, which the REST API
	// and the keypad both need.
	post := func(path string, form url.Values) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(twilio.DefaultAccountSid, authToken)
		return http.DefaultClient.Do(req)
	}
	rest := func(path string, form url.Values) (map[string]any, error) {
		form.Set("IdempotencyKey", twilio.NewSid("ik"))
		form.Set("StatusCallback", appURL+"/status")
		resp, err := post(path, form)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("HTTP %d: %v", resp.StatusCode, v)
		}
		return v, nil
	}
	created, err := rest(payments+".json", url.Values{"PaymentConnector": {"ivrpay_demo"}, "ChargeAmount": {"25.00"},
		"ValidCardTypes": {twilio.SupportedCardTypes}, "Parameter": {`{"payin_config_id":"` + cfgID + `"}`}})
	if err != nil {
		return err
	}
	sid, _ := created["sid"].(string)
	fmt.Fprintf(out, "agent: POST …/Calls/%s/Payments.json ChargeAmount=25.00 → %s\n", callSid, sid)
	exp := time.Now().AddDate(2, 0, 0).Format("0106")
	for _, f := range [][2]string{{"payment-card-number", "4111111111111111"}, {"expiration-date", exp}, {"security-code", "123"}, {"postal-code", "94111"}} {
		if _, err := rest(payments+"/"+sid+".json", url.Values{"Capture": {f[0]}}); err != nil {
			return err
		}
		resp, err := post(emuURL+"/emulator/Calls/"+callSid+"/Digits", url.Values{"Digits": {f[1] + "#"}})
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("keypad: HTTP %d", resp.StatusCode)
		}
		ev, err := demoEvent(events)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "agent: Capture=%s; caller types it; statusCallback: %s\n", f[0], demoMasked(ev))
	}
	if _, err := rest(payments+"/"+sid+".json", url.Values{"Status": {"complete"}}); err != nil {
		return err
	}
	fmt.Fprintln(out, "agent: Status=complete; Twilio sends the Generic Pay Connector request to ivrpay")
	final, err := demoEvent(events)
	if err != nil {
		return err
	}
	printJSON(out, "final statusCallback", demoFields(final))
	code := final.Get("PaymentConfirmationCode")
	if final.Get("Result") != twilio.ResultSuccess || code == "" {
		return fmt.Errorf("the payment did not succeed: %s", final.Get("PaymentError"))
	}
	var payin json.RawMessage
	if err := api.Do(ctx, "GET", "/v1/payins/"+code, nil, &payin); err != nil {
		return err
	}
	printJSON(out, "GET /v1/payins/"+code, payin)
	return nil
}

// demoListen serves h on a fresh 127.0.0.1 port.
func demoListen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := newHTTPServer(h)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func demoEvent(events <-chan url.Values) (url.Values, error) {
	select {
	case ev := <-events:
		return ev, nil
	case <-time.After(15 * time.Second):
		return nil, errors.New("no status callback within 15s")
	}
}

// demoFields orders a callback's fields by name, for printing.
func demoFields(v url.Values) map[string]string {
	m := make(map[string]string, len(v))
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

// demoMasked shows the fields of an event that tell the agent where the caller is.
func demoMasked(ev url.Values) string {
	var parts []string
	for _, k := range []string{"Capture", "PartialResult", "PaymentCardNumber", "ExpirationDate", "SecurityCode", "PaymentCardPostalCode", "ErrorType", "Required"} {
		if v := ev.Get(k); v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}
