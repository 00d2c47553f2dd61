package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

func backfillOf(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	b, ok := body["backfill"].(map[string]any)
	if !ok {
		t.Fatalf("no backfill in %v", body)
	}
	return b
}

func parseAt(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("not a time: %v", v)
	}
	return at
}

// TestBackfillAtConnectAndThroughTheAPI: connecting with all makes a job
// up to the cut-off and the answer says what of it Datadog will take; the
// status is backfilling with a percentage while it runs; a second one is
// refused while it is active; DELETE cancels it; a new one covers a range
// asked for; deleting the integration cancels its job.
func TestBackfillAtConnectAndThroughTheAPI(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	created := w.create("acme", map[string]any{"site": "US1", "api_key": keyA, "historical": map[string]any{"mode": "all"}})
	id := created["id"].(string)
	cut := parseAt(t, created["connected_at"])
	bf := backfillOf(t, created)
	if bf["state"] != "pending" || !parseAt(t, bf["to"]).Equal(cut) || !parseAt(t, bf["from"]).Equal(cut.Add(-integrations.LogsMaxAge)) {
		t.Fatalf("the job of an all integration: %v (cut-off %v)", bf, cut)
	}
	cov, _ := bf["coverage"].(map[string]any)
	both, _ := cov["logs_and_metrics"].(map[string]any)
	logsOnly, _ := cov["logs_only"].(map[string]any)
	if both == nil || logsOnly == nil || cov["not_sent"] != nil {
		t.Fatalf("coverage of all: %v", cov)
	}
	asOf := parseAt(t, cov["as_of"])
	if !parseAt(t, logsOnly["to"]).Equal(asOf.Add(-integrations.MetricsMaxAge)) || !parseAt(t, both["to"]).Equal(cut) {
		t.Errorf("coverage boundaries: %v", cov)
	}
	if created["status"] != "backfilling" {
		t.Errorf("status at connect: %v", created["status"])
	}

	// Nobody else sees it; a viewer may not start or cancel one.
	for _, who := range []string{"bravo", "acme-ro"} {
		st, body := w.call("POST", "/api/v1/integrations/"+id+"/backfill", who, map[string]any{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"})
		want, code := 404, "not_found"
		if who == "acme-ro" {
			want, code = 403, "forbidden"
		}
		w.wantError(st, body, want, code, "")
		st, body = w.call("DELETE", "/api/v1/integrations/"+id+"/backfill", who, nil)
		w.wantError(st, body, want, code, "")
	}
	now := time.Now().UTC()
	good := map[string]any{"from": now.Add(-30 * time.Hour).Format(time.RFC3339), "to": now.Add(-10 * time.Minute).Format(time.RFC3339)}
	st, body := w.call("POST", "/api/v1/integrations/"+id+"/backfill", "acme", good)
	w.wantError(st, body, 409, "backfill_running", "")

	// A runner takes it and records half of it.
	job, ok, err := w.jobs.Claim(ctx, "runner-1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	job.Partitions = map[int32]integrations.PartitionProgress{0: {Start: 0, End: 100, Next: 50}, 1: {Start: 0, End: 100, Next: 50}}
	job.Matched, job.LogsSent, job.LogsTooOld, job.WindowsTooOld = 40, 30, 10, 3
	if _, err := w.jobs.Progress(ctx, "runner-1", job, time.Minute); err != nil {
		t.Fatal(err)
	}
	got := w.waitStatus(id, "acme-ro", "backfilling")
	bf = backfillOf(t, got)
	if bf["state"] != "running" || bf["percent"] != 50.0 || bf["records_scanned"] != 100.0 || bf["records_to_scan"] != 200.0 ||
		bf["logs_sent"] != 30.0 || bf["logs_too_old"] != 10.0 || bf["metric_windows_too_old"] != 3.0 || bf["started_at"] == nil || bf["coverage"] != nil {
		t.Fatalf("running backfill: %v", bf)
	}
	if !strings.Contains(got["status_message"].(string), "50%") {
		t.Errorf("status message: %v", got["status_message"])
	}

	// Cancel: the runner learns it, the status goes back to the live one.
	st, body = w.call("DELETE", "/api/v1/integrations/"+id+"/backfill", "acme", nil)
	if st != 200 || body["state"] != "cancelled" || body["finished_at"] == nil {
		t.Fatalf("cancel: %d %v", st, body)
	}
	if _, err := w.jobs.Progress(ctx, "runner-1", job, time.Minute); err == nil {
		t.Fatal("the runner of a cancelled job may still write")
	}
	got = w.waitStatus(id, "acme", "active")
	if backfillOf(t, got)["state"] != "cancelled" {
		t.Errorf("after cancel: %v", got)
	}
	st, body = w.call("DELETE", "/api/v1/integrations/"+id+"/backfill", "acme", nil)
	w.wantError(st, body, 404, "not_found", "")

	// Bad requests name the field.
	for _, c := range []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"no from", map[string]any{"to": good["to"]}, "missing_field", "from"},
		{"no to", map[string]any{"from": good["from"]}, "missing_field", "to"},
		{"not a time", map[string]any{"from": "yesterday", "to": good["to"]}, "invalid_field", "from"},
		{"backwards", map[string]any{"from": good["to"], "to": good["from"]}, "invalid_field", "to"},
		{"empty", map[string]any{"from": good["to"], "to": good["to"]}, "invalid_field", "to"},
		{"in the future", map[string]any{"from": good["from"], "to": now.Add(time.Hour).Format(time.RFC3339)}, "invalid_field", "to"},
		{"unknown field", map[string]any{"from": good["from"], "to": good["to"], "mode": "all"}, "unknown_field", "mode"},
	} {
		st, body := w.call("POST", "/api/v1/integrations/"+id+"/backfill", "acme", c.body)
		code, field := errCode(body)
		if st != 400 || code != c.code || field != c.field {
			t.Errorf("%s: %d %s %q, want 400 %s %q", c.name, st, code, field, c.code, c.field)
		}
	}

	// A new one, partly older than Datadog takes logs: accepted, and the
	// answer says which part will not be sent.
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/backfill", "acme", good)
	if st != 202 || body["state"] != "pending" || body["id"] == bf["id"] {
		t.Fatalf("new backfill: %d %v", st, body)
	}
	cov, _ = body["coverage"].(map[string]any)
	notSent, _ := cov["not_sent"].(map[string]any)
	if notSent == nil || cov["logs_only"] == nil || cov["logs_and_metrics"] == nil || notSent["from"] != good["from"] {
		t.Fatalf("coverage of a range 30 h back: %v", cov)
	}
	w.waitStatus(id, "acme", "backfilling")
	job, ok, _ = w.jobs.Claim(ctx, "runner-2", time.Minute)
	if !ok {
		t.Fatal("the new job was not claimable")
	}
	if err := w.jobs.Finish(ctx, "runner-2", job, integrations.JobDone, ""); err != nil {
		t.Fatal(err)
	}
	got = w.waitStatus(id, "acme", "active")
	if bf := backfillOf(t, got); bf["state"] != "done" || bf["percent"] != 100.0 || bf["finished_at"] == nil {
		t.Errorf("done: %v", bf)
	}

	// Paused: refused; deleting the integration cancels a pending job.
	w.call("POST", "/api/v1/integrations/"+id+"/pause", "acme", nil)
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/backfill", "acme", good)
	w.wantError(st, body, 409, "paused", "")
	w.call("POST", "/api/v1/integrations/"+id+"/resume", "acme", nil)
	if st, body := w.call("POST", "/api/v1/integrations/"+id+"/backfill", "acme", good); st != 202 {
		t.Fatalf("backfill after resume: %d %v", st, body)
	}
	if st, _ := w.call("DELETE", "/api/v1/integrations/"+id, "acme", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if j, _ := w.jobs.Get(id); j.State != integrations.JobCancelled {
		t.Fatalf("the deleted integration's job: %+v", j)
	}
	w.checkNoSecrets()
	w.checkNoSecretsIn("backfills")
}

// TestBackfillViews: a new_only integration shows no backfill; a range
// that ends after the cut-off is backfilled up to the cut-off only; a
// tenants-file integration cannot be backfilled through the API.
func TestBackfillViews(t *testing.T) {
	w := newWorld(t)
	created := w.create("acme", map[string]any{"site": "US1", "api_key": keyA})
	if _, there := created["backfill"]; !there || created["backfill"] != nil {
		t.Errorf("new_only: backfill %v", created["backfill"])
	}
	w.call("DELETE", "/api/v1/integrations/"+created["id"].(string), "acme", nil)

	from := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	created = w.create("acme", map[string]any{"site": "US1", "api_key": keyA, "historical": map[string]any{
		"mode": "range", "from": from.Format(time.RFC3339), "to": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}})
	bf := backfillOf(t, created)
	if !parseAt(t, bf["from"]).Equal(from) || !parseAt(t, bf["to"]).Equal(parseAt(t, created["connected_at"])) {
		t.Errorf("range past the cut-off: %v (cut-off %v)", bf, created["connected_at"])
	}
	cov := bf["coverage"].(map[string]any)
	if cov["not_sent"] != nil || cov["logs_only"] == nil {
		t.Errorf("coverage of 3 h: %v", cov)
	}

	if err := w.svc.SyncFile(context.Background(), "/etc/prism/tenants.yaml", []sink.Tenant{{ID: "org_b", Site: sink.SiteUS1, APIKey: keyB, SyncInterval: time.Minute, Backfill: true}}, true); err != nil {
		t.Fatal(err)
	}
	st, body := w.call("POST", "/api/v1/integrations/"+integrations.FileID("org_b")+"/backfill", "bravo",
		map[string]any{"from": from.Format(time.RFC3339), "to": time.Now().Add(-time.Minute).Format(time.RFC3339)})
	w.wantError(st, body, 409, "managed_by_file", "")
	if _, body := w.call("GET", "/api/v1/integrations/"+integrations.FileID("org_b"), "bravo", nil); body["backfill"] != nil {
		t.Errorf("a tenants-file integration has a job: %v", body["backfill"])
	}
}

// checkNoSecretsIn looks for every key of the test in a topic.
func (w *world) checkNoSecretsIn(topic string) {
	w.t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: w.brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var raw strings.Builder
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		raw.Write(m.Value)
	}
	if raw.Len() == 0 {
		w.t.Fatalf("read nothing from %s", topic)
	}
	for _, key := range allKeys {
		if strings.Contains(raw.String(), key) || strings.Contains(raw.String(), key[:16]) {
			w.t.Errorf("a key appears in %s", topic)
		}
	}
}
