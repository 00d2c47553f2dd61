package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/futureagi/prism-exporter/schemas"
)

// Logs go to POST <logs intake>/api/v2/logs as a gzipped JSON array, written
// by the hand-rolled encoder (logenc.go) and sent with the client's
// http.Client: SubmitLog would build a model and a map per log and
// json.Marshal them, several times slower (see BenchmarkLogs*), on the path
// every record takes.

// sendLogs delivers logs in requests of at most 500 items and 5 MB. Each log
// is encoded into a small scratch buffer and written straight into the
// request's gzip stream, so a request holds only its compressed body: a
// 500-log request's JSON (~400 KB) is never kept whole. A refused request is
// encoded again, whole, to be narrowed down (narrowStreamed): refusals are
// rare, and memory held by every request is what sets the garbage
// collector's pace.
func (q *tenantQueue) sendLogs(ctx context.Context, cn *conn, logs []*schemas.Event) error {
	enc := q.s.getEncoder()
	defer q.s.putEncoder(enc)
	zs := q.s.getStream()
	defer q.s.putStream(zs)

	first, n, raw := 0, 0, 2 // the request being written: its first log, items, JSON bytes with brackets
	send := func(end int) error {
		if n == 0 {
			return nil
		}
		gz, err := zs.finish()
		if err == nil {
			err = q.postLogsGz(ctx, cn, n, raw, gz)
		}
		if errors.Is(err, errTooLarge) || errors.Is(err, errBadRequest) {
			err = q.narrowStreamed(ctx, cn, logs[first:end], err)
		}
		first, n, raw = end, 0, 2
		return err
	}
	for i, ev := range logs {
		enc.reset()
		ok, trimmed := enc.add(ev, i)
		if trimmed {
			q.s.m.trimmed.Inc()
		}
		if !ok {
			// Over 1 MB even with its error message and message cut: only
			// other fields can be that large. Kept in the dead-letter topic,
			// with every field cut to 64 KB so that the dead letter itself
			// fits in a Kafka message.
			item := enc.appendLog(nil, shortened(ev, 64<<10), noTrim())
			if err := q.deadLetter(ctx, kindLogs, reasonTooLarge, item, "log over 1 MB after trimming error_message and message; dead-lettered with every field cut to 64 KB"); err != nil {
				return err
			}
			continue
		}
		item := enc.item(0)
		if n > 0 && (n == maxLogsPerRequest || raw+1+len(item) > maxLogsRequestBytes) {
			if err := send(i); err != nil {
				return err
			}
		}
		if n == 0 {
			zs.start()
			first = i
			zs.write('[')
		} else {
			zs.write(',')
			raw++
		}
		zs.writeItem(item)
		n++
		raw += len(item)
	}
	return send(len(logs))
}

// narrowStreamed narrows down err, a refusal of a streamed request of logs:
// they are encoded again, whole (the same items as the first time, since
// encoding is deterministic; a log too large even trimmed was dead-lettered
// then and is skipped now), and split as sendLogRange does.
func (q *tenantQueue) narrowStreamed(ctx context.Context, cn *conn, logs []*schemas.Event, err error) error {
	enc := &logEncoder{service: q.s.cfg.Service}
	for i, ev := range logs {
		enc.add(ev, i)
	}
	return q.narrowLogs(ctx, cn, enc, logs, 0, enc.len(), err)
}

// sendLogRange sends items [i, j) of enc. Refusals are narrowed down by
// splitting: a 413 in halves (one item still too large is trimmed once
// more, else dead-lettered); a 400 by bisection down to the items Datadog
// refuses, which are dead-lettered while the rest is delivered.
func (q *tenantQueue) sendLogRange(ctx context.Context, cn *conn, enc *logEncoder, logs []*schemas.Event, i, j int) error {
	return q.narrowLogs(ctx, cn, enc, logs, i, j, q.postLogsBody(ctx, cn, j-i, []byte{'['}, enc.body(i, j), []byte{']'}))
}

