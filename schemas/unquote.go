package schemas

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// unquote rewrites the JSON string literal b[start:] (quotes included, escapes
// already checked by the validator) as the string it denotes, in place, and
// returns b cut after it. Every escape is at least as long as what it stands
// for, so writing never overtakes reading. An unpaired surrogate becomes
// U+FFFD and the next escape is read on its own, as encoding/json does, so
// that both read the same text in a record.
func unquote(b []byte, start int) []byte {
	r, end := start+1, len(b)-1 // skip the quotes
	i := bytes.IndexByte(b[r:end], '\\')
	if i < 0 {
		n := copy(b[start:], b[r:end])
		return b[:start+n]
	}
	w := start + copy(b[start:], b[r:r+i])
	r += i
	for r < end {
		c := b[r]
		if c != '\\' {
			b[w] = c
			w++
			r++
			continue
		}
		c = b[r+1]
		r += 2
		switch c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			rr := hex4(b[r:])
			r += 4
			if utf16.IsSurrogate(rr) {
				if r+6 <= end && b[r] == '\\' && b[r+1] == 'u' {
					if dec := utf16.DecodeRune(rr, hex4(b[r+2:])); dec != utf8.RuneError {
						rr = dec
						r += 6
					} else {
						rr = utf8.RuneError
					}
				} else {
					rr = utf8.RuneError
				}
			}
			w += utf8.EncodeRune(b[w:], rr)
			continue
		}
		// '"', '\\' and '/' stand for themselves.
		b[w] = c
		w++
	}
	return b[:w]
}

// hex4 reads four hex digits; -1 if they are not, which no surrogate matches.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
