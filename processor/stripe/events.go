package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	stripeapi "github.com/stripe/stripe-go/v84"
	"github.com/stripe/stripe-go/v84/webhook"
)

// Events (SPEC §4.2). Stripe posts each event of the account to the
// endpoint registered in its Dashboard, signed in the Stripe-Signature
// header with the endpoint's secret (whsec_…). VerifyEvent checks the
// signature with stripe-go's webhook package and turns the event into the
// ivrpay.ProcessorEvent the inbox applies, reading only the fields SPEC
// names (ids, amounts, statuses, codes, ivrpay's metadata, the dispute's
// deadline): no card data is copied.

// EventTolerance is how old a signature's timestamp may be.
const EventTolerance = webhook.DefaultTolerance

// eventsSecretShape is a Stripe endpoint signing secret: whsec_ and then
// letters, digits and base64's + / =.
var eventsSecretShape = regexp.MustCompile(`^whsec_[A-Za-z0-9+/=]{1,250}$`)

// CheckEventsSecret refuses what cannot be a Stripe endpoint signing
// secret (a second line, a space, another prefix). The error never quotes
// the secret.
func CheckEventsSecret(secret string) error {
	if !eventsSecretShape.MatchString(secret) {
		return errors.New("stripe: the events secret is not a Stripe endpoint signing secret (whsec_ followed by letters and digits, on one line; Dashboard → Developers → Webhooks → the endpoint → Signing secret)")
	}
	return nil
}

// VerifyEvent checks a delivery's Stripe-Signature header against the
// account's secrets (with any of the header's v1 signatures and any of the
// secrets, so that a secret can roll on either side) within
// EventTolerance, and returns the event as ivrpay.ProcessorEvents (one, or
// for charge.refunded one per refund it lists). A signature that is
// missing, malformed, too old or made with another secret is an error
// wrapping ivrpay.ErrEventSignature; a signed body that is not a Stripe
// event is another error. Events of every API version are accepted.
func VerifyEvent(account string, payload []byte, header string, secrets []string) ([]ivrpay.ProcessorEvent, error) {
	err := errors.New("no events secret to check it with")
	for _, secret := range secrets {
		var e stripeapi.Event
		e, err = webhook.ConstructEventWithOptions(payload, header, secret,
			webhook.ConstructEventOptions{Tolerance: EventTolerance, IgnoreAPIVersionMismatch: true})
		switch {
		case err == nil:
			return Events(account, e)
		case errors.Is(err, webhook.ErrNoValidSignature):
			continue // perhaps the previous secret
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrTooOld):
			return nil, fmt.Errorf("%w: stripe: %v", ivrpay.ErrEventSignature, err)
		default:
			return nil, fmt.Errorf("stripe: the body is signed but is not a Stripe event: %v", err)
		}
	}
	return nil, fmt.Errorf("%w: stripe: %v", ivrpay.ErrEventSignature, err)
}

// Events turns a verified Stripe event into ivrpay.ProcessorEvents: event
// types ivrpay does not act on, and states that move nothing (a refund
// still pending), are one event with ivrpay.EffectNone, kept and never
// applied. An object the event type should carry but that does not decode
// is an error.
func Events(account string, e stripeapi.Event) ([]ivrpay.ProcessorEvent, error) {
	base := ivrpay.ProcessorEvent{Account: account, Kind: Kind, ID: e.ID, Type: string(e.Type), Effect: ivrpay.EffectNone,
		OccurredAt: time.Unix(e.Created, 0).UTC()}
	if e.ID == "" {
		return nil, errors.New("stripe: the event has no id")
	}
	var raw json.RawMessage
	if e.Data != nil {
		raw = e.Data.Raw
	}
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("stripe: event %s (%s): the object does not decode: %v", e.ID, e.Type, err)
		}
		return nil
	}
	switch {
	case strings.HasPrefix(string(e.Type), "payment_intent."):
		var pi eventIntent
		if err := decode(&pi); err != nil {
			return nil, err
		}
		return []ivrpay.ProcessorEvent{pi.event(base)}, nil
	case e.Type == "refund.created" || e.Type == "refund.updated" || e.Type == "refund.failed" || e.Type == "charge.refund.updated":
		var re eventRefund
		if err := decode(&re); err != nil {
			return nil, err
		}
		return []ivrpay.ProcessorEvent{re.event(base)}, nil
	case e.Type == "charge.refunded":
		var ch eventCharge
		if err := decode(&ch); err != nil {
			return nil, err
		}
		return ch.events(base), nil
	case strings.HasPrefix(string(e.Type), "charge.dispute."):
		var du eventDispute
		if err := decode(&du); err != nil {
			return nil, err
		}
		return []ivrpay.ProcessorEvent{du.event(base, e.Livemode)}, nil
	}
	return []ivrpay.ProcessorEvent{base}, nil
}

