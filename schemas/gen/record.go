package gen

import (
	"math"
	"strconv"
	"time"
)

// fault is a way to spoil a record, after the lines of
// malformed-records.txt, plus a record cut short as a broken producer would.
type fault int

const (
	faultNone fault = iota
	faultNotJSON
	faultEmpty
	faultNoTenant
	faultBadTimestamp
	faultNumericRequestID
	faultNoRequestID
	faultStringTokens
	faultNegativeTokens
	faultArray
	faultMetadataString
	faultEmptyTenant
	faultOutOfRange
	faultTruncated

	firstFault = faultNotJSON
	lastFault  = faultTruncated
)

// appendRecord writes one record, keys in the order the gateway writes them.
func (g *Generator) appendRecord(dst []byte, ts time.Time, f fault) []byte {
	switch f {
	case faultNotJSON:
		return append(dst, "not json"...)
	case faultEmpty:
		return dst
	case faultArray:
		return append(dst, "[1,2,3]"...)
	}
	start := len(dst)

	// Draw everything first, in a fixed order, so the random stream, and so
	// the output for a seed, does not depend on how the record is spelled.
	t := g.pickTenant()
	m := g.pickModel()
	o := g.pickOutcome()
	cached := o.status == 200 && g.chance(cacheHitPerMille)
	fallback := g.chance(fallbackPerMille)
	stream := g.chance(streamPerMille)
	routing := g.routing[g.rng.IntN(len(g.routing))]
	gateway := g.gateways[g.rng.IntN(len(g.gateways))]
	prompt := g.between(minPrompt, maxPrompt)
	completion := 0
	if o.status == 200 {
		completion = g.between(minCompletion, maxCompletion)
	}
	latency := g.between(minLatency, maxLatency)
	if cached {
		latency = g.between(minCachedLatency, maxCached)
	}
	cost := 0.0
	if !cached {
		cost = (float64(prompt)*m.inPerM + float64(completion)*m.outPerM) / 1e6
		cost = math.Round(cost*1e6) / 1e6
	}
	key := g.between(1, keysPerOrg)
	user := g.between(1, users)
	session := 0
	if g.chance(sessionPerMille) {
		session = g.between(1, sessions)
	}
	idTail := g.rng.Uint32()
	traceHi, traceLo := g.rng.Uint64(), g.rng.Uint64()

	switch f {
	case faultNoRequestID:
		dst = append(dst, '{')
	case faultNumericRequestID:
		dst = append(dst, `{"request_id":`...)
		dst = strconv.AppendUint(dst, g.count, 10)
		dst = append(dst, ',')
	default:
		dst = append(dst, `{"request_id":"req_`...)
		dst = appendPadded(dst, g.count-1, 6)
		dst = appendHex(dst, uint64(idTail), 8)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"trace_id":"`...)
	dst = appendHex(dst, traceHi, 16)
	dst = appendHex(dst, traceLo, 16)
	dst = append(dst, `","timestamp":"`...)
	if f == faultBadTimestamp {
		dst = append(dst, "yesterday"...)
	} else {
		dst = appendTimestamp(dst, ts)
	}
	dst = append(dst, `","model":"`...)
	dst = append(dst, m.name...)
	dst = append(dst, `","resolved_model":"`...)
	dst = append(dst, m.resolved...)
	dst = append(dst, `","provider":"`...)
	dst = append(dst, m.provider...)
	dst = append(dst, `","prompt_tokens":`...)
	switch f {
	case faultStringTokens:
		dst = append(dst, `"many"`...)
	case faultNegativeTokens:
		dst = strconv.AppendInt(dst, -int64(prompt), 10)
	default:
		dst = strconv.AppendInt(dst, int64(prompt), 10)
	}
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(completion), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(prompt+completion), 10)
	dst = append(dst, `,"status_code":`...)
	dst = strconv.AppendInt(dst, int64(o.status), 10)
	dst = append(dst, `,"latency_ms":`...)
	if f == faultOutOfRange {
		dst = append(dst, "1e400"...)
	} else {
		dst = strconv.AppendInt(dst, int64(latency), 10)
	}
	dst = appendBool(dst, `,"is_stream":`, stream)
	dst = appendBool(dst, `,"is_error":`, o.status >= 400)
	dst = appendBool(dst, `,"cache_hit":`, cached)
	dst = appendBool(dst, `,"fallback_used":`, fallback)
	dst = appendBool(dst, `,"guardrail_triggered":`, o.guardrail)
	dst = append(dst, `,"cost":`...)
	if cost == 0 {
		dst = append(dst, "0.0"...) // as the gateway writes it
	} else {
		dst = strconv.AppendFloat(dst, cost, 'f', -1, 64)
	}
	dst = append(dst, `,"auth_key_id":"key_`...)
	dst = append(dst, t.keyTag...)
	dst = append(dst, '_')
	dst = strconv.AppendInt(dst, int64(key), 10)
	dst = append(dst, `","user_id":"user_`...)
	dst = strconv.AppendInt(dst, int64(user), 10)
	dst = append(dst, '"')
	if session > 0 {
		dst = append(dst, `,"session_id":"sess_`...)
		dst = strconv.AppendInt(dst, int64(session), 10)
		dst = append(dst, '"')
	}
	if o.code != "" {
		dst = append(dst, `,"error_message":"`...)
		dst = append(dst, o.message...)
		dst = append(dst, `","error_code":"`...)
		dst = append(dst, o.code...)
		dst = append(dst, '"')
	}

	switch f {
	case faultNoTenant:
		return append(dst, '}')
	case faultMetadataString:
		dst = append(dst, `,"metadata":`...)
		dst = append(dst, t.quoted...)
		return append(dst, '}')
	}
	dst = append(dst, `,"metadata":{"org_id":`...)
	if f == faultEmptyTenant {
		dst = append(dst, `""`...)
	} else {
		dst = append(dst, t.quoted...)
	}
	dst = append(dst, `,"gateway_id":"`...)
	dst = append(dst, gateway...)
	dst = append(dst, `","cost":"`...)
	dst = strconv.AppendFloat(dst, cost, 'f', 6, 64)
	dst = append(dst, `","cache_status":"`...)
	if cached {
		dst = append(dst, "hit"...)
	} else {
		dst = append(dst, "miss"...)
	}
	dst = append(dst, '"')
	if routing != "" {
		dst = append(dst, `,"routing_strategy":"`...)
		dst = append(dst, routing...)
		dst = append(dst, '"')
	}
	dst = append(dst, "}}"...)

	if f == faultTruncated {
		dst = dst[:start+(len(dst)-start)/2]
	}
	return dst
}

