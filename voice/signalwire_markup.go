package voice

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/ivrpay/ivrpay/twilio"
)

// SignalWire's pay step is cXML <Pay paymentConnectorUrl=…> (TwiML's <Pay>
// with the connector's URL instead of its name) or SWML's pay method, whose
// settings are snake_case (signalwire/docs, cXML <Pay> and SWML pay). Its
// docs describe no connector authentication: the credentials go in the URL
// (https://api_key:KEY@host/vendor/signalwire/pay), which becomes Basic auth.

func (signalWire) Formats() []string { return []string{"cxml", "swml"} }

// connectorURLAttr is cXML's attribute for the connector's URL.
const connectorURLAttr = "paymentConnectorUrl"

// Document is the cXML <Pay>, or the SWML (JSON) document whose main
// section runs pay. o.Connector is the connector URL with its credentials.
func (s signalWire) Document(o twilio.PayOptions, format string) ([]byte, []byte, error) {
	if format != "cxml" && format != "swml" {
		return nil, nil, unknownFormat(s, format)
	}
	if problem := connectorURLProblem(o.Connector); problem != "" {
		return nil, nil, fmt.Errorf("connector: SignalWire's connector is a URL: https://api_key:<IVR key>@<ivrpay host>%s; %s", s.Path(), problem)
	}
	if format == "swml" && o.Action != "" {
		return nil, nil, errors.New("action: SWML's pay has no action URL; the result is in the pay_result variable for the next step of the section")
	}
	p, err := twilio.NewPay(o)
	if err != nil {
		return nil, nil, err
	}
	// cXML names the connector by its URL, not by a name.
	p.PaymentConnector = ""
	p.Other = append(p.Other, xml.Attr{Name: xml.Name{Local: connectorURLAttr}, Value: o.Connector})
	if format == "cxml" {
		return p.TwiML(), nil, nil
	}
	return swmlDocument(p), nil, nil
}

// Check lints cXML, or SWML when the document is a JSON object.
func (signalWire) Check(doc []byte, opts twilio.LintOptions) ([]twilio.Finding, error) {
	if trimmed := trimDoc(doc); len(trimmed) > 0 && trimmed[0] == '{' {
		if err := opts.Validate(); err != nil {
			return nil, err
		}
		steps, findings, err := parseSWML(trimmed)
		if err != nil {
			return nil, err
		}
		if len(steps) == 0 {
			return []twilio.Finding{{Severity: twilio.SeverityError, Element: "sections",
				Message: "the SWML document runs no pay method, so the call never collects a card",
				Fix:     "add the pay step that `ivrpay twiml --provider signalwire --format swml` prints for your config"}}, nil
		}
		for _, st := range steps {
			findings = append(findings, twilio.LintPay(st.element, &st.pay, SWML, opts)...)
		}
		return findings, nil
	}
	return lintXML(doc, CXML, opts)
}

// ParsePay reads the one pay step of a cXML or SWML document.
func (signalWire) ParsePay(doc []byte) (*twilio.Pay, error) {
	trimmed := trimDoc(doc)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return twilio.ParsePay(doc)
	}
	steps, _, err := parseSWML(trimmed)
	switch {
	case err != nil:
		return nil, err
	case len(steps) == 0:
		return nil, errors.New("the SWML document runs no pay method")
	case len(steps) > 1:
		return nil, fmt.Errorf("the SWML document runs pay %d times; keep the one to simulate", len(steps))
	}
	return &steps[0].pay, nil
}

// ConnectorURL is the connector URL a SignalWire pay step names: cXML's
// paymentConnectorUrl, SWML's payment_connector_url.
func ConnectorURL(p *twilio.Pay) string {
	v, _ := otherAttr(p, connectorURLAttr)
	return v
}

// connectorURLProblem says what keeps raw from reaching ivrpay's SignalWire
// connector with credentials, or "".
func connectorURLProblem(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case strings.TrimSpace(raw) == "":
		return "it is missing"
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return "it is not an http(s) URL"
	case u.User == nil:
		return "it carries no credentials, so the connector answers 401 UNAUTHORIZED"
	case u.User.Username() != "api_key":
		return fmt.Sprintf("its username is %q, not api_key, so the connector answers 401 UNAUTHORIZED", u.User.Username())
	}
	if pass, _ := u.User.Password(); pass == "" {
		return "it carries no IVR API key as the password, so the connector answers 401 UNAUTHORIZED"
	}
	for _, p := range Platforms() {
		if p != SignalWire && strings.HasSuffix(u.Path, p.Path()) {
			return fmt.Sprintf("its path is %s's endpoint, which answers INVALID_REQUEST to SignalWire's body", p.Provider().Name())
		}
	}
	if !strings.HasSuffix(u.Path, SignalWire.Path()) {
		return fmt.Sprintf("its path is not %s, so it does not reach the connector", SignalWire.Path())
	}
	return ""
}

