package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
)

// replica is one exporter run in this process.
type replica struct {
	run  *running
	stop func()
}

// startReplica runs serve with s until the test ends, and returns once it
// is wired.
func (e *env) startReplica(s settings) *replica {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *running, 1)
	done := make(chan error, 1)
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	go func() { done <- serve(ctx, s, log, func(r *running) { got <- r }) }()
	var once sync.Once
	r := &replica{stop: func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("replica: %v", err)
			}
		})
	}}
	e.t.Cleanup(r.stop)
	select {
	case r.run = <-got:
	case err := <-done:
		e.t.Fatalf("replica stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		e.t.Fatal("replica not started in 60s")
	}
	return r
}

// apiSettings turns the API on: a tokens file with one admin token, and a
// secrets key.
func (e *env) apiSettings() (settings, string) {
	e.t.Helper()
	var k [32]byte
	_, _ = rand.Read(k[:])
	token := "test-admin-token-0001"
	sum := sha256.Sum256([]byte(token))
	path := filepath.Join(e.t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n  - name: ops\n    sha256: "+hex.EncodeToString(sum[:])+"\n    role: admin\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	s := e.settings()
	s.APITokensFile, s.SecretsKey = path, sink.Secret(base64.StdEncoding.EncodeToString(k[:]))
	return s, token
}

func apiCall(t *testing.T, addr, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// logsFrom counts org's logs whose event time is at or after t.
func (e *env) logsFrom(org string, t time.Time) int {
	n := 0
	for _, l := range e.dd.Logs(org) {
		if !l.Date.Before(t) {
			n++
		}
	}
	return n
}

// TestIntegrationTwoReplicasFollowTheAPI: an integration created through
// one replica is exported by both within seconds; pause, resume, an edit
// and delete made through either apply on both.
func TestIntegrationTwoReplicasFollowTheAPI(t *testing.T) {
	tenants := faultTenants()[:2]
	tenants[0].NoIntegr = true // connected through the API below, not the file
	e := newEnv(t, tenants)
	s, token := e.apiSettings()
	a := e.startReplica(s)
	b := e.startReplica(s)
	org := tenants[0]
	traffic := e.startTraffic(3000, 0, 81)
	defer traffic.finish()

	waitFor(t, "both replicas own partitions", 60*time.Second, func() bool {
		return a.run.proc.Status().Partitions > 0 && b.run.proc.Status().Partitions > 0 &&
			a.run.proc.Status().Partitions+b.run.proc.Status().Partitions == partitions
	})
	st, created := apiCall(t, a.run.apiAddr, token, "POST", "/api/v1/integrations", map[string]any{
		"org_id": org.ID, "site": org.Site, "api_key": org.APIKey, "sync_interval": "1m",
	})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, created)
	}
	id := created["id"].(string)
	cutoff, _ := time.Parse(time.RFC3339, created["connected_at"].(string))
	seen := waitFor(t, "replica b knows the integration", 5*time.Second, func() bool { _, ok := b.run.store.Get(id); return ok })
	t.Logf("replica b read the new integration %s after replica a answered", seen)
	// Both replicas export it: every partition's share arrives, which takes
	// both, since each owns some.
	waitFor(t, "logs of the new integration from every partition", 30*time.Second, func() bool {
		return e.logsFrom(org.ID, cutoff) > 3000
	})
	for _, l := range e.dd.Logs(org.ID) {
		if l.Date.Before(cutoff) {
			t.Fatalf("a log from before the cut-off %v was exported: %v", cutoff, l.Date)
		}
	}

	// An edit through b reaches a.
	st, body := apiCall(t, b.run.apiAddr, token, "PATCH", "/api/v1/integrations/"+id, map[string]any{"sync_interval": "2m"})
	if st != 200 {
		t.Fatalf("patch: %d %v", st, body)
	}
	version := int64(body["version"].(float64))
	waitFor(t, "replica a has the edit", 5*time.Second, func() bool { in, _ := a.run.store.Get(id); return in.Version == version })

	// Pause through b: a stops too.
	if st, body := apiCall(t, b.run.apiAddr, token, "POST", "/api/v1/integrations/"+id+"/pause", nil); st != 200 {
		t.Fatalf("pause: %d %v", st, body)
	}
	waitFor(t, "replica a has the pause", 5*time.Second, func() bool { in, _ := a.run.store.Get(id); return in.Paused })
	paused := time.Now().Add(time.Second)
	time.Sleep(6 * time.Second)
	if n := e.logsFrom(org.ID, paused); n != 0 {
		t.Errorf("%d logs exported while paused", n)
	}
	// Each replica counts what it delivered; either answers the sum. (A
	// chunk in flight when the pause stopped it may have reached Datadog
	// without being confirmed: the counts hold what was confirmed.)
	sent := func(r *replica) int64 {
		for _, st := range r.run.sink.TenantStatus() {
			if st.ID == org.ID {
				return st.LogsSent
			}
		}
		return 0
	}
	for name, r := range map[string]*replica{"a": a, "b": b} {
		var shown float64
		waitFor(t, "replica "+name+" shows the logs both replicas sent", 10*time.Second, func() bool {
			_, v := apiCall(t, r.run.apiAddr, token, "GET", "/api/v1/integrations/"+id, nil)
			shown, _ = v["logs_sent"].(float64)
			return int64(shown) == sent(a)+sent(b) && sent(a) > 0 && sent(b) > 0
		})
		if int(shown) > e.dd.LogCount(org.ID) {
			t.Errorf("replica %s shows %v logs sent, Datadog holds %d", name, shown, e.dd.LogCount(org.ID))
		}
	}

	// Resume through a: both export again, from resumed_at.
	st, body = apiCall(t, a.run.apiAddr, token, "POST", "/api/v1/integrations/"+id+"/resume", nil)
	if st != 200 {
		t.Fatalf("resume: %d %v", st, body)
	}
	resumed, _ := time.Parse(time.RFC3339, body["resumed_at"].(string))
	waitFor(t, "logs after the resume", 30*time.Second, func() bool { return e.logsFrom(org.ID, resumed) > 3000 })
	var between int
	for _, l := range e.dd.Logs(org.ID) {
		if !l.Date.Before(paused) && l.Date.Before(resumed) {
			between++
		}
	}
	if between != 0 {
		t.Errorf("%d logs of the paused period were exported", between)
	}

	// Delete through b: a stops as well.
	if st, _ := apiCall(t, b.run.apiAddr, token, "DELETE", "/api/v1/integrations/"+id, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	waitFor(t, "replica a drops the integration", 5*time.Second, func() bool { _, ok := a.run.store.Get(id); return !ok })
	deleted := time.Now().Add(time.Second)
	time.Sleep(5 * time.Second)
	if n := e.logsFrom(org.ID, deleted); n != 0 {
		t.Errorf("%d logs exported after the delete", n)
	}
	if _, ok := b.run.store.Owner(org.ID); ok {
		t.Error("replica b still holds the org")
	}
}