func appendBool(dst []byte, key string, v bool) []byte {
	dst = append(dst, key...)
	return strconv.AppendBool(dst, v)
}

// appendPadded writes n in decimal, zero-padded to at least width digits.
func appendPadded(dst []byte, n uint64, width int) []byte {
	var b [20]byte
	i := len(b)
	for n > 0 || len(b)-i < width {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[i:]...)
}

// appendHex writes the low digits hex digits of n, zero-padded.
func appendHex(dst []byte, n uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hex[(n>>(4*uint(i)))&0xf])
	}
	return dst
}

// appendTimestamp writes ts in UTC with microseconds, as the gateway does
// ("2026-11-26T12:00:01.617000Z"), without time.Format's layout parsing.
func appendTimestamp(dst []byte, ts time.Time) []byte {
	ts = ts.UTC()
	year, month, day := ts.Date()
	if year < 0 || year > 9999 {
		return ts.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	}
	hour, minute, sec := ts.Clock()
	dst = appendPadded(dst, uint64(year), 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, uint64(month), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, uint64(day), 2)
	dst = append(dst, 'T')
	dst = appendPadded(dst, uint64(hour), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, uint64(minute), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, uint64(sec), 2)
	dst = append(dst, '.')
	dst = appendPadded(dst, uint64(ts.Nanosecond()/1000), 6)
	return append(dst, 'Z')
}

// appendString writes s as a JSON string. Only tenant ids, which come from
// configuration, need it; everything else the generator writes is plain.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
