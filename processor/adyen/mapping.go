package adyen

import (
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay"
)

// refusals maps Adyen's refusalReasonCode (docs.adyen.com/development-resources/refusal-reasons)
// to ivrpay's refusal codes. Codes not listed are DECLINED.
var refusals = map[string]string{
	"2":  ivrpay.RefusalDeclined,                    // Refused
	"3":  ivrpay.RefusalDeclined,                    // Referral
	"4":  ivrpay.RefusalProcessingError,             // Acquirer Error
	"5":  ivrpay.RefusalDeclined,                    // Blocked Card
	"6":  ivrpay.RefusalExpiredCard,                 // Expired Card
	"7":  ivrpay.RefusalIncorrectPaymentInformation, // Invalid Amount
	"8":  ivrpay.RefusalIncorrectPaymentInformation, // Invalid Card Number
	"9":  ivrpay.RefusalProcessingError,             // Issuer Unavailable
	"10": ivrpay.RefusalDeclined,                    // Not supported
	"12": ivrpay.RefusalInsufficientFunds,           // Not enough balance
	"14": ivrpay.RefusalRiskDecline,                 // Acquirer Fraud
	"20": ivrpay.RefusalRiskDecline,                 // FRAUD
	"21": ivrpay.RefusalProcessingError,             // Not Submitted
	"22": ivrpay.RefusalRiskDecline,                 // FRAUD-CANCELLED
	"24": ivrpay.RefusalInvalidCardSecurityCode,     // CVC Declined
	"27": ivrpay.RefusalDeclined,                    // Declined Non Generic
	"31": ivrpay.RefusalRiskDecline,                 // Issuer Suspected Fraud
	"32": ivrpay.RefusalIncorrectPaymentInformation, // AVS Declined
}

// refusalsByReason is the same map keyed by refusalReason, for answers
// without a code.
var refusalsByReason = map[string]string{
	"refused":                ivrpay.RefusalDeclined,
	"acquirer error":         ivrpay.RefusalProcessingError,
	"expired card":           ivrpay.RefusalExpiredCard,
	"invalid amount":         ivrpay.RefusalIncorrectPaymentInformation,
	"invalid card number":    ivrpay.RefusalIncorrectPaymentInformation,
	"issuer unavailable":     ivrpay.RefusalProcessingError,
	"not enough balance":     ivrpay.RefusalInsufficientFunds,
	"acquirer fraud":         ivrpay.RefusalRiskDecline,
	"fraud":                  ivrpay.RefusalRiskDecline,
	"not submitted":          ivrpay.RefusalProcessingError,
	"fraud-cancelled":        ivrpay.RefusalRiskDecline,
	"cvc declined":           ivrpay.RefusalInvalidCardSecurityCode,
	"issuer suspected fraud": ivrpay.RefusalRiskDecline,
	"avs declined":           ivrpay.RefusalIncorrectPaymentInformation,
}

// refusalCode normalizes a refusal. Adyen has no "do not honor" reason: the
// scheme's 05 arrives as the generic Refused (or Declined Non Generic), with
// the scheme's answer in additionalData.refusalReasonRaw ("05 : Do not
// honor"), which refines those two.
func refusalCode(code, reason, raw string) string {
	c, ok := refusals[code]
	if !ok {
		c, ok = refusalsByReason[strings.ToLower(strings.TrimSpace(reason))]
	}
	if !ok {
		c = ivrpay.RefusalDeclined
	}
	if code == "2" || code == "27" || (code == "" && c == ivrpay.RefusalDeclined) {
		switch rawSchemeCode(raw) {
		case "05":
			return ivrpay.RefusalDoNotHonor
		case "51":
			return ivrpay.RefusalInsufficientFunds
		}
	}
	return c
}

// rawSchemeCode is the two-character scheme code that starts a raw refusal
// such as "05 : Do not honor" or "51 Insufficient funds", or "".
func rawSchemeCode(raw string) string {
	raw = strings.TrimSpace(raw)
	if len(raw) < 2 || (len(raw) > 2 && raw[2] != ' ' && raw[2] != ':') {
		return ""
	}
	return raw[:2]
}

// leadingNumber reads the number that starts Adyen's avsResult and
// cvcResult ("7 Both postal code and address match", "1 Matches").
func leadingNumber(s string) (int, bool) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	return n, err == nil
}

// cardAnswer is the card network's answer to a payment as Adyen's
// additionalData states it, mapped: empty where the data lacks it.
type cardAnswer struct{ authCode, avs, cvc, nti string }

// networkAnswer reads the card network's answer out of a payment's
// additionalData, whose keys a /payments answer and an AUTHORISATION
// notification share (the notification's when the webhook's "Add Acquirer
// Result" setting is on): authCode, avsResult, cvcResult and
// networkTxReference. Only the mapped avsResult and cvcResult count, as
// for the synchronous answer, not their *Raw forms. pay is the payment
// asked for (what cvcResult reads of an unreadable result), empty for a
// notification.
func networkAnswer(ad func(key string) string, pay ivrpay.CardPayment) cardAnswer {
	a := cardAnswer{authCode: ad("authCode"), nti: ad("networkTxReference")}
	if s := ad("avsResult"); s != "" {
		a.avs = avsResult(s)
	}
	if s := ad("cvcResult"); s != "" {
		a.cvc = cvcResult(s, pay)
	}
	return a
}

// avsResult maps Adyen's avsResult to Y (postal code matches), N (it does
// not) or U (not checked or unknown). Only the postal code counts: it is all
// <Pay> collects, and the street ivrpay sends is "N/A".
func avsResult(s string) string {
	n, ok := leadingNumber(s)
	if !ok {
		return "U"
	}
	switch n {
	case 6, 7, 14, 15, 19, 20, 23, 24:
		return "Y"
	case 1, 2, 16, 17, 26:
		return "N"
	}
	return "U"
}

// cvcResult maps Adyen's cvcResult to M (match), N (no match), P (not
// processed or not sent) or U (unavailable). With no cvcResult, a charge
// sent without a CVV is P.
func cvcResult(s string, pay ivrpay.CardPayment) string {
	n, ok := leadingNumber(s)
	if !ok {
		if pay.Stored != nil || pay.Card.CVV == "" {
			return "P"
		}
		return "U"
	}
	switch n {
	case 1:
		return "M"
	case 2:
		return "N"
	case 3, 4, 6:
		return "P"
	}
	return "U" // 0 Unknown, 5 Issuer not certified
}
