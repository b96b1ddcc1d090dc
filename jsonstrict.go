package ivrpay

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// DuplicateJSONKey returns the path ("metadata.order", "statements[0].permissions")
// of the first object member, in document order, whose key repeats a key
// already seen in the same object. encoding/json keeps the last of
// duplicated keys, so {"amount":1000,"amount":7} would silently mean 7;
// ivrpay refuses such bodies instead. Keys compare byte for byte (after
// unescaping): "amount" and "AMOUNT" are different keys. Invalid JSON is
// not reported here (found is false); the decoder that runs next says what
// is wrong with it.
func DuplicateJSONKey(b []byte) (path string, found bool) {
	type frame struct {
		object  bool
		keys    map[string]struct{}
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	pathOf := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.object {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(SafeJSONKey(f.key))
			} else {
				sb.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return sb.String()
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey {
			top := stack[len(stack)-1]
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			key, _ := tok.(string)
			top.key = key
			if _, dup := top.keys[key]; dup {
				return pathOf(), true
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]struct{}{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
		if len(stack) == 0 && tok != json.Delim('{') && tok != json.Delim('[') {
			return "", false
		}
	}
}
