package twilio

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Severity says whether a Finding breaks calls (error) or only costs approvals
// or callers (warning).
type Severity string

// Severities of a Finding.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one problem lint found in a <Pay> verb or a Studio widget.
type Finding struct {
	Severity Severity `json:"severity"`
	// Element is "Pay[n]" (1-based, in document order), "Pay[n]/Prompt[m]",
	// the Studio widget's name, or the document's root when no step was found.
	Element string `json:"element"`
	// Attribute is the TwiML attribute or Studio property at fault
	// ("Parameter"/"parameters" for the custom parameters).
	Attribute string `json:"attribute,omitempty"`
	Message   string `json:"message"`
	// Fix says concretely what to change.
	Fix string `json:"fix"`
}

// String formats a finding on one line:
// `error Pay[1] chargeAmount: <message>. Fix: <fix>`.
func (f Finding) String() string {
	where := f.Element
	if f.Attribute != "" {
		where += " " + f.Attribute
	}
	return fmt.Sprintf("%s %s: %s. Fix: %s", f.Severity, where, f.Message, f.Fix)
}

// HasErrors reports whether any finding is an error.
func HasErrors(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Config kinds for LintOptions.ConfigKind.
const (
	ConfigKindPayin         = "payin"
	ConfigKindPaymentMethod = "payment_method"
)

// LintOptions tell lint what it knows about the config the <Pay> is for.
type LintOptions struct {
	// AmountCents is the payin config's amount; 0 means unknown. A positive
	// amount implies a payin config.
	AmountCents int64
	// ConfigKind is "" (unknown), ConfigKindPayin or ConfigKindPaymentMethod.
	ConfigKind string
	// ConfigHasPostalCode says the config's billing contact has a postal code,
	// which makes postalCode="false" safe.
	ConfigHasPostalCode bool
	// WantCaller warns about a charging step that passes no caller
	// parameter, which the risk rules count declines by (docs/risk.md).
	WantCaller bool
}

// ExpectedKind is the kind of config the step is for: the one given, or a
// payin config when an amount is given; "" when unknown.
func (o LintOptions) ExpectedKind() string {
	if o.ConfigKind == "" && o.AmountCents > 0 {
		return ConfigKindPayin
	}
	return o.ConfigKind
}

// Validate reports a contradiction in o (an unknown kind, a negative amount,
// an amount for a payment method config).
func (o LintOptions) Validate() error {
	switch {
	case o.ConfigKind != "" && o.ConfigKind != ConfigKindPayin && o.ConfigKind != ConfigKindPaymentMethod:
		return fmt.Errorf("config kind must be %q or %q, not %q", ConfigKindPayin, ConfigKindPaymentMethod, o.ConfigKind)
	case o.AmountCents < 0:
		return errors.New("the payin config amount cannot be negative")
	case o.AmountCents > 0 && o.ConfigKind == ConfigKindPaymentMethod:
		return errors.New("a payment method config has no amount")
	}
	return nil
}

// Lint checks a TwiML document or a Studio flow JSON export (told apart by
// their first character) against what ivrpay's connector needs (docs/connector.md):
// every <Pay> verb or capture-payments widget is checked. The error is for
// input that is neither well-formed TwiML nor a Studio flow, and for bad opts.
func Lint(doc []byte, opts LintOptions) ([]Finding, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(doc, []byte("\xef\xbb\xbf"))) // a UTF-8 byte order mark
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return lintStudio(trimmed, opts)
	}
	pays, err := ParseTwiML(trimmed)
	if err != nil {
		return nil, err
	}
	return LintPays(pays, TwiML, opts), nil
}

// LintPays checks the <Pay> verbs of an XML document written in markup m
// (TwiML, or a TwiML-like markup of another platform), naming them Pay[n];
// a document without any is an error of its own.
func LintPays(pays []Pay, m *Markup, opts LintOptions) []Finding {
	if len(pays) == 0 {
		return []Finding{{
			Severity: SeverityError, Element: "Response",
			Message: "the document has no <Pay> verb, so the call never collects a card",
			Fix:     "add the <Pay> verb that `ivrpay twiml` prints for your config",
		}}
	}
	var findings []Finding
	for i := range pays {
		findings = append(findings, LintPay(fmt.Sprintf("Pay[%d]", i+1), &pays[i], m, opts)...)
	}
	return findings
}

