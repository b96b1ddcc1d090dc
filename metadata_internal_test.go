package ivrpay

import (
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

// TestMayHoldCardNumberIsSound: metadata that mayHoldCardNumber clears holds
// no card number metadataCardPath would find, whatever its strings, numbers,
// keys and escapes (full-width digits, \u escapes of digits included).
func TestMayHoldCardNumberIsSound(t *testing.T) {
	cleared, withCard := 0, 0
	chars := rapid.SampledFrom([]string{"4", "1", "0", "7", " ", "-", "a", ".", "４", "１", `\u0034`, `\u0031`, `\"`, "é"})
	text := rapid.Custom(func(t *rapid.T) string {
		s := ""
		for range rapid.IntRange(0, 24).Draw(t, "n") {
			s += chars.Draw(t, "c")
		}
		return s
	})
	rapid.Check(t, func(t *rapid.T) {
		body := "{"
		for i := range rapid.IntRange(0, 3).Draw(t, "members") {
			if i > 0 {
				body += ","
			}
			body += `"` + text.Draw(t, "key") + `":`
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0:
				body += `"` + text.Draw(t, "value") + `"`
			case 3:
				// A card number with some of its digits escaped or full-width.
				v := ""
				for _, d := range "4111111111111111" {
					switch rapid.IntRange(0, 3).Draw(t, "digit") {
					case 0:
						v += `\u003` + string(d)
					case 1:
						v += string(d - '0' + '０')
					default:
						v += string(d)
					}
				}
				body += `"` + v + `"`
			case 1:
				body += rapid.SampledFrom([]string{"4111111111111111", "12", "4111111111111111.5", "-0"}).Draw(t, "number")
			default:
				body += `["` + text.Draw(t, "element") + `"]`
			}
		}
		body += "}"
		if !json.Valid([]byte(body)) {
			t.Skip("not JSON")
		}
		_, found := metadataCardPath("metadata", json.RawMessage(body))
		if found {
			withCard++
		}
		if !mayHoldCardNumber([]byte(body)) {
			cleared++
			if found {
				t.Fatalf("mayHoldCardNumber cleared %s, which holds a card number", body)
			}
		}
	})
	if cleared < 10 || withCard < 10 {
		t.Fatalf("metadata cleared: %d, holding a card: %d; the generator must make both", cleared, withCard)
	}
}
