package schemas

import (
	"bytes"
	"unicode/utf8"
)

// The readers of single values. Each refuses a duplicate key, takes null as
// absent, and reports the first problem through d.fail.

func (d *Decoder) fail(r Reason, field, detail string) {
	if d.err == nil {
		d.err = &DecodeError{Reason: r, Field: field, Detail: detail}
	}
}

func (d *Decoder) failNumber(field string, res numResult) {
	switch res {
	case numFraction:
		d.fail(ReasonWrongType, field, "want integer, got fractional number")
	case numOverflow:
		d.fail(ReasonInvalidValue, field, "out of range")
	case numNegative:
		d.fail(ReasonInvalidValue, field, "negative")
	}
}

// dup reports, and refuses, a known key given twice. JSON leaves duplicates
// undefined and parsers differ (first wins here, last in encoding/json), so
// accepting one would let a record mean different things to different
// readers.
func (d *Decoder) dup(bit uint32, field string) bool {
	if d.seen&bit != 0 {
		d.fail(ReasonInvalidJSON, field, "duplicate key")
		return true
	}
	d.seen |= bit
	return false
}

// keep reads a string field from its JSON text v. Low-cardinality values are
// interned instead of copied, so a Decoder allocates them once, not once per
// record.
func (d *Decoder) keep(v []byte, bit uint32, field string, dst *string, intern, required bool) {
	if d.dup(bit, field) {
		return
	}
	if v[0] != '"' {
		if v[0] != 'n' {
			d.fail(ReasonWrongType, field, "want string, got "+typeName(v[0]))
		}
		return
	}
	start := len(d.buf)
	s := v[1 : len(v)-1]
	escaped := bytes.IndexByte(s, '\\') >= 0
	if escaped {
		d.buf = unquote(append(d.buf, v...), start)
		s = d.buf[start:]
	}
	switch {
	case !utf8.Valid(s):
		d.fail(ReasonInvalidValue, field, "not valid UTF-8")
		d.buf = d.buf[:start]
		return
	case required && len(s) == 0:
		d.fail(ReasonInvalidValue, field, "empty")
		d.buf = d.buf[:start]
		return
	}
	d.set |= bit
	if intern {
		if is, ok := d.interned.lookup(s); ok {
			*dst = is
			d.buf = d.buf[:start]
			return
		}
	}
	if !escaped {
		d.buf = append(d.buf, s...)
	}
	if dst == nil { // the timestamp: parsed from the block at the end
		d.ts = span{start, len(d.buf)}
		return
	}
	d.pending[d.npend] = pendingString{dst, span{start, len(d.buf)}}
	d.npend++
}

func (d *Decoder) count(v []byte, bit uint32, field string, dst *int64) {
	if d.dup(bit, field) || !d.number(v, field, "integer") {
		return
	}
	n, res := parseCount(v)
	if res != numOK {
		d.failNumber(field, res)
		return
	}
	*dst = n
}

func (d *Decoder) statusCode(v []byte) {
	const field = "status_code"
	if d.dup(bitStatusCode, field) || !d.number(v, field, "integer") {
		return
	}
	n, res := parseCount(v)
	if res == numFraction {
		d.failNumber(field, res)
		return
	}
	if res != numOK || n < 100 || n > 599 {
		d.fail(ReasonInvalidValue, field, "outside 100..599")
		return
	}
	d.ev.StatusCode = int(n)
}

func (d *Decoder) cost(v []byte) {
	const field = "cost"
	if d.dup(bitCost, field) || !d.number(v, field, "number") {
		return
	}
	f, res := parseCost(v)
	if res != numOK {
		d.failNumber(field, res)
		return
	}
	d.ev.Cost = f
	d.costs = costFromField
}

// number reports whether v is a number. It reports false for null (absent)
// and for other types, which it refuses; want names the type the field
// wants, for the error.
func (d *Decoder) number(v []byte, field, want string) bool {
	switch c := v[0]; {
	case c == '-' || isDigit(c):
		return true
	case c != 'n':
		d.fail(ReasonWrongType, field, "want "+want+", got "+typeName(c))
	}
	return false
}

func (d *Decoder) flag(v []byte, bit uint32, field string, dst *bool) {
	if d.dup(bit, field) {
		return
	}
	switch v[0] {
	case 't':
		*dst = true
	case 'f', 'n':
	default:
		d.fail(ReasonWrongType, field, "want boolean, got "+typeName(v[0]))
	}
}

// typeName names the type of the JSON value starting with c, for errors; it
// is all an error may say about a value.
func typeName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