func lintStudio(doc []byte, opts LintOptions) ([]Finding, error) {
	steps, err := parseStudioFlow(doc)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return []Finding{{
			Severity: SeverityError, Element: "flow",
			Message: "the flow has no " + StudioWidgetType + " widget, so the call never collects a card",
			Fix:     "import the flow `ivrpay twiml --format studio` prints, or add a Capture Payments widget with the values it shows on stderr",
		}}, nil
	}
	var findings []Finding
	for i := range steps {
		findings = append(findings, LintPay(steps[i].name, &steps[i].pay, Studio, opts)...)
	}
	return findings, nil
}

// Markup is one way of writing a <Pay> step: TwiML, a Studio flow, and the
// markups of the other voice platforms (package voice: Telnyx's TeXML,
// SignalWire's cXML and SWML). It names the platform that runs the step and
// the step's settings as the user's document spells them, phrases the fixes
// that way, and adds the markup's own rules, so that one set of rules
// reports the same mistakes in every markup.
type Markup struct {
	// Name is the markup's name ("TwiML"), Platform the voice platform's ("Twilio").
	Name, Platform string
	// Names maps a <Pay> attribute (and "Parameter") to the markup's
	// spelling; one it does not list keeps the attribute's name.
	Names map[string]string
	// Set phrases "give attr this value"; nil is `set attr="value"`.
	Set func(attr, value string) string
	// SetParam phrases "the step needs this custom parameter"; nil is a
	// <Parameter> child.
	SetParam func(name, value string) string
	// Method is the connector method a step asks for; nil is chargeAmount's
	// rule (above 0 charges, absent or 0 stores a card).
	Method func(p *Pay) (string, error)
	// Connector checks how the step reaches ivrpay's connector; nil is
	// Twilio's rule (paymentConnector names the connector).
	Connector func(element string, p *Pay) []Finding
	// Rules are the markup's own checks, run after the common ones.
	Rules func(element string, p *Pay, opts LintOptions) []Finding
	// Templates: chargeAmount may be a template ({{…}}) that lint cannot read.
	Templates bool
	// CallerValue is the caller's number as the markup substitutes it; ""
	// is TwiML's CallerValue.
	CallerValue string
}

// TwiML and Studio are Twilio's markups.
var (
	TwiML  = &Markup{Name: "TwiML", Platform: "Twilio"}
	Studio = &Markup{Name: "Studio flow", Platform: "Twilio", Names: studioNames(), Set: studioSet,
		SetParam: func(name, value string) string {
			return fmt.Sprintf("under Parameters (parameters), add the key %s with the value %s", name, value)
		}, Templates: true, CallerValue: StudioCallerValue}
)

// studioFields maps <Pay> attributes to the Studio widget's flow JSON keys and labels.
var studioFields = map[string][2]string{
	"paymentConnector": {"payment_connector", "Pay Connector"},
	"validCardTypes":   {"valid_card_types", "Valid Card Types"},
	"securityCode":     {"security_code", "Request Security Code"},
	"postalCode":       {"postal_code", "Request Postal Code"},
	"tokenType":        {"payment_token_type", "Payment Token Type"},
	"chargeAmount":     {"payment_amount", "Charge Card with Amount"},
	"currency":         {"currency", "Currency"},
	"paymentMethod":    {"payment_method", "Payment Method"},
	"Parameter":        {"parameters", "Parameters"},
}

func studioNames() map[string]string {
	names := make(map[string]string, len(studioFields))
	for attr, f := range studioFields {
		names[attr] = f[0]
	}
	return names
}

// name is the attribute as the user's document spells it.
func (m *Markup) name(attr string) string {
	if n, ok := m.Names[attr]; ok {
		return n
	}
	return attr
}

