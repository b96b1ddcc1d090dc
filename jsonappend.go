package ivrpay

import "encoding/json"

// AppendJSONString appends s as json.Marshal encodes a string, byte for byte
// (HTML characters escaped included). A string of printable ASCII that needs
// no escaping, which ids, codes and most answers are, is quoted as it is,
// without json.Marshal's encoder state: every payin and connector answer
// holds several (TestAppendJSONStringIsMarshal).
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
