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

// countPoints counts the points of a series body without decoding it, for
// cheap mode: the elements of every array that is the value of a "points"
// key. ok is false when the brackets or strings do not close. A body this
// accepts may still be one Datadog refuses; cheap mode trades that check
// for speed, so that a benchmark measures the client rather than the
// stand-in.
func countPoints(data []byte) (n int, ok bool) {
	type level struct{ object, points, sawValue bool }
	var stack []level
	expectKey, pointsKey := false, false
	top := func() *level {
		if len(stack) == 0 {
			return &level{}
		}
		return &stack[len(stack)-1]
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			j := i + 1
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(data) {
				return 0, false
			}
			if expectKey {
				pointsKey = string(data[i+1:j]) == "points"
				expectKey = false
			} else if t := top(); t.points {
				t.sawValue = true
			}
			i = j
		case '{', '[':
			if t := top(); t.points {
				t.sawValue = true
			}
			stack = append(stack, level{object: c == '{', points: c == '[' && pointsKey})
			pointsKey = false
			expectKey = c == '{'
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1].object != (c == '}') {
				return 0, false
			}
			if t := top(); t.points && t.sawValue {
				n++
			}
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			t := top()
			if t.points {
				n++
			}
			expectKey = t.object
		case ' ', '\t', '\r', '\n', ':':
		default:
			if t := top(); t.points {
				t.sawValue = true
			}
		}
	}
	return n, len(stack) == 0
}
