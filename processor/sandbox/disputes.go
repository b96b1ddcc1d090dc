package sandbox

import (
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// The dispute triggers (docs/sandbox.md): a settled payin of
// ChargebackAmount is disputed and the dispute LOST one settle delay later;
// one of InquiryAmount gets an inquiry that ends WON.
const (
	ChargebackAmount = ivrpay.SandboxChargebackAmount
	InquiryAmount    = ivrpay.SandboxInquiryAmount
)

// DisputeRespondWithin is the deadline the sandbox gives for evidence,
// counted from settlement: what a card network gives, give or take.
const DisputeRespondWithin = 7 * 24 * time.Hour

// disputeScript is what the sandbox says of a disputed payin: the status
// it opens with, the one it ends with, and the reason it gives.
type disputeScript struct {
	open, end              string
	reasonCode, reasonDesc string
}

var disputeScripts = map[int64]disputeScript{
	ChargebackAmount: {ivrpay.ChargebackStatusDisputeActionRequired, ivrpay.ChargebackStatusLost,
		"fraudulent", "The cardholder says they did not authorize the payment"},
	InquiryAmount: {ivrpay.ChargebackStatusInquiryActionRequired, ivrpay.ChargebackStatusWon,
		"general", "The cardholder's bank asks about the payment"},
}

// DisputeEvents are the events the sandbox processor sends about d: the
// dispute opened, with its deadline, or, once it has awaited the merchant
// (the store lists it after the settle delay), its end. ivrpay receives them
// like any processor's (SPEC §4.3). Each event's id is fixed by the payin
// and status, so two processes sending the same step store it once.
func DisputeEvents(d ivrpay.SandboxDisputeDue) []ivrpay.ProcessorEvent {
	script, ok := disputeScripts[d.PayinAmount]
	if !ok {
		return nil
	}
	// A dispute claims back what was taken: the captured amount, less than
	// the trigger amount when an authorization was captured in part.
	dispute := &ivrpay.DisputeDetails{Reference: reference("du", d.PayinID), Amount: d.CapturedAmount, Currency: d.Currency,
		ReasonCode: script.reasonCode, ReasonDesc: script.reasonDesc}
	switch d.ChargebackStatus {
	case "":
		respondBy := d.Since.Add(DisputeRespondWithin).UTC()
		dispute.Status, dispute.RespondBy = script.open, &respondBy
	case script.open:
		dispute.Status = script.end
	default:
		return nil // ended, or moved by someone else: the sandbox says no more
	}
	return []ivrpay.ProcessorEvent{{Account: ivrpay.SandboxAccount, Kind: Kind, ID: dispute.Reference + ":" + dispute.Status,
		Type: "sandbox.dispute." + strings.ToLower(dispute.Status), Effect: ivrpay.EffectDispute, Reference: d.PayinID,
		PaymentReference: d.PayinReference, Amount: dispute.Amount, Currency: d.Currency, Dispute: dispute, OccurredAt: d.Since}}
}