// eventIntent is what ivrpay reads of a PaymentIntent.
type eventIntent struct {
	ID               string            `json:"id"`
	Status           string            `json:"status"`
	Amount           int64             `json:"amount"`
	AmountCapturable int64             `json:"amount_capturable"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Type        string `json:"type"`
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
	} `json:"last_payment_error"`
	// LatestCharge is the charge's id (API versions from 2022-11-15), or
	// the charge itself where the endpoint expands it; Charges lists the
	// charges, newest first, in API versions before 2022-11-15.
	LatestCharge *eventChargeCard `json:"latest_charge"`
	Charges      *struct {
		Data []*eventChargeCard `json:"data"`
	} `json:"charges"`
}

// eventChargeCard is what ivrpay reads of the charge a PaymentIntent
// event carries: its id, and its card's answer when the charge is there
// as an object. Only these fields are decoded, so that a field of another
// shape in some API version never fails the event.
type eventChargeCard struct {
	ID   string
	card *struct {
		AuthorizationCode    string                                          `json:"authorization_code"`
		NetworkTransactionID string                                          `json:"network_transaction_id"`
		Checks               *stripeapi.ChargePaymentMethodDetailsCardChecks `json:"checks"`
	}
}

func (c *eventChargeCard) UnmarshalJSON(b []byte) error {
	if id, ok := stripeapi.ParseID(b); ok {
		c.ID = id
		return nil
	}
	var v struct {
		ID                   string `json:"id"`
		PaymentMethodDetails *struct {
			Card json.RawMessage `json:"card"`
		} `json:"payment_method_details"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.ID = v.ID
	if v.PaymentMethodDetails != nil && len(v.PaymentMethodDetails.Card) > 0 {
		return json.Unmarshal(v.PaymentMethodDetails.Card, &c.card)
	}
	return nil
}

// charge is the PaymentIntent's charge whose card's answer the event
// carries: latest_charge when expanded, else that charge (or, before
// latest_charge existed, the newest) in charges.data; nil when the event
// carries none (the current API versions' latest_charge is an id).
func (pi eventIntent) charge() *stripeapi.Charge {
	found := pi.LatestCharge
	if (found == nil || found.card == nil) && pi.Charges != nil {
		for _, c := range pi.Charges.Data {
			if c != nil && c.card != nil && (found == nil || c.ID == found.ID) {
				found = c
				break
			}
		}
	}
	if found == nil || found.card == nil {
		return nil
	}
	card := &stripeapi.ChargePaymentMethodDetailsCard{AuthorizationCode: found.card.AuthorizationCode,
		NetworkTransactionID: found.card.NetworkTransactionID, Checks: found.card.Checks}
	return &stripeapi.Charge{ID: found.ID, PaymentMethodDetails: &stripeapi.ChargePaymentMethodDetails{Card: card}}
}

func (pi eventIntent) event(e ivrpay.ProcessorEvent) ivrpay.ProcessorEvent {
	e.PaymentReference, e.Reference, e.Currency = pi.ID, pi.Metadata[MetadataReference], strings.ToUpper(pi.Currency)
	eventChargeAnswer(&e, pi.charge())
	switch e.Type {
	case "payment_intent.succeeded":
		e.Effect, e.Amount = ivrpay.EffectPaymentCaptured, pi.AmountReceived
	case "payment_intent.amount_capturable_updated":
		// Sent when an authorization can be captured; an amount of 0
		// (nothing left to capture) confirms nothing.
		if pi.AmountCapturable > 0 {
			e.Effect, e.Amount = ivrpay.EffectPaymentAuthorized, pi.AmountCapturable
		}
	case "payment_intent.payment_failed":
		e.Effect, e.Amount = ivrpay.EffectPaymentFailed, pi.Amount
		e.RefusalCode, e.RefusalDesc = ivrpay.RefusalProcessingError, "stripe payment_intent.payment_failed"
		if le := pi.LastPaymentError; le != nil {
			se := &stripeapi.Error{Type: stripeapi.ErrorType(le.Type), Code: stripeapi.ErrorCode(le.Code), DeclineCode: stripeapi.DeclineCode(le.DeclineCode)}
			if se.Type == stripeapi.ErrorTypeCard {
				e.RefusalCode = RefusalCode(le.Code, le.DeclineCode)
			}
			e.RefusalDesc = "stripe " + errorCode(se)
		}
	case "payment_intent.canceled":
		e.Effect, e.Amount = ivrpay.EffectPaymentCanceled, pi.Amount
	}
	return e
}

