package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// StripTrailingCommas removes every comma that is followed, after optional
// JSON whitespace, by a closing ']' or '}' — outside string literals only —
// and reports how many it removed. The IVR guide's merchant-constraint
// example ends its constraints object with such a comma, so a statement
// pasted from it parses. Anything else that is not JSON is left alone for the
// JSON parser to report; a comma inside a string ("a,]") is never touched,
// escaped quotes included.
func StripTrailingCommas(src []byte) ([]byte, int) {
	out := make([]byte, 0, len(src))
	removed := 0
	inString, escaped := false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ',':
			j := i + 1
			for j < len(src) && isJSONSpace(src[j]) {
				j++
			}
			if j < len(src) && (src[j] == ']' || src[j] == '}') {
				removed++
				continue // drop the comma, keep what follows
			}
		}
		out = append(out, c)
	}
	return out, removed
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// jsonSyntaxError describes where JSON stops being JSON: "line 3, column 5:
// invalid character …", or "" when src is well-formed.
func jsonSyntaxError(src []byte) string {
	var v any
	err := json.Unmarshal(src, &v)
	if err == nil {
		return ""
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(src, int(se.Offset))
		return fmt.Sprintf("line %d, column %d: %s", line, col, se.Error())
	}
	if len(bytes.TrimSpace(src)) == 0 {
		return "empty: paste a JSON array of statements"
	}
	return err.Error()
}

// lineCol turns a byte offset (as json.SyntaxError reports it: just past the
// offending byte) into a 1-based line and column.
func lineCol(src []byte, offset int) (int, int) {
	if offset > len(src) {
		offset = len(src)
	}
	line, col := 1, 0
	for _, c := range src[:offset] {
		if c == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	if col == 0 {
		col = 1
	}
	return line, col
}
