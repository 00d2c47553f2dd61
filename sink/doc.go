// Package sink delivers the exporter's batches to each tenant's own Datadog
// account, one log per request record and per-window metric series, and
// keeps the tenant registry: which organisations are connected, with which
// keys and site, and in which state. Only this package imports the Datadog
// API client.
//
// # Isolation
//
// Every tenant has its own queue, its own workers (Config.Concurrency
// requests in flight), its own backoff and its own state, so that one slow,
// rate-limited or misconfigured account never holds up another. Workers
// exist only while a tenant has work.
//
// # Outcomes
//
// Deliver never blocks; done is called exactly once, never from within
// Deliver:
//
//   - Delivered: Datadog accepted everything that was sent. Items it refused
//     for good (400, or 413 for a single item) were dead-lettered; data it
//     would silently drop (logs over 18 h old, points over 1 h old or over
//     10 min ahead) was counted and not sent.
//   - Undeliverable: the tenant is in Error (Datadog refused its key).
//   - Skipped: no integration, removed, paused, or everything too old.
//   - Abandoned: Close gave up waiting; do not commit.
//
// # Answers from Datadog (retry.go)
//
// 2xx is accepted. 408, 429, 5xx, other unexpected 4xx, timeouts and
// connection errors are retried forever with exponential backoff and full
// jitter (500 ms doubling, capped at Config.MaxBackoff), waiting at least
// Retry-After and, on a 429, X-RateLimit-Reset (Datadog sends the rate-limit
// headers on every answer, so Reset alone does not mean "wait"). 413 splits
// the request in halves; 400 bisects it down to the refused items, which
// are dead-lettered with the reason. 401/403 put the tenant in Error with
// advice for the /status page; it leaves Error when its tenants-file entry
// changes and its keys validate.
//
// # Formats
//
// Logs (logenc.go) are encoded by hand into pooled buffers and gzipped at
// the fastest level: message "[provider] model status=N latency=Nms
// tokens=N cost=$C", plus ` error="..."` (Go-quoted) for a failed request
// with an error message; the cost has at most 4 decimals, trailing zeros
// removed, and two significant digits below $0.00005. The date is the
// `timestamp` attribute in epoch milliseconds. String attributes are left out
// when empty; numbers and flags are always written. ddtags carry model,
// provider, status_code, gateway, error, cache, guardrail and routing on
// every log ("unknown" / "none" when absent), made valid as tags.
//
// Series (series.go) are encoded by hand too, as the MetricPayload the
// client's SubmitMetrics would send (a test reads them back through the
// client's model), and POSTed to the host the client's server selection
// names: the client's reflection-based encoding was half of the exporter's
// CPU. Eight COUNTs with the window as interval and five latency GAUGEs,
// stamped with the window's start and tagged with model, provider, gateway,
// routing and partition. A window's series go before its logs, and ahead of
// queued chunks of logs. The client is kept for key validation and server
// selection.
package sink
