package ivrpay

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// Id prefixes, as Rainforest publishes them. In sandbox every id carries "sbx_" in front.
const (
	PrefixPlatform            = "plt_"
	PrefixMerchant            = "mid_"
	PrefixAPIKey              = "api_"
	PrefixPayinConfig         = "cfg_"
	PrefixPayin               = "pyi_"
	PrefixPaymentMethodConfig = "pmc_"
	PrefixPaymentMethod       = "mtd_"
	PrefixRefund              = "rfd_"
	PrefixChargeback          = "chb_"
	PrefixWebhookEndpoint     = "whe_"
	PrefixEvent               = "evt_"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// idEpoch keeps the 32-bit second counter of ids far from overflow.
const idEpoch = 1_400_000_000

// NewID returns prefix followed by 27 base62 characters: a KSUID-like value of
// 4 bytes of seconds, 2 bytes of the second's fraction (1/65,536 s) and 14
// random bytes, so that ids sort by creation time (which is what start_key
// pagination walks). The fraction keeps ids made within one second in order
// too: rows inserted together land on the last leaf page of each id index
// instead of pages scattered over the second's range, so a group commit
// writes far fewer pages (docs/benchmarks.md, fifth pass).
func NewID(mode Mode, prefix string, now time.Time) string {
	var raw [20]byte
	binary.BigEndian.PutUint32(raw[:4], uint32(now.Unix()-idEpoch))
	binary.BigEndian.PutUint16(raw[4:6], idFraction(now))
	if _, err := rand.Read(raw[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return mode.IDPrefix() + prefix + encodeID(raw)
}

// idFraction is t's fraction of a second in units of 1/65,536 s.
func idFraction(t time.Time) uint16 {
	return uint16(uint64(t.Nanosecond()) << 16 / uint64(time.Second))
}

// FirstIDAt returns the smallest id NewID can make at time t: every id made
// at t or later sorts at or after it, so it bounds a range of ids by time.
func FirstIDAt(mode Mode, prefix string, t time.Time) string {
	var raw [20]byte
	secs := t.Unix() - idEpoch
	if secs < 0 {
		secs = 0
	}
	binary.BigEndian.PutUint32(raw[:4], uint32(secs))
	return mode.IDPrefix() + prefix + encodeID(raw)
}

// encodeID writes 20 bytes as 27 base62 characters, most significant first,
// so that ids compare as strings as their bytes compare as numbers. It is
// long division of the 160-bit number, held in five 32-bit words, by 62
// (62^27 > 2^160, so 27 digits always suffice): every request makes ids.
func encodeID(raw [20]byte) string {
	var words [5]uint32
	for i := range words {
		words[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	var out [27]byte
	for i := len(out) - 1; i >= 0; i-- {
		var rem uint64
		for j := range words {
			cur := rem<<32 | uint64(words[j])
			words[j] = uint32(cur / 62)
			rem = cur % 62
		}
		out[i] = base62[rem]
	}
	return string(out[:])
}

// NewAPIKeySecret returns a fresh key secret: "apikey_" (or "sbx_apikey_") and 64 hex characters.
func NewAPIKeySecret(mode Mode) string {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err)
	}
	return mode.IDPrefix() + "apikey_" + hex.EncodeToString(raw[:])
}

// MaskAPIKeySecret shows the first and last 8 hex characters of a secret, as
// Rainforest does ("apikey_6802b550****30f3afc4").
func MaskAPIKeySecret(secret string) string {
	i := strings.LastIndex(secret, "_")
	hexPart := secret[i+1:]
	if len(hexPart) < 16 {
		return secret[:i+1] + "****"
	}
	return secret[:i+1] + hexPart[:8] + "****" + hexPart[len(hexPart)-8:]
}

// IDHasKind reports whether id is an id of the kind prefix ("cfg_", …), in
// either mode.
func IDHasKind(id, prefix string) bool {
	return strings.HasPrefix(strings.TrimPrefix(id, "sbx_"), prefix)
}
