package adyen

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/processortest"
)

// TestHMACSignatureVectors checks the signature against the fixed key and
// expected signatures of Adyen's own libraries' HMAC unit tests:
// Adyen/adyen-go-api-library src/hmacvalidator/hmacvalidator_test.go
// ("Get Valid HMAC": a NotificationRequestItem with value 1000 EUR) and
// Adyen/adyen-java-api-library src/test/java/com/adyen/util/HMACValidatorTest.java
// (testValidateHMAC: a REPORT_AVAILABLE item whose amount.value is the
// string "0"), the latter as the JSON item it is.
func TestHMACSignatureVectors(t *testing.T) {
	t.Parallel()
	t.Run("adyen-go-api-library", func(t *testing.T) {
		const key = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
		it := notificationItem{PSPReference: "pspReference", OriginalReference: "originalReference", MerchantAccountCode: "merchantAccount",
			MerchantReference: "reference", Amount: &notificationAm{Value: "1000", Currency: "EUR"}, EventCode: "EVENT", Success: "true",
			AdditionalData: map[string]jsonText{"hmacSignature": "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc="}}
		if got := it.signedText(); got != "pspReference:originalReference:merchantAccount:reference:1000:EUR:EVENT:true" {
			t.Fatalf("signed text %q", got)
		}
		if sig, err := Signature(key, it.signedText()); err != nil || sig != "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=" {
			t.Fatalf("Signature = %q, %v", sig, err)
		}
		if !it.verify([]string{key}) {
			t.Fatal("the library's signed item does not verify")
		}
	})
	t.Run("adyen-java-api-library", func(t *testing.T) {
		const key = "9064450A8892A093D9E97EFCC9639DE31B74F3A7803135555A3C96F5A57915D6"
		body := `{"live":"false","notificationItems":[{"NotificationRequestItem":{
			"additionalData": {"hmacSignature": "NuEkADFmlCC6VgX+wcoPAegIWxVPNBPCuKlM4Hzo5qc="},
			"amount": {"currency": "EUR", "value": "0"},
			"eventCode": "REPORT_AVAILABLE", "eventDate": "2019-11-20T14:35:36+01:00",
			"merchantAccountCode": "Magento2Rik", "merchantReference": "testMerchantRef1",
			"pspReference": "test_REPORT_AVAILABLE", "reason": "will contain the url to the report", "success": "true"}}]}`
		events, err := VerifyNotifications("adyen-main", []byte(body), []string{key})
		if err != nil {
			t.Fatal(err)
		}
		want := ivrpay.ProcessorEvent{Account: "adyen-main", Kind: Kind, ID: "test_REPORT_AVAILABLE:REPORT_AVAILABLE:true", Type: "REPORT_AVAILABLE",
			Effect: ivrpay.EffectNone, Reference: "testMerchantRef1", Currency: "EUR", OccurredAt: time.Date(2019, 11, 20, 13, 35, 36, 0, time.UTC)}
		if len(events) != 1 || processortest.EventJSON(t, events[0]) != processortest.EventJSON(t, want) {
			t.Fatalf("events %s\nwant %s", processortest.EventJSON(t, events), processortest.EventJSON(t, want))
		}
		// Without the amount, value and currency sign as "" (the same test file's
		// testValidateHMACMissingOptionalField).
		it := notificationItem{PSPReference: "test_REPORT_AVAILABLE", MerchantAccountCode: "Magento2Rik", MerchantReference: "testMerchantRef1",
			EventCode: "REPORT_AVAILABLE", Success: "true"}
		if got := it.signedText(); got != "test_REPORT_AVAILABLE::Magento2Rik:testMerchantRef1:::REPORT_AVAILABLE:true" {
			t.Fatalf("signed text without amount %q", got)
		}
	})
}

