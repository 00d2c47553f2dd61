package ddfake

import (
	"bytes"
	"encoding/json"
)

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
	depth, sawValue := 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			end := stringEnd(data, i+1)
			if end < 0 {
				return 0, false
			}
			if depth == 1 {
				sawValue = true
			}
			i = end
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
	var outside level // what top gives outside any container: never a points array
	top := func() *level {
		if len(stack) == 0 {
			outside = level{}
			return &outside
		}
		return &stack[len(stack)-1]
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			j := stringEnd(data, i+1)
			if j < 0 {
				return 0, false
			}
			if expectKey {
				pointsKey = keyIs(data[i:j+1], "points")
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

// stringEnd returns the index of the quote that closes the string whose text
// starts at data[i], or -1. It jumps from quote to quote (IndexByte is
// vectorised; a 500-log body is mostly string text): a quote is escaped when
// an odd number of backslashes precedes it.
func stringEnd(data []byte, i int) int {
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return -1
		}
		j += i
		k := j
		for k > i && data[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		i = j + 1
	}
}

// keyIs reports whether the JSON string lit (quotes included) says name; a
// key with escapes (rare) is decoded first, as Datadog's parser would.
func keyIs(lit []byte, name string) bool {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1:len(lit)-1]) == name
	}
	var k string
	return json.Unmarshal(lit, &k) == nil && k == name
}
