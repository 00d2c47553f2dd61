package schemas

import (
	"unicode/utf8"

	"github.com/valyala/fastjson"
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

// keep reads a string field. Low-cardinality values are interned instead of
// copied, so a Decoder allocates them once, not once per record.
func (d *Decoder) keep(v *fastjson.Value, bit uint32, field string, dst *string, intern, required bool) {
	if d.dup(bit, field) {
		return
	}
	start := len(d.buf)
	// The parser keeps strings raw until asked for them; MarshalTo copies that
	// raw text, quotes included, and unquote decodes it in place. Calling
	// Type first would let fastjson's lossy unescaping run instead.
	d.buf = v.MarshalTo(d.buf)
	if d.buf[start] != '"' {
		d.buf = d.buf[:start]
		if t := v.Type(); t != fastjson.TypeNull {
			d.fail(ReasonWrongType, field, "want string, got "+typeName(t))
		}
		return
	}
	d.buf = unquote(d.buf, start)
	s := d.buf[start:]
	switch {
	case !utf8.Valid(s):
		d.fail(ReasonInvalidValue, field, "not valid UTF-8")
		return
	case required && len(s) == 0:
		d.fail(ReasonInvalidValue, field, "empty")
		return
	}
	d.set |= bit
	if dst == nil { // the timestamp: parsed from the block at the end
		d.ts = span{start, len(d.buf)}
		return
	}
	if intern {
		if is, ok := d.interned.lookup(s); ok {
			*dst = is
			d.buf = d.buf[:start]
			return
		}
	}
	d.pending[d.npend] = pendingString{dst, span{start, len(d.buf)}}
	d.npend++
}

func (d *Decoder) count(v *fastjson.Value, bit uint32, field string, dst *int64) {
	if d.dup(bit, field) || !d.number(v, field, "integer") {
		return
	}
	n, res := parseCount(d.num)
	if res != numOK {
		d.failNumber(field, res)
		return
	}
	*dst = n
}

func (d *Decoder) statusCode(v *fastjson.Value) {
	const field = "status_code"
	if d.dup(bitStatusCode, field) || !d.number(v, field, "integer") {
		return
	}
	n, res := parseCount(d.num)
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

func (d *Decoder) cost(v *fastjson.Value) {
	const field = "cost"
	if d.dup(bitCost, field) || !d.number(v, field, "number") {
		return
	}
	f, res := parseCost(d.num)
	if res != numOK {
		d.failNumber(field, res)
		return
	}
	d.ev.Cost = f
	d.costs = costFromField
}

// number copies a number's text into d.num. It reports false for null
// (absent) and for other types, which it refuses; want names the type the
// field wants, for the error.
func (d *Decoder) number(v *fastjson.Value, field, want string) bool {
	switch t := v.Type(); t {
	case fastjson.TypeNumber:
		d.num = v.MarshalTo(d.num[:0])
		return true
	case fastjson.TypeNull:
	default:
		d.fail(ReasonWrongType, field, "want "+want+", got "+typeName(t))
	}
	return false
}

func (d *Decoder) flag(v *fastjson.Value, bit uint32, field string, dst *bool) {
	if d.dup(bit, field) {
		return
	}
	switch t := v.Type(); t {
	case fastjson.TypeTrue:
		*dst = true
	case fastjson.TypeFalse, fastjson.TypeNull:
	default:
		d.fail(ReasonWrongType, field, "want boolean, got "+typeName(t))
	}
}

// typeName names a JSON type in errors; it is all an error may say about a
// value.
func typeName(t fastjson.Type) string {
	switch t {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "boolean"
	case fastjson.TypeObject, fastjson.TypeArray, fastjson.TypeString,
		fastjson.TypeNumber, fastjson.TypeNull:
		return t.String()
	}
	return "unknown"
}
