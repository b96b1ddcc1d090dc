package adyen

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Notifications (SPEC §4.2). Adyen posts Standard webhooks: a JSON body of
// notificationItems, each NotificationRequestItem signed on its own in
// additionalData.hmacSignature with the webhook's HMAC key.
// VerifyNotifications checks every item and turns each into the
// ivrpay.ProcessorEvent the inbox applies, reading only the fields SPEC
// names (references, amount, event code, success, reason codes, the
// defense deadline): no card data is copied.

// Accepted is the body Adyen expects as the acknowledgement of a delivery.
const Accepted = "[accepted]"

// maxHMACKey bounds an HMAC key's length in hex characters (Adyen's are 64).
const maxHMACKey = 256

// CheckHMACKey refuses what cannot be an Adyen HMAC key: the key is hex
// (Customer Area → Developers → Webhooks → the webhook → Security → HMAC
// key), an even number of characters. The error never quotes the key.
func CheckHMACKey(key string) error {
	if key == "" || len(key) > maxHMACKey || len(key)%2 != 0 {
		return fmt.Errorf("adyen: the HMAC key must be an even number of hex characters, at most %d (Adyen's are 64), on one line", maxHMACKey)
	}
	if _, err := hex.DecodeString(key); err != nil {
		return errors.New("adyen: the HMAC key holds a character that is not hex (0-9, A-F), or a second line")
	}
	return nil
}

// notification is a Standard webhook's body.
type notification struct {
	Live              string `json:"live"`
	NotificationItems []struct {
		Item *notificationItem `json:"NotificationRequestItem"`
	} `json:"notificationItems"`
}

// notificationItem is what ivrpay reads of a NotificationRequestItem.
type notificationItem struct {
	EventCode           string          `json:"eventCode"`
	Success             jsonText        `json:"success"`
	PSPReference        string          `json:"pspReference"`
	OriginalReference   string          `json:"originalReference"`
	MerchantAccountCode string          `json:"merchantAccountCode"`
	MerchantReference   string          `json:"merchantReference"`
	Amount              *notificationAm `json:"amount"`
	Reason              string          `json:"reason"`
	EventDate           string          `json:"eventDate"`
	// AdditionalData's values are strings; anything else reads as "".
	AdditionalData map[string]jsonText `json:"additionalData"`
}

type notificationAm struct {
	Value    jsonText `json:"value"`
	Currency string   `json:"currency"`
}

// jsonText is a JSON string, number or boolean as its text ("1000",
// "true"): Adyen sends amount.value as a number and success as a string,
// and other senders of the same shape have swapped them. Other values read
// as "".
type jsonText string

func (t *jsonText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = jsonText(s)
		return nil
	}
	switch b = bytes.TrimSpace(b); {
	case string(b) == "true" || string(b) == "false":
		*t = jsonText(b)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*t = jsonText(n.String())
	default:
		*t = ""
	}
	return nil
}

// signedText is the text an item's hmacSignature signs:
// pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success,
// with "" for a missing field.
func (it *notificationItem) signedText() string {
	var value, currency string
	if it.Amount != nil {
		value, currency = string(it.Amount.Value), it.Amount.Currency
	}
	return strings.Join([]string{it.PSPReference, it.OriginalReference, it.MerchantAccountCode, it.MerchantReference,
		value, currency, it.EventCode, string(it.Success)}, ":")
}

// Signature is the base64 HMAC-SHA256 of a signed text under a hex HMAC key.
func Signature(hexKey, signed string) (string, error) {
	key, err := hex.DecodeString(hexKey)
	if err != nil {
		return "", errors.New("adyen: the HMAC key is not hex")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signed))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// verify checks the item's hmacSignature against any of keys.
func (it *notificationItem) verify(keys []string) bool {
	got, err := base64.StdEncoding.DecodeString(string(it.AdditionalData["hmacSignature"]))
	if err != nil || len(got) == 0 {
		return false
	}
	signed := it.signedText()
	for _, k := range keys {
		want, err := Signature(k, signed)
		if err != nil {
			continue
		}
		w, _ := base64.StdEncoding.DecodeString(want)
		if hmac.Equal(got, w) {
			return true
		}
	}
	return false
}

