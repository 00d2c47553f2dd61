package sink

import (
	"strconv"
	"unicode/utf8"

	"github.com/futureagi/prism-exporter/schemas"
)

// Datadog's log intake limits, kept a little under the documented ones
// (5 MB per request, 1 MB per log, 1,000 items per request: the aggregator
// already chunks at 500).
const (
	maxLogsPerRequest   = 500
	maxLogsRequestBytes = 5_000_000
	maxLogBytes         = 1_000_000
)

const truncatedMark = "...[truncated]"

// logTrim limits the two fields that may be shortened to fit a log under
// maxLogBytes; -1 means no limit.
type logTrim struct{ errMax, msgMax int }

func noTrim() logTrim { return logTrim{-1, -1} }

// logEncoder turns events into a JSON array of Datadog log items. It keeps
// each item's position so that a chunk of consecutive items is one slice of
// buf (items are separated by commas, so buf[start(i):end(j-1)] wrapped in
// brackets is a valid array), which lets a refused request be split without
// encoding anything again. sendLogs uses one item at a time (streaming into
// gzip); a refused request is encoded whole, once, to be narrowed down.
type logEncoder struct {
	service string // Config.Service
	buf     []byte
	starts  []int
	ends    []int
	ev      []int // ev[k] is the index in the batch of item k
	msg     []byte
}

func (e *logEncoder) reset() {
	e.buf = e.buf[:0]
	e.starts = e.starts[:0]
	e.ends = e.ends[:0]
	e.ev = e.ev[:0]
}

func (e *logEncoder) len() int { return len(e.starts) }

// add encodes ev as the next item. An item over maxLogBytes is trimmed
// (error_message first, then message); if trimming is not enough, add
// reports false and encodes nothing: the caller dead-letters the event.
// trimmed says whether the item was shortened.
func (e *logEncoder) add(ev *schemas.Event, index int) (ok, trimmed bool) {
	if len(e.starts) > 0 {
		e.buf = append(e.buf, ',')
	}
	start := len(e.buf)
	e.buf = e.appendLog(e.buf, ev, noTrim())
	if len(e.buf)-start > maxLogBytes {
		item, fits := e.fit(ev, len(e.buf)-start, maxLogBytes)
		e.buf = e.buf[:start]
		if !fits {
			if len(e.starts) > 0 {
				e.buf = e.buf[:start-1] // the comma
			}
			return false, false
		}
		e.buf = append(e.buf, item...)
		trimmed = true
	}
	e.starts = append(e.starts, start)
	e.ends = append(e.ends, len(e.buf))
	e.ev = append(e.ev, index)
	return true, trimmed
}

// fit re-encodes ev trimmed so that it takes at most limit bytes; size is
// its untrimmed size. The error message is cut first (it is the field that
// grows without bound, and it appears twice for a failed request), then the
// message. It returns a fresh slice (not part of buf), and false when even
// both cut to nothing do not fit.
func (e *logEncoder) fit(ev *schemas.Event, size, limit int) ([]byte, bool) {
	trim := noTrim()
	if ev.ErrorMessage != "" {
		item, ok := shrink(len(ev.ErrorMessage), size, limit, func(n int) []byte {
			t := trim
			t.errMax = n
			return e.appendLog(nil, ev, t)
		})
		if ok {
			return item, true
		}
		trim.errMax = 0
		size = len(item)
	}
	e.msg = e.message(e.msg[:0], ev, trim)
	return shrink(len(e.msg), size, limit, func(n int) []byte {
		t := trim
		t.msgMax = n
		return e.appendLog(nil, ev, t)
	})
}

// shrink finds a length n for a field of full bytes such that encode(n),
// the item with the field cut to n, fits in limit, close to the largest
// such n. size is the item's size with the field whole. Escaping makes an
// encoded byte cost more than a raw one, by a factor estimated from the
// field's share of the item; a few steps correct the estimate where the
// field's density varies.
func shrink(full, size, limit int, encode func(n int) []byte) ([]byte, bool) {
	empty := encode(0)
	if len(empty) > limit {
		return empty, false
	}
	perByte := 1.0
	if full > 0 {
		perByte = max(1, float64(size-len(empty))/float64(full))
	}
	n := int(float64(limit-len(empty)) / perByte)
	for try := 0; try < 8 && n > 0; try++ {
		item := encode(n)
		if len(item) <= limit {
			return item, true
		}
		n -= int(float64(len(item)-limit)/perByte) + 16
	}
	return empty, true
}

// body is items [i, j), comma-separated: the inside of a JSON array.
func (e *logEncoder) body(i, j int) []byte { return e.buf[e.starts[i]:e.ends[j-1]] }

func (e *logEncoder) bodySize(i, j int) int { return e.ends[j-1] - e.starts[i] + 2 }

func (e *logEncoder) item(k int) []byte { return e.buf[e.starts[k]:e.ends[k]] }

