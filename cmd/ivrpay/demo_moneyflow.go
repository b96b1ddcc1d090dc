package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/twilio"
	"github.com/ivrpay/ivrpay/webhook"
)

// demoReceivedHook is one delivery the demo's receiver verified.
type demoReceivedHook struct {
	id, eventType, objectID string
}

// demoReceiver is the platform's webhook endpoint inside the demo: it
// verifies each delivery the way a Rainforest integration does, from the
// svix-* headers, and keeps the verified ones.
type demoReceiver struct {
	secret string
	mu     sync.Mutex
	hooks  []demoReceivedHook
	bad    []string
}

func (d *demoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	d.mu.Lock()
	defer d.mu.Unlock()
	err := webhook.Verify(d.secret, r.Header.Get(webhook.HeaderSvixID), r.Header.Get(webhook.HeaderSvixTimestamp),
		r.Header.Get(webhook.HeaderSvixSignature), body, time.Now())
	if err != nil {
		d.bad = append(d.bad, err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		EventType string `json:"event_type"`
		Data      struct {
			PayinID      string `json:"payin_id"`
			RefundID     string `json:"refund_id"`
			ChargebackID string `json:"chargeback_id"`
		} `json:"data"`
	}
	json.Unmarshal(body, &ev)
	obj := ev.Data.PayinID
	switch {
	case strings.HasPrefix(ev.EventType, "refund."):
		obj = ev.Data.RefundID
	case strings.HasPrefix(ev.EventType, "chargeback."):
		obj = ev.Data.ChargebackID
	}
	d.hooks = append(d.hooks, demoReceivedHook{id: r.Header.Get(webhook.HeaderSvixID), eventType: ev.EventType, objectID: obj})
	w.WriteHeader(http.StatusNoContent)
}

// has reports whether an event of type about objectID was verified, and any refusal.
func (d *demoReceiver) has(eventType, objectID string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bad) > 0 {
		return false, fmt.Errorf("the receiver refused a delivery: %s", d.bad[0])
	}
	return slices.ContainsFunc(d.hooks, func(h demoReceivedHook) bool { return h.eventType == eventType && h.objectID == objectID }), nil
}