// signalWireConnector checks the connector URL of a cXML or SWML step,
// which the markup spells name.
func signalWireConnector(name string) func(element string, p *twilio.Pay) []twilio.Finding {
	return func(element string, p *twilio.Pay) []twilio.Finding {
		var out []twilio.Finding
		if problem := connectorURLProblem(ConnectorURL(p)); problem != "" {
			out = append(out, twilio.Finding{Severity: twilio.SeverityError, Element: element, Attribute: name,
				Message: fmt.Sprintf("%s %s", name, problem),
				Fix:     fmt.Sprintf("set %s to https://api_key:<IVR API key>@<ivrpay host>%s", name, SignalWire.Path())})
		}
		if strings.TrimSpace(p.PaymentConnector) != "" {
			out = append(out, twilio.Finding{Severity: twilio.SeverityWarning, Element: element, Attribute: "paymentConnector",
				Message: "SignalWire has no named connectors: it ignores paymentConnector and posts to " + name,
				Fix:     "remove paymentConnector"})
		}
		return out
	}
}

// CXML is the markup of SignalWire's <Pay>.
var CXML = &twilio.Markup{Name: "cXML", Platform: "SignalWire", Connector: signalWireConnector(connectorURLAttr)}

// SWML is SignalWire's JSON markup: pay's settings in snake_case.
var SWML = &twilio.Markup{Name: "SWML", Platform: "SignalWire", Names: swmlNames, Connector: signalWireConnector("payment_connector_url"),
	CallerValue: swmlCallerValue,
	Set: func(attr, value string) string {
		name := swmlNames[attr]
		if name == "" {
			name = attr
		}
		if attr == "securityCode" || (attr == "postalCode" && (value == "true" || value == "false")) {
			return fmt.Sprintf("set pay.%s to %s", name, value)
		}
		return fmt.Sprintf("set pay.%s to %q", name, value)
	},
	SetParam: func(name, value string) string {
		return fmt.Sprintf(`add {"name": %q, "value": %q} to pay.parameters`, name, value)
	}}

// swmlCallerValue is the caller's number as SWML substitutes it (cXML, like
// TwiML, writes {{From}}).
const swmlCallerValue = "%{call.from}"

// swmlNames are SWML's names of <Pay>'s attributes.
var swmlNames = map[string]string{
	connectorURLAttr: "payment_connector_url", "chargeAmount": "charge_amount", "currency": "currency",
	"paymentMethod": "payment_method", "tokenType": "token_type", "validCardTypes": "valid_card_types",
	"securityCode": "security_code", "postalCode": "postal_code", "description": "description",
	"statusCallback": "status_url", "Parameter": "parameters",
}

// swmlAttrs maps SWML's names back to <Pay>'s attributes.
var swmlAttrs = func() map[string]string {
	m := make(map[string]string, len(swmlNames))
	for attr, name := range swmlNames {
		m[name] = attr
	}
	return m
}()

// swmlPay is SWML's pay method, in the order the document lists it.
type swmlPay struct {
	PaymentConnectorURL string          `json:"payment_connector_url"`
	ChargeAmount        string          `json:"charge_amount"`
	Currency            string          `json:"currency,omitempty"`
	PaymentMethod       string          `json:"payment_method,omitempty"`
	TokenType           string          `json:"token_type,omitempty"`
	ValidCardTypes      string          `json:"valid_card_types,omitempty"`
	SecurityCode        any             `json:"security_code,omitempty"`
	PostalCode          any             `json:"postal_code,omitempty"`
	Description         string          `json:"description,omitempty"`
	StatusURL           string          `json:"status_url,omitempty"`
	Parameters          []swmlParameter `json:"parameters,omitempty"`
}

type swmlParameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// swmlDocument renders p as an SWML document whose main section runs pay.
// charge_amount is a string: SignalWire refuses a number (signalwire/docs
// issue #309).
func swmlDocument(p *twilio.Pay) []byte {
	pay := swmlPay{PaymentConnectorURL: ConnectorURL(p), ChargeAmount: p.ChargeAmount, Currency: p.Currency,
		PaymentMethod: p.PaymentMethod, TokenType: p.TokenType, ValidCardTypes: p.ValidCardTypes,
		SecurityCode: swmlFlag(p.SecurityCode), PostalCode: swmlFlag(p.PostalCode), Description: p.Description, StatusURL: p.StatusCallback}
	for _, prm := range p.Parameters {
		if prm.Name == twilio.ParamCaller && prm.Value == twilio.CallerValue {
			prm.Value = swmlCallerValue
		}
		pay.Parameters = append(pay.Parameters, swmlParameter{prm.Name, prm.Value})
	}
	doc := struct {
		Version  string                      `json:"version"`
		Sections map[string][]map[string]any `json:"sections"`
	}{"1.0.0", map[string][]map[string]any{"main": {{"pay": pay}}}}
	b, _ := json.MarshalIndent(doc, "", "  ") // strings, booleans and structs of them cannot fail
	return append(b, '\n')
}

// swmlFlag is a <Pay> true/false attribute as an SWML boolean (any other
// value, such as a fixed postal code, stays a string).
func swmlFlag(v string) any {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	return v
}

// swmlStep is one pay method of an SWML document.
type swmlStep struct {
	element string
	pay     twilio.Pay
}

// parseSWML finds every pay method of an SWML document (JSON) and reads it
// into the <Pay> model; the findings are what only SWML's types can get
// wrong (charge_amount a number).
func parseSWML(doc []byte) ([]swmlStep, []twilio.Finding, error) {
	var root struct {
		Sections map[string][]json.RawMessage `json:"sections"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&root); err != nil {
		return nil, nil, fmt.Errorf("the document is not SWML (a JSON object with sections): %w", err)
	}
	if root.Sections == nil {
		return nil, nil, errors.New("the document is not SWML: it has no sections")
	}
	names := make([]string, 0, len(root.Sections))
	for name := range root.Sections {
		names = append(names, name)
	}
	sort.Strings(names) // main first would be nicer, but a stable order is what matters
	var steps []swmlStep
	var findings []twilio.Finding
	for _, section := range names {
		for i, raw := range root.Sections[section] {
			var step map[string]json.RawMessage
			if json.Unmarshal(raw, &step) != nil {
				continue // a method written as a plain string ("answer"), or another shape
			}
			payRaw, ok := step["pay"]
			if !ok {
				continue
			}
			element := fmt.Sprintf("sections.%s[%d].pay", section, i)
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(payRaw, &fields); err != nil {
				return nil, nil, fmt.Errorf("%s is not an object", element)
			}
			pay, fs := swmlStepPay(element, fields)
			steps = append(steps, swmlStep{element, pay})
			findings = append(findings, fs...)
		}
	}
	return steps, findings, nil
}

// swmlStepPay reads one pay method's settings into the <Pay> model.
func swmlStepPay(element string, fields map[string]json.RawMessage) (twilio.Pay, []twilio.Finding) {
	var p twilio.Pay
	var findings []twilio.Finding
	text := func(raw json.RawMessage) (string, bool) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return strings.TrimSpace(string(raw)), false // a number or a boolean, as written
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := fields[k]
		v, isString := text(raw)
		switch k {
		case "charge_amount":
			if !isString {
				findings = append(findings, twilio.Finding{Severity: twilio.SeverityError, Element: element, Attribute: k,
					Message: fmt.Sprintf("charge_amount is the number %s: SignalWire refuses a number (\"Parameter charge_amount in method pay has invalid value\") and the call fails", v),
					Fix:     fmt.Sprintf("set pay.charge_amount to %q", v)})
			}
		case "parameters":
			var prms []swmlParameter
			if json.Unmarshal(raw, &prms) != nil {
				findings = append(findings, twilio.Finding{Severity: twilio.SeverityError, Element: element, Attribute: k,
					Message: "parameters is not a list of {name, value} objects, so SignalWire passes no custom parameter to the connector",
					Fix:     `write parameters as [{"name": "payin_config_id", "value": "cfg_…"}]`})
				continue
			}
			for _, prm := range prms {
				p.Parameters = append(p.Parameters, twilio.Parameter{Name: prm.Name, Value: prm.Value})
			}
			continue
		}
		if attr, ok := swmlAttrs[k]; ok {
			p.SetAttr(attr, v)
		} else {
			p.Other = append(p.Other, xml.Attr{Name: xml.Name{Local: k}, Value: v})
		}
	}
	return p, findings
}

// SignalWireConnectorURL is the paymentConnectorUrl of the ivrpay deployment
// at baseURL, with the credentials in it: api_key and key.
func SignalWireConnectorURL(baseURL, key string) string {
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + SignalWire.Path())
	if err != nil {
		return baseURL + SignalWire.Path()
	}
	u.User = url.UserPassword("api_key", key)
	return u.String()
}
