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
	return scanJSON(b, false)
}

// nulEscape is how a NUL character appears in JSON: raw control characters
// are not valid in a JSON string, so only as an escape.
var nulEscape = []byte(`\u0000`)

// JSONNULPath returns the path of the first string, in document order,
// that holds a NUL character once unescaped: a member's value
// ("metadata.note"), or a key, named "(key not shown)" under its object;
// a body that is one string is "body". Invalid JSON is not reported here
// (found is false).
func JSONNULPath(b []byte) (path string, found bool) {
	if !bytes.Contains(b, nulEscape) {
		return "", false
	}
	if path, found = scanJSON(b, true); found && path == "" {
		path = "body"
	}
	return path, found
}

// scanJSON runs a dupScan over b, for a duplicate key or, with findNUL,
// for a NUL character, and names the path of what it found.
func scanJSON(b []byte, findNUL bool) (path string, found bool) {
	// A scan of the bytes rather than json.Decoder.Token, which allocates a
	// buffer, a decoder and an error per token: this runs on every request.
	var frames [8]dupFrame
	s := dupScan{b: b, path: frames[:0], findNUL: findNUL}
	s.space()
	if !s.value() {
		return "", false
	}
	var sb strings.Builder
	for _, f := range s.path {
		if f.object {
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(SafeJSONKey(string(f.key)))
		} else {
			sb.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return sb.String(), true
}

// dupScanMaxDepth stops the scan of absurdly nested input before the
// recursion gets deep; JSONTooDeep refuses such bodies anyway.
const dupScanMaxDepth = 2 * MaxJSONDepth

// dupScan finds the first repeated key, or with findNUL the first string
// holding a NUL character. It assumes nothing of the input: on invalid JSON
// it stops (bad) without a finding, unless one came first. path holds the
// members and elements leading to the current value.
type dupScan struct {
	b       []byte
	i       int
	bad     bool
	path    []dupFrame
	findNUL bool
	nul     bool // a string scanned so far holds a NUL character
}

type dupFrame struct {
	object bool
	key    []byte // the current member's key (unescaped), for objects
	index  int    // the current element, for arrays
}

func (s *dupScan) space() {
	for s.i < len(s.b) && isJSONSpace(s.b[s.i]) {
		s.i++
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *dupScan) next() byte {
	if s.i >= len(s.b) {
		s.bad = true
		return 0
	}
	return s.b[s.i]
}

// value scans one value; true when it holds what the scan looks for
// (s.path names it).
func (s *dupScan) value() bool {
	switch s.next() {
	case '{':
		return s.container(true)
	case '[':
		return s.container(false)
	case '"':
		s.str()
		return s.nul
	case 0:
	default:
		for s.i < len(s.b) && !endsScalar(s.b[s.i]) {
			s.i++
		}
	}
	return false
}

// endsScalar reports whether c ends a number or a literal.
func endsScalar(c byte) bool { return c == ',' || c == ']' || c == '}' || isJSONSpace(c) }

// container scans an object or an array; true when it holds what the scan looks for.
func (s *dupScan) container(object bool) bool {
	if len(s.path) >= dupScanMaxDepth {
		s.bad = true
		return false
	}
	closing := byte(']')
	if object {
		closing = '}'
	}
	s.i++ // { or [
	s.path = append(s.path, dupFrame{object: object})
	top := len(s.path) - 1
	// An object's keys so far: objects are small, so a list until they
	// are not, then a set.
	var small [16][]byte
	keys := small[:0]
	var set map[string]struct{}
	s.space()
	if s.next() == closing {
		s.i++
		s.path = s.path[:top]
		return false
	}
	for !s.bad {
		s.space()
		if object {
			if s.next() != '"' {
				s.bad = true
				break
			}
			key := s.key()
			if s.bad {
				break
			}
			s.path[top].key = key
			if s.nul {
				return true
			}
			if !s.findNUL {
				if set == nil && len(keys) == len(small) {
					set = make(map[string]struct{}, 2*len(keys))
					for _, k := range keys {
						set[string(k)] = struct{}{}
					}
				}
				if set != nil {
					if _, dup := set[string(key)]; dup {
						return true
					}
					set[string(key)] = struct{}{}
				} else {
					for _, k := range keys {
						if bytes.Equal(k, key) {
							return true
						}
					}
					keys = append(keys, key)
				}
			}
			s.space()
			if s.next() != ':' {
				s.bad = true
				break
			}
			s.i++
			s.space()
		}
		if s.value() {
			return true
		}
		s.space()
		switch s.next() {
		case ',':
			s.i++
			s.path[top].index++
		case closing:
			s.i++
			s.path = s.path[:top]
			return false
		default:
			s.bad = true
		}
	}
	return false
}

// str skips a string; it reports whether the string holds an escape.
func (s *dupScan) str() (escaped bool) {
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return escaped
		case '\\':
			escaped = true
			s.i++
			if s.findNUL && bytes.HasPrefix(s.b[s.i:], nulEscape[1:]) {
				s.nul = true
			}
		}
		s.i++
	}
	s.bad = true
	return escaped
}

// key scans a member's key and returns it unescaped (the input's own bytes
// when it has no escape).
func (s *dupScan) key() []byte {
	start := s.i
	escaped := s.str()
	if s.bad {
		return nil
	}
	raw := s.b[start:s.i]
	if !escaped {
		return raw[1 : len(raw)-1]
	}
	var k string
	if json.Unmarshal(raw, &k) != nil {
		s.bad = true
		return nil
	}
	return []byte(k)
}

// JSONMembers calls fn with the key (unescaped) and the raw value of each
// member of the JSON object b, in document order, without decoding the
// values: a walk over b's bytes that allocates nothing for keys without
// escapes. It reports false when fn did, or when b is not one object the walk
// could follow to its end (values are skipped, not validated: what a decoder
// refuses, it refuses later), or when a value holds a repeated key. Keys
// repeated in b itself are passed to fn as they come (DuplicateJSONKey finds them).
func JSONMembers(b []byte, fn func(key, value []byte) bool) bool {
	var frames [8]dupFrame
	s := dupScan{b: b, path: frames[:0]}
	s.space()
	if s.next() != '{' {
		return false
	}
	s.i++
	s.space()
	if s.next() == '}' {
		s.i++
		s.space()
		return s.i == len(b)
	}
	for {
		s.space()
		if s.next() != '"' {
			return false
		}
		key := s.key()
		s.space()
		if s.bad || s.next() != ':' {
			return false
		}
		s.i++
		s.space()
		start := s.i
		if s.value() || s.bad || !fn(key, b[start:s.i]) {
			return false
		}
		s.space()
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.space()
			return s.i == len(b)
		default:
			return false
		}
	}
}
