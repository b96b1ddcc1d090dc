package voice

import "github.com/ivrpay/ivrpay"

// Telnyx (TeXML <Pay paymentConnector=…>, Call Control pay) posts Twilio's
// Generic Pay Connector request and reads its answer field for field
// (reference voice-providers.md): a non-empty error_code is its
// payment-connector-error, an answer without the id its internal-error.
var Telnyx Platform = genericPayConnector{provider: ivrpay.ProviderTelnyx, path: "/vendor/telnyx/pay_generic"}
