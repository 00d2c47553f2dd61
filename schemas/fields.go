package schemas

// One bit per known key, for duplicate and presence checks.
const (
	bitRequestID uint32 = 1 << iota
	bitTraceID
	bitTimestamp
	bitModel
	bitResolvedModel
	bitProvider
	bitPromptTokens
	bitCompletionTokens
	bitTotalTokens
	bitStatusCode
	bitLatencyMS
	bitCost
	bitIsStream
	bitIsError
	bitCacheHit
	bitFallbackUsed
	bitGuardrailTriggered
	bitErrorMessage
	bitErrorCode
	bitAuthKeyID
	bitUserID
	bitSessionID
	bitMetadata
	bitOrgID
	bitGatewayID
	bitRoutingStrategy
	bitMetadataCost
)

// field reads the value at b[i] of the top-level key k and returns the index
// after it. Unknown keys, the bodies, headers, guardrail results and timings
// among them, are only checked: nothing of them is copied, whatever their
// type.
func (d *Decoder) field(b []byte, i, depth int, k []byte) int {
	if string(k) == "metadata" {
		return d.metadata(b, i, depth)
	}
	end := skipValue(b, i, depth)
	if end < 0 {
		return end
	}
	v := b[i:end]
	ev := d.ev
	switch string(k) {
	case "request_id":
		d.keep(v, bitRequestID, "request_id", &ev.RequestID, false, true)
	case "trace_id":
		d.keep(v, bitTraceID, "trace_id", &ev.TraceID, false, false)
	case "timestamp":
		d.keep(v, bitTimestamp, "timestamp", nil, false, true)
	case "model":
		d.keep(v, bitModel, "model", &ev.Model, true, false)
	case "resolved_model":
		d.keep(v, bitResolvedModel, "resolved_model", &ev.ResolvedModel, true, false)
	case "provider":
		d.keep(v, bitProvider, "provider", &ev.Provider, true, false)
	case "prompt_tokens":
		d.count(v, bitPromptTokens, "prompt_tokens", &ev.PromptTokens)
	case "completion_tokens":
		d.count(v, bitCompletionTokens, "completion_tokens", &ev.CompletionTokens)
	case "total_tokens":
		d.count(v, bitTotalTokens, "total_tokens", &ev.TotalTokens)
	case "status_code":
		d.statusCode(v)
	case "latency_ms":
		d.count(v, bitLatencyMS, "latency_ms", &ev.LatencyMS)
	case "cost":
		d.cost(v)
	case "is_stream":
		d.flag(v, bitIsStream, "is_stream", &ev.IsStream)
	case "is_error":
		d.flag(v, bitIsError, "is_error", &ev.IsError)
	case "cache_hit":
		d.flag(v, bitCacheHit, "cache_hit", &ev.CacheHit)
	case "fallback_used":
		d.flag(v, bitFallbackUsed, "fallback_used", &ev.FallbackUsed)
	case "guardrail_triggered":
		d.flag(v, bitGuardrailTriggered, "guardrail_triggered", &ev.GuardrailTriggered)
	case "error_message":
		d.keep(v, bitErrorMessage, "error_message", &ev.ErrorMessage, true, false)
	case "error_code":
		d.keep(v, bitErrorCode, "error_code", &ev.ErrorCode, true, false)
	case "auth_key_id":
		d.keep(v, bitAuthKeyID, "auth_key_id", &ev.AuthKeyID, false, false)
	case "user_id":
		d.keep(v, bitUserID, "user_id", &ev.UserID, false, false)
	case "session_id":
		d.keep(v, bitSessionID, "session_id", &ev.SessionID, false, false)
	}
	return end
}

func (d *Decoder) metadata(b []byte, i, depth int) int {
	if d.dup(bitMetadata, "metadata") {
		return skipValue(b, i, depth)
	}
	if i < len(b) && b[i] == '{' {
		d.set |= bitMetadata
		return d.object(b, i, depth+1, true)
	}
	end := skipValue(b, i, depth)
	if end >= 0 && b[i] != 'n' {
		d.fail(ReasonWrongType, "metadata", "want object, got "+typeName(b[i]))
	}
	return end
}

// metaField reads the value at b[i] of the metadata key k, an object of
// strings, and returns the index after it.
func (d *Decoder) metaField(b []byte, i, depth int, k []byte) int {
	end := skipValue(b, i, depth)
	if end < 0 {
		return end
	}
	v := b[i:end]
	ev := d.ev
	switch string(k) {
	case "org_id":
		d.keep(v, bitOrgID, "metadata.org_id", &ev.OrgID, true, true)
	case "gateway_id":
		d.keep(v, bitGatewayID, "metadata.gateway_id", &ev.GatewayID, true, false)
	case "routing_strategy":
		d.keep(v, bitRoutingStrategy, "metadata.routing_strategy", &ev.RoutingStrategy, true, false)
	case "cost":
		d.metaCost(v)
	default:
		// The key is the sender's text, so the error names only the object.
		if v[0] != '"' && v[0] != 'n' {
			d.fail(ReasonWrongType, "metadata", "values must be strings, got "+typeName(v[0]))
		}
	}
	return end
}

// metaCost keeps metadata.cost aside: it matters only if the record turns out
// to have no cost, which may be known only after the last key.
func (d *Decoder) metaCost(v []byte) {
	const field = "metadata.cost"
	if d.dup(bitMetadataCost, field) {
		return
	}
	if v[0] != '"' {
		if v[0] != 'n' {
			d.fail(ReasonWrongType, field, "want string, got "+typeName(v[0]))
		}
		return
	}
	d.mcost = unquote(append(d.mcost[:0], v...), 0)
	if d.costs == costAbsent {
		d.costs = costFromMetadata
	}
}
