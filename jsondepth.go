package ivrpay

// MaxJSONDepth bounds how deeply request bodies may nest objects and arrays.
// encoding/json allows 10,000 levels; no ivrpay request needs more than a few,
// and deep nesting only costs the server time and memory.
const MaxJSONDepth = 32

// JSONTooDeep reports whether the JSON text b nests objects or arrays deeper
// than MaxJSONDepth. It only counts brackets outside strings, so it runs
// before (and is cheaper than) decoding.
func JSONTooDeep(b []byte) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxJSONDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