// TestAdyenNotifications: every event code of SPEC §4.2 and §4.3, signed by
// the test side's own signer, becomes the normalized event it means.
func TestAdyenNotifications(t *testing.T) {
	t.Parallel()
	respondBy := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	payment := func(code string, success bool) adyentest.Item {
		return adyentest.Item{EventCode: code, Success: success, PSPReference: "MOD0000000000001", OriginalReference: "PSP0000000000001",
			MerchantReference: "capture_pyn_1", Value: 1500, Currency: "USD"}
	}
	dispute := func(code string, ad map[string]string) adyentest.Item {
		return adyentest.Item{EventCode: code, Success: true, PSPReference: "DSP0000000000001", OriginalReference: "PSP0000000000001",
			MerchantReference: "pyn_1", Value: 1500, Currency: "USD", Reason: "Merchandise/Services Not Received", AdditionalData: ad}
	}
	for _, tc := range []struct {
		name string
		item adyentest.Item
		want ivrpay.ProcessorEvent
	}{
		{"AUTHORISATION true", adyentest.Item{EventCode: "AUTHORISATION", Success: true, PSPReference: "PSP0000000000001", MerchantReference: "pyn_1",
			Value: 1500, Currency: "USD", AdditionalData: map[string]string{"authCode": "012345", "cardSummary": "1111", "expiryDate": "03/2030",
				"avsResult": "7 Both postal code and address match", "avsResultRaw": "Y", "cvcResult": "1 Matches", "cvcResultRaw": "M",
				"networkTxReference": "586214590330745"}},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentAuthorized, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD",
				AuthCode: "012345", AVSResultCode: "Y", CVCResultCode: "M", NetworkTransactionID: "586214590330745"}},
		// Without the webhook's "Add Acquirer Result" setting the card
		// network's answer is not there: nothing is made up.
		{"AUTHORISATION true without the acquirer result", adyentest.Item{EventCode: "AUTHORISATION", Success: true, PSPReference: "PSP0000000000001",
			MerchantReference: "pyn_1", Value: 1500, Currency: "USD", AdditionalData: map[string]string{"cardSummary": "1111", "expiryDate": "03/2030"}},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentAuthorized, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD"}},
		{"AUTHORISATION true with a mismatched postal code and no CVC", adyentest.Item{EventCode: "AUTHORISATION", Success: true, PSPReference: "PSP0000000000001",
			MerchantReference: "pyn_1", Value: 1500, Currency: "USD", AdditionalData: map[string]string{"authCode": "A1B2C3",
				"avsResult": "2 Neither postal code nor address match", "cvcResult": "6 No CVC/CVV provided"}},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentAuthorized, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD",
				AuthCode: "A1B2C3", AVSResultCode: "N", CVCResultCode: "P"}},
		{"AUTHORISATION false", adyentest.Item{EventCode: "AUTHORISATION", Success: false, PSPReference: "PSP0000000000001", MerchantReference: "pyn_1",
			Value: 1500, Currency: "USD", Reason: "Not enough balance", AdditionalData: map[string]string{"refusalReasonRaw": "51 : Insufficient funds"}},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentFailed, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalInsufficientFunds, RefusalDesc: "adyen AUTHORISATION: Not enough balance"}},
		// A refusal keeps its checks, as the synchronous refusal does, and
		// no auth code (an issuer that refuses gives none to use).
		{"AUTHORISATION false with a CVC mismatch", adyentest.Item{EventCode: "AUTHORISATION", Success: false, PSPReference: "PSP0000000000001",
			MerchantReference: "pyn_1", Value: 1500, Currency: "USD", Reason: "CVC Declined", AdditionalData: map[string]string{"refusalReasonCode": "24",
				"refusalReasonRaw": "N7 : Decline for CVV2 failure", "cvcResult": "2 Does not match", "avsResult": "0 Unknown", "authCode": "000000"}},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentFailed, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalInvalidCardSecurityCode, RefusalDesc: "adyen AUTHORISATION: CVC Declined", AVSResultCode: "U", CVCResultCode: "N"}},
		{"CAPTURE true", payment("CAPTURE", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCaptured, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"CAPTURE false", payment("CAPTURE", false),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCaptureFailed, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "adyen CAPTURE"}},
		{"CAPTURE_FAILED", payment("CAPTURE_FAILED", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCaptureFailed, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD",
				RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "adyen CAPTURE_FAILED"}},
		{"CANCELLATION true", payment("CANCELLATION", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCanceled, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"CANCELLATION false", payment("CANCELLATION", false),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"TECHNICAL_CANCEL", adyentest.Item{EventCode: "TECHNICAL_CANCEL", Success: true, PSPReference: "MOD0000000000002", OriginalReference: "PSP0000000000001",
			MerchantReference: "tcancel-pyn_1", Value: 1500, Currency: "USD"},
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCanceled, PaymentReference: "PSP0000000000001", Reference: "pyn_1", Amount: 1500, Currency: "USD"}},
		{"CANCEL_OR_REFUND as a cancel", func() adyentest.Item {
			it := payment("CANCEL_OR_REFUND", true)
			it.AdditionalData = map[string]string{"modificationAction": "cancel"}
			return it
		}(), ivrpay.ProcessorEvent{Effect: ivrpay.EffectPaymentCanceled, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"CANCEL_OR_REFUND as a refund", func() adyentest.Item {
			it := payment("CANCEL_OR_REFUND", true)
			it.AdditionalData = map[string]string{"modificationAction": "refund"}
			return it
		}(), ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundSucceeded, PaymentReference: "PSP0000000000001", RefundReference: "MOD0000000000001",
			Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"REFUND true", payment("REFUND", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundSucceeded, PaymentReference: "PSP0000000000001", RefundReference: "MOD0000000000001",
				Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
		{"REFUND false", payment("REFUND", false),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundFailed, PaymentReference: "PSP0000000000001", RefundReference: "MOD0000000000001",
				Reference: "capture_pyn_1", Amount: 1500, Currency: "USD", RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "adyen REFUND"}},
		{"REFUND_FAILED", payment("REFUND_FAILED", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundFailed, PaymentReference: "PSP0000000000001", RefundReference: "MOD0000000000001",
				Reference: "capture_pyn_1", Amount: 1500, Currency: "USD", RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "adyen REFUND_FAILED"}},
		{"REFUNDED_REVERSED", payment("REFUNDED_REVERSED", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectRefundFailed, PaymentReference: "PSP0000000000001", RefundReference: "MOD0000000000001",
				Reference: "capture_pyn_1", Amount: 1500, Currency: "USD", RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "adyen REFUNDED_REVERSED"}},
		{"NOTIFICATION_OF_FRAUD", payment("NOTIFICATION_OF_FRAUD", true),
			ivrpay.ProcessorEvent{Effect: ivrpay.EffectNone, PaymentReference: "PSP0000000000001", Reference: "capture_pyn_1", Amount: 1500, Currency: "USD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := notifyOne(t, tc.item)
			want := tc.want
			want.Account, want.Kind, want.Type, want.OccurredAt = "adyen-main", Kind, tc.item.EventCode, time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
			want.ID = tc.item.PSPReference + ":" + tc.item.EventCode + ":" + map[bool]string{true: "true", false: "false"}[tc.item.Success]
			if gj, wj := processortest.EventJSON(t, got), processortest.EventJSON(t, want); gj != wj {
				t.Fatalf("event\n got %s\nwant %s", gj, wj)
			}
			if b := processortest.EventJSON(t, got); strings.Contains(b, "03/2030") || strings.Contains(b, `"1111"`) {
				t.Fatalf("card data was copied: %s", b)
			}
		})
	}

	// The dispute codes of SPEC §4.3, and the refinements of docs/decisions.md.
	for _, tc := range []struct {
		code, disputeStatus, want string
	}{
		{"REQUEST_FOR_INFORMATION", "", ivrpay.ChargebackStatusInquiryActionRequired},
		{"NOTIFICATION_OF_CHARGEBACK", "Undefended", ivrpay.ChargebackStatusDisputeActionRequired},
		{"DISPUTE_OPENED_WITH_CHARGEBACK", "Undefended", ivrpay.ChargebackStatusDisputeActionRequired},
		{"CHARGEBACK", "Pending", ivrpay.ChargebackStatusChargebackProcessing},
		{"CHARGEBACK", "Undefended", ivrpay.ChargebackStatusChargebackProcessing},
		{"CHARGEBACK", "Accepted", ivrpay.ChargebackStatusLost},
		{"CHARGEBACK", "Lost", ivrpay.ChargebackStatusLost},
		{"CHARGEBACK_REVERSED", "Won", ivrpay.ChargebackStatusProvisionalWin},
		{"PREARBITRATION_WON", "Won", ivrpay.ChargebackStatusWon},
		{"SECOND_CHARGEBACK", "Lost", ivrpay.ChargebackStatusLost},
		{"PREARBITRATION_LOST", "Lost", ivrpay.ChargebackStatusLost},
		{"ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "Won", ivrpay.ChargebackStatusWon},
		{"ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "", ivrpay.ChargebackStatusWon},
		{"DISPUTE_DEFENSE_PERIOD_ENDED", "Lost", ivrpay.ChargebackStatusLost},
		{"DISPUTE_DEFENSE_PERIOD_ENDED", "Expired", ivrpay.ChargebackStatusLost},
		{"DISPUTE_DEFENSE_PERIOD_ENDED", "", ivrpay.ChargebackStatusLost},
		{"DISPUTE_DEFENSE_PERIOD_ENDED", "Won", ivrpay.ChargebackStatusWon},
	} {
		t.Run(tc.code+" "+tc.disputeStatus, func(t *testing.T) {
			ad := map[string]string{"chargebackReasonCode": "13.1", "chargebackSchemeCode": "visa", "defensePeriodEndsAt": "2026-02-01T13:00:00+01:00"}
			if tc.disputeStatus != "" {
				ad["disputeStatus"] = tc.disputeStatus
			}
			if tc.code == "REQUEST_FOR_INFORMATION" {
				ad = map[string]string{"rfiReasonCode": "33", "rfiSchemeCode": "visa", "defensePeriodEndsAt": "2026-02-01T13:00:00+01:00"}
			}
			got := notifyOne(t, dispute(tc.code, ad))
			d := got.Dispute
			wantReason := "13.1"
			if tc.code == "REQUEST_FOR_INFORMATION" {
				wantReason = "33"
			}
			if got.Effect != ivrpay.EffectDispute || d == nil || d.Status != tc.want || d.Reference != "DSP0000000000001" ||
				got.PaymentReference != "PSP0000000000001" || got.Reference != "pyn_1" || d.Amount != 1500 || d.Currency != "USD" ||
				d.ReasonCode != wantReason || d.ReasonDesc != "Merchandise/Services Not Received" || d.RespondBy == nil || !d.RespondBy.Equal(respondBy) ||
				got.ID != "DSP0000000000001:"+tc.code+":true" {
				t.Fatalf("%s: %s", tc.code, processortest.EventJSON(t, got))
			}
		})
	}
}

func notifyOne(t *testing.T, it adyentest.Item) ivrpay.ProcessorEvent {
	t.Helper()
	events, err := VerifyNotifications("adyen-main", adyentest.Notification(adyentest.HMACKey, it), []string{adyentest.HMACKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	return events[0]
}

// TestAdyenNotificationSignatures: every item must carry a signature made
// with one of the account's keys (the previous key still kept counts); one
// bad item fails the whole delivery as a signature failure.
func TestAdyenNotificationSignatures(t *testing.T) {
	t.Parallel()
	const oldKey = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
	good := adyentest.Item{EventCode: "CAPTURE", Success: true, PSPReference: "MOD1", OriginalReference: "PSP1", MerchantReference: "capture_pyn_1", Value: 1500, Currency: "USD"}
	other := good
	other.PSPReference = "MOD2"
	signed := string(adyentest.Notification(adyentest.HMACKey, good))
	for _, tc := range []struct {
		name string
		body string
		keys []string
		ok   int
	}{
		{"signed with the key", signed, []string{adyentest.HMACKey}, 1},
		{"two items", string(adyentest.Notification(adyentest.HMACKey, good, other)), []string{adyentest.HMACKey}, 2},
		{"the previous key still kept", string(adyentest.Notification(oldKey, good)), []string{adyentest.HMACKey, oldKey}, 1},
		{"another key", string(adyentest.Notification(oldKey, good)), []string{adyentest.HMACKey}, 0},
		{"the amount changed", strings.Replace(signed, `"value":1500`, `"value":15`, 1), []string{adyentest.HMACKey}, 0},
		{"success changed", strings.Replace(signed, `"success":"true"`, `"success":"false"`, 1), []string{adyentest.HMACKey}, 0},
		{"no signature", strings.Replace(signed, `"hmacSignature"`, `"hmacSignatureX"`, 1), []string{adyentest.HMACKey}, 0},
		{"a signature that is not base64", strings.Replace(signed, `"hmacSignature":"`, `"hmacSignature":"*`, 1), []string{adyentest.HMACKey}, 0},
		{"one bad item of two", strings.Replace(string(adyentest.Notification(adyentest.HMACKey, good, other)), `"MOD2"`, `"MOD3"`, 1), []string{adyentest.HMACKey}, 0},
		{"not JSON", "pspReference=MOD1&eventCode=CAPTURE", []string{adyentest.HMACKey}, 0},
		{"no items", `{"live":"false","notificationItems":[]}`, []string{adyentest.HMACKey}, 0},
		{"an item without NotificationRequestItem", `{"live":"false","notificationItems":[{}]}`, []string{adyentest.HMACKey}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := VerifyNotifications("adyen-main", []byte(tc.body), tc.keys)
			if tc.ok > 0 {
				if err != nil || len(events) != tc.ok {
					t.Fatalf("VerifyNotifications: %d events, %v; want %d", len(events), err, tc.ok)
				}
				return
			}
			if err == nil || !errors.Is(err, ivrpay.ErrEventSignature) || events != nil {
				t.Fatalf("VerifyNotifications: %d events, %v; want a signature failure", len(events), err)
			}
			if strings.Contains(err.Error(), adyentest.HMACKey) || strings.Contains(err.Error(), oldKey) {
				t.Fatalf("the error quotes a key: %v", err)
			}
		})
	}
}

func TestCheckHMACKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"Customer Area key", adyentest.HMACKey, true},
		{"lower case", strings.ToLower(adyentest.HMACKey), true},
		{"odd length", adyentest.HMACKey[1:], false},
		{"not hex", "ZZ" + adyentest.HMACKey[2:], false},
		{"second line", adyentest.HMACKey + "\n" + adyentest.HMACKey, false},
		{"empty", "", false},
		{"too long", strings.Repeat("AB", 200), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckHMACKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckHMACKey: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}
