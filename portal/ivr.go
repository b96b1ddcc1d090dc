package portal

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/voice"
)

// testCard is a card the test call form offers. The form names cards by
// label and last 4 only, so the page never holds a card number; a number the
// user types is used for one call and never rendered back.
type testCard struct {
	ID, Label, PAN string
	// CVV is used when the CVV field is left empty (4 digits for Amex).
	CVV string
}

var testCards = []testCard{
	{"visa", "Visa test card ending 1111 (approved)", "4111111111111111", "123"},
	{"mastercard", "Mastercard test card ending 4444 (approved)", "5555555555554444", "123"},
	{"amex", "American Express test card ending 0005 (approved)", "378282246310005", "1234"},
	{"discover", "Discover test card ending 1117 (approved)", "6011111111111117", "123"},
	{"jcb", "JCB test card ending 0505 (approved)", "3566002020360505", "123"},
	{"diners", "Diners Club test card ending 0004 (approved)", "3056930009020004", "123"},
	{"declined", "Visa ending 0002 (sandbox: DECLINED)", "4000000000000002", "123"},
	{"insufficient", "Visa ending 9995 (sandbox: INSUFFICIENT_FUNDS)", "4000000000009995", "123"},
}

func testCardByID(id string) (testCard, bool) {
	for _, c := range testCards {
		if c.ID == id {
			return c, true
		}
	}
	return testCard{}, false
}

// ivrConfig is the config the IVR page shows TwiML for.
type ivrConfig struct {
	ID          string
	Kind        string // twilio.ConfigKindPayin or twilio.ConfigKindPaymentMethod
	AmountCents int64
	MerchantID  string
	Merchant    string
	UsedBy      string // the payin or payment method that already used the config
	PostalCode  string
}

// testCallForm is what the test call form shows. It never holds a card
// number, a CVV or an API key: they are cleared from every re-rendered form.
type testCallForm struct {
	Card       string
	Expiry     string
	PostalCode string
}

type ivrData struct {
	PlatformID    string
	IVREnabled    bool
	MinAPIVersion ivrpay.APIVersion
	VersionOK     bool
	ConnectorName string
	EndpointURL   string
	// TelnyxURL and SignalWireURL are the other platforms' connector
	// endpoints; SignalWire's carries the credentials, the key a placeholder.
	TelnyxURL     string
	SignalWireURL string
	Production    bool
	Recent        []string
	ConfigID      string
	Config        *ivrConfig
	ConfigError   string
	TwiML         string
	Studio        string
	// TeXML, CXML and SWML are the config's pay step for Telnyx and SignalWire.
	TeXML, CXML, SWML string
	// Providers are the platforms a test call can play, Provider the one chosen.
	Providers []ivrpay.IVRProvider
	Provider  ivrpay.IVRProvider
	Cards     []testCard
	Form      testCallForm
	Call      *callResult
	CallError string
}

// callResult is a test call's outcome as the page shows it: the action
// callback fields (the card masked by the simulator) and the attempts.
type callResult struct {
	Result   string
	Fields   twilio.CallbackFields
	Attempts []twilio.Attempt
	PayinID  string
	MethodID string
}

var configIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// configKind tells a payin config id from a payment method config id by prefix.
func configKind(id string) string {
	bare := strings.TrimPrefix(id, ivrpay.ModeSandbox.IDPrefix())
	switch {
	case strings.HasPrefix(bare, ivrpay.PrefixPayinConfig):
		return twilio.ConfigKindPayin
	case strings.HasPrefix(bare, ivrpay.PrefixPaymentMethodConfig):
		return twilio.ConfigKindPaymentMethod
	}
	return ""
}

// findConfig reads a config with the signed-in key's permissions.
func (p *Portal) findConfig(rq *request, id string) (*ivrConfig, error) {
	if !configIDPattern.MatchString(id) {
		return nil, ivrpay.FieldErrorf("config", "%q is not a config id", id)
	}
	switch configKind(id) {
	case twilio.ConfigKindPayin:
		c, err := p.svc.PayinConfigs.FindPayinConfig(rq.Context(), id)
		if err != nil {
			return nil, err
		}
		out := &ivrConfig{ID: c.ID, Kind: twilio.ConfigKindPayin, AmountCents: c.Amount, MerchantID: c.MerchantID, Merchant: c.Merchant.Name}
		if c.Payin != nil {
			out.UsedBy = c.Payin.PayinID
		}
		if c.BillingContact != nil {
			out.PostalCode = c.BillingContact.PostalCode
		}
		return out, nil
	case twilio.ConfigKindPaymentMethod:
		c, err := p.svc.PaymentMethodConfigs.FindPaymentMethodConfig(rq.Context(), id)
		if err != nil {
			return nil, err
		}
		out := &ivrConfig{ID: c.ID, Kind: twilio.ConfigKindPaymentMethod, MerchantID: c.MerchantID}
		if c.PaymentMethod != nil {
			out.UsedBy = c.PaymentMethod.PaymentMethodID
		}
		if c.BillingContact != nil {
			out.PostalCode = c.BillingContact.PostalCode
		}
		return out, nil
	}
	return nil, ivrpay.FieldErrorf("config", "%s is neither a payin config (%s…) nor a payment method config (%s…)",
		id, ivrpay.PrefixPayinConfig, ivrpay.PrefixPaymentMethodConfig)
}

