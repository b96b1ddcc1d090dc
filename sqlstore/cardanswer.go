package sqlstore

import (
	"context"
	"time"

	"github.com/ivrpay/ivrpay"
)

// cardAnswerDue is the card-answer pass's rows: the payins marked by
// RecordPayinOutcome (PayinOutcome.CardAnswerDue), read from their partial
// index payins_card_answer_due.
const cardAnswerDue = `card_answer_due_at IS NOT NULL`

// ClaimDueCardAnswers leases, for the caller alone, up to limit payins
// whose card-answer look-up is due, by a conditional UPDATE of their
// card_answer_due_at to the end of the lease (leaseDue's claim on another
// column): of several processes that read the same payin exactly one
// leases it, and a process that dies leaves it due again after the lease.
func (s *Store) ClaimDueCardAnswers(ctx context.Context, lease time.Duration, limit int) (out []ivrpay.DueCardAnswer, err error) {
	defer wrap(&err, "Store.ClaimDueCardAnswers")
	// Any time of change: the lease column alone says what is due.
	ids, until, err := s.leaseDueOn(ctx, "payins", "card_answer_due_at", cardAnswerDue, s.now().Add(time.Hour), lease, limit)
	for _, id := range ids {
		d := ivrpay.DueCardAnswer{Claim: parseTime(until)}
		if d.Payin, err = s.findPayin(ctx, s.rdb, id); err != nil {
			return out, err
		}
		var since string
		if err := s.queryRow(ctx, s.rdb, `SELECT COALESCE(card_answer_since, '') FROM payins WHERE id = $1`, id).Scan(&since); err != nil {
			return out, err
		}
		d.Since = parseTime(since)
		out = append(out, d)
	}
	return out, err
}

// PostponeCardAnswer makes a claimed payin's look-up due again at next,
// only under the caller's claim: nothing when the payin was filled, or its
// lease taken over, meanwhile.
func (s *Store) PostponeCardAnswer(ctx context.Context, payinID string, claim, next time.Time) (err error) {
	defer wrap(&err, "Store.PostponeCardAnswer(%q)", payinID)
	_, err = s.execTx(ctx, `UPDATE payins SET card_answer_due_at = $3 WHERE id = $1 AND card_answer_due_at = $2`,
		payinID, ivrpay.FormatTime(claim), ivrpay.FormatTime(next))
	return err
}

// FillPayinCardAnswer writes a look-up's card answer to a marked payin in
// one transaction: each of its auth code, AVS and CVC results and network
// transaction id only where it is empty (an answer recorded otherwise
// stands), the empty network transaction id of a.PaymentMethodID's card
// likewise, and the mark cleared. Its status, outcome and updated_at are
// not touched, and no webhook is written (SPEC §7 has no event for it). It
// reports false, writing nothing, when the payin is not marked (another
// process filled it first).
func (s *Store) FillPayinCardAnswer(ctx context.Context, a ivrpay.PayinCardAnswer) (filled bool, err error) {
	defer wrap(&err, "Store.FillPayinCardAnswer(%q)", a.PayinID)
	err = s.inTx(ctx, func(tx querier) error {
		filled = false // a transaction tried again starts over
		upd, err := s.exec(ctx, tx, `UPDATE payins SET
			auth_code = CASE WHEN auth_code = '' THEN $2 ELSE auth_code END,
			avs_result_code = CASE WHEN avs_result_code = '' THEN $3 ELSE avs_result_code END,
			cvc_result_code = CASE WHEN cvc_result_code = '' THEN $4 ELSE cvc_result_code END,
			network_transaction_id = CASE WHEN network_transaction_id = '' THEN $5 ELSE network_transaction_id END,
			card_answer_due_at = NULL, card_answer_since = NULL
			WHERE id = $1 AND `+cardAnswerDue,
			a.PayinID, a.AuthCode, a.AVSResultCode, a.CVCResultCode, a.NetworkTransactionID)
		if err != nil {
			return err
		}
		if n, _ := upd.RowsAffected(); n != 1 {
			return nil
		}
		filled = true
		if a.PaymentMethodID == "" || a.NetworkTransactionID == "" {
			return nil
		}
		_, err = s.exec(ctx, tx, `UPDATE payment_methods SET
			network_transaction_id = CASE WHEN network_transaction_id = '' THEN $2 ELSE network_transaction_id END WHERE id = $1`,
			a.PaymentMethodID, a.NetworkTransactionID)
		return err
	})
	return filled && err == nil, err
}
