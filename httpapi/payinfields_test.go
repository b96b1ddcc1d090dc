package httpapi_test

// What integrators match on (SPEC §3, §7): a payin's idempotency_key and
// payment_method_config_id in GET, lists and webhooks, and payin.created for
// a payin whose processor outcome is not known yet. Deliveries are checked
// with the verifiers receivers use (verifies: Standard Webhooks and Svix).

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/webhook"
)

// deliveredEvent is one verified webhook delivery, decoded.
type deliveredEvent struct {
	ID   string         `json:"event_id"`
	Type string         `json:"event_type"`
	Data map[string]any `json:"data"`
}

// subscriber is a webhook endpoint of the bundle's platform with its
// receiver; its deliveries are verified with the endpoint's secret.
type subscriber struct {
	rcv        *recordingReceiver
	secret     string
	endpointID string
}

// subscribe creates an endpoint for events (none: every event) and starts a
// delivery worker for the bundle's store.
func (b *bundle) subscribe(t *testing.T, events ...string) *subscriber {
	t.Helper()
	rcv := newRecordingReceiver(t)
	body := map[string]any{"url": rcv.URL + "/hooks"}
	if len(events) > 0 {
		body["events"] = events
	}
	r := b.api("POST", "/v1/webhook_endpoints", b.admin, body)
	wantStatus(t, r, 200)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&webhook.Worker{Outbox: b.store, AllowPrivate: true, PollInterval: 10 * time.Millisecond}).Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { stop(); <-done })
	ep := r.data(t)
	return &subscriber{rcv: rcv, secret: ep["secret"].(string), endpointID: ep["webhook_endpoint_id"].(string)}
}

// events returns every delivery so far, each verified and decoded.
func (s *subscriber) events(t *testing.T) []deliveredEvent {
	t.Helper()
	s.rcv.mu.Lock()
	reqs := append([]signedRequest(nil), s.rcv.reqs...)
	s.rcv.mu.Unlock()
	var out []deliveredEvent
	for _, req := range reqs {
		if !verifies(t, s.secret, req, time.Now()) {
			t.Fatalf("a delivery does not verify with the endpoint's secret: %s", req.body)
		}
		var ev deliveredEvent
		if err := json.Unmarshal(req.body, &ev); err != nil {
			t.Fatalf("delivery body: %v\n%s", err, req.body)
		}
		if ev.ID != req.header.Get("webhook-id") {
			t.Fatalf("event_id %s, webhook-id %s", ev.ID, req.header.Get("webhook-id"))
		}
		out = append(out, ev)
	}
	return out
}

// wait returns the first delivered event of type eventType about objectID
// (the data's payin_id, chargeback_id…, as idKey names it).
func (s *subscriber) wait(t *testing.T, eventType, idKey, objectID string) deliveredEvent {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, ev := range s.events(t) {
			if ev.Type == eventType && ev.Data[idKey] == objectID {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s for %s %s was delivered", eventType, idKey, objectID)
		}
	}
}

// TestPayinConfigFields: a payin shows its config's idempotency_key (as the
// platform sent it, not as ivrpay scopes it) and, when it charged a card
// stored with a payment method config, that config's id; in the charge's
// answer, GET, the list and the payin.processing webhook. A card typed in
// over IVR, and a stored card that an IVR payin stored, have no such config.
func TestPayinConfigFields(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		hooks := b.subscribe(t, ivrpay.EventPayinProcessing)
		charge := func(idempotencyKey string) string {
			return b.payinConfig(b.admin, b.merchantID, 1000, map[string]any{"idempotency_key": idempotencyKey})
		}
		chargeStored := func(pmID, cfg string) map[string]any {
			r := b.api("POST", "/v1/payment_methods/"+pmID+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
			wantStatus(t, r, 200)
			return r.data(t)
		}
		type want struct {
			idempotencyKey string
			pmc            any // nil: JSON null
		}
		wants := map[string]want{}

		typedIn := b.ivr(b.ivrKey("payin:create"), chargeBody(charge("order-1001"))).wantOK(t, "charge")
		wants[typedIn] = want{"order-1001", nil}

		pmc := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		tokenized := b.ivr(b.ivrKey("payment_method:create"), tokenizeBody(pmc)).wantOK(t, "tokenize")
		stored := chargeStored(tokenized, charge("order-1002"))
		wants[stored["payin_id"].(string)] = want{"order-1002", pmc}

		typedInCard := b.api("GET", "/v1/payins/"+typedIn, b.admin, nil).data(t)["payment_method_id"].(string)
		again := chargeStored(typedInCard, charge("order-1003"))
		wants[again["payin_id"].(string)] = want{"order-1003", nil}

		check := func(t *testing.T, where string, p map[string]any) {
			t.Helper()
			w, ok := wants[p["payin_id"].(string)]
			if !ok {
				t.Fatalf("%s: unexpected payin %v", where, p["payin_id"])
			}
			if p["idempotency_key"] != w.idempotencyKey || p["payment_method_config_id"] != w.pmc {
				t.Errorf("%s: payin %s has idempotency_key %v and payment_method_config_id %v, want %q and %v",
					where, p["payin_id"], p["idempotency_key"], p["payment_method_config_id"], w.idempotencyKey, w.pmc)
			}
			for _, k := range []string{"idempotency_key", "payment_method_config_id"} {
				if _, present := p[k]; !present {
					t.Errorf("%s: payin %s has no %s key", where, p["payin_id"], k)
				}
			}
		}
		t.Run("charge answers", func(t *testing.T) {
			check(t, "POST /v1/payment_methods/{id}/payin", stored)
			check(t, "POST /v1/payment_methods/{id}/payin", again)
		})
		t.Run("GET", func(t *testing.T) {
			for id := range wants {
				check(t, "GET", b.api("GET", "/v1/payins/"+id, b.admin, nil).data(t))
			}
		})
		t.Run("list", func(t *testing.T) {
			total, results := b.api("GET", "/v1/payins?limit=100", b.admin, nil).list(t)
			if total != len(wants) {
				t.Fatalf("the list has %d payins, want %d", total, len(wants))
			}
			for _, p := range results {
				check(t, "GET /v1/payins", p)
			}
		})
		t.Run("webhook", func(t *testing.T) {
			for id := range wants {
				check(t, "payin.processing", hooks.wait(t, ivrpay.EventPayinProcessing, "payin_id", id).Data)
			}
		})
	})
}