// VerifyNotifications checks the hmacSignature of every item of a Standard
// webhook body against the account's HMAC keys (the current one, and the
// one it replaced while that is still accepted) and returns one
// ivrpay.ProcessorEvent per item. A body that is not a notification, or an
// item whose signature is missing or wrong, fails the whole delivery with
// an error wrapping ivrpay.ErrEventSignature, so that nothing of it is
// applied.
func VerifyNotifications(account string, body []byte, keys []string) ([]ivrpay.ProcessorEvent, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("%w: adyen: the body is not a Standard webhook notification: %v", ivrpay.ErrEventSignature, err)
	}
	if len(n.NotificationItems) == 0 {
		return nil, fmt.Errorf("%w: adyen: the notification has no notificationItems", ivrpay.ErrEventSignature)
	}
	events := make([]ivrpay.ProcessorEvent, 0, len(n.NotificationItems))
	for i, w := range n.NotificationItems {
		it := w.Item
		if it == nil {
			return nil, fmt.Errorf("%w: adyen: notificationItems[%d] has no NotificationRequestItem", ivrpay.ErrEventSignature, i)
		}
		if !it.verify(keys) {
			return nil, fmt.Errorf("%w: adyen: notificationItems[%d] (%s %s): hmacSignature missing or made with another key",
				ivrpay.ErrEventSignature, i, ivrpay.Clip(it.EventCode, 40), ivrpay.Clip(it.PSPReference, 40))
		}
		events = append(events, it.event(account))
	}
	return events, nil
}

// identifier is an id of the card network's (an auth code, a network
// transaction id) as an event keeps it: one longer than any network's is
// dropped, since a cut one would be wrong where a later charge cites it.
func identifier(s string) string {
	if len(s) > 64 {
		return ""
	}
	return s
}

// disputeStatuses maps Adyen's dispute event codes to chargeback statuses
// (SPEC §4.3; DISPUTE_OPENED_WITH_CHARGEBACK, a chargeback without the
// notice before it, is a refinement: docs/decisions.md).
var disputeStatuses = map[string]string{
	"REQUEST_FOR_INFORMATION":        ivrpay.ChargebackStatusInquiryActionRequired,
	"NOTIFICATION_OF_CHARGEBACK":     ivrpay.ChargebackStatusDisputeActionRequired,
	"DISPUTE_OPENED_WITH_CHARGEBACK": ivrpay.ChargebackStatusDisputeActionRequired,
	"CHARGEBACK":                     ivrpay.ChargebackStatusChargebackProcessing,
	"CHARGEBACK_REVERSED":            ivrpay.ChargebackStatusProvisionalWin,
	"PREARBITRATION_WON":             ivrpay.ChargebackStatusWon,
	"SECOND_CHARGEBACK":              ivrpay.ChargebackStatusLost,
	"PREARBITRATION_LOST":            ivrpay.ChargebackStatusLost,
	// Adyen's later codes that end a dispute without one of the above:
	// the issuer accepted the defence or did not answer in time (won), and
	// the merchant did not defend in time or accepted liability (lost).
	"ISSUER_RESPONSE_TIMEFRAME_EXPIRED": ivrpay.ChargebackStatusWon,
	"DISPUTE_DEFENSE_PERIOD_ENDED":      ivrpay.ChargebackStatusLost,
}

// DisputeStatus is the chargeback status of a dispute event code, and
// whether the code is one. A CHARGEBACK whose disputeStatus says the
// merchant accepted it, or it was lost or expired undefended, is LOST: no
// later event comes for it.
func DisputeStatus(eventCode, disputeStatus string) (string, bool) {
	status, ok := disputeStatuses[eventCode]
	switch {
	case !ok:
	case eventCode == "CHARGEBACK", eventCode == "ISSUER_RESPONSE_TIMEFRAME_EXPIRED", eventCode == "DISPUTE_DEFENSE_PERIOD_ENDED":
		// What the dispute's own status says wins over the code's reading.
		switch strings.ToLower(disputeStatus) {
		case "accepted", "lost", "expired":
			status = ivrpay.ChargebackStatusLost
		case "won":
			if eventCode != "CHARGEBACK" {
				status = ivrpay.ChargebackStatusWon
			}
		}
	}
	return status, ok
}

