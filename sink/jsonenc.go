package sink

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The hand-rolled JSON writer of the logs hot path. It appends to a caller's
// buffer and allocates nothing; its output is what encoding/json would
// produce for the same values, minus the HTML escaping that only matters in
// browsers (a test compares the two).

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does, so that Datadog never refuses a payload for
// a stray byte in an error message.
func appendJSONString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: log fields are
		// mostly plain ASCII.
		for i+8 <= len(s) && plainWord(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		// at most 4 bytes: the conversion stays on the stack
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript readers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainWord reports whether none of the eight bytes of x needs escaping or a
// UTF-8 check: no quote, backslash, control character or byte above 0x7f.
func plainWord(x uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	special := (quote - ones) &^ quote
	special |= (backslash - ones) &^ backslash
	special |= x - ones*0x20
	return (special|x)&highs == 0
}

// appendJSONFloat appends f the way encoding/json does (shortest
// representation, exponent only for very small or large magnitudes). NaN and
// infinities have no JSON form; they are written as 0 rather than making the
// whole request invalid.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func appendJSONBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendCost formats a USD cost for the log message: at most 4 decimals with
// trailing zeros removed ($0.02, $0.0169, $12.5, $0), except that a non-zero
// cost that would round to $0 keeps two significant digits ($0.000012), so a
// cheap request never reads as free. The exact value is in the `cost`
// attribute.
func appendCost(dst []byte, c float64) []byte {
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return append(dst, '0')
	}
	start := len(dst)
	abs := math.Abs(c)
	prec := 4
	if abs != 0 && abs < 0.00005 {
		prec = int(-math.Floor(math.Log10(abs))) + 1
	}
	dst = strconv.AppendFloat(dst, c, 'f', prec, 64)
	// trailing zeros, then a bare point
	for len(dst) > start && dst[len(dst)-1] == '0' {
		dst = dst[:len(dst)-1]
	}
	if len(dst) > start && dst[len(dst)-1] == '.' {
		dst = dst[:len(dst)-1]
	}
	switch string(dst[start:]) {
	case "", "-", "-0":
		dst = append(dst[:start], '0')
	}
	return dst
}