// set phrases "give attr this value".
func (m *Markup) set(attr, value string) string {
	if m.Set != nil {
		return m.Set(attr, value)
	}
	return fmt.Sprintf("set %s=%q", attr, value)
}

// studioSet phrases a value for Studio's widget by its label and key.
func studioSet(attr, value string) string {
	f := studioFields[attr]
	switch attr {
	case "validCardTypes":
		labels := make([]string, 0, len(cardTypes))
		for _, t := range strings.Fields(value) {
			labels = append(labels, studioCardTypeLabel(t))
		}
		value = strings.Join(labels, ", ")
	case "chargeAmount":
		if value == "0" {
			return fmt.Sprintf("leave %s (%s) empty", f[1], f[0])
		}
	}
	return fmt.Sprintf("set %s (%s) to %s", f[1], f[0], value)
}

// setParam phrases "the step needs this custom parameter".
func (m *Markup) setParam(name, value string) string {
	if m.SetParam != nil {
		return m.SetParam(name, value)
	}
	return fmt.Sprintf("add <Parameter name=%q value=%q/> inside <Pay>", name, value)
}

// lintCheck gathers the findings for one step.
type lintCheck struct {
	element string
	pay     *Pay
	d       *Markup
	opts    LintOptions
	out     []Finding
}

func (c *lintCheck) add(sev Severity, attr, fix, format string, args ...any) {
	c.out = append(c.out, Finding{
		Severity: sev, Element: c.element, Attribute: c.d.name(attr),
		Message: fmt.Sprintf(format, args...), Fix: fix,
	})
}

// LintPay applies every rule to one step written in markup m, in the order
// of the guide's table, then the markup's own rules.
func LintPay(element string, p *Pay, m *Markup, opts LintOptions) []Finding {
	c := &lintCheck{element: element, pay: p, d: m, opts: opts}
	if m.Connector != nil {
		c.out = append(c.out, m.Connector(element, p)...)
	} else {
		c.connector()
	}
	c.cardTypes()
	c.securityCode()
	c.postalCode()
	c.tokenType()
	c.currency()
	c.paymentMethod()
	c.amountAndParameters()
	c.attributeCase()
	c.prompts()
	if m.Rules != nil {
		c.out = append(c.out, m.Rules(element, p, opts)...)
	}
	return c.out
}

func (c *lintCheck) connector() {
	if strings.TrimSpace(c.pay.PaymentConnector) == "" {
		c.add(SeverityError, "paymentConnector",
			c.d.set("paymentConnector", "<Unique Name of your ivrpay Generic Pay Connector>"),
			`%s is missing, so %s sends the card to its connector named "Default" instead of ivrpay`,
			c.d.name("paymentConnector"), c.d.Platform)
	}
}

func (c *lintCheck) cardTypes() {
	fix := c.d.set("validCardTypes", SupportedCardTypes)
	name := c.d.name("validCardTypes")
	if strings.TrimSpace(c.pay.ValidCardTypes) == "" {
		c.add(SeverityWarning, "validCardTypes", fix,
			"%s is missing, so %s accepts only its default %q and refuses callers with Discover, JCB and Diners Club cards, which ivrpay processes",
			name, c.d.Platform, DefaultValidCardTypes)
		return
	}
	listed := map[string]bool{}
	var unsupported []string
	for _, t := range c.pay.CardTypes() {
		if BrandForCardType(t) == "" {
			unsupported = append(unsupported, t)
			continue
		}
		listed[CardType(BrandForCardType(t))] = true
	}
	if len(unsupported) > 0 {
		c.add(SeverityError, "validCardTypes", fix,
			"%s lists %s, which ivrpay cannot process: the caller types the whole card and the connector refuses it with UNSUPPORTED_CARD_BRAND",
			name, strings.Join(unsupported, ", "))
	}
	var missing []string
	for _, t := range cardTypes {
		if !listed[t.name] {
			missing = append(missing, t.name)
		}
	}
	if len(missing) > 0 {
		c.add(SeverityWarning, "validCardTypes", fix,
			"%s leaves out %s: %s refuses those callers although ivrpay processes all six brands",
			name, strings.Join(missing, ", "), c.d.Platform)
	}
}

