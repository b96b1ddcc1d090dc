package stripetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v84/webhook"
)

// EventAPIVersion is the API version Event stamps on its events: an older
// one than stripe-go's, as an account pinned to it sends, which the events
// endpoint accepts all the same.
const EventAPIVersion = "2024-06-20"

// Event is a Stripe event of type typ about object, as Stripe posts it to a
// webhook endpoint (a snapshot event: the object as it was).
func Event(id, typ string, object map[string]any) []byte {
	return EventOfVersion(EventAPIVersion, id, typ, object)
}

// EventOfVersion is Event stamped with another API version (an endpoint
// pinned to it): before 2022-11-15 a PaymentIntent lists its charges in
// charges.data, from it names only latest_charge.
func EventOfVersion(version, id, typ string, object map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": version, "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "request": map[string]any{"id": nil, "idempotency_key": nil},
		"type": typ, "data": map[string]any{"object": object},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Sign is the Stripe-Signature header of payload signed at at with each
// secret (one v1 signature per secret, as Stripe sends while an endpoint's
// secret rolls), made with stripe-go's webhook.GenerateTestSignedPayload.
func Sign(payload []byte, at time.Time, secrets ...string) string {
	var v1 []string
	for _, s := range secrets {
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: s, Timestamp: at})
		v1 = append(v1, strings.SplitN(p.Header, ",", 2)[1])
	}
	return fmt.Sprintf("t=%d,%s", at.Unix(), strings.Join(v1, ","))
}
