package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/schemas/gen"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// produceHistory writes n records of org with event times over [at,
// at+span), stamped in Kafka with their event time, as the gateway's
// producer stamps them when it writes.
func (e *env) produceHistory(org string, n int, at time.Time, span time.Duration, seed int64) []sent {
	e.t.Helper()
	g := gen.New(gen.Config{Tenants: []string{org}, Seed: seed})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	out := make([]sent, 0, n)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		ts := at.Add(time.Duration(rng.Int64N(int64(span))))
		_, v, _ := g.Next(ts)
		s := sent{partition: rng.IntN(partitions), value: v}
		if err := schemas.Decode(v, &s.ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
		recs = append(recs, &kgo.Record{Partition: int32(s.partition), Value: v, Timestamp: s.ev.Timestamp})
		_ = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	for i, r := range recs {
		out[i].offset = r.Offset
	}
	return out
}

// apiTry is apiCall to a replica that may not listen yet: status 0 then.
func apiTry(addr, token, method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// backfillView reads the integration's status and backfill object; ok is
// false while the replica does not answer yet.
func backfillView(addr, token, id string) (status string, bf map[string]any, ok bool) {
	st, v := apiTry(addr, token, "GET", "/api/v1/integrations/"+id, nil)
	if st != http.StatusOK {
		return "", nil, false
	}
	bf, _ = v["backfill"].(map[string]any)
	status, _ = v["status"].(string)
	return status, bf, true
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// syncs reads every history entry of the integration.
// syncs reads every page of an integration's sync history; ok is false
// while the replica answers 503 not_ready (it has not read the history
// topic to its end yet, which the API documents as "try again"): a
// replica started a moment ago can answer for the integration before it
// can for its history.
func syncs(t *testing.T, addr, token, id string) (out []map[string]any, ok bool) {
	t.Helper()
	cursor := ""
	for {
		path := "/api/v1/integrations/" + id + "/syncs?limit=500"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		st, v := apiCall(t, addr, token, "GET", path, nil)
		if e, _ := v["error"].(map[string]any); st == http.StatusServiceUnavailable && e["code"] == "not_ready" {
			return nil, false
		}
		if st != http.StatusOK {
			t.Fatalf("syncs: %d %v", st, v)
		}
		rows, _ := v["syncs"].([]any)
		for _, r := range rows {
			out = append(out, r.(map[string]any))
		}
		cursor, _ = v["next_cursor"].(string)
		if cursor == "" {
			return out, true
		}
	}
}

// TestFaultBackfillAllAgesAcrossKill9 is issue 12's evidence for backfill and
// history. One org's history sits in the gateway topic at three ages (30
// minutes, 3 hours, 20 hours), with another org's beside it; the org is
// connected through the API with "all" while live traffic flows, and the
// replica running the backfill is killed -9 halfway. Then:
//   - every log younger than 18 h arrived, none older, duplicates only
//     from the replay since the last commit;
//   - the 30-minute-old windows' metrics are exact; the older windows have
//     no points, and are counted as too old;
//   - the live traffic of both orgs kept flowing and its windows are exact;
//   - the sync history agrees, window by window, with what the stand-in
//     accepted.
func TestFaultBackfillAllAgesAcrossKill9(t *testing.T) {
	needRealBroker(t)
	tenants := []testTenant{
		{ID: "org_bf", APIKey: "bf0000000000000000000000000000aa", Interval: time.Minute, NoIntegr: true},
		{ID: "org_live", APIKey: "live00000000000000000000000000aa", Interval: time.Minute},
	}
	e := newEnv(t, tenants)
	e.newOnly = true
	e.writeTenants()
	now := time.Now()
	ages := []time.Duration{30 * time.Minute, 3 * time.Hour, 20 * time.Hour}
	var hist []sent
	for i, age := range ages {
		hist = append(hist, e.produceHistory("org_bf", 300, now.Add(-age), 3*time.Minute, int64(10+i))...)
		e.produceHistory("org_live", 150, now.Add(-age), 3*time.Minute, int64(20+i))
	}

	s, token := e.apiSettings()
	apiEnv := []string{"PRISM_API_TOKENS_FILE=" + s.APITokensFile, "PRISM_SECRETS_KEY=" + string(s.SecretsKey),
		// Slow enough to kill it halfway: about 12 s for the history.
		"PRISM_BACKFILL_RATE=150", "PRISM_BACKFILL_READERS=2"}
	a := e.startMember("a", apiEnv...)
	e.readCutoffs(60 * time.Second)
	traffic := e.startTraffic(200, 0, 91)

	var id string
	waitFor(t, "the API answers", 60*time.Second, func() bool {
		st, created := apiTry(a.http, token, "POST", "/api/v1/integrations", map[string]any{
			"org_id": "org_bf", "site": "US1", "api_key": tenants[0].APIKey, "sync_interval": "1m",
			"historical": map[string]any{"mode": "all"},
		})
		if st == http.StatusCreated {
			id = created["id"].(string)
			return true
		}
		if st != 0 && st != http.StatusServiceUnavailable {
			t.Fatalf("create: %d %v", st, created)
		}
		return false
	})

	// Halfway through the scan, kill the replica running it.
	waitFor(t, "the backfill is halfway", 120*time.Second, func() bool {
		st, bf, _ := backfillView(a.http, token, id)
		pct, _ := bf["percent"].(float64)
		return st == "backfilling" && pct >= 30
	})
	_, bf, _ := backfillView(a.http, token, id)
	t.Logf("killing the runner at %v%%", bf["percent"])
	started, _ := time.Parse(time.RFC3339Nano, bf["started_at"].(string))
	killedAt := time.Now()
	a.kill()
	b := e.startMember("b", apiEnv...)
	waitFor(t, "the backfill is done", 180*time.Second, func() bool {
		st, bf, ok := backfillView(b.http, token, id)
		if !ok {
			return false
		}
		if bf["state"] == "failed" {
			t.Fatalf("backfill failed: %v", bf)
		}
		return bf["state"] == "done" && st != "backfilling"
	})
	_, bf, _ = backfillView(b.http, token, id)
	time.Sleep(12 * time.Second) // live traffic after the backfill, for its freshness
	live := traffic.finish()
	e.waitCommitted(60 * time.Second)
	b.terminate(30 * time.Second)
	t.Logf("backfill: %v", bf)

	// The live org's freshness (a log's arrival less its event time) while
	// the backfill ran, before the kill, against after it ended.
	finished, _ := time.Parse(time.RFC3339Nano, bf["finished_at"].(string))
	var during, after []time.Duration
	for _, l := range e.dd.Logs("org_live") {
		switch {
		case l.Date.After(started) && l.Date.Before(killedAt):
			during = append(during, l.Received.Sub(l.Date))
		case l.Date.After(finished.Add(5 * time.Second)):
			after = append(after, l.Received.Sub(l.Date))
		}
	}
	p95 := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[len(ds)*95/100]
	}
	t.Logf("org_live freshness p95: %v while backfilling (%d logs), %v after (%d logs)", p95(during), len(during), p95(after), len(after))
	if len(during) == 0 || len(after) == 0 || p95(during) > max(2*p95(after), p95(after)+3*time.Second) {
		t.Errorf("live freshness p95 %v while backfilling, %v after: the backfill slowed live traffic", p95(during), p95(after))
	}

	// Logs: the 30 min and 3 h ones once or more, the 20 h ones never.
	logs := e.dd.Logs("org_bf")
	got := map[string]int{}
	for _, l := range logs {
		rid, _ := l.Attributes["request_id"].(string)
		got[rid]++
	}
	missing, dups, old := 0, 0, 0
	for _, r := range hist {
		n := got[r.ev.RequestID]
		switch {
		case now.Sub(r.ev.Timestamp) > 18*time.Hour:
			old += n
		case n == 0:
			missing++
		default:
			dups += n - 1
		}
	}
	if missing > 0 || old > 0 {
		t.Errorf("history logs: %d missing, %d older than 18 h sent", missing, old)
	}
	t.Logf("history logs duplicated by the kill -9: %d of %d", dups, 2*300)
	if dups > 300 {
		t.Errorf("%d duplicates: more than the replay since a commit can make", dups)
	}
	if n := num(bf["logs_too_old"]); n < 300 {
		t.Errorf("logs_too_old %d, want at least the 300 of 20 h ago", n)
	}
	if n := num(bf["metric_windows_too_old"]); n < 6 {
		t.Errorf("metric_windows_too_old %d, want the windows of 3 h and 20 h ago", n)
	}

	// Metrics: exact for the 30-minute-old windows, none older.
	want := map[int64]int64{} // window start (s) -> requests
	for _, r := range hist {
		if now.Sub(r.ev.Timestamp) < time.Hour {
			want[r.ev.Timestamp.Truncate(time.Minute).Unix()]++
		}
	}
	// The live traffic's: before the cut-off through the backfill (it
	// ran before the connect), after it through the live export.
	for _, r := range live {
		if r.ev.OrgID == "org_bf" && !r.bad {
			want[r.ev.Timestamp.Truncate(time.Minute).Unix()]++
		}
	}
	have := map[int64]int64{}
	for _, p := range e.dd.Points("org_bf") {
		if p.Metric == "prism.gateway.requests" {
			have[p.Timestamp] += int64(p.Value)
		}
	}
	for ts, n := range have {
		if now.Unix()-ts > 3600 {
			t.Errorf("a point %s old was sent", time.Duration(now.Unix()-ts)*time.Second)
		}
		if want[ts] != n {
			t.Errorf("window %s: %d requests in Datadog, want %d", time.Unix(ts, 0).UTC(), n, want[ts])
		}
	}
	for ts, n := range want {
		if _, ok := have[ts]; !ok {
			t.Errorf("window %s: no point, want %d requests", time.Unix(ts, 0).UTC(), n)
		}
	}
	// The live org's windows stayed exact while the backfill ran.
	e.tenants = tenants[1:]
	e.checkDatadog(live, false)

	// History: each entry as the stand-in saw its window.
	b2 := e.startMember("c", apiEnv...)
	var entries []map[string]any
	waitFor(t, "the history", 60*time.Second, func() bool {
		st, _ := apiTry(b2.http, token, "GET", "/api/v1/integrations/"+id, nil)
		if st != http.StatusOK {
			return false
		}
		var ready bool
		entries, ready = syncs(t, b2.http, token, id)
		return ready && len(entries) > 0
	})
	checkHistory(t, entries, logs, have, now)
}

// checkHistory holds every entry to what the stand-in accepted in its
// window: the logs whose date falls in it, and its requests point. A log
// sent twice because of the kill -9 (its first sending was accepted but
// not yet recorded when the replica died) may be counted once: an entry's
// logs_sent lies between the window's distinct logs and all it holds.
func checkHistory(t *testing.T, entries []map[string]any, logs []ddfake.Log, points map[int64]int64, now time.Time) {
	t.Helper()
	perWindow, distinct := map[int64]int64{}, map[int64]map[string]bool{}
	for _, l := range logs {
		w := l.Date.Truncate(time.Minute).Unix()
		perWindow[w]++
		if distinct[w] == nil {
			distinct[w] = map[string]bool{}
		}
		rid, _ := l.Attributes["request_id"].(string)
		distinct[w][rid] = true
	}
	outcomes := map[string]int{}
	var bad []string
	var undercount int64
	for _, e := range entries {
		start, _ := time.Parse(time.RFC3339Nano, e["window_start"].(string))
		outcome, _ := e["outcome"].(string)
		outcomes[outcome]++
		ts := start.Unix()
		if l := num(e["logs_sent"]); l < int64(len(distinct[ts])) || l > perWindow[ts] {
			bad = append(bad, fmt.Sprintf("%s %s: logs_sent %d, the stand-in holds %d (%d distinct)", start.Format(time.TimeOnly), outcome, l, perWindow[ts], len(distinct[ts])))
		}
		undercount += perWindow[ts] - num(e["logs_sent"])
		if now.Sub(start) < 50*time.Minute {
			if r := num(e["records"]); r != points[ts] {
				bad = append(bad, fmt.Sprintf("%s %s: records %d, the requests point is %d", start.Format(time.TimeOnly), outcome, r, points[ts]))
			}
			if num(e["metric_points_sent"]) == 0 || outcome != "success" {
				bad = append(bad, fmt.Sprintf("%s: %s with %d points", start.Format(time.TimeOnly), outcome, num(e["metric_points_sent"])))
			}
		} else if outcome != "too_old" && now.Sub(start) > 70*time.Minute {
			bad = append(bad, fmt.Sprintf("%s: %s, want too_old", start.Format(time.TimeOnly), outcome))
		}
	}
	t.Logf("%d history entries: %v; duplicate logs the history does not count: %d", len(entries), outcomes, undercount)
	if len(bad) > 0 {
		t.Errorf("history disagrees with the stand-in:\n%s", strings.Join(bad, "\n"))
	}
	if outcomes["too_old"] < 6 || outcomes["success"] < 3 {
		t.Errorf("outcomes %v: want the old windows too_old and the recent ones success", outcomes)
	}
}

// TestIntegrationBackfillOnDefaults connects an org with history "all" as
// the README's API example would, on every backfill setting's default:
// its history of 20 minutes ago reaches Datadog once, with its metrics,
// and its sync history says so.
func TestIntegrationBackfillOnDefaults(t *testing.T) {
	tenants := []testTenant{{ID: "org_bf", APIKey: "bf0000000000000000000000000000aa", Interval: time.Minute, NoIntegr: true}}
	e := newEnv(t, tenants)
	hist := e.produceHistory("org_bf", 200, time.Now().Add(-20*time.Minute), 2*time.Minute, 5)
	s, token := e.apiSettings()
	r := e.startReplica(s)
	st, created := apiCall(t, r.run.apiAddr, token, "POST", "/api/v1/integrations", map[string]any{
		"org_id": "org_bf", "site": "US1", "api_key": tenants[0].APIKey, "historical": map[string]any{"mode": "all"},
	})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, created)
	}
	id := created["id"].(string)
	// The API's default sync interval, as no field asked for one.
	interval, err := time.ParseDuration(created["sync_interval"].(string))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backfill is done", 90*time.Second, func() bool {
		_, bf, _ := backfillView(r.run.apiAddr, token, id)
		if bf["state"] == "failed" {
			t.Fatalf("backfill failed: %v", bf)
		}
		return bf["state"] == "done"
	})
	got := map[string]int{}
	for _, l := range e.dd.Logs("org_bf") {
		rid, _ := l.Attributes["request_id"].(string)
		got[rid]++
	}
	want := map[int64]int64{}
	for _, h := range hist {
		if got[h.ev.RequestID] != 1 {
			t.Errorf("log of %s arrived %d times, want once", h.ev.RequestID, got[h.ev.RequestID])
		}
		want[h.ev.Timestamp.Truncate(interval).Unix()]++
	}
	var entries []map[string]any
	waitFor(t, "the windows' metrics and history", 60*time.Second, func() bool {
		have := map[int64]int64{}
		for _, p := range e.dd.Points("org_bf") {
			if p.Metric == "prism.gateway.requests" {
				have[p.Timestamp] += int64(p.Value)
			}
		}
		var ready bool
		entries, ready = syncs(t, r.run.apiAddr, token, id)
		if !ready || !maps.Equal(have, want) || len(entries) != len(want) {
			return false
		}
		// The combiner may send a window's early total before its last
		// shares fold (design.md, "Send"); the later total replaces the
		// entry, which reaches the history a moment after its points
		// reach the stand-in.
		for _, en := range entries {
			start, _ := time.Parse(time.RFC3339Nano, en["window_start"].(string))
			if num(en["records"]) != want[start.Unix()] {
				return false
			}
		}
		return true
	})
	for _, en := range entries {
		start, _ := time.Parse(time.RFC3339Nano, en["window_start"].(string))
		if en["outcome"] != "success" || en["source"] != "backfill" || num(en["records"]) != want[start.Unix()] || num(en["logs_sent"]) != want[start.Unix()] {
			t.Errorf("history entry %v: want success, backfill, %d records and logs", en, want[start.Unix()])
		}
	}
}