func (c *lintCheck) securityCode() {
	v := strings.ToLower(strings.TrimSpace(c.pay.SecurityCode))
	fix := c.d.set("securityCode", "true")
	switch v {
	case "", "true":
	case "false":
		c.add(SeverityWarning, "securityCode", fix,
			"%s is false, so callers are not asked for the security code, which lowers approval rates of card-not-present payments",
			c.d.name("securityCode"))
	default:
		c.add(SeverityError, "securityCode", fix, "%s must be true or false, not %q", c.d.name("securityCode"), c.pay.SecurityCode)
	}
}

func (c *lintCheck) postalCode() {
	v := strings.TrimSpace(c.pay.PostalCode)
	name := c.d.name("postalCode")
	switch strings.ToLower(v) {
	case "", "true":
	case "false":
		if c.opts.ConfigHasPostalCode {
			return // the connector falls back to the config's billing contact
		}
		c.add(SeverityError, "postalCode",
			c.d.set("postalCode", "true")+", or put the postal code in the config's billing_contact.postal_code",
			"%s is false, so %s sends no postal code, and unless the config's billing contact has one the connector refuses every card with MISSING_POSTAL_CODE",
			name, c.d.Platform)
	default:
		c.add(SeverityWarning, "postalCode",
			c.d.set("postalCode", "true")+" unless this call's cardholder really has that billing postal code",
			"%s is the fixed value %q: callers are not asked, and every card's address check (AVS) runs against that value",
			name, v)
	}
}

func (c *lintCheck) tokenType() {
	v := strings.ToLower(strings.TrimSpace(c.pay.TokenType))
	if v == "" || v == "reusable" {
		return
	}
	why := "ivrpay stores every card it takes as a reusable payment method, as the guide asks"
	if v == "payment-method" {
		why = "payment-method tokens exist for Stripe's connector only"
	}
	c.add(SeverityError, "tokenType", c.d.set("tokenType", "reusable"),
		"%s is %q: %s", c.d.name("tokenType"), c.pay.TokenType, why)
}

func (c *lintCheck) currency() {
	v := strings.TrimSpace(c.pay.Currency)
	if v == "" || strings.EqualFold(v, "usd") {
		return
	}
	c.add(SeverityError, "currency", c.d.set("currency", "usd"),
		"%s is %q: ivrpay processes USD only and the connector answers UNSUPPORTED_CURRENCY", c.d.name("currency"), v)
}

func (c *lintCheck) paymentMethod() {
	v := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(c.pay.PaymentMethod)), "_", "-")
	if v == "" || v == "credit-card" {
		return
	}
	c.add(SeverityError, "paymentMethod", c.d.set("paymentMethod", "credit-card"),
		"%s is %q: ivrpay takes credit cards only over IVR and the connector answers UNSUPPORTED_PAYMENT_METHOD",
		c.d.name("paymentMethod"), c.pay.PaymentMethod)
}

