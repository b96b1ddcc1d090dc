// Package voice maps each voice platform's connector wire format onto the
// one IVRRequest and IVRResult the payments service takes (SPEC §5.6), one
// file per platform: Twilio's Generic Pay Connector (twilio.go), Telnyx's
// Pay connector, which speaks it field for field (telnyx.go), and
// SignalWire's paymentConnectorUrl (signalwire.go). The HTTP transport
// authenticates and runs the service; only the bytes differ per platform.
package voice

import (
	"strings"

	"github.com/ivrpay/ivrpay"
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

// Of returns the platform of provider (Twilio for the empty provider).
func Of(provider ivrpay.IVRProvider) Platform {
	if p, ok := Lookup(string(provider)); ok {
		return p
	}
	return Twilio
}