// payOptions describe the pay step for this config with connector, the
// connector's name (Twilio, Telnyx) or URL (SignalWire).
func (c *ivrConfig) payOptions(connector string) twilio.PayOptions {
	o := twilio.PayOptions{Connector: connector}
	if c.Kind == twilio.ConfigKindPayin {
		o.PayinConfigID, o.AmountCents = c.ID, c.AmountCents
	} else {
		o.PaymentMethodConfigID = c.ID
	}
	return o
}

func (c *ivrConfig) pay(connector string) (*twilio.Pay, error) {
	return twilio.NewPay(c.payOptions(connector))
}

// keyPlaceholder stands for the IVR key in SignalWire's connector URL.
const keyPlaceholder = "YOUR_IVR_KEY"

// platformDocument is the config's pay step in platform's first format.
func (c *ivrConfig) platformDocument(platform voice.Platform, connector, format string) (string, error) {
	doc, _, err := platform.Document(c.payOptions(connector), format)
	return string(doc), err
}

// suggestedConnectorName is the Unique Name the page suggests for this deployment.
func (p *Portal) suggestedConnectorName() string {
	return "ivrpay_" + string(p.opts.Mode)
}

func (p *Portal) ivrPage(rq *request, configID, connector string) (*page, *ivrData) {
	pg := rq.basePage("IVR setup", "ivr")
	k := rq.key
	d := &ivrData{PlatformID: k.PlatformID, EndpointURL: p.opts.BaseURL + ConnectorPath,
		TelnyxURL: p.opts.BaseURL + voice.Telnyx.Path(), SignalWireURL: voice.SignalWireConnectorURL(p.opts.BaseURL, keyPlaceholder),
		Providers: ivrpay.IVRProviders, Provider: ivrpay.ProviderTwilio,
		Production: p.opts.Mode == ivrpay.ModeProduction, Recent: rq.sess.recentConfigs, Cards: testCards,
		Form: testCallForm{Card: testCards[0].ID, Expiry: defaultExpiry(p.now()), PostalCode: "94107"}}
	if k.Platform != nil {
		d.IVREnabled, d.MinAPIVersion = k.Platform.IVRPayments, k.Platform.MinAPIVersion
		d.VersionOK = k.Platform.MinAPIVersion.SupportsIVR()
	}
	d.ConnectorName = strings.TrimSpace(connector)
	if d.ConnectorName == "" || len(d.ConnectorName) > 100 {
		d.ConnectorName = p.suggestedConnectorName()
	}
	d.ConfigID = strings.TrimSpace(configID)
	if d.ConfigID != "" {
		cfg, err := p.findConfig(rq, d.ConfigID)
		if err != nil {
			d.ConfigError = p.errorText(err)
		} else {
			d.Config = cfg
			p.sessions.rememberConfig(rq.sess.id, cfg.ID)
			pay, err := cfg.pay(d.ConnectorName)
			if err == nil {
				d.TwiML, d.Studio = string(pay.TwiML()), string(pay.StudioWidget())
				d.TeXML, err = cfg.platformDocument(voice.Telnyx, d.ConnectorName, "texml")
			}
			if err == nil {
				d.CXML, err = cfg.platformDocument(voice.SignalWire, d.SignalWireURL, "cxml")
			}
			if err == nil {
				d.SWML, err = cfg.platformDocument(voice.SignalWire, d.SignalWireURL, "swml")
			}
			if err != nil {
				d.ConfigError = err.Error()
			}
		}
	}
	pg.Data = d
	return pg, d
}

func defaultExpiry(now time.Time) string {
	return fmt.Sprintf("12/%02d", (now.Year()+3)%100)
}