// TestPayinCreatedEvent: a payin whose processor outcome is unknown (the
// sandbox's 5121 loses every answer until the reconciler asks) is announced
// as payin.created, CREATED with processor.outcome UNKNOWN, written with the
// unknown outcome and once: the retry that finds the outcome still unknown
// adds none. Its final status follows as usual. An approved charge emits no
// payin.created. The same holds for a stored card charged over REST.
func TestPayinCreatedEvent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := faultSetup(t, engine)
		hooks := b.subscribe(t, ivrpay.EventPayinCreated, ivrpay.EventPayinProcessing)
		createdEvents := func(payinID string) int {
			var n int
			if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE type = $1 AND object_id = $2`,
				ivrpay.EventPayinCreated, payinID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		wantCreated := func(t *testing.T, id, idempotencyKey string) {
			t.Helper()
			ev := hooks.wait(t, ivrpay.EventPayinCreated, "payin_id", id)
			if ev.Data["status"] != ivrpay.PayinStatusCreated || processorOutcome(ev.Data) != ivrpay.ProcessorOutcomeUnknown ||
				ev.Data["idempotency_key"] != idempotencyKey || ev.Data["amount"] != float64(sandbox.LostAnswersAmount) {
				t.Fatalf("payin.created data = %v", ev.Data)
			}
		}
		resolve := func(t *testing.T, id string) {
			t.Helper()
			if n := b.on(t).reconcile(); n < 1 {
				t.Fatalf("the reconciler resolved %d payins", n)
			}
			if ev := hooks.wait(t, ivrpay.EventPayinProcessing, "payin_id", id); ev.Data["status"] != ivrpay.PayinStatusProcessing {
				t.Fatalf("payin.processing after reconciliation = %v", ev.Data)
			}
			if n := createdEvents(id); n != 1 {
				t.Fatalf("payin %s has %d payin.created events, want 1", id, n)
			}
		}

		t.Run("IVR", func(t *testing.T) {
			key := b.ivrKey("payin:create")
			cfg := b.payinConfig(b.admin, b.merchantID, sandbox.LostAnswersAmount, map[string]any{"idempotency_key": "pending-ivr"})
			body := with(chargeBody(cfg), "amount", ivrpay.FormatDollars(sandbox.LostAnswersAmount))
			id := b.on(t).wantPending(b.ivr(key, body))
			wantCreated(t, id, "pending-ivr")
			// Twilio's retry: the outcome is still unknown, and nothing new is announced.
			if again := b.on(t).wantPending(b.ivr(key, body)); again != id {
				t.Fatalf("the retry answered payin %s, want %s", again, id)
			}
			if n := createdEvents(id); n != 1 {
				t.Fatalf("after the retry, payin %s has %d payin.created events, want 1", id, n)
			}
			resolve(t, id)
		})
		t.Run("stored card", func(t *testing.T) {
			pmc := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
			pmID := b.ivr(b.ivrKey("payment_method:create"), tokenizeBody(pmc)).wantOK(t, "tokenize")
			cfg := b.payinConfig(b.admin, b.merchantID, sandbox.LostAnswersAmount, map[string]any{"idempotency_key": "pending-stored"})
			var id string
			for range 2 { // the request, then the same request again
				r := b.api("POST", "/v1/payment_methods/"+pmID+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
				wantStatus(t, r, 200)
				p := r.data(t)
				if p["status"] != ivrpay.PayinStatusCreated || (id != "" && p["payin_id"] != id) {
					t.Fatalf("stored charge answered %v %v, want the CREATED payin %s", p["payin_id"], p["status"], id)
				}
				id = p["payin_id"].(string)
			}
			wantCreated(t, id, "pending-stored")
			resolve(t, id)
		})
		t.Run("approved charges emit none", func(t *testing.T) {
			id := b.ivr(b.ivrKey("payin:create"), chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
			hooks.wait(t, ivrpay.EventPayinProcessing, "payin_id", id)
			if n := createdEvents(id); n != 0 {
				t.Fatalf("an approved payin has %d payin.created events", n)
			}
		})
	})
}
