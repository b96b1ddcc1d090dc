package voice

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// Telnyx (TeXML <Pay paymentConnector=…>, Call Control pay) posts Twilio's
// Generic Pay Connector request and reads its answer field for field
// (reference voice-providers.md): a non-empty error_code is its
// payment-connector-error, an answer without the id its internal-error. It
// waits 5 s per attempt, up to max_attempts 3. TeXML's <Pay> is TwiML's
// plus transactionType (charge or tokenize), which says which one to run.
var Telnyx Platform = telnyx{genericPayConnector{provider: ivrpay.ProviderTelnyx, path: "/vendor/telnyx/pay_generic"}}

type telnyx struct{ genericPayConnector }

// Telnyx's connector timing (reference voice-providers.md).
const (
	TelnyxTimeout     = 5 * time.Second
	TelnyxMaxAttempts = 3
)

var telnyxCall = &twilio.Platform{Name: "Telnyx", Timeout: TelnyxTimeout, Retries: TelnyxMaxAttempts - 1,
	Method: telnyxMethod, Read: readTelnyxAnswer}

func (telnyx) Simulator() *twilio.Platform { return telnyxCall }

func (telnyx) Formats() []string { return []string{"texml"} }

// TeXML is the markup of Telnyx's <Pay>.
var TeXML = &twilio.Markup{Name: "TeXML", Platform: "Telnyx", Method: telnyxMethod, Connector: telnyxConnector, Rules: telnyxRules}

// transactionTypeAttr is TeXML's attribute that picks charge or tokenize.
const transactionTypeAttr = "transactionType"

// Document is the TeXML <Pay>: TwiML's, with transactionType.
func (t telnyx) Document(o twilio.PayOptions, format string) ([]byte, []byte, error) {
	if format != "texml" {
		return nil, nil, unknownFormat(t, format)
	}
	if strings.TrimSpace(o.Connector) == "" {
		return nil, nil, errors.New("connector: the name of the Telnyx Pay connector (type generic) that points at ivrpay is required")
	}
	p, err := twilio.NewPay(o)
	if err != nil {
		return nil, nil, err
	}
	method := twilio.MethodTokenize
	if o.PayinConfigID != "" {
		method = twilio.MethodCharge
	}
	p.Other = append(p.Other, xml.Attr{Name: xml.Name{Local: transactionTypeAttr}, Value: method})
	return p.TwiML(), nil, nil
}

func (telnyx) Check(doc []byte, opts twilio.LintOptions) ([]twilio.Finding, error) {
	return lintXML(doc, TeXML, opts)
}

func (telnyx) ParsePay(doc []byte) (*twilio.Pay, error) { return twilio.ParsePay(doc) }

// otherAttr returns the value of an attribute the <Pay> model has no field for.
func otherAttr(p *twilio.Pay, name string) (string, bool) {
	for _, a := range p.Other {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value), true
		}
	}
	return "", false
}

// telnyxMethod: transactionType when the step has it, else chargeAmount's rule.
func telnyxMethod(p *twilio.Pay) (string, error) {
	v, ok := otherAttr(p, transactionTypeAttr)
	if !ok || v == "" {
		return p.Method()
	}
	switch m := strings.ToLower(v); m {
	case twilio.MethodCharge, twilio.MethodTokenize:
		return m, nil
	}
	return "", fmt.Errorf("transactionType %q: it is charge or tokenize", v)
}

func telnyxConnector(element string, p *twilio.Pay) []twilio.Finding {
	if strings.TrimSpace(p.PaymentConnector) != "" {
		return nil
	}
	return []twilio.Finding{{Severity: twilio.SeverityError, Element: element, Attribute: "paymentConnector",
		Message: `paymentConnector is missing, so Telnyx sends the card to its connector named "Default" instead of ivrpay`,
		Fix:     `set paymentConnector="<name of your Telnyx Pay connector pointing at ivrpay>"`}}
}

// telnyxRules: transactionType is charge or tokenize, and says so
// explicitly for the config the step is for.
func telnyxRules(element string, p *twilio.Pay, opts twilio.LintOptions) []twilio.Finding {
	want := twilio.MethodCharge
	if opts.ExpectedKind() == twilio.ConfigKindPaymentMethod {
		want = twilio.MethodTokenize
	} else if opts.ExpectedKind() == "" {
		if m, err := p.Method(); err == nil {
			want = m
		}
	}
	fix := fmt.Sprintf("set %s=%q", transactionTypeAttr, want)
	v, ok := otherAttr(p, transactionTypeAttr)
	switch {
	case !ok || v == "":
		return []twilio.Finding{{Severity: twilio.SeverityWarning, Element: element, Attribute: transactionTypeAttr, Fix: fix,
			Message: "transactionType is missing, so the step relies on Telnyx's default to charge or to store the card"}}
	case !strings.EqualFold(v, twilio.MethodCharge) && !strings.EqualFold(v, twilio.MethodTokenize):
		return []twilio.Finding{{Severity: twilio.SeverityError, Element: element, Attribute: transactionTypeAttr, Fix: fix,
			Message: fmt.Sprintf("transactionType %q is neither charge nor tokenize, so Telnyx cannot run the step", v)}}
	}
	return nil
}

// readTelnyxAnswer: an error_code is payment-connector-error, an answer
// without the id internal-error (reference voice-providers.md).
func readTelnyxAnswer(method string, status int, body []byte, redact func(string) string) twilio.AnswerReading {
	resp, wellFormed := twilio.ParseConnectorAnswer(body, method, redact)
	ok := status >= 200 && status <= 299
	switch {
	case wellFormed && resp.ErrorCode != "":
		a := twilio.AnswerReading{Result: twilio.ResultPaymentConnectorError, ConnectorError: resp.ErrorCode, PaymentError: resp.ErrorMessage}
		if ok {
			a.Response = resp
		} else {
			a.PaymentError = strings.TrimSuffix(fmt.Sprintf("HTTP %d from the connector: %s", status, resp.ErrorMessage), ": ")
		}
		return a
	case wellFormed && ok && resp.ID != "":
		return twilio.AnswerReading{Response: resp, Result: twilio.ResultSuccess}
	case !ok:
		return twilio.AnswerReading{Result: twilio.ResultInternalError, PaymentError: fmt.Sprintf("HTTP %d from the connector", status)}
	}
	return twilio.AnswerReading{Result: twilio.ResultInternalError, PaymentError: "the connector's answer has no " + idKey(method)}
}

// idKey is the answer's id key for method.
func idKey(method string) string {
	if method == twilio.MethodTokenize {
		return "token_id"
	}
	return "charge_id"
}
