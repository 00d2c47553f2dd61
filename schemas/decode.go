package schemas

import (
	"sync"

	"github.com/valyala/fastjson"
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
	p fastjson.Parser

	// buf gathers the bytes of the strings a record keeps, so that they cost
	// one allocation together rather than one each. pending says where each
	// one goes once buf has become that one string.
	buf     []byte
	pending [maxPending]pendingString
	npend   int
	ts      span // the timestamp's text in buf

	// num holds number text; mcost holds metadata.cost, read only when cost
	// is absent.
	num   []byte
	mcost []byte

	interned internTable

	// State of the record being decoded: the visitors fill these in, since
	// fastjson's Visit cannot stop or return anything.
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
	if size > keep {
		d.p = fastjson.Parser{} // it holds a copy of the record and its values
	}
	if cap(d.buf) > keep {
		d.buf = nil
	}
	if cap(d.num) > keep {
		d.num = nil
	}
	if cap(d.mcost) > keep {
		d.mcost = nil
	}
}

func (d *Decoder) decode(data []byte) {
	if !validJSON(data) {
		d.fail(ReasonInvalidJSON, "", detailForInvalid(data))
		return
	}
	// On valid JSON the parser fails only past its nesting limit.
	v, err := d.p.ParseBytes(data)
	if err != nil {
		d.fail(ReasonInvalidJSON, "", "nested too deeply")
		return
	}
	if t := v.Type(); t != fastjson.TypeObject {
		d.fail(ReasonWrongType, "", "want object, got "+typeName(t))
		return
	}
	obj, _ := v.Object()
	obj.Visit(d.field)
	if d.err != nil {
		return
	}
	d.finish()
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
