// Package adyen is the ivrpay.Processor of Adyen, speaking the Checkout API
// v71 as JSON over net/http (Adyen's Go library is not used): POST /payments,
// /payments/{pspReference}/captures|cancels|refunds and /cancels, each with
// X-API-Key and an Idempotency-Key derived from ivrpay's key (hashed when
// longer than Adyen's 64 characters).
//
// # Set-up
//
//   - An API credential whose key has the "API PCI Payments role": ivrpay
//     sends raw card numbers, which Adyen only accepts from PCI DSS compliant
//     merchants.
//   - A MOTO merchant account (Adyen enables MOTO per merchant account): every
//     payment is shopperInteraction Moto, or ContAuth for stored cards. An
//     account that is not set up for MOTO asks for 3D Secure, which a caller
//     on the phone cannot do; the adapter reports that as PROCESSING_ERROR.
//   - In Customer Area > Developers > Additional data, return the
//     authorisation code, the AVS and CVC results, the network transaction
//     reference (networkTxReference: stored-card charges cite it) and the raw
//     acquirer result (refusalReasonRaw: without it a "05 do not honor" reads
//     DECLINED).
//   - Production: the live endpoint https://{PREFIX}-checkout-live.adyenpayments.com/checkout/v71
//     (CheckEndpointMode refuses anything else, and sandbox refuses it).
//
// # Requests
//
// Authorize sends amount, reference (ivrpay's id), merchantAccount (the
// payment's AccountRef, else the configured one), a "scheme" paymentMethod
// with number, expiry and cvc, shopperInteraction Moto, recurringProcessingModel
// UnscheduledCardOnFile (ivrpay keeps every card it charges, so the first
// payment opens a card-on-file series), returnUrl (required by v71 though never
// used), and additionalData.manualCapture "true" when not capturing at once.
// <Pay> collects only the postal code; Adyen requires street, house number and
// city with a billingAddress, so they are sent as "N/A", country US. A stored
// card is charged with shopperInteraction ContAuth, no cvc, and
// additionalData.networkTxReference of its first payment. Verify is the same
// /payments with amount 0. CardPayment.Description is not sent.
//
// # Answers
//
// resultCode Authorised is approved: pspReference, additionalData.authCode,
// networkTxReference, avsResult ("7 Both postal code and address match" → Y,
// postal code mismatches → N, else U) and cvcResult ("1 Matches" → M, 2 → N,
// 3, 4 and 6 → P, else U). Refused and Cancelled are refusals normalized from
// refusalReasonCode (see refusals in mapping.go), with Adyen's code, reason
// and raw answer kept in RefusalDesc ("adyen 12: Not enough balance"). Adyen
// has no "do not honor" reason: the scheme's 05 arrives as Refused (2) or
// Declined Non Generic (27) with refusalReasonRaw "05 : Do not honor", which
// becomes DO_NOT_HONOR. resultCode Error, and a 4xx service error
// ({status, errorCode, message, errorType}), are PROCESSING_ERROR with
// "adyen <errorCode>: <message>". Timeouts, network errors, 5xx, 429, 409,
// errorCode 704 (the same idempotency key still in progress), a
// Transient-Error header, and resultCodes that are not final (Received,
// Pending) are unknown outcomes: errors wrapping ivrpay.ErrOutcomeUnknown.
//
// Captures, cancels and refunds answer 201 with status "received": Adyen has
// accepted the request and sends the final outcome by webhook (CAPTURE,
// CANCELLATION, REFUND, with success true or false).
//
// # Notifications
//
// VerifyNotifications reads a Standard webhook delivery: it checks every
// NotificationRequestItem's additionalData.hmacSignature (base64
// HMAC-SHA256, keyed with the hex-decoded HMAC key, over
// pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success)
// and turns each item into an ivrpay.ProcessorEvent whose id is
// pspReference:eventCode:success: AUTHORISATION, CAPTURE, CAPTURE_FAILED,
// CANCELLATION, TECHNICAL_CANCEL, CANCEL_OR_REFUND, REFUND, REFUND_FAILED,
// REFUNDED_REVERSED and the dispute codes (docs/processors.md lists what
// each does). One item without a valid signature refuses the whole
// delivery. AUTHORISATION's additionalData authCode, avsResult, cvcResult
// and networkTxReference (the webhook's "Add Acquirer Result" setting) are
// read as the /payments answer's.
//
// # Resolve
//
// Checkout cannot look a payment up by merchant reference, so Resolve sends a
// technical cancel (POST /cancels with paymentReference = the payment's
// reference) and reports the attempt refused with PROCESSING_ERROR once Adyen
// answers "received"; the TECHNICAL_CANCEL webhook tells whether a payment
// was found and cancelled. A technical cancel only releases a payment that
// is not captured yet, within 24 hours of authorisation: with the merchant
// account's default immediate capture, a lost "capture at once" payment may
// already be captured when the reconciler asks. Give the merchant account a
// capture delay longer than serve --reconcile-after (Customer Area capture
// settings).
//
// # Testing through Twilio's TEST mode
//
// Twilio's TEST mode forwards only Twilio's test cards, and Adyen's test
// platform checks the expiry date and CVC of its own test cards: 4111 1111
// 1111 1111 (Visa) and 5555 5555 5555 4444 (Mastercard) are Adyen test cards,
// approved with expiry 03/2030 and CVC 737; another expiry or CVC is refused
// as Refused. We found Twilio's other test cards (378282246310005,
// 6011111111111117, 3566002020360505, 3056930009020004) in no Adyen test card
// list we could check; expect them to be refused. None of this was tried against Adyen's test platform.
//
// Adyen's test platform steers refusals independently of the card, by
// additionalData.RequestedTestAcquirerResponseCode (the refusalReasonCode to
// get: 2 Refused, 6 Expired Card, 12 Not enough balance, ...) or by
// paymentMethod.holderName (DECLINED, CARD_EXPIRED, NOT_ENOUGH_BALANCE, or
// "DECLINED : 05 : Do not honor" for a raw scheme answer). The adapter sends
// neither: CardPayment has no field for a test scenario, and adding one (a
// sandbox-only hint passed from the payin config) is a possible future
// option. The contract suite's amount triggers (5101, 5102, 5103, 5121, 5122)
// belong to ivrpay's sandbox and to this package's test fake; Adyen's test
// platform approves those amounts.
package adyen
