package twilio

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"pgregory.net/rapid"
)

// TestParsePlainReadsAsParseAny: every body parsePlain takes reads as
// parseAny (encoding/json) reads it, with no member error and no repeated
// key, so that the shortcut changes nothing but the cost. The bodies mix
// what parsePlain takes with what it must leave to parseAny: escapes,
// non-ASCII text, numbers, booleans, nested values, repeated keys, stray
// bytes.
func TestParsePlainReadsAsParseAny(t *testing.T) {
	plainSeen, otherSeen := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		body := rapidConnectorBody().Draw(t, "body")
		got, plain := parsePlain([]byte(body))
		if !plain {
			otherSeen++
			return
		}
		plainSeen++
		want, fieldErr, err := parseAny([]byte(body))
		if err != nil || fieldErr != nil {
			t.Fatalf("parsePlain took %q, which parseAny refuses: %v, %v", body, err, fieldErr)
		}
		if path, dup := ivrpay.DuplicateJSONKey([]byte(body)); dup {
			t.Fatalf("parsePlain took %q, whose key %s is repeated", body, path)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q:\nparsePlain %+v\nparseAny   %+v", body, got, want)
		}
	})
	t.Logf("bodies taken by parsePlain: %d, left to parseAny: %d", plainSeen, otherSeen)
	// Both paths must have been taken, or the property proves nothing.
	if plainSeen < 10 || otherSeen < 10 {
		t.Fatalf("bodies taken by parsePlain: %d, left to parseAny: %d; the generator must make both", plainSeen, otherSeen)
	}
}

// TestParsePlainTakesTheDocumentedBodies: Twilio's documented bodies take
// the shortcut (what every charge sends), and a body it leaves reads the same
// through ParseConnectorRequest either way.
func TestParsePlainTakesTheDocumentedBodies(t *testing.T) {
	for _, name := range []string{"charge", "ach_charge", "tokenize", "ach_tokenize"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "gpc", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			got, plain := parsePlain(b)
			if !plain {
				t.Fatalf("parsePlain left Twilio's documented %s body to encoding/json", name)
			}
			want, fieldErr, err := parseAny(b)
			if err != nil || fieldErr != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("parsePlain %+v; parseAny %+v, %v, %v", got, want, fieldErr, err)
			}
		})
	}
}

// rapidConnectorBody draws a connector body, valid JSON or not: half of
// the bodies from parsePlain's subset alone (so that its path is taken
// whatever the seed), half from the mix of what it must leave.
func rapidConnectorBody() *rapid.Generator[string] {
	return rapid.OneOf(rapidPlainBody(), rapidMixedBody())
}

// rapidPlainBody draws a body inside parsePlain's subset: distinct keys,
// string or null values without escapes, a parameters object of the same.
func rapidPlainBody() *rapid.Generator[string] {
	text := rapid.StringOfN(rapid.RuneFrom([]rune("aZ09 -_.:/{}[],")), 0, 12, -1)
	space := rapid.SampledFrom([]string{"", " ", "\n  ", "\t", "\r\n"})
	scalar := func(t *rapid.T, label string) string {
		if rapid.IntRange(0, 4).Draw(t, label+"-null") == 0 {
			return "null"
		}
		return `"` + text.Draw(t, label+"-text") + `"`
	}
	object := func(t *rapid.T, label string, keys []string, value func(t *rapid.T, key string) string) string {
		names := rapid.SliceOfDistinct(rapid.SampledFrom(keys), rapid.ID[string]).Draw(t, label+"-keys")
		members := make([]string, len(names))
		for i, k := range names {
			members[i] = space.Draw(t, label+"-s1") + `"` + k + `"` + space.Draw(t, label+"-s2") + ":" +
				space.Draw(t, label+"-s3") + value(t, k)
		}
		return "{" + strings.Join(members, ",") + space.Draw(t, label+"-s4") + "}"
	}
	return rapid.Custom(func(t *rapid.T) string {
		top := append(append([]string{}, stringFields...), "parameters", "description", "other")
		return object(t, "top", top, func(t *rapid.T, key string) string {
			if key != "parameters" || rapid.IntRange(0, 4).Draw(t, "parameters-null") == 0 {
				return scalar(t, key)
			}
			return object(t, "parameters", []string{"payin_config_id", "caller", "k", "AMOUNT"}, scalar)
		})
	})
}

// rapidMixedBody draws a body mixing parsePlain's subset with what it must
// leave to parseAny.
func rapidMixedBody() *rapid.Generator[string] {
	// Mostly what parsePlain takes, with the characters it must leave.
	text := rapid.StringOfN(rapid.RuneFrom([]rune("aZ09 -_.:/{}[],aaaaaaaaaaaaaaaaaaaa\"\\\t\x7fé")), 0, 12, -1)
	keys := rapid.SampledFrom(append(append([]string{}, stringFields...),
		"parameters", "description", "AMOUNT", "other", "payin_config_id", `a\"b`, "é"))
	space := rapid.SampledFrom([]string{"", "", " ", "\n  ", "\t", "\r\n"})
	var value func(t *rapid.T, label string, nested bool) string
	value = func(t *rapid.T, label string, nested bool) string {
		switch rapid.IntRange(0, 11).Draw(t, label+"-kind") {
		case 0, 1, 2, 3:
			return `"` + text.Draw(t, label+"-text") + `"`
		case 4:
			return "null"
		case 5:
			return `"a\nb"`
		case 6:
			return `"café"`
		case 7:
			return rapid.SampledFrom([]string{"12", "-1.5e3", "true", "false", "nul", "01"}).Draw(t, label+"-literal")
		case 8:
			return `["x"]`
		}
		if nested {
			return `{"a":"b"}`
		}
		var members []string
		for range rapid.IntRange(0, 3).Draw(t, label+"-n") {
			k := rapid.SampledFrom([]string{"payin_config_id", "caller", "k", "k"}).Draw(t, label+"-key")
			members = append(members, `"`+k+`":`+space.Draw(t, label+"-space")+value(t, label+"-"+k, true))
		}
		return "{" + strings.Join(members, ",") + "}"
	}
	return rapid.Custom(func(t *rapid.T) string {
		var members []string
		for range rapid.IntRange(0, 8).Draw(t, "n") {
			key := keys.Draw(t, "key")
			members = append(members, space.Draw(t, "s1")+`"`+key+`"`+space.Draw(t, "s2")+":"+space.Draw(t, "s3")+
				value(t, key, false)+space.Draw(t, "s4"))
		}
		body := space.Draw(t, "lead") + "{" + strings.Join(members, ",") + "}" + space.Draw(t, "trail")
		switch rapid.IntRange(0, 9).Draw(t, "damage") {
		case 0:
			body += "}"
		case 1:
			body = strings.Replace(body, ",", ",,", 1)
		case 2:
			body = strings.TrimSuffix(strings.TrimSpace(body), "}")
		}
		return body
	})
}
