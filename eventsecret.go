package ivrpay

import (
	"context"
	"errors"
	"time"
)

// PreviousEventsSecretAccepted is how long an account's events secret is
// still accepted after another replaced it (SPEC §4.2): Adyen signs a
// notification with the HMAC key it was queued under, so the retries of
// notifications queued before the change carry the old key, and a new key
// takes a while to reach all of Adyen's senders.
const PreviousEventsSecretAccepted = 7 * 24 * time.Hour

// ProcessorEventSecrets gives the processor event endpoints what verifies an
// account's events.
type ProcessorEventSecrets interface {
	// EventsSecrets returns the kind of the named processor account and the
	// secrets its events may be signed with: the current events secret, then
	// the one it replaced while that is still accepted. It is an ENOTFOUND
	// when there is no such account or it has no events secret.
	EventsSecrets(ctx context.Context, account string) (kind string, secrets []string, err error)
}

// ErrEventSignature is wrapped by the error of an event delivery whose
// signature is missing, malformed, too old or made with none of the
// account's secrets: an authentication failure (SPEC §4.2), answered 400
// and counted like a bad API key. Other errors of a delivery whose
// signature verified are not.
var ErrEventSignature = errors.New("the processor event's signature does not verify")