// demoMoneyFlow is the rest of the money's way after the call: a webhook
// endpoint (a receiver inside the demo), a charge settled to SUCCEEDED, a
// partial refund, and the signed webhooks, verified from their svix-*
// headers. The sandbox processor's confirmations (processor events, applied
// through the inbox as a real processor's are) and delivery run as single
// passes of what `ivrpay serve`'s workers do on their schedules, so the
// demo stays fast.
func demoMoneyFlow(ctx context.Context, out io.Writer, step func(int, string), first int, store *sqlstore.Store, service *payments.Service, api *httpapi.Client,
	endpoint, ivrKey, merchantID string) error {
	step(first, "The platform registers a webhook endpoint: a small receiver inside this demo (POST /v1/webhook_endpoints)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	rcv := &demoReceiver{}
	hookSrv := &http.Server{Handler: rcv, ReadHeaderTimeout: 5 * time.Second}
	go hookSrv.Serve(ln)
	defer hookSrv.Close()
	ep, err := api.CreateWebhookEndpoint(ctx, ivrpay.WebhookEndpointCreate{URL: "http://" + ln.Addr().String() + "/hooks",
		Events: []string{"payin.processing", "payin.succeeded", "refund.processing", "refund.succeeded",
			ivrpay.ChargebackEventType(ivrpay.ChargebackStatusDisputeActionRequired), ivrpay.ChargebackEventType(ivrpay.ChargebackStatusLost)}})
	if err != nil {
		return err
	}
	rcv.mu.Lock()
	rcv.secret = ep.Secret
	rcv.mu.Unlock()
	fmt.Fprintf(out, "endpoint %s → %s (payin, refund and chargeback events), signing secret whsec_… shown once\n", ep.ID, ep.URL)

	step(first+1, "A $25.00 call, then the processor's confirmation (a processor event): PROCESSING → SUCCEEDED")
	cfgID, err := demoPayinConfig(ctx, api, merchantID, "demo-order-4", 2500)
	if err != nil {
		return err
	}
	pay, err := twilio.NewPay(twilio.PayOptions{Connector: "ivrpay_demo", AmountCents: 2500, PayinConfigID: cfgID})
	if err != nil {
		return err
	}
	sim, err := demoCall(ctx, endpoint, ivrKey, pay, "4111111111111111", "123")
	if err != nil {
		return err
	}
	payinID := sim.Callback.Get("PaymentConfirmationCode")
	if payinID == "" {
		return fmt.Errorf("the $25.00 call did not succeed: %s", sim.Callback.Get("ConnectorError"))
	}
	// What the sandbox processor does once --sandbox-settle-after has
	// passed: it sends its capture confirmation, which the inbox applies.
	if _, err := service.ConfirmSandboxDue(ctx, 0); err != nil {
		return err
	}
	payin, err := api.GetPayin(ctx, payinID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "payin %s: status %s, captured %d, refundable %d cents\n", payin.ID, payin.Status, payin.CapturedAmount, payin.RefundableAmount)
	if payin.Status != ivrpay.PayinStatusSucceeded {
		return fmt.Errorf("payin %s is %s after settlement", payin.ID, payin.Status)
	}

	step(first+2, "A $5.00 refund (POST /v1/payins/{id}/void_or_refund), then the processor's confirmation")
	res, err := api.VoidOrRefund(ctx, payinID, ivrpay.VoidOrRefund{IdempotencyKey: "demo-refund-1", Reason: ivrpay.RefundReasons[0], Amount: "500"})
	if err != nil {
		return err
	}
	printJSON(out, "POST /v1/payins/"+payinID+"/void_or_refund", res)
	if _, err := service.ConfirmSandboxDue(ctx, 0); err != nil {
		return err
	}
	var refund json.RawMessage
	if err := api.Do(ctx, "GET", "/v1/refunds/"+string(res.RefundID), nil, &refund); err != nil {
		return err
	}
	printJSON(out, "GET /v1/refunds/"+string(res.RefundID), refund)

	step(first+3, "A $51.30 call, the sandbox's chargeback trigger: settled, disputed by the cardholder, then lost")
	_, chargebackID, err := demoChargeback(ctx, out, service, api, endpoint, ivrKey, merchantID)
	if err != nil {
		return err
	}

	step(first+4, "The signed webhooks, verified by the receiver from svix-id, svix-timestamp and svix-signature")
	worker := &webhook.Worker{Outbox: store, AllowPrivate: true}
	wants := []struct{ eventType, id string }{{"payin.succeeded", payinID}, {"refund.succeeded", string(res.RefundID)},
		{ivrpay.ChargebackEventType(ivrpay.ChargebackStatusDisputeActionRequired), chargebackID},
		{ivrpay.ChargebackEventType(ivrpay.ChargebackStatusLost), chargebackID}}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := worker.RunOnce(ctx); err != nil {
			return err
		}
		done := true
		for _, w := range wants {
			ok, err := rcv.has(w.eventType, w.id)
			if err != nil {
				return err
			}
			done = done && ok
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the webhooks did not arrive within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rcv.mu.Lock()
	// Deliveries run concurrently; list them in event order.
	slices.SortFunc(rcv.hooks, func(a, b demoReceivedHook) int { return strings.Compare(a.id, b.id) })
	for _, h := range rcv.hooks {
		fmt.Fprintf(out, "verified %-34s svix-id %s  (%s)\n", h.eventType, h.id, h.objectID)
	}
	rcv.mu.Unlock()
	fmt.Fprintf(out, "each signature is v1,base64(HMAC-SHA256(secret, svix-id.svix-timestamp.body)); the webhook-* headers carry the same values\n")
	return nil
}