func (p *Portal) handleIVR(w http.ResponseWriter, rq *request) {
	q := rq.URL.Query()
	// A recent config chosen in the select wins over the text field, which
	// still holds the config shown before.
	id := q.Get("recent")
	if id == "" {
		id = q.Get("config")
	}
	pg, _ := p.ivrPage(rq, id, q.Get("connector"))
	p.render(w, rq.Request, http.StatusOK, "ivr", pg)
}

// handleTestCall plays a voice platform's part of a call (twilio.Simulate:
// Twilio's, Telnyx's or SignalWire's) against this deployment's own
// connector, with an IVR key pasted into the form (used for this call only,
// never stored or shown), and shows the action callback.
func (p *Portal) handleTestCall(w http.ResponseWriter, rq *request) {
	f := rq.PostForm
	pg, d := p.ivrPage(rq, f.Get("config_id"), f.Get("connector"))
	platform := voice.Twilio
	if v := f.Get("provider"); v != "" {
		var ok bool
		if platform, ok = voice.Lookup(v); !ok {
			d.CallError = "Choose Twilio, Telnyx or SignalWire."
			p.render(w, rq.Request, http.StatusBadRequest, "ivr", pg)
			return
		}
	}
	d.Provider = platform.Provider()
	d.Form = testCallForm{Card: f.Get("card"), Expiry: strings.TrimSpace(f.Get("expiry")), PostalCode: strings.TrimSpace(f.Get("postal_code"))}
	fail := func(status int, msg string) {
		d.CallError = msg
		p.render(w, rq.Request, status, "ivr", pg)
	}
	if d.Config == nil {
		fail(http.StatusBadRequest, "Choose a config first.")
		return
	}
	apiKey := strings.TrimSpace(f.Get("api_key"))
	if apiKey == "" {
		fail(http.StatusBadRequest, "Paste the IVR key the connector will use (its Password).")
		return
	}
	caller := twilio.CallerInput{Expiry: d.Form.Expiry, CVV: strings.TrimSpace(f.Get("cvv")), PostalCode: d.Form.PostalCode}
	if other := strings.ReplaceAll(strings.ReplaceAll(f.Get("card_number"), " ", ""), "-", ""); other != "" {
		caller.CardNumber = other
		d.Form.Card = ""
	} else if tc, ok := testCardByID(d.Form.Card); ok {
		caller.CardNumber = tc.PAN
		if caller.CVV == "" {
			caller.CVV = tc.CVV
		}
	} else {
		fail(http.StatusBadRequest, "Choose a test card or type a card number.")
		return
	}
	// The pay step as the platform's document writes it (SignalWire's with
	// the URL placeholder: the call goes to this deployment's endpoint).
	connector := d.ConnectorName
	if platform == voice.SignalWire {
		connector = d.SignalWireURL
	}
	doc, err := d.Config.platformDocument(platform, connector, platform.Formats()[0])
	var pay *twilio.Pay
	if err == nil {
		pay, err = platform.ParsePay([]byte(doc))
	}
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	o := twilio.SimulateOptions{Platform: platform.Simulator(), Endpoint: p.opts.ConnectorURL + platform.Path(), APIKey: apiKey,
		Pay: pay, Caller: caller, Client: p.opts.ConnectorClient}
	if platform == voice.Twilio {
		o.Timeout, o.Retries = 10*time.Second, 2
	}
	sim, err := twilio.Simulate(rq.Context(), o)
	if err != nil {
		// Simulate's errors never hold the card or the key.
		p.log.Error("portal: test call failed", "error", err)
		fail(http.StatusBadGateway, "The test call could not reach the connector at "+o.Endpoint+".")
		return
	}
	// SignalWire passes no PayConnector_* on: its ids are the confirmation code and token.
	d.Call = &callResult{Result: sim.Result(), Fields: sim.Callback, Attempts: sim.Attempts,
		PayinID:  cmp.Or(sim.Callback.Get("PayConnector_payin_id"), sim.Callback.Get("PaymentConfirmationCode")),
		MethodID: cmp.Or(sim.Callback.Get("PayConnector_payment_method_id"), sim.Callback.Get("PaymentToken"))}
	p.log.Info("portal: test call", "config", d.Config.ID, "result", d.Call.Result, "by", rq.key.ID)
	// Read the config again: a successful charge has used it up.
	if cfg, err := p.findConfig(rq, d.Config.ID); err == nil {
		d.Config = cfg
	}
	p.render(w, rq.Request, http.StatusOK, "ivr", pg)
}
