package ddfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// handleLogs is POST /api/v2/logs ("Send logs").
func (s *Server) handleLogs(r *http.Request, account string, st *reqState) answer {
	bad := func(detail string) answer { return errorAnswer(logsErrors, http.StatusBadRequest, detail) }
	tooLarge := errorAnswer(logsErrors, http.StatusRequestEntityTooLarge, "Request too large")

	enc, ok := contentEncoding(r.Header.Get("Content-Encoding"), "gzip", "deflate")
	if !ok {
		return bad("Unsupported Content-Encoding: " + enc)
	}
	// No wire limit is documented for logs; drainCap only keeps memory sane.
	wire, over, err := readWire(r.Body, r.ContentLength, drainCap, s.buffer(st))
	switch {
	case over:
		return tooLarge
	case err != nil:
		return bad("could not read body")
	}
	data, over, corrupt := inflate(&s.gzipReaders, enc, wire, s.limits.LogsPayloadBytes, s.buffer(st))
	switch {
	case corrupt:
		return bad("Malformed payload: body is not valid " + enc)
	case over:
		return tooLarge
	}
	st.rec.BodyBytes = int64(len(data))

	if s.cheap {
		n, ok := countLogItems(data)
		if !ok {
			return bad("Malformed payload")
		}
		if n > s.limits.LogsPerRequest {
			return bad(fmt.Sprintf("too many logs in one request: %d > %d", n, s.limits.LogsPerRequest))
		}
		st.rec.Items = n
		s.mu.Lock()
		s.stats.LogsAccepted += int64(n)
		s.mu.Unlock()
		return jsonAnswer(http.StatusAccepted, "{}")
	}

	items, err := splitLogItems(data)
	if err != nil {
		return bad("Malformed payload: " + err.Error())
	}
	st.rec.Items = len(items)
	if len(items) > s.limits.LogsPerRequest {
		return bad(fmt.Sprintf("too many logs in one request: %d > %d", len(items), s.limits.LogsPerRequest))
	}
	// Parse everything before storing anything: a 400 stores nothing.
	queryTags := splitDDTags(r.URL.Query().Get("ddtags"))
	now := s.now()
	logs := make([]Log, len(items))
	badTags := make([][]string, len(items))
	for i, raw := range items {
		l, bt, err := s.parseLog(raw, queryTags, now)
		if err != nil {
			return bad(fmt.Sprintf("log %d: %v", i, err))
		}
		l.Account = account
		logs[i], badTags[i] = l, bt
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.account(account)
	for i, l := range logs {
		s.noteBadTags(d, badTags[i])
		if l.Truncated {
			s.stats.LogsTruncated++
		}
		if now.Sub(l.Date) > s.limits.LogAge {
			// Documented: up to 18 hours in the past; the request still succeeds.
			s.stats.LogsDroppedOld++
			continue
		}
		d.logs = append(d.logs, l)
		s.stats.LogsAccepted++
	}
	return jsonAnswer(http.StatusAccepted, "{}")
}

// splitLogItems accepts a JSON array of logs or one log object.
func splitLogItems(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("empty body")
	}
	switch data[0] {
	case '{':
		if !json.Valid(data) {
			return nil, fmt.Errorf("invalid JSON")
		}
		return []json.RawMessage{data}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		return items, nil
	}
	return nil, fmt.Errorf("body is neither a JSON array nor an object")
}

// parseLog turns one log item into a Log, truncating it when too large. It
// also returns the submitted tags that were not normal.
func (s *Server) parseLog(raw json.RawMessage, queryTags []string, now time.Time) (Log, []string, error) {
	var attrs map[string]any
	if err := json.Unmarshal(raw, &attrs); err != nil || attrs == nil {
		return Log{}, nil, fmt.Errorf("a log must be a JSON object")
	}
	msg, ok := attrs["message"].(string)
	if !ok {
		return Log{}, nil, fmt.Errorf(`"message" is required and must be a string`)
	}
	// raw is already a private copy (encoding/json copies RawMessage).
	l := Log{Attributes: attrs, Raw: raw, Received: now}
	if excess := len(raw) - s.limits.LogBytes; excess > 0 {
		// Documented: a log over 1MB is accepted and truncated. Where
		// Datadog cuts is not documented; the message absorbs the excess.
		l.Truncated = true
		l.Raw = l.Raw[:s.limits.LogBytes]
		msg = truncateUTF8(msg, len(msg)-excess)
		attrs["message"] = msg
	}
	l.Message = msg
	l.Status, _ = attrs["status"].(string)
	l.Service, _ = attrs["service"].(string)
	l.Source, _ = attrs["ddsource"].(string)
	l.Hostname, _ = attrs["hostname"].(string)
	ddtags, _ := attrs["ddtags"].(string)
	tags, bad := normalizeTags(append(splitDDTags(ddtags), queryTags...))
	l.Tags = tags
	l.Date, l.DateAttribute = logDate(attrs, now)
	return l, bad, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
