package voice

import (
	"net/http"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// Twilio posts the Generic Pay Connector request (reference
// twilio-generic-pay-connector.md) and reads the answer's error_code from a
// 200; any other status is a failure of the connector itself. Its pay step
// is TwiML <Pay> or a Studio flow's Capture Payments widget.
var Twilio Platform = twilioPlatform{genericPayConnector{provider: ivrpay.ProviderTwilio, path: "/vendor/twilio/pay_generic"}}

type twilioPlatform struct{ genericPayConnector }

func (twilioPlatform) Simulator() *twilio.Platform { return nil }

func (twilioPlatform) Formats() []string { return []string{"twiml", "studio"} }

// Document is the TwiML, or the Studio flow to import with the widget's
// values as notes.
func (t twilioPlatform) Document(o twilio.PayOptions, format string) ([]byte, []byte, error) {
	p, err := twilio.NewPay(o)
	if err != nil {
		return nil, nil, err
	}
	switch format {
	case "twiml":
		return p.TwiML(), nil, nil
	case "studio":
		return p.StudioFlow(), p.StudioWidget(), nil
	}
	return nil, nil, unknownFormat(t, format)
}

// Check lints TwiML or a Studio flow export.
func (twilioPlatform) Check(doc []byte, opts twilio.LintOptions) ([]twilio.Finding, error) {
	return twilio.Lint(doc, opts)
}

func (twilioPlatform) ParsePay(doc []byte) (*twilio.Pay, error) { return twilio.ParsePay(doc) }

// genericPayConnector is Twilio's wire format, which Telnyx speaks too.
type genericPayConnector struct {
	provider ivrpay.IVRProvider
	path     string
}

func (g genericPayConnector) Provider() ivrpay.IVRProvider { return g.provider }

func (g genericPayConnector) Path() string { return g.path }

func (g genericPayConnector) ParseRequest(body []byte) (ivrpay.IVRRequest, error) {
	r, err := twilio.ParseConnectorRequest(body)
	return serviceRequest(g.provider, r), err
}

// Answer is 200 for every request that authenticated, declines and
// validation errors included, so that the platform passes error_code on.
func (g genericPayConnector) Answer(method string, res ivrpay.IVRResult) (int, []byte) {
	status := http.StatusOK
	switch res.ErrorCode {
	case ivrpay.ConnUnauthorized:
		status = http.StatusUnauthorized
	case ivrpay.ConnRateLimited:
		status = http.StatusTooManyRequests
	}
	return status, answerBody(method, res)
}

// serviceRequest is the service's request for a Generic Pay Connector body.
func serviceRequest(provider ivrpay.IVRProvider, r *twilio.ConnectorRequest) ivrpay.IVRRequest {
	return ivrpay.IVRRequest{
		Provider: provider, Method: r.Method, TransactionID: r.TransactionID, CardNumber: r.CardNumber, CVV: r.CVV,
		ExpiryMonth: r.ExpiryMonth, ExpiryYear: r.ExpiryYear, PostalCode: r.PostalCode, ACH: r.IsACH(),
		Amount: ivrpay.ParseIVRAmount(r.AmountPresent, r.Amount), CurrencyCode: r.CurrencyCode, Parameters: r.Parameters,
	}
}

// answerBody is the Generic Pay Connector answer, which every platform reads:
// the method's id key (both when the method is unknown), null on failure.
func answerBody(method string, res ivrpay.IVRResult) []byte {
	// MarshalJSON directly: json.Marshal would re-validate and compact its bytes.
	b, _ := twilio.ConnectorResponse{Method: method, ID: res.ID, ErrorCode: res.ErrorCode,
		ErrorMessage: res.ErrorMessage, Parameters: res.Parameters}.MarshalJSON()
	return b
}
