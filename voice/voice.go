// Package voice maps each voice platform's connector wire format onto the
// one IVRRequest and IVRResult the payments service takes (SPEC §5.6), one
// file per platform: Twilio's Generic Pay Connector (twilio.go), Telnyx's
// Pay connector, which speaks it field for field (telnyx.go), and
// SignalWire's paymentConnectorUrl (signalwire.go). The HTTP transport
// authenticates and runs the service; only the bytes differ per platform.
package voice

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/twilio"
)

// Platform is one voice platform's side of the connector: where it posts,
// how its request reads and how its answer is written.
type Platform interface {
	// Provider is the provider payins record (ivr.provider).
	Provider() ivrpay.IVRProvider
	// Path is where the platform posts connector requests on ivrpay.
	Path() string
	// ParseRequest maps a connector body onto the payments service's
	// request. Its error is an INVALID_REQUEST worded for the platform
	// developer, never echoing card data; the request then still carries
	// the method when it could be told, so that the answer has the right
	// id key.
	ParseRequest(body []byte) (ivrpay.IVRRequest, error)
	// Answer is the HTTP status and JSON body that report res, the answer
	// to a request of method ("" when the method could not be told).
	Answer(method string, res ivrpay.IVRResult) (status int, body []byte)

	// Simulator is the platform's side of a call, as twilio.Simulate plays
	// it (nil: Twilio's own).
	Simulator() *twilio.Platform
	// Formats are the markups the platform's pay step is written in, the
	// one `ivrpay twiml` writes by default first.
	Formats() []string
	// Document writes the pay step for o in format: the document, and the
	// notes for a person that go to stderr (may be nil).
	Document(o twilio.PayOptions, format string) (doc, notes []byte, err error)
	// Check lints a document in any of the platform's formats.
	Check(doc []byte, opts twilio.LintOptions) ([]twilio.Finding, error)
	// ParsePay reads the one pay step of a document, for the simulator.
	ParsePay(doc []byte) (*twilio.Pay, error)
}

// Platforms lists every platform, in the order of ivrpay.IVRProviders.
func Platforms() []Platform { return []Platform{Twilio, Telnyx, SignalWire} }

// Lookup returns the platform named name ("twilio", "TELNYX", "SignalWire"; case-insensitive).
func Lookup(name string) (Platform, bool) {
	for _, p := range Platforms() {
		if strings.EqualFold(string(p.Provider()), strings.TrimSpace(name)) {
			return p, true
		}
	}
	return nil, false
}

// unknownFormat refuses a format the platform does not write.
func unknownFormat(p Platform, format string) error {
	return fmt.Errorf("--format %q: %s's pay step is written in %s", format, p.Provider().Name(), strings.Join(p.Formats(), " or "))
}

// trimDoc drops a UTF-8 byte order mark and surrounding space.
func trimDoc(doc []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(doc, []byte("\xef\xbb\xbf")))
}

// lintXML lints every <Pay> of a TwiML-like document written in markup m.
func lintXML(doc []byte, m *twilio.Markup, opts twilio.LintOptions) ([]twilio.Finding, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	pays, err := twilio.ParseTwiML(trimDoc(doc))
	if err != nil {
		return nil, err
	}
	return twilio.LintPays(pays, m, opts), nil
}
