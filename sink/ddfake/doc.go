// Package ddfake is a local stand-in for the parts of the public Datadog API
// that the exporter uses, so tests and the demo can run without reaching
// Datadog. It is test support: it keeps everything it accepts in memory.
//
// It follows Datadog's public documentation (and the OpenAPI specs shipped in
// datadog-api-client-go v2.67.0, .generator/schemas/v{1,2}/openapi.yaml, from
// which the API reference pages are generated), not any client's behaviour:
//
//   - "Send logs", https://docs.datadoghq.com/api/latest/logs/#send-logs
//     (POST /api/v2/logs): 5MB uncompressed per request, 1MB per log (larger
//     logs are truncated and the request still succeeds), 1000 entries per
//     array, Content-Encoding gzip or deflate, logs up to 18 hours old,
//     answers 202/400/401/403/408/413/429/500/503.
//   - "Submit metrics" (v2), https://docs.datadoghq.com/api/latest/metrics/#submit-metrics
//     (POST /api/v2/series): 500 kilobytes (512000 bytes) per payload, a
//     compressed payload must decompress to less than 5 megabytes (5242880
//     bytes), points not more than 10 minutes in the future nor more than
//     1 hour in the past, answers 202/400/403/408/413/429.
//   - "Submit distribution points",
//     https://docs.datadoghq.com/api/latest/metrics/#submit-distribution-points
//     (POST /api/v1/distribution_points).
//   - "Validate API key", https://docs.datadoghq.com/api/latest/authentication/#validate-api-key
//     (GET /api/v1/validate) and "Validate API and application keys",
//     https://docs.datadoghq.com/api/latest/key-management/ (GET /api/v2/validate_keys).
//   - "Dashboards", https://docs.datadoghq.com/api/latest/dashboards/
//     (POST /api/v1/dashboard; GET, PUT, DELETE /api/v1/dashboard/{id}) and
//     "Monitors", https://docs.datadoghq.com/api/latest/monitors/ (GET, POST
//     /api/v1/monitor; GET, PUT, DELETE /api/v1/monitor/{id}), both needing
//     the API key and an application key of the same account (403
//     otherwise). The Dashboard schema requires title, layout_type (ordered
//     or free) and widgets, and takes at most 5 tags, each team:<name>; the
//     Monitor schema requires type (the MonitorType enum) and query. Errors
//     are APIErrorResponse, {"errors":["..."]}; unknown ids answer 404.
//     Answers carry the read-only fields: a dashboard's id ("abc-123-def"),
//     url (/dashboard/<id>/<title slug>), author and times, its widgets'
//     ids; a monitor's integer id, creator, times, overall_state and multi.
//     Deletions answer {"deleted_dashboard_id": id} and
//     {"deleted_monitor_id": id}.
//   - "Rate Limits", https://docs.datadoghq.com/api/latest/rate-limits/
//     (the X-RateLimit-* headers; Reset is seconds until the window resets,
//     Period is calendar aligned).
//   - "Getting Started with Tags", https://docs.datadoghq.com/getting_started/tagging/#define-tags
//     (tag rules applied when storing points).
//
// # Choices where the documentation is silent or ambiguous
//
//   - "MB" in the logs limits is read as binary: 5MB = 5,242,880 bytes and
//     1MB = 1,048,576 bytes, because the same API reference spells its
//     megabytes out that way ("5 megabytes (5242880 bytes)" on Submit
//     metrics). Exactly 5,242,880 uncompressed bytes is accepted, one more is
//     413. WithLimits can make the fake stricter (for example 5,000,000).
//   - More than 1000 log entries: 400. The documented 413 is described as
//     "batch is above 5MB uncompressed", so the count limit gets the generic
//     "issue in the payload formatting" code.
//   - A log item must be a JSON object with a string "message" (the
//     HTTPLogItem schema marks it required); otherwise the request is 400 and
//     nothing from it is stored.
//   - Unsupported Content-Encoding: 400 (neither endpoint documents 415).
//     Logs accept identity, gzip, deflate; series accept identity, gzip,
//     deflate and zstd1 (implemented with klauspost/compress);
//     distribution_points accept identity and deflate only, as its spec enum
//     says. "deflate" is the zlib format (RFC 9110), not raw DEFLATE.
//   - /api/v2/series with no DD-API-KEY: 403, because that operation
//     documents no 401. The logs intake answers 401 for a missing key.
//   - /api/v2/validate_keys: the spec allows 401 or 403; the fake answers
//     403 {"errors":["Forbidden"]} for every failure.
//   - A truncated log keeps its first 1MB of raw bytes in Log.Raw (which may
//     then not be valid JSON) and its message is shortened by the excess;
//     Log.Truncated says so. Datadog does not document where it cuts.
//   - Tags are normalised as documented: lower-cased, characters other than
//     letters, digits, '_', '-', ':', '.', '/' become '_', at most 200
//     characters, no trailing ':'. Unicode letters are kept (the tagging page
//     says tags "support Unicode"). Leading non-letters are stripped; a tag
//     with nothing left is discarded. Runs of '_' are not collapsed.
//   - Series identity is (metric, normalised sorted tag set, host resource,
//     timestamp); the last write wins, type and interval included.
//   - distribution_points has no documented size limit; the fake applies the
//     v1 metrics intake limits of POST /api/v1/series (3,200,000 bytes on the
//     wire, less than 62,914,560 decompressed) and the series age window.
//     Distribution values are appended, never overwritten.
//   - Datadog does not rate-limit log or metric submission, but its specs list
//     429 and all answers carry the X-RateLimit-* headers here. The fake
//     enforces a per-account, per-endpoint fixed window (WithRateLimit;
//     default 1,000,000 requests per 60 s, effectively unlimited) on the
//     injected clock. Use Fault for deliberate 429s.
//   - Faults use the real clock (Fault.For, Fault.Delay): they shape what the
//     exporter experiences in real time, while WithClock only moves the age
//     checks and rate-limit windows.
//   - If a request's Host is api.<site> or http-intake.logs.<site> for a known
//     site and the key's Account.Site is set and differs, the key is treated
//     as unknown (403), as keys belong to one site. Otherwise Site is ignored.
//   - Dashboards: each widget needs a definition whose type is a widget
//     type of the spec; timeseries, query_value, toplist and the other
//     request-based widgets need requests, each a legacy q or formula
//     queries (data_source, name, query) whose formulas name only those
//     queries; a free layout needs every widget's layout; a group holds an
//     ordered list of widgets. Queries themselves are not parsed.
//   - Monitors: "query alert" and "metric alert" queries must match the
//     documented grammar time_aggr(last_#m|h|1d|1w):query operator #, and
//     options.thresholds.critical, when given, must equal the query's
//     threshold (Datadog: "Alert threshold ... does not match that used in
//     the query"). name and message are optional, as in the schema. PUT
//     merges the given fields (MonitorUpdateRequest) and refuses a type
//     change. monitor_tags lists tags a monitor must all carry.
//
// # Not modelled
//
//   - text/plain and application/logplex-1 log bodies, query-string attributes
//     other than ddtags, the dd-api-key / api_key query parameters, and
//     Content-Type checks (every body is parsed as JSON).
//   - Any limit on logs dated in the future, log pipelines, processors,
//     indexes, exclusion filters, reserved-attribute remapping beyond reading
//     message/status/service/ddsource/hostname/ddtags and the date.
//   - Metric name validation, units and metadata, resources other than host,
//     Historical Metrics Ingestion, rollups and aggregation across
//     timestamps, custom-metric billing and quotas.
//   - Percentile computation for distributions, the v1 /api/v1/series endpoint,
//     events, dashboard lists, listing, restoring or sharing dashboards,
//     monitor search, validation, downtimes and states, and every other API.
//   - Per-site hosts: all endpoints are served on one address.
//   - HTTP/2, TLS, and the intake's proxy or load-balancer behaviour.
package ddfake
