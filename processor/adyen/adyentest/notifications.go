package adyentest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// HMACKey is a Standard webhook HMAC key as the Customer Area shows it
// (64 hex characters).
const HMACKey = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

// Item is one NotificationRequestItem, before it is signed.
type Item struct {
	EventCode, PSPReference, OriginalReference, MerchantReference, Reason string
	Success                                                               bool
	Value                                                                 int64
	Currency                                                              string
	// AdditionalData is sent beside hmacSignature.
	AdditionalData map[string]string
}

// Notification is a Standard webhook body of items as Adyen posts it, each
// item signed with key (hex) in additionalData.hmacSignature. This side
// computes the signature on its own, from Adyen's documented recipe, so
// that the adapter's verification is checked against an independent
// signer.
func Notification(key string, items ...Item) []byte {
	var wrapped []map[string]any
	for _, it := range items {
		ad := map[string]any{}
		for k, v := range it.AdditionalData {
			ad[k] = v
		}
		ad["hmacSignature"] = Sign(key, it)
		wrapped = append(wrapped, map[string]any{"NotificationRequestItem": map[string]any{
			"additionalData": ad, "amount": map[string]any{"value": it.Value, "currency": it.Currency},
			"eventCode": it.EventCode, "eventDate": "2026-01-15T10:00:00+01:00", "merchantAccountCode": MerchantAccount,
			"merchantReference": it.MerchantReference, "originalReference": it.OriginalReference, "paymentMethod": "visa",
			"pspReference": it.PSPReference, "reason": it.Reason, "success": fmt.Sprint(it.Success),
		}})
	}
	b, err := json.Marshal(map[string]any{"live": "false", "notificationItems": wrapped})
	if err != nil {
		panic(err)
	}
	return b
}

// Sign is the hmacSignature of it under key: base64 HMAC-SHA256, keyed with
// the hex-decoded key, of
// pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success.
func Sign(key string, it Item) string {
	k, err := hex.DecodeString(key)
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(strings.Join([]string{it.PSPReference, it.OriginalReference, MerchantAccount, it.MerchantReference,
		fmt.Sprint(it.Value), it.Currency, it.EventCode, fmt.Sprint(it.Success)}, ":")))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