// amountAndParameters works out whether the step charges (chargeAmount > 0)
// or stores a card, compares that with what is known of the config, and checks
// that the custom parameter the connector needs for that kind is there.
func (c *lintCheck) amountAndParameters() {
	name := c.d.name("chargeAmount")
	expected := c.opts.ExpectedKind()
	amountFix := c.d.set("chargeAmount", "<the payin config's amount, e.g. 10.00>")
	if c.opts.AmountCents > 0 {
		amountFix = c.d.set("chargeAmount", FormatCents(c.opts.AmountCents))
	}
	storeFix := c.d.set("chargeAmount", "0")

	kind := "" // from chargeAmount; "" when it cannot be read
	raw := strings.TrimSpace(c.pay.ChargeAmount)
	cents, err := c.pay.ChargeCents()
	switch {
	case c.d.Templates && strings.Contains(raw, "{{"):
		c.add(SeverityWarning, "chargeAmount", "make sure it renders the payin config's amount as a decimal such as 10.00, or nothing to store a card",
			"%s is the template %q, which ivrpay cannot check", name, raw)
	case err != nil:
		c.add(SeverityError, "chargeAmount", amountFix+", or "+storeFix+" to store a card",
			"%s %q is not a decimal amount such as 10.00, so %s cannot run the payment", name, raw, c.d.Platform)
	case cents > maxChargeCents:
		c.add(SeverityError, "chargeAmount", amountFix,
			"%s %s is above %s's maximum of %s", name, FormatCents(cents), c.d.Platform, FormatCents(maxChargeCents))
	case cents > 0:
		kind = ConfigKindPayin
	default:
		kind = ConfigKindPaymentMethod
	}

	if c.d.Method != nil {
		// The markup says charge or tokenize by other means (Telnyx:
		// transactionType); when it cannot tell, its own rules say why.
		if method, err := c.d.Method(c.pay); err == nil {
			kind = map[string]string{MethodCharge: ConfigKindPayin, MethodTokenize: ConfigKindPaymentMethod}[method]
		}
	}
	switch {
	case kind == ConfigKindPaymentMethod && expected == ConfigKindPayin:
		c.add(SeverityError, "chargeAmount", amountFix,
			"%s is %s, so %s asks the connector to store the card (tokenize), but the config is a payin config",
			name, describeAmount(raw), c.d.Platform)
	case kind == ConfigKindPayin && expected == ConfigKindPaymentMethod:
		c.add(SeverityError, "chargeAmount", storeFix,
			"%s %s makes %s charge the card, but the config is a payment method config, which stores a card",
			name, FormatCents(cents), c.d.Platform)
	case kind == ConfigKindPayin && c.opts.AmountCents > 0 && cents != c.opts.AmountCents:
		c.add(SeverityError, "chargeAmount", amountFix,
			"%s %s does not match payin config amount %s; the connector answers AMOUNT_MISMATCH",
			name, FormatCents(cents), FormatCents(c.opts.AmountCents))
	}

	// The config is the truth when known; otherwise the amount, and failing
	// that the parameters themselves, say which kind the step is meant to be.
	if expected != "" {
		kind = expected
	}
	if kind == "" {
		if _, ok := c.pay.Param(ParamPayinConfigID); ok {
			kind = ConfigKindPayin
		} else {
			kind = ConfigKindPaymentMethod
		}
	}
	if kind == ConfigKindPayin {
		c.payinParameter(describeAmount(raw))
	} else {
		c.paymentMethodParameter(describeAmount(raw))
	}
}

// describeAmount phrases a chargeAmount for a message.
func describeAmount(raw string) string {
	if raw == "" {
		return "absent"
	}
	return fmt.Sprintf("%q", raw)
}

func (c *lintCheck) payinParameter(amount string) {
	if _, ok := c.pay.Param(ParamCaller); !ok && c.opts.WantCaller {
		value := c.d.CallerValue
		if value == "" {
			value = CallerValue
		}
		c.add(SeverityWarning, "Parameter", c.d.setParam(ParamCaller, value)+" (ivrpay twiml --caller writes it)",
			"the step passes no %s parameter, so the risk rules cannot count declines per caller, and one caller can try card after card on fresh payin configs until the card or merchant rules stop it (docs/risk.md)",
			ParamCaller)
	}
	fix := c.d.setParam(ParamPayinConfigID, "<payin config id, cfg_…>")
	v, ok := c.pay.Param(ParamPayinConfigID)
	switch {
	case ok && strings.TrimSpace(v) == "":
		c.add(SeverityError, "Parameter", fix, "the %s parameter is empty, so the connector answers MISSING_CONFIG_ID", ParamPayinConfigID)
	case ok:
	case c.hasPaymentMethodParam() != "":
		c.add(SeverityError, "Parameter", fix+" instead of "+c.hasPaymentMethodParam(),
			"the step charges (%s %s) but carries %s, a payment method config: the connector answers CONFIG_METHOD_MISMATCH",
			c.d.name("chargeAmount"), amount, c.hasPaymentMethodParam())
	default:
		c.add(SeverityError, "Parameter", fix,
			"the step charges but has no %s parameter, so the connector cannot tell which payin config to charge and answers MISSING_CONFIG_ID",
			ParamPayinConfigID)
	}
}

