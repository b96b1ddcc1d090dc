package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/twilio"
)

// demoSettleAfter is the demo's --sandbox-settle-after for its chargeback:
// short, so that the dispute is lost within the demo.
const demoSettleAfter = 300 * time.Millisecond

// demoChargeback is a call of 51.30, the sandbox's chargeback trigger: the
// payin settles, the cardholder disputes it (DISPUTE_ACTION_REQUIRED, with
// a deadline), and the dispute is LOST one settle delay later, each step a
// processor event applied through the inbox, as Stripe's and Adyen's are.
// The sandbox pass runs as serve's worker does, every 50 ms with the demo's
// settle delay. It returns the payin's and the chargeback's ids.
func demoChargeback(ctx context.Context, out io.Writer, service *payments.Service, api *httpapi.Client, endpoint, ivrKey, merchantID string) (payinID, chargebackID string, err error) {
	const cents = sandbox.ChargebackAmount
	cfgID, err := demoPayinConfig(ctx, api, merchantID, "demo-order-5", cents)
	if err != nil {
		return "", "", err
	}
	pay, err := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_demo", AmountCents: cents, PayinConfigID: cfgID})
	if err != nil {
		return "", "", err
	}
	sim, err := demoCall(ctx, endpoint, ivrKey, pay, "4111111111111111", "123")
	if err != nil {
		return "", "", err
	}
	if payinID = sim.Callback.Get("PaymentConfirmationCode"); payinID == "" {
		return "", "", fmt.Errorf("the $51.30 call did not succeed: %s", sim.Callback.Get("ConnectorError"))
	}
	fmt.Fprintf(out, "payin %s: PROCESSING; the sandbox confirms it %s later (--sandbox-settle-after)\n", payinID, demoSettleAfter)
	var seen string
	for deadline := time.Now().Add(10 * time.Second); seen != ivrpay.ChargebackStatusLost; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return "", "", errors.New("the chargeback was not lost within 10 s")
		}
		if _, err := service.ConfirmSandboxDue(ctx, demoSettleAfter); err != nil {
			return "", "", err
		}
		l, err := api.ListChargebacks(ctx, ivrpay.ChargebackFilter{PayinID: payinID})
		if err != nil {
			return "", "", err
		}
		if len(l.Results) == 0 || l.Results[0].Status == seen {
			continue
		}
		cb := l.Results[0]
		chargebackID, seen = cb.ID, cb.Status
		if seen == ivrpay.ChargebackStatusLost {
			fmt.Fprintf(out, "one settle delay later the processor's next event: chargeback %s is %s\n", cb.ID, cb.Status)
			break
		}
		printJSON(out, "GET /v1/chargebacks?payin_id="+payinID+" (the first result)", cb)
	}
	p, err := api.GetPayin(ctx, payinID)
	if err != nil {
		return "", "", err
	}
	summary, _ := json.Marshal(p.Chargebacks)
	fmt.Fprintf(out, "payin %s stays %s, with \"chargebacks\": %s, refundable %d cents (%s)\n", p.ID, p.Status, summary,
		p.RefundableAmount, p.NonRefundableReasonCode)
	return payinID, chargebackID, nil
}