// narrowLogs handles err, the answer to items [i, j) of enc.
func (q *tenantQueue) narrowLogs(ctx context.Context, cn *conn, enc *logEncoder, logs []*schemas.Event, i, j int, err error) error {
	var se *statusError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTooLarge) && j-i > 1, errors.Is(err, errBadRequest) && j-i > 1:
		if errors.Is(err, errTooLarge) {
			q.s.m.retries.WithLabelValues("status_413").Inc()
		}
		mid := i + (j-i)/2
		if err := q.sendLogRange(ctx, cn, enc, logs, i, mid); err != nil {
			return err
		}
		return q.sendLogRange(ctx, cn, enc, logs, mid, j)
	case errors.Is(err, errTooLarge):
		q.s.m.retries.WithLabelValues("status_413").Inc()
		item := enc.item(i)
		ev := logs[enc.ev[i]]
		if smaller, ok := enc.fit(ev, len(item), len(item)/2); ok {
			q.s.m.trimmed.Inc()
			err := q.postLogsBody(ctx, cn, 1, []byte{'['}, smaller, []byte{']'})
			if err == nil || !errors.Is(err, errTooLarge) && !errors.Is(err, errBadRequest) {
				return err
			}
		}
		errors.As(err, &se)
		return q.deadLetter(ctx, kindLogs, reasonTooLarge, item, detailOf(se))
	case errors.Is(err, errBadRequest):
		errors.As(err, &se)
		return q.deadLetter(ctx, kindLogs, reasonBadRequest, enc.item(i), detailOf(se))
	}
	return err
}

func detailOf(se *statusError) string {
	if se == nil {
		return ""
	}
	return se.Error()
}

// postLogsBody compresses parts (a JSON array of n logs) and sends it until
// Datadog gives a final answer.
func (q *tenantQueue) postLogsBody(ctx context.Context, cn *conn, n int, parts ...[]byte) error {
	raw := 0
	for _, p := range parts {
		raw += len(p)
	}
	buf := q.s.getBuf()
	defer q.s.putBuf(buf)
	if err := q.s.gzipTo(buf, parts...); err != nil {
		return err
	}
	return q.postLogsGz(ctx, cn, n, raw, buf.Bytes())
}

// postLogsGz sends a gzipped JSON array of n logs, raw bytes uncompressed,
// until Datadog gives a final answer.
func (q *tenantQueue) postLogsGz(ctx context.Context, cn *conn, n, raw int, body []byte) error {
	err := q.attempt(ctx, cn, endpointLogs, func(ctx context.Context) answer {
		q.s.m.payloadBytes.WithLabelValues(endpointLogs, stageUncompressed).Add(float64(raw))
		q.s.m.payloadBytes.WithLabelValues(endpointLogs, stageCompressed).Add(float64(len(body)))
		return q.s.post(ctx, cn, cn.logsURL, body)
	})
	if err == nil {
		q.s.m.items.WithLabelValues(kindLogs, Delivered.String()).Add(float64(n))
	}
	return err
}

// post is one POST of a gzipped JSON body (logs or series) with the
// tenant's API key.
func (s *Sink) post(ctx context.Context, cn *conn, url string, gz []byte) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(gz))
	if err != nil {
		return answer{err: err}
	}
	// Replayable: when a server closed an idle connection just as it was
	// reused, net/http retries on a fresh one at once instead of failing
	// into a backoff. Safe: logs are at least once, series whole totals.
	tallyOf(ctx).add(func(r *Receipt) { r.Bytes += int64(len(gz)) })
	req.Header["X-Idempotency-Key"] = nil
	req.Header.Set("DD-API-KEY", string(cn.apiKey))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", s.dd.api.GetConfig().UserAgent)
	resp, err := s.dd.httpc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode >= 300 {
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return a
}

// shortened is a copy of ev with every string field cut to n bytes.
func shortened(ev *schemas.Event, n int) *schemas.Event {
	c := *ev
	for _, f := range []*string{&c.RequestID, &c.TraceID, &c.Model, &c.ResolvedModel, &c.Provider, &c.ErrorMessage,
		&c.ErrorCode, &c.AuthKeyID, &c.UserID, &c.SessionID, &c.OrgID, &c.GatewayID, &c.RoutingStrategy} {
		*f = truncate(*f, n)
	}
	return &c
}
