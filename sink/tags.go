package sink

import "unicode/utf8"

// Datadog tag rules (see the API notes): lower case; characters outside
// [a-z0-9_:./-] become '_'; at most 200 characters; must start with a letter
// (the key always does) and must not end with ':'. Datadog would rewrite a
// tag itself, but doing it here keeps logs and metrics tagged identically and
// keeps commas out of ddtags, where they separate tags.
const maxTagLen = 200

// appendTag appends "key:value" made valid. key must already be valid (the
// sink's keys are constants). An empty value becomes empty, the word a
// tenant sees in Datadog for a missing facet.
func appendTag(dst []byte, key, value, empty string) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, ':')
	if value == "" {
		value = empty
	}
	for i := 0; i < len(value) && len(dst)-start < maxTagLen; {
		c := value[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == ':', c == '.', c == '/', c == '-':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		// One '_' for a whole multi-byte character, not one per byte.
		_, size := utf8.DecodeRuneInString(value[i:])
		dst = append(dst, '_')
		i += size
	}
	if dst[len(dst)-1] == ':' {
		dst[len(dst)-1] = '_'
	}
	return dst
}

// tag is appendTag for the series path, which wants strings.
func tag(key, value, empty string) string {
	var buf [maxTagLen + 8]byte
	return string(appendTag(buf[:0], key, value, empty))
}