// eventRefund is what ivrpay reads of a Refund.
type eventRefund struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	PaymentIntent string            `json:"payment_intent"`
	FailureReason string            `json:"failure_reason"`
	Metadata      map[string]string `json:"metadata"`
}

// event is the refund's outcome by its status, whatever the event type:
// succeeded, or failed or canceled (its amount refundable again); pending
// and requires_action move nothing yet.
func (re eventRefund) event(e ivrpay.ProcessorEvent) ivrpay.ProcessorEvent {
	e.PaymentReference, e.RefundReference, e.Reference = re.PaymentIntent, re.ID, re.Metadata[MetadataPayin]
	e.Amount, e.Currency = re.Amount, strings.ToUpper(re.Currency)
	switch re.Status {
	case string(stripeapi.RefundStatusSucceeded):
		e.Effect = ivrpay.EffectRefundSucceeded
	case string(stripeapi.RefundStatusFailed), string(stripeapi.RefundStatusCanceled):
		e.Effect, e.RefusalCode = ivrpay.EffectRefundFailed, ivrpay.RefusalProcessingError
		e.RefusalDesc = "stripe refund " + re.Status
		if re.FailureReason != "" {
			e.RefusalDesc += " (" + re.FailureReason + ")"
		}
	}
	return e
}

// eventCharge is what ivrpay reads of a Charge: the refunds it lists
// (API versions before 2022-11-15 include them; later ones do not, and
// refund.updated / refund.failed carry each refund instead).
type eventCharge struct {
	ID            string `json:"id"`
	PaymentIntent string `json:"payment_intent"`
	Refunds       *struct {
		Data []eventRefund `json:"data"`
	} `json:"refunds"`
}

// events is one event per listed refund that moved, each under the
// event's id and the refund's ("evt_…:re_…"), since one charge.refunded
// can report several; or the event alone, moving nothing.
func (ch eventCharge) events(e ivrpay.ProcessorEvent) []ivrpay.ProcessorEvent {
	var out []ivrpay.ProcessorEvent
	if ch.Refunds != nil {
		for _, re := range ch.Refunds.Data {
			if re.PaymentIntent == "" {
				re.PaymentIntent = ch.PaymentIntent
			}
			r := re.event(e)
			if r.Effect == ivrpay.EffectNone {
				continue
			}
			r.ID = e.ID + ":" + re.ID
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		e.PaymentReference = ch.PaymentIntent
		return []ivrpay.ProcessorEvent{e}
	}
	return out
}

// eventDispute is what ivrpay reads of a Dispute.
type eventDispute struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Reason          string `json:"reason"`
	PaymentIntent   string `json:"payment_intent"`
	EvidenceDetails *struct {
		DueBy int64 `json:"due_by"`
	} `json:"evidence_details"`
}

// DisputeStatuses maps Stripe's dispute statuses to chargeback statuses (SPEC §4.3).
var DisputeStatuses = map[string]string{
	"warning_needs_response": ivrpay.ChargebackStatusInquiryActionRequired,
	"warning_under_review":   ivrpay.ChargebackStatusInquiryProcessing,
	"warning_closed":         ivrpay.ChargebackStatusWon,
	"needs_response":         ivrpay.ChargebackStatusDisputeActionRequired,
	"under_review":           ivrpay.ChargebackStatusChargebackProcessing,
	"won":                    ivrpay.ChargebackStatusWon,
	"lost":                   ivrpay.ChargebackStatusLost,
}

// event is the dispute as the event states it; a status SPEC does not map
// (one Stripe adds later) moves nothing.
func (du eventDispute) event(e ivrpay.ProcessorEvent, live bool) ivrpay.ProcessorEvent {
	e.PaymentReference, e.Amount, e.Currency = du.PaymentIntent, du.Amount, strings.ToUpper(du.Currency)
	status, ok := DisputeStatuses[du.Status]
	if !ok {
		return e
	}
	d := &ivrpay.DisputeDetails{Reference: du.ID, Status: status, Amount: du.Amount, Currency: e.Currency,
		ReasonCode: du.Reason, ReasonDesc: strings.ReplaceAll(du.Reason, "_", " ")}
	if du.EvidenceDetails != nil && du.EvidenceDetails.DueBy > 0 {
		due := time.Unix(du.EvidenceDetails.DueBy, 0).UTC()
		d.RespondBy = &due
	}
	if du.PaymentIntent != "" {
		// Evidence is submitted on the payment's page of the Dashboard.
		d.DashboardURL = "https://dashboard.stripe.com/payments/" + du.PaymentIntent
		if !live {
			d.DashboardURL = "https://dashboard.stripe.com/test/payments/" + du.PaymentIntent
		}
	}
	e.Effect, e.Dispute = ivrpay.EffectDispute, d
	return e
}
