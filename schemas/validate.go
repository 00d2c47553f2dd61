package schemas

// maxNesting bounds the depth of arrays and objects. fastjson refuses more
// than 300 anyway; the bound here only keeps validJSON's stack fixed.
const maxNesting = 512

// validJSON reports whether b is exactly one JSON value (RFC 8259), as
// encoding/json's Valid does. fastjson's parser is lenient (NaN, "1-2", bad
// escapes, raw control characters) and its validator recurses and is slow,
// so this checks the whole record, ignored fields included, in one pass
// without recursion: a record other readers would refuse must not pass.
func validJSON(b []byte) bool {
	var inObject [maxNesting]bool
	depth := 0
	i := skipSpace(b, 0)
value:
	for {
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == maxNesting {
				return false
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
			inObject[depth] = c == '{'
			depth++
			if c == '{' {
				if i = objectKey(b, i); i < 0 {
					return false
				}
			}
			continue value
		case c == '"':
			if i = skipString(b, i+1); i < 0 {
				return false
			}
		case c == 't':
			if i = literal(b, i, "true"); i < 0 {
				return false
			}
		case c == 'f':
			if i = literal(b, i, "false"); i < 0 {
				return false
			}
		case c == 'n':
			if i = literal(b, i, "null"); i < 0 {
				return false
			}
		default:
			if i = skipNumber(b, i); i < 0 {
				return false
			}
		}

		// After a value: a comma, the end of its container, or the end of
		// the input.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			switch c := b[i]; {
			case c == ',':
				i = skipSpace(b, i+1)
				if inObject[depth-1] {
					if i = objectKey(b, i); i < 0 {
						return false
					}
				}
				continue value
			case c == '}' && inObject[depth-1], c == ']' && !inObject[depth-1]:
				depth--
				i++
			default:
				return false
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
