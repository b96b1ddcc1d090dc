package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ivrpay/ivrpay"
	"pgregory.net/rapid"
)

type strictInner struct {
	Name  string      `json:"name"`
	Cents json.Number `json:"cents"`
}

type strictOuter struct {
	Amount   json.Number     `json:"amount"`
	Label    string          `json:"label"`
	Inner    *strictInner    `json:"inner"`
	Items    []strictInner   `json:"items"`
	Metadata json.RawMessage `json:"metadata"`
}

// TestMembersKnownOnlyWhenTheOrderedWalkAgrees: strictMembers skips its
// ordered walk when membersKnown says every member is known; that must never
// hide a refusal the ordered walk would make. Random bodies of known,
// misspelled and case-changed keys, numbers, strings, objects and arrays,
// some of them damaged (cut short, a stray byte, data after the object).
func TestMembersKnownOnlyWhenTheOrderedWalkAgrees(t *testing.T) {
	keys := []string{"amount", "label", "inner", "items", "metadata", "name", "cents", "Amount", "LABEL", "extra"}
	var value func(t *rapid.T, depth int) any
	value = func(t *rapid.T, depth int) any {
		kind := rapid.IntRange(0, 5).Draw(t, "kind")
		if depth > 2 && kind >= 4 {
			kind = 0
		}
		switch kind {
		case 0:
			return rapid.Int64Range(-5, 5000).Draw(t, "number")
		case 1:
			return rapid.SampledFrom([]string{"1000", "10.00", "x", ""}).Draw(t, "string")
		case 2:
			return nil
		case 3:
			return rapid.Bool().Draw(t, "bool")
		case 4:
			obj := map[string]any{}
			for _, k := range rapid.SliceOfNDistinct(rapid.SampledFrom(keys), 0, 4, rapid.ID[string]).Draw(t, "keys") {
				obj[k] = value(t, depth+1)
			}
			return obj
		default:
			arr := []any{}
			for range rapid.IntRange(0, 3).Draw(t, "len") {
				arr = append(arr, value(t, depth+1))
			}
			return arr
		}
	}
	types := []reflect.Type{reflect.TypeFor[strictOuter](), reflect.TypeFor[ivrpay.PayinConfigCreate]()}
	rapid.Check(t, func(t *rapid.T) {
		obj := map[string]any{}
		for _, k := range rapid.SliceOfNDistinct(rapid.SampledFrom(append(keys, "merchant_id", "currency_code", "billing_contact")), 0, 6, rapid.ID[string]).Draw(t, "top") {
			obj[k] = value(t, 1)
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		// membersKnown walks the bytes without validating them: damaged
		// bodies too must get the ordered walk's answer.
		if len(raw) > 0 {
			at := rapid.IntRange(0, len(raw)-1).Draw(t, "at")
			switch rapid.IntRange(0, 7).Draw(t, "damage") {
			case 0:
				raw = raw[:at]
			case 1:
				raw = append(raw[:at:at], append([]byte(rapid.SampledFrom([]string{`"`, "}", "x", `\`, ",", " ", "]", `\u0041`}).Draw(t, "byte")), raw[at:]...)...)
			case 2:
				raw = append(raw, rapid.SampledFrom([]string{"}", " x", "{}", " "}).Draw(t, "trail")...)
			}
		}
		typ := rapid.SampledFrom(types).Draw(t, "type")
		ordered := strictMembersInOrder(raw, typ, "")
		if membersKnown(raw, typ) && ordered != nil {
			t.Fatalf("membersKnown accepted %s as %s, the ordered walk refuses it: %v", raw, typ, ordered)
		}
		if got := strictMembers(raw, typ, ""); !reflect.DeepEqual(got, ordered) {
			t.Fatalf("strictMembers(%s) = %v, the ordered walk says %v", raw, got, ordered)
		}
	})
}
