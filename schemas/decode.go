package schemas

import (
	"bytes"
	"sync"
)

// Decode decodes one gateway record into ev, using a pooled Decoder. A
// partition goroutine should own a Decoder instead and skip the pool.
func Decode(data []byte, ev *Event) error {
	d := decoders.Get().(*Decoder)
	err := d.Decode(data, ev)
	decoders.Put(d)
	return err
}

var decoders = sync.Pool{New: func() any { return new(Decoder) }}

// Decoder decodes gateway records strictly. It reuses its memory from one
// record to the next, so it must not be shared between goroutines. The zero
// value is ready to use.
type Decoder struct {
	// buf gathers the bytes of the strings a record keeps, so that they cost
	// one allocation together rather than one each. pending says where each
	// one goes once buf has become that one string.
	buf     []byte
	pending [maxPending]pendingString
	npend   int
	ts      span // the timestamp's text in buf

	// key holds an object key that had escapes in it; mcost holds
	// metadata.cost, read only when cost is absent.
	key   []byte
	mcost []byte

	interned internTable

	// State of the record being decoded.
	ev    *Event
	err   *DecodeError
	seen  uint32 // known keys met so far, to refuse duplicates
	set   uint32 // known keys that held a non-null value
	costs costSource
}

type span struct{ start, end int }

type pendingString struct {
	dst *string
	span
}

// maxPending is the number of string fields an Event keeps.
const maxPending = 16

// costSource records where the cost came from, since metadata.cost may be
// read before cost and only counts when cost is absent.
type costSource uint8

const (
	costAbsent costSource = iota
	costFromField
	costFromMetadata
)

// Decode decodes one gateway record into ev, which it overwrites. On error ev
// is left zero and the error is a *DecodeError.
func (d *Decoder) Decode(data []byte, ev *Event) error {
	*ev = Event{}
	d.reset(ev)
	d.decode(data)
	err := d.err
	// Hold nothing of the caller's between records.
	d.ev, d.err = nil, nil
	clear(d.pending[:d.npend])
	d.trim(len(data))
	if err != nil {
		*ev = Event{}
		return err
	}
	return nil
}

func (d *Decoder) reset(ev *Event) {
	d.ev = ev
	d.err = nil
	d.buf = d.buf[:0]
	d.npend = 0
	d.ts = span{}
	d.mcost = d.mcost[:0]
	d.seen, d.set = 0, 0
	d.costs = costAbsent
}

// trim drops scratch memory that one unusually large record grew, so that a
// long-lived Decoder stays small.
func (d *Decoder) trim(size int) {
	const keep = 64 << 10
	if cap(d.buf) > keep {
		d.buf = nil
	}
	if cap(d.key) > keep {
		d.key = nil
	}
	if cap(d.mcost) > keep {
		d.mcost = nil
	}
}

// decode reads the record in one pass: it checks the whole text against the
// JSON grammar (ignored fields included: a record other readers would refuse
// must not pass) while it takes the known fields. A JSON error anywhere wins
// over a field error found before it, so the reason does not depend on the
// order of the keys.
func (d *Decoder) decode(data []byte) {
	i := skipSpace(data, 0)
	var end int
	if i < len(data) && data[i] == '{' {
		end = d.object(data, i, 1, false)
	} else {
		end = skipValue(data, i, 0)
	}
	if end >= 0 && skipSpace(data, end) != len(data) {
		end = badJSON
	}
	switch {
	case end == tooDeep:
		d.err = &DecodeError{Reason: ReasonInvalidJSON, Detail: "nested too deeply"}
		return
	case end < 0:
		d.err = &DecodeError{Reason: ReasonInvalidJSON, Detail: detailForInvalid(data)}
		return
	case data[i] != '{':
		d.err = &DecodeError{Reason: ReasonWrongType, Detail: "want object, got " + typeName(data[i])}
		return
	}
	if d.err != nil {
		return
	}
	d.finish()
}

// object reads the object at b[i] (its '{'), which depth containers enclose
// including itself, and returns the index after its '}', or badJSON or
// tooDeep. Each key's value goes to field, or to metaField inside metadata;
// once a field has failed, the rest is only checked.
func (d *Decoder) object(b []byte, i, depth int, meta bool) int {
	if depth > maxNesting {
		return tooDeep
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return badJSON
		}
		end := skipString(b, i+1)
		if end < 0 {
			return badJSON
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			d.key = unquote(append(d.key[:0], b[i:end]...), 0)
			key = d.key
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return badJSON
		}
		i = skipSpace(b, i+1)
		switch {
		case d.err != nil:
			i = skipValue(b, i, depth)
		case meta:
			i = d.metaField(b, i, depth, key)
		default:
			i = d.field(b, i, depth, key)
		}
		if i < 0 {
			return i
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return badJSON
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1
		default:
			return badJSON
		}
	}
}

func detailForInvalid(data []byte) string {
	for _, c := range data {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return "not valid JSON"
		}
	}
	return "empty record"
}

// finish checks what only the whole record can tell, then hands out the
// kept strings.
func (d *Decoder) finish() {
	switch {
	case d.set&bitRequestID == 0:
		d.fail(ReasonMissingField, "request_id", "")
		return
	case d.set&bitTimestamp == 0:
		d.fail(ReasonMissingField, "timestamp", "")
		return
	case d.set&bitMetadata == 0 || d.set&bitOrgID == 0:
		d.fail(ReasonMissingField, "metadata.org_id", "")
		return
	}
	if d.costs == costFromMetadata && !d.costFromMetadata() {
		return
	}

	block := string(d.buf)
	for _, p := range d.pending[:d.npend] {
		*p.dst = block[p.start:p.end]
	}
	d.ev.Timestamp, d.err = parseTimestamp(block[d.ts.start:d.ts.end])
}

// costFromMetadata applies metadata.cost, which the gateway writes as a
// string, when the record has no cost.
func (d *Decoder) costFromMetadata() bool {
	const field = "metadata.cost"
	// The grammar is JSON's: ParseFloat alone would also take "Inf", "0x1p4"
	// and "1_0". A sign is refused outright: no cost is negative, and the
	// published schema's pattern cannot tell "-0" from "-1".
	if len(d.mcost) == 0 || d.mcost[0] == '-' || skipNumber(d.mcost, 0) != len(d.mcost) {
		d.fail(ReasonInvalidValue, field, "not a non-negative decimal number")
		return false
	}
	f, res := parseCost(d.mcost)
	if res != numOK {
		d.failNumber(field, res)
		return false
	}
	d.ev.Cost = f
	return true
}
