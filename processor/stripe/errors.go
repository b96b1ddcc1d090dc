package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ivrpay/ivrpay"
	stripeapi "github.com/stripe/stripe-go/v84"
)

// refusalCodes normalizes Stripe's decline_code, or its error code when there
// is no decline code. Anything else is DECLINED.
var refusalCodes = map[string]string{
	"generic_decline":    ivrpay.RefusalDeclined,
	"card_declined":      ivrpay.RefusalDeclined,
	"insufficient_funds": ivrpay.RefusalInsufficientFunds,
	"do_not_honor":       ivrpay.RefusalDoNotHonor,
	"expired_card":       ivrpay.RefusalExpiredCard,
	"incorrect_cvc":      ivrpay.RefusalInvalidCardSecurityCode,
	"invalid_cvc":        ivrpay.RefusalInvalidCardSecurityCode,
	"incorrect_zip":      ivrpay.RefusalIncorrectPaymentInformation,
	"fraudulent":         ivrpay.RefusalRiskDecline,
	"lost_card":          ivrpay.RefusalRiskDecline,
	"stolen_card":        ivrpay.RefusalRiskDecline,
	"pickup_card":        ivrpay.RefusalRiskDecline,
	"merchant_blacklist": ivrpay.RefusalRiskDecline,
	"processing_error":   ivrpay.RefusalProcessingError,
}

// RefusalCode normalizes a Stripe card error's code and decline code.
func RefusalCode(code, declineCode string) string {
	if c, ok := refusalCodes[declineCode]; ok {
		return c
	}
	if c, ok := refusalCodes[code]; ok {
		return c
	}
	return ivrpay.RefusalDeclined
}

// scrubber removes the card's PAN and CVV and the secret key from text that
// came back from the network: Stripe's messages never echo them, but a proxy
// or a test double could, and such text ends up in payins and logs.
type scrubber struct {
	plain []string       // PAN and secret key: replaced wherever they appear
	cvv   *regexp.Regexp // the CVV, only where no digit touches it, so "pi_1234" survives a CVV "123"
}

func (p *Processor) scrubber(card ivrpay.CardDetails) scrubber {
	s := scrubber{plain: []string{p.secret}}
	if card.PAN != "" {
		s.plain = append(s.plain, card.PAN)
	}
	if card.CVV != "" {
		s.cvv = regexp.MustCompile(`(^|\D)` + regexp.QuoteMeta(card.CVV) + `(\D|$)`)
	}
	return s
}

func (s scrubber) clean(text string) string {
	for _, v := range s.plain {
		text = strings.ReplaceAll(text, v, "[redacted]")
	}
	if s.cvv != nil {
		// Twice, since adjacent matches share the separator between them.
		for range 2 {
			text = s.cvv.ReplaceAllString(text, "${1}[redacted]${2}")
		}
	}
	return text
}

// unknown reports whether err leaves the outcome of the call unknown.
func unknown(err error) bool {
	var se *stripeapi.Error
	if !errors.As(err, &se) {
		return true // timeout, network failure, unreadable answer
	}
	switch {
	case se.HTTPStatusCode >= 500,
		se.HTTPStatusCode == http.StatusTooManyRequests, // the rate limiter runs before the idempotency layer
		se.HTTPStatusCode == http.StatusConflict,        // a concurrent request with the same key
		se.Type == stripeapi.ErrorTypeIdempotency,
		se.HTTPStatusCode == 0:
		return true
	}
	return false
}

// outcome turns a failed call into a definite refusal or an unknown outcome.
func (s scrubber) outcome(err error) (ivrpay.ProcessorResult, error) {
	if unknown(err) {
		if errors.Is(err, ivrpay.ErrNotSent) {
			return ivrpay.ProcessorResult{}, ivrpay.NotSent("%s", s.describe(err))
		}
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("%s", s.describe(err))
	}
	var se *stripeapi.Error
	errors.As(err, &se)
	if se.Type == stripeapi.ErrorTypeCard {
		return s.cardRefusal(se), nil
	}
	r := refused(s.describe(err))
	r.ProcessorCode = s.clean(processorCode(se))
	if se.PaymentIntent != nil {
		r.Reference = se.PaymentIntent.ID
	}
	return r, nil
}

// cardRefusal is the refusal of a card_error.
func (s scrubber) cardRefusal(se *stripeapi.Error) ivrpay.ProcessorResult {
	r := ivrpay.ProcessorResult{
		RefusalCode:   RefusalCode(string(se.Code), string(se.DeclineCode)),
		RefusalDesc:   s.describe(se),
		ProcessorCode: s.clean(processorCode(se)),
	}
	switch r.RefusalCode {
	case ivrpay.RefusalInvalidCardSecurityCode:
		r.CVCResultCode = "N"
	case ivrpay.RefusalIncorrectPaymentInformation:
		r.AVSResultCode = "N"
	}
	if se.PaymentIntent != nil {
		r.Reference = se.PaymentIntent.ID
	} else if se.SetupIntent != nil {
		r.Reference = se.SetupIntent.ID
	}
	return r
}

// describe is a short text of err keeping Stripe's own type, code, decline
// code and message, e.g. "stripe card_declined/insufficient_funds: Your card
// has insufficient funds.". stripe.Error's own Error() is not used: it is the
// whole JSON body.
func (s scrubber) describe(err error) string {
	var se *stripeapi.Error
	if !errors.As(err, &se) {
		return s.clean("stripe: " + err.Error())
	}
	if se.Type != stripeapi.ErrorTypeCard {
		return s.clean(fmt.Sprintf("stripe %s (HTTP %d): %s", errorCode(se), se.HTTPStatusCode, se.Msg))
	}
	return s.clean(fmt.Sprintf("stripe %s: %s", errorCode(se), se.Msg))
}

// processorCode is Stripe's code of an error without its message, and the
// HTTP status of an error that is not a card's: "stripe
// card_declined/insufficient_funds", "stripe invalid_request_error, HTTP 403".
func processorCode(se *stripeapi.Error) string {
	if se.Type != stripeapi.ErrorTypeCard {
		return fmt.Sprintf("stripe %s, HTTP %d", errorCode(se), se.HTTPStatusCode)
	}
	return "stripe " + errorCode(se)
}

// errorCode is an error's code (or type) and decline code.
func errorCode(se *stripeapi.Error) string {
	code := string(se.Code)
	if code == "" {
		code = string(se.Type)
	}
	if se.DeclineCode != "" {
		code += "/" + string(se.DeclineCode)
	}
	return code
}