// event is the item as an ivrpay.ProcessorEvent. Its id is
// pspReference:eventCode:success, unique per notification (Adyen repeats
// a notification with the same three when it retries).
func (it *notificationItem) event(account string) ivrpay.ProcessorEvent {
	success := strings.EqualFold(string(it.Success), "true")
	e := ivrpay.ProcessorEvent{Account: account, Kind: Kind, Type: it.EventCode, Effect: ivrpay.EffectNone,
		ID:               it.PSPReference + ":" + it.EventCode + ":" + strconv.FormatBool(success),
		PaymentReference: it.OriginalReference, Reference: it.MerchantReference}
	if t, err := time.Parse(time.RFC3339, it.EventDate); err == nil {
		e.OccurredAt = t.UTC()
	}
	if it.Amount != nil {
		e.Amount, _ = strconv.ParseInt(string(it.Amount.Value), 10, 64)
		e.Currency = strings.ToUpper(it.Amount.Currency)
	}
	ad := func(key string) string { return string(it.AdditionalData[key]) }
	failed := func(effect ivrpay.EventEffect, code string) {
		e.Effect, e.RefusalCode = effect, code
		e.RefusalDesc = "adyen " + it.EventCode
		if it.Reason != "" {
			e.RefusalDesc += ": " + ivrpay.Clip(it.Reason, 120)
		}
	}
	switch it.EventCode {
	case "AUTHORISATION":
		// The payment itself: pspReference is the payment's, and
		// merchantReference the payin id the adapter sent.
		// additionalData holds the card network's answer, as /payments
		// gives it, when the webhook includes it.
		e.PaymentReference = it.PSPReference
		n := networkAnswer(ad, ivrpay.CardPayment{})
		e.AVSResultCode, e.CVCResultCode = n.avs, n.cvc
		if success {
			e.Effect = ivrpay.EffectPaymentAuthorized
			e.AuthCode, e.NetworkTransactionID = identifier(n.authCode), identifier(n.nti)
		} else {
			failed(ivrpay.EffectPaymentFailed, refusalCode(ad("refusalReasonCode"), it.Reason, ad("refusalReasonRaw")))
		}
	case "CAPTURE":
		if success {
			e.Effect = ivrpay.EffectPaymentCaptured
		} else {
			failed(ivrpay.EffectPaymentCaptureFailed, ivrpay.RefusalProcessingError)
		}
	case "CAPTURE_FAILED":
		failed(ivrpay.EffectPaymentCaptureFailed, ivrpay.RefusalProcessingError)
	case "CANCELLATION", "TECHNICAL_CANCEL":
		// A refused cancel leaves the payment as it was: nothing to apply.
		if success {
			e.Effect = ivrpay.EffectPaymentCanceled
		}
		if it.EventCode == "TECHNICAL_CANCEL" {
			// Resolve cancels by the payment's merchant reference, under
			// a reference of its own (tcancel-<payin id>).
			e.Reference = strings.TrimPrefix(it.MerchantReference, technicalCancelPrefix)
		}
	case "CANCEL_OR_REFUND":
		// additionalData.modificationAction says which one Adyen did.
		if success {
			switch strings.ToLower(ad("modificationAction")) {
			case "cancel":
				e.Effect = ivrpay.EffectPaymentCanceled
			case "refund":
				e.Effect, e.RefundReference = ivrpay.EffectRefundSucceeded, it.PSPReference
			}
		}
	case "REFUND":
		e.RefundReference = it.PSPReference
		if success {
			e.Effect = ivrpay.EffectRefundSucceeded
		} else {
			failed(ivrpay.EffectRefundFailed, ivrpay.RefusalProcessingError)
		}
	case "REFUND_FAILED", "REFUNDED_REVERSED":
		e.RefundReference = it.PSPReference
		failed(ivrpay.EffectRefundFailed, ivrpay.RefusalProcessingError)
	default:
		status, ok := DisputeStatus(it.EventCode, ad("disputeStatus"))
		if !ok {
			break
		}
		// pspReference is the dispute's (every event of one dispute
		// shares it); originalReference the disputed payment's.
		d := &ivrpay.DisputeDetails{Reference: it.PSPReference, Status: status, Amount: e.Amount, Currency: e.Currency,
			ReasonCode: ad("chargebackReasonCode"), ReasonDesc: ivrpay.Clip(it.Reason, 200)}
		if it.EventCode == "REQUEST_FOR_INFORMATION" && ad("rfiReasonCode") != "" {
			d.ReasonCode = ad("rfiReasonCode")
		}
		if t, err := time.Parse(time.RFC3339, ad("defensePeriodEndsAt")); err == nil {
			t = t.UTC()
			d.RespondBy = &t
		}
		e.Effect, e.Dispute = ivrpay.EffectDispute, d
	}
	return e
}
