package schemas

import (
	"encoding/binary"
	"math/bits"
)

// maxNesting bounds the depth of arrays and objects. A gateway record nests
// three or four levels; the bound keeps the checker's stack fixed and refuses
// text built to make readers recurse.
const maxNesting = 300

// What the skip functions return instead of an index.
const (
	badJSON = -1 // not JSON
	tooDeep = -2 // JSON nested deeper than maxNesting
)

// validJSON reports whether b is exactly one JSON value (RFC 8259), as
// encoding/json's Valid does, within maxNesting.
func validJSON(b []byte) bool {
	end := skipValue(b, skipSpace(b, 0), 0)
	return end >= 0 && skipSpace(b, end) == len(b)
}

// skipValue checks the JSON value at b[i:], which outer containers enclose,
// and returns the index after it, or badJSON or tooDeep.
func skipValue(b []byte, i, outer int) int {
	if i >= len(b) {
		return badJSON
	}
	switch b[i] {
	case '"':
		return skipString(b, i+1)
	case '{', '[':
		return skipContainer(b, i, outer)
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	return skipNumber(b, i)
}

// skipContainer checks the array or object at b[i] without recursion: an
// ignored field may hold anything, and its depth must not become the
// exporter's stack.
func skipContainer(b []byte, i, outer int) int {
	var inObject [maxNesting/64 + 1]uint64 // one bit per open container
	depth := 0
value:
	for {
		if i >= len(b) {
			return badJSON
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if outer+depth >= maxNesting {
				return tooDeep
			}
			i = skipSpace(b, i+1)
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			if i < len(b) && b[i] == closer {
				i++
				break
			}
			if c == '{' {
				inObject[depth/64] |= 1 << (depth % 64)
			} else {
				inObject[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			if c == '{' {
				if i = objectKey(b, i); i < 0 {
					return badJSON
				}
			}
			continue value
		case c == '"':
			i = skipString(b, i+1)
		case c == 't':
			i = literal(b, i, "true")
		case c == 'f':
			i = literal(b, i, "false")
		case c == 'n':
			i = literal(b, i, "null")
		default:
			i = skipNumber(b, i)
		}
		if i < 0 {
			return badJSON
		}

		// After a value: a comma, or the end of its container.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return badJSON
			}
			obj := inObject[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			switch c := b[i]; {
			case c == ',':
				i = skipSpace(b, i+1)
				if obj {
					if i = objectKey(b, i); i < 0 {
						return badJSON
					}
				}
				continue value
			case c == '}' && obj, c == ']' && !obj:
				depth--
				i++
			default:
				return badJSON
			}
		}
	}
}

// objectKey checks `"key" :` at b[i:] and returns the index of the value
// after it, or -1.
func objectKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = skipString(b, i+1); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// skipString checks a string's contents from b[i:], just after its opening
// quote, and returns the index after the closing quote, or -1.
func skipString(b []byte, i int) int {
	for i < len(b) {
		// Plain text, eight bytes at a time: most of a record is strings
		// without escapes.
		for len(b)-i >= 8 {
			if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(b[i+2:]) < 0 {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// specialBytes marks, with its high bit, each byte of the little-endian word
// x that ends plain string text: a quote, a backslash or a control
// character. Only the lowest mark is exact (a borrow may mark bytes above
// it), which is the only one used.
func specialBytes(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	zeroQuote := (quote - ones) &^ quote
	zeroBackslash := (backslash - ones) &^ backslash
	control := (x - ones*0x20) &^ x
	return (zeroQuote | zeroBackslash | control) & highs
}

// skipNumber checks a number at b[i:] by the JSON grammar and returns the
// index after it, or -1.
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return -1
		}
	}
	return i
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}