func (c *lintCheck) paymentMethodParameter(amount string) {
	fix := c.d.setParam(ParamPaymentMethodConfigID, "<payment method config id, pmc_…>")
	if v, ok := c.pay.Param(ParamPaymentMethodConfigID); ok {
		if strings.TrimSpace(v) == "" {
			c.add(SeverityError, "Parameter", fix, "the %s parameter is empty, so the connector answers MISSING_CONFIG_ID", ParamPaymentMethodConfigID)
		}
		return
	}
	if v, ok := c.pay.Param(ParamPaymentMethodID); ok {
		sev, why := SeverityWarning, "the connector accepts the guide's alias, but payment_method_config_id says what the value is"
		if strings.TrimSpace(v) == "" {
			sev, why = SeverityError, "it is empty, so the connector answers MISSING_CONFIG_ID"
		}
		c.add(sev, "Parameter", "rename the parameter "+ParamPaymentMethodID+" to "+ParamPaymentMethodConfigID,
			"the step stores a card with the parameter %s: %s", ParamPaymentMethodID, why)
		return
	}
	if _, ok := c.pay.Param(ParamPayinConfigID); ok {
		c.add(SeverityError, "Parameter",
			"to charge, "+c.d.set("chargeAmount", "<the payin config's amount>")+"; to store a card, "+fix+" instead",
			"%s is %s, so %s asks the connector to store the card (tokenize), but the step carries %s: the connector answers CONFIG_METHOD_MISMATCH",
			c.d.name("chargeAmount"), amount, c.d.Platform, ParamPayinConfigID)
		return
	}
	c.add(SeverityError, "Parameter", fix,
		"the step stores a card but has no %s parameter, so the connector cannot tell which payment method config to use and answers MISSING_CONFIG_ID",
		ParamPaymentMethodConfigID)
}

// hasPaymentMethodParam returns the name of a payment method config parameter
// the step carries, or "".
func (c *lintCheck) hasPaymentMethodParam() string {
	for _, n := range []string{ParamPaymentMethodConfigID, ParamPaymentMethodID} {
		if _, ok := c.pay.Param(n); ok {
			return n
		}
	}
	return ""
}

// attributeCase catches attributes spelled with the wrong case: Twilio's
// attribute names are case-sensitive, so "chargeamount" is silently ignored.
func (c *lintCheck) attributeCase() {
	for _, a := range c.pay.Other {
		for _, f := range c.pay.attrFields() {
			if a.Name.Local != f.name && strings.EqualFold(a.Name.Local, f.name) {
				c.out = append(c.out, Finding{
					Severity: SeverityError, Element: c.element, Attribute: a.Name.Local,
					Message: fmt.Sprintf("%s attribute names are case-sensitive, so %s is ignored", c.d.Platform, a.Name.Local),
					Fix:     "rename it to " + f.name,
				})
			}
		}
	}
}

// prompts catches twilio-go's For_ bug: VoicePrompt{For_: …} renders
// <Prompt for_="…">, which Twilio does not know, so the custom prompt is lost.
func (c *lintCheck) prompts() {
	for i, attrs := range c.pay.Prompts {
		hasFor, hasForUnderscore := false, false
		for _, a := range attrs {
			switch a.Name.Local {
			case "for":
				hasFor = true
			case "for_":
				hasForUnderscore = true
			}
		}
		if hasForUnderscore && !hasFor {
			c.out = append(c.out, Finding{
				Severity: SeverityError, Element: fmt.Sprintf("%s/Prompt[%d]", c.element, i+1), Attribute: "for_",
				Message: "<Prompt> has for_ instead of for (twilio-go renders VoicePrompt.For_ that way), so Twilio does not know which step the prompt is for",
				Fix:     `rename for_ to for; with twilio-go, leave For_ empty and set OptionalAttributes: map[string]string{"for": "…"}`,
			})
		}
	}
}
