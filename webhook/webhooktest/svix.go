// Package webhooktest holds a webhook verifier written the way Rainforest
// integrations write theirs, for tests outside the webhook package: it knows
// nothing of ivrpay's code, only Svix's documented scheme.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SvixTolerance is the timestamp tolerance Rainforest integrations use.
const SvixTolerance = 300 * time.Second

// VerifySvix verifies a delivery as a Rainforest integration does (Svix's
// "verifying payloads manually"): the svix-id, svix-timestamp and
// svix-signature headers must all be present (the webhook-* names are not
// looked at); the secret is split at its first "_" and the rest
// base64-decoded; the timestamp must be within SvixTolerance of now; the
// base64 HMAC-SHA256 of "id.timestamp.body" must equal the part after "v1,"
// of one of the space-separated signatures. Every entry is compared (no early
// return), in constant time.
func VerifySvix(secret string, h http.Header, body []byte, now time.Time) error {
	if h.Get("svix-id") == "" || h.Get("svix-timestamp") == "" || h.Get("svix-signature") == "" {
		return errors.New("request is missing signing headers")
	}
	_, data, ok := strings.Cut(secret, "_")
	if !ok {
		return errors.New("invalid secret")
	}
	key, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return errors.New("invalid secret")
	}
	id, ts := h.Get("svix-id"), h.Get("svix-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SvixTolerance || d < -SvixTolerance {
		return errors.New("timestamp is outside of tolerance")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	expected := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	verified := false
	for _, entry := range strings.Split(h.Get("svix-signature"), " ") {
		sig, ok := strings.CutPrefix(entry, "v1,")
		if !ok {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(expected), []byte(sig)) == 1 {
			verified = true
		}
	}
	if !verified {
		return errors.New("invalid signature")
	}
	return nil
}
