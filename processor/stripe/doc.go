// Package stripe is the ivrpay.Processor of Stripe (docs/processors.md), built on
// github.com/stripe/stripe-go/v84. Every call goes through stripe-go with its
// own network retries off (the ivrpay service decides retries) and carries an
// Idempotency-Key derived from ivrpay's ids; connected accounts get the
// Stripe-Account header.
//
// # What the Stripe account needs
//
// The adapter sends raw card numbers (a PaymentMethod with number, expiry,
// CVC and postal code). Stripe refuses that until it enables "raw card data
// APIs" on the account, even in test mode; ask Stripe support first. Every
// cardholder-initiated call is marked as a phone order
// (payment_method_options[card][moto]=true), which exempts it from 3-D
// Secure; MOTO too must be enabled on the account.
//
// # Calls
//
// Authorize creates a PaymentMethod (idempotency key + "-pm"), then a
// PaymentIntent with confirm=true, capture_method automatic or manual, MOTO,
// payment_method_types=[card] (no redirect-based methods, so no return_url)
// and metadata ivrpay_reference. The result is read from the PaymentIntent and
// its expanded latest_charge: the pi_… id, checks.address_postal_code_check
// and cvc_check, authorization_code and network_transaction_id.
//
// A stored card (CardPayment.Stored) is charged as a merchant-initiated
// transaction: off_session=true and
// payment_method_options[card][mit_exemption][network_transaction_id] citing
// the card's first payment, without CVC and without the MOTO flag (the
// cardholder is not on the phone; Adyen's analogue is ContAuth). stripe-go v84
// has no typed field for mit_exemption, which Stripe gates per account
// ("Received unknown parameter" until enabled), so it is sent as an extra
// form value; stripe-mock accepts it.
//
// Verify (tokenize) confirms a SetupIntent (usage=off_session, MOTO) rather
// than charging a small amount and voiding it: the SetupIntent is Stripe's
// zero-amount card validation, so the cardholder never sees a hold. The
// CVC/postal checks come from the expanded latest_attempt; the network
// transaction id is read from
// latest_attempt.payment_method_details.card.network_transaction_id when
// Stripe returns it (stripe-go v84 does not model that field, so it is read
// from the raw response). Without it a later MIT still goes through but
// cites no first transaction.
//
// Resolve finds the PaymentIntent of a lost Authorize by searching
// metadata['ivrpay_reference']. Stripe's search lags writes (usually under a
// minute, up to an hour during incidents), so when the search finds nothing
// Resolve also scans the newest PaymentIntents with the list API, which is
// consistent. A succeeded or requires_capture intent is reported approved; one
// in another state is cancelled (when it still can be) and reported refused
// with PROCESSING_ERROR; a processing one stays unknown (an error); none found
// is refused with PROCESSING_ERROR.
//
// # Errors
//
// A card_error (HTTP 402) is a definite refusal with a normalized refusal code
// and Stripe's code, decline code and message in RefusalDesc. Timeouts,
// network failures, 5xx, 409, 429 and idempotency_error are unknown outcomes
// (errors wrapping ivrpay.ErrOutcomeUnknown). Other 4xx answers are definite
// refusals with PROCESSING_ERROR. No error or description contains the PAN,
// the CVV or the secret key; stripe-go's own logging is off.
//
// # Events
//
// VerifyEvent reads a delivery to the account's webhook endpoint: it checks
// the Stripe-Signature header with stripe-go's webhook package (300 s
// tolerance, any matching v1, events of every API version) and turns the
// event into ivrpay.ProcessorEvents, reading only the ids, amounts,
// statuses, codes, ivrpay's metadata and a dispute's deadline:
// payment_intent.succeeded, .amount_capturable_updated, .payment_failed and
// .canceled; refund.created, .updated, .failed, charge.refund.updated and
// charge.refunded by the refund's status; charge.dispute.* by the dispute's
// status (docs/processors.md lists what each does). A PaymentIntent event
// also gives its charge's card answer (authorization_code, the checks,
// network_transaction_id, mapped as the synchronous answer) where it
// carries the charge: charges.data before API version 2022-11-15, or an
// expanded latest_charge; a latest_charge id alone gives none, and the
// card-answer pass gets it with LookupPayment, which expands latest_charge.
//
// # Test mode and Twilio
//
// Twilio's TEST-mode cards 4111111111111111, 5555555555554444,
// 378282246310005, 6011111111111117 and 3566002020360505 are Stripe test cards
// too and are approved in Stripe test mode. Stripe's declines are triggered
// by card number (4000000000000002 and friends), and Twilio's TEST mode only
// forwards its own cards, so a decline cannot be produced through Twilio TEST
// mode with a Stripe test-mode account: test declines with the sandbox
// processor (amount triggers), or by calling the API directly with Stripe's
// decline cards.
package stripe