// chunks cuts items [0, n) into consecutive ranges of at most maxItems items
// and maxBytes bytes of body. An item always fits alone (it is at most
// maxLogBytes).
func (e *logEncoder) chunks(maxItems, maxBytes int) [][2]int {
	var out [][2]int
	for i := 0; i < len(e.starts); {
		j := i + 1
		for j < len(e.starts) && j-i < maxItems && e.bodySize(i, j+1) <= maxBytes {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// appendLog appends one Datadog log item. The reserved fields come first
// (message, status, ddsource, service, ddtags, and timestamp, which Datadog
// reads as the log's date, in epoch milliseconds); then the attributes.
// String attributes are left out when empty, so that Datadog facets show
// "absent" rather than an empty value; numbers and flags are always written.
func (e *logEncoder) appendLog(dst []byte, ev *schemas.Event, trim logTrim) []byte {
	dst = append(dst, `{"message":`...)
	e.msg = e.message(e.msg[:0], ev, trim)
	dst = appendJSONString(dst, e.msg)
	if ev.Failed() {
		dst = append(dst, `,"status":"error"`...)
	} else {
		dst = append(dst, `,"status":"info"`...)
	}
	dst = append(dst, `,"ddsource":"futureagi","service":`...)
	dst = appendJSONString(dst, e.service)
	dst = append(dst, `,"ddtags":"`...)
	dst = appendLogTags(dst, ev)
	dst = append(dst, `","timestamp":`...)
	dst = strconv.AppendInt(dst, ev.Timestamp.UnixMilli(), 10)

	dst = appendStrAttr(dst, "request_id", ev.RequestID)
	dst = appendStrAttr(dst, "trace_id", ev.TraceID)
	dst = appendStrAttr(dst, "model", ev.Model)
	dst = appendStrAttr(dst, "resolved_model", ev.ResolvedModel)
	dst = appendStrAttr(dst, "provider", ev.Provider)
	dst = append(dst, `,"status_code":`...)
	dst = strconv.AppendInt(dst, int64(ev.StatusCode), 10)
	dst = append(dst, `,"latency_ms":`...)
	dst = strconv.AppendInt(dst, ev.LatencyMS, 10)
	dst = append(dst, `,"input_tokens":`...)
	dst = strconv.AppendInt(dst, ev.PromptTokens, 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, ev.CompletionTokens, 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, ev.TotalTokens, 10)
	dst = append(dst, `,"cost":`...)
	dst = appendJSONFloat(dst, ev.Cost)
	dst = append(dst, `,"is_stream":`...)
	dst = appendJSONBool(dst, ev.IsStream)
	dst = append(dst, `,"cache_hit":`...)
	dst = appendJSONBool(dst, ev.CacheHit)
	dst = append(dst, `,"fallback_used":`...)
	dst = appendJSONBool(dst, ev.FallbackUsed)
	dst = append(dst, `,"guardrail_triggered":`...)
	dst = appendJSONBool(dst, ev.GuardrailTriggered)
	dst = appendStrAttr(dst, "error_message", truncate(ev.ErrorMessage, trim.errMax))
	dst = appendStrAttr(dst, "error_code", ev.ErrorCode)
	dst = appendStrAttr(dst, "user_id", ev.UserID)
	dst = appendStrAttr(dst, "session_id", ev.SessionID)
	dst = appendStrAttr(dst, "org_id", ev.OrgID)
	dst = appendStrAttr(dst, "gateway", ev.GatewayID)
	dst = appendStrAttr(dst, "routing_strategy", ev.RoutingStrategy)
	return append(dst, '}')
}

func appendStrAttr(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

// message is the log's one-line summary, as the gateway's own Datadog
// integration wrote it:
//
//	[openai] gpt-4o status=200 latency=842ms tokens=1523 cost=$0.02
//
// and, for a failed request with an error message, ` error="<message>"`
// (Go-quoted, so quotes inside it stay unambiguous).
func (e *logEncoder) message(dst []byte, ev *schemas.Event, trim logTrim) []byte {
	dst = append(dst, '[')
	dst = append(dst, orUnknown(ev.Provider)...)
	dst = append(dst, "] "...)
	dst = append(dst, orUnknown(ev.Model)...)
	dst = append(dst, " status="...)
	dst = strconv.AppendInt(dst, int64(ev.StatusCode), 10)
	dst = append(dst, " latency="...)
	dst = strconv.AppendInt(dst, ev.LatencyMS, 10)
	dst = append(dst, "ms tokens="...)
	dst = strconv.AppendInt(dst, ev.TotalTokens, 10)
	dst = append(dst, " cost=$"...)
	dst = appendCost(dst, ev.Cost)
	if ev.Failed() && ev.ErrorMessage != "" {
		dst = append(dst, " error="...)
		dst = strconv.AppendQuote(dst, truncate(ev.ErrorMessage, trim.errMax))
	}
	if trim.msgMax >= 0 && len(dst) > trim.msgMax {
		n := runeStart(dst, trim.msgMax)
		dst = append(dst[:n], truncatedMark...)
	}
	return dst
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// appendLogTags writes the ddtags value: every tag on every log, so that a
// Datadog query by tag never misses a log for lack of one.
func appendLogTags(dst []byte, ev *schemas.Event) []byte {
	dst = appendTag(dst, "model", ev.Model, "unknown")
	dst = append(dst, ',')
	dst = appendTag(dst, "provider", ev.Provider, "unknown")
	dst = append(dst, ',')
	dst = append(dst, "status_code:"...)
	dst = strconv.AppendInt(dst, int64(ev.StatusCode), 10)
	dst = append(dst, ',')
	dst = appendTag(dst, "gateway", ev.GatewayID, "unknown")
	if ev.Failed() {
		dst = append(dst, ",error:true"...)
	} else {
		dst = append(dst, ",error:false"...)
	}
	if ev.CacheHit {
		dst = append(dst, ",cache:hit"...)
	} else {
		dst = append(dst, ",cache:miss"...)
	}
	if ev.GuardrailTriggered {
		dst = append(dst, ",guardrail:true,"...)
	} else {
		dst = append(dst, ",guardrail:false,"...)
	}
	return appendTag(dst, "routing", ev.RoutingStrategy, "none")
}

// truncate cuts s to at most n bytes (on a character boundary) and marks the
// cut; n < 0 means no limit.
func truncate(s string, n int) string {
	if n < 0 || len(s) <= n {
		return s
	}
	return s[:runeStartString(s, n)] + truncatedMark
}

// runeStart moves n back to the start of the character it falls in.
func runeStart(b []byte, n int) int {
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return n
}

func runeStartString(s string, n int) int {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}
