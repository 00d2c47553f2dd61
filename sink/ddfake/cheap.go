package ddfake

import "bytes"

// countLogItems counts the logs in a body without parsing them, for cheap
// mode: elements of a top-level array, or 1 for an object. ok is false when
// the body is neither.
func countLogItems(data []byte) (n int, ok bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return 0, false
	}
	if data[0] == '{' {
		return 1, true
	}
	if data[0] != '[' {
		return 0, false
	}
	depth, inString, escaped, sawValue := 0, false, false, false
	for _, c := range data {
		if inString {
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
			if depth == 1 {
				sawValue = true
			}
		case '[', '{':
			if depth == 1 {
				sawValue = true
			}
			depth++
		case ']', '}':
			depth--
			if depth == 0 && sawValue {
				n++
			}
		case ',':
			if depth == 1 {
				n++
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 1 {
				sawValue = true
			}
		}
	}
	return n, depth == 0
}
