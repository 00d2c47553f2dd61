package api

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
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// Keys of the test's Datadog accounts. They look like real ones (32 hex
// digits) so that the secret checks below would catch them anywhere.
const (
	keyA    = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	keyA2   = "0f9e8d7c6b5a49382716f5e4d3c2b1a0"
	appKeyA = "app0123456789abcdef0123456789abcdef012345"
	keyB    = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
	badKey  = "deadbeefdeadbeefdeadbeefdeadbeef"
)

var allKeys = []string{keyA, keyA2, appKeyA, keyB, badKey}

type world struct {
	t       *testing.T
	srv     *httptest.Server
	dd      *ddfake.Server
	ddURL   string
	svc     *integrations.Service
	jobs    *integrations.Jobs
	brokers []string
	logs    *observer.ObservedLogs
	tokens  map[string]string // name -> token
	bodies  bytes.Buffer      // every response body, for the secret check
}

type noDeadLetters struct{}

func (noDeadLetters) DeadLetter(context.Context, string, []byte, string) error { return nil }

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, tokens: map[string]string{}}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	w.brokers = cluster.ListenAddrs()

	w.dd = ddfake.New(ddfake.WithAccounts(
		ddfake.Account{Name: "org_a", APIKeys: []string{keyA, keyA2}, AppKeys: []string{appKeyA}},
		ddfake.Account{Name: "org_b", APIKeys: []string{keyB}},
	))
	ddURL, err := w.dd.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.ddURL = ddURL
	t.Cleanup(func() { _ = w.dd.Close() })

	core, logs := observer.New(zapcore.DebugLevel)
	w.logs = logs
	log := zap.New(core)
	snk, err := sink.New(sink.Config{BaseURL: ddURL, MaxBackoff: 50 * time.Millisecond}, prometheus.NewRegistry(), log.Named("sink"), noDeadLetters{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = snk.Close(context.Background()) })

	store, err := integrations.NewStore(integrations.StoreConfig{Topic: "integrations", Brokers: w.brokers, Create: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	kr, err := integrations.ParseKeyring(base64.StdEncoding.EncodeToString(k[:]))
	if err != nil {
		t.Fatal(err)
	}
	w.svc = integrations.NewService(store, kr, nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- store.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() { cancel(); <-done })
	<-ready
	store.OnChange(func() { snk.SetTenants(w.svc.Tenants()) })
	w.jobs, err = integrations.NewJobs(integrations.JobsConfig{Topic: "backfills", Brokers: w.brokers, Create: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	w.svc.SetJobs(w.jobs)
	jobsReady, jobsDone := make(chan struct{}), make(chan error, 1)
	go func() { jobsDone <- w.jobs.Run(ctx, func() { close(jobsReady) }) }()
	t.Cleanup(func() { cancel(); <-jobsDone })
	<-jobsReady

	var tf strings.Builder
	tf.WriteString("tokens:\n")
	for _, tk := range []struct{ name, role, org string }{
		{"ops", "admin", ""}, {"acme", "owner", "org_a"}, {"acme-ro", "viewer", "org_a"}, {"bravo", "owner", "org_b"},
	} {
		token := "tok-" + tk.name + "-0123456789"
		w.tokens[tk.name] = token
		sum := sha256.Sum256([]byte(token))
		tf.WriteString("  - name: " + tk.name + "\n    sha256: " + hex.EncodeToString(sum[:]) + "\n    role: " + tk.role + "\n")
		if tk.org != "" {
			tf.WriteString("    org_id: " + tk.org + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(tf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	dash := integrations.NewDashboards(w.svc, snk, log.Named("dashboards"))
	api := New(Config{Tokens: tokens, Logger: log.Named("api"), ValidatePerMinute: 600, ValidateBurst: 100, Backfills: w.jobs, Dashboards: dash},
		w.svc, snk, integrations.LocalStatus(snk.TenantStatus))
	w.srv = httptest.NewServer(api)
	t.Cleanup(w.srv.Close)
	return w
}

// call makes one API call as the named token ("" for none) and returns the
// status and the decoded JSON body.
func (w *world) call(method, path, who string, body any) (int, map[string]any) {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, w.srv.URL+path, rd)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[who])
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	w.bodies.Write(raw)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			w.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func errCode(body map[string]any) (code, field string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

func (w *world) wantError(status int, body map[string]any, wantStatus int, wantCode, wantField string) {
	w.t.Helper()
	code, field := errCode(body)
	if status != wantStatus || code != wantCode || field != wantField {
		w.t.Errorf("got %d %s (field %q) %v; want %d %s (field %q)", status, code, field, body, wantStatus, wantCode, wantField)
	}
}

func (w *world) create(who string, body map[string]any) map[string]any {
	w.t.Helper()
	st, out := w.call("POST", "/api/v1/integrations", who, body)
	if st != http.StatusCreated {
		w.t.Fatalf("create: %d %v", st, out)
	}
	return out
}

// waitStatus polls an integration until its status is want.
func (w *world) waitStatus(id, who, want string) map[string]any {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, out := w.call("GET", "/api/v1/integrations/"+id, who, nil)
		if out["status"] == want {
			return out
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: status %v, want %s: %v", id, out["status"], want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	w := newWorld(t)
	st, body := w.call("GET", "/api/v1/integrations", "", nil)
	w.wantError(st, body, 401, "unauthorized", "")
	w.tokens["nobody"] = "tok-not-in-the-file"
	st, body = w.call("GET", "/api/v1/integrations", "nobody", nil)
	w.wantError(st, body, 401, "unauthorized", "")
	st, body = w.call("GET", "/api/v1/whoami", "acme", nil)
	if st != 200 || body["role"] != "owner" || body["org_id"] != "org_a" {
		t.Errorf("whoami: %d %v", st, body)
	}
	st, body = w.call("GET", "/api/v1/sites", "acme-ro", nil)
	if sites, _ := body["sites"].([]any); st != 200 || len(sites) != 9 {
		t.Errorf("sites: %d %v", st, body)
	}
	st, body = w.call("GET", "/api/v1/nothing", "ops", nil)
	w.wantError(st, body, 404, "not_found", "")
}

func TestValidate(t *testing.T) {
	w := newWorld(t)
	st, body := w.call("POST", "/api/v1/integrations/validate", "acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": appKeyA})
	if st != 200 || body["valid"] != true {
		t.Fatalf("valid keys: %d %v", st, body)
	}
	st, body = w.call("POST", "/api/v1/integrations/validate", "acme", map[string]any{"site": "EU1", "api_key": badKey})
	api, _ := body["api_key"].(map[string]any)
	if st != 200 || body["valid"] != false || api["verdict"] != "rejected" || !strings.Contains(api["message"].(string), "site") {
		t.Fatalf("bad key: %d %v", st, body)
	}
	st, body = w.call("POST", "/api/v1/integrations/validate", "acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": "wrong-app-key-000000000000000000000000"})
	app, _ := body["app_key"].(map[string]any)
	if st != 200 || body["valid"] != false || app["verdict"] != "rejected" {
		t.Fatalf("bad app key: %d %v", st, body)
	}
	st, body = w.call("POST", "/api/v1/integrations/validate", "acme-ro", map[string]any{"site": "US1", "api_key": keyA})
	w.wantError(st, body, 403, "forbidden", "")
	st, body = w.call("POST", "/api/v1/integrations/validate", "acme", map[string]any{"site": "MARS", "api_key": keyA})
	w.wantError(st, body, 400, "invalid_field", "site")

	w.dd.SetFault(ddfake.Fault{Path: "/api/v1/validate", Status: 503, Count: 1})
	st, body = w.call("POST", "/api/v1/integrations/validate", "acme", map[string]any{"site": "US1", "api_key": keyA})
	api, _ = body["api_key"].(map[string]any)
	if st != 200 || api["verdict"] != "unreachable" {
		t.Errorf("Datadog down: %d %v", st, body)
	}
}

func TestValidateIsRateLimitedPerToken(t *testing.T) {
	w := newWorld(t)
	now := time.Now()
	tokens, _ := LoadTokens(writeTokens(t, "acme", "owner", "org_a"))
	api := New(Config{Tokens: tokens, ValidatePerMinute: 6, ValidateBurst: 2, Clock: func() time.Time { return now }}, w.svc, fakeOK{}, integrations.LocalStatus(nil))
	srv := httptest.NewServer(api)
	defer srv.Close()
	do := func() *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/integrations/validate", strings.NewReader(`{"site":"US1","api_key":"k"}`))
		req.Header.Set("Authorization", "Bearer tok-acme-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := 0; i < 2; i++ {
		if r := do(); r.StatusCode != 200 {
			t.Fatalf("call %d within the burst: %d", i, r.StatusCode)
		}
	}
	r := do()
	if r.StatusCode != 429 || r.Header.Get("Retry-After") != "10" {
		t.Fatalf("past the burst: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	now = now.Add(10 * time.Second)
	if r := do(); r.StatusCode != 200 {
		t.Fatalf("after the wait: %d", r.StatusCode)
	}
}

type fakeOK struct{}

func (fakeOK) CheckKeys(context.Context, sink.Site, sink.Secret, sink.Secret) sink.KeyCheck {
	return sink.KeyCheck{Valid: true, APIKey: sink.KeyVerdict{Verdict: sink.KeyValid}}
}

func writeTokens(t *testing.T, name, role, org string) string {
	sum := sha256.Sum256([]byte("tok-" + name + "-0123456789"))
	body := "tokens:\n  - name: " + name + "\n    sha256: " + hex.EncodeToString(sum[:]) + "\n    role: " + role + "\n    org_id: " + org + "\n"
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCreateBadInput(t *testing.T) {
	w := newWorld(t)
	good := func() map[string]any {
		return map[string]any{"org_id": "org_a", "site": "US1", "api_key": keyA, "sync_interval": "5m", "historical": map[string]any{"mode": "new_only"}}
	}
	with := func(k string, v any) map[string]any { b := good(); b[k] = v; return b }
	without := func(k string) map[string]any { b := good(); delete(b, k); return b }
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"unknown field", with("colour", "red"), 400, "unknown_field", "colour"},
		{"wrong type", with("sync_interval", 5), 400, "invalid_field", "sync_interval"},
		{"interval out of the product's set", with("sync_interval", "7m"), 400, "invalid_field", "sync_interval"},
		{"interval too long", with("sync_interval", "2h"), 400, "invalid_field", "sync_interval"},
		{"unknown site", with("site", "MARS1"), 400, "invalid_field", "site"},
		{"missing site", without("site"), 400, "missing_field", "site"},
		{"missing api key", without("api_key"), 400, "missing_field", "api_key"},
		{"org with spaces", with("org_id", "org a"), 400, "invalid_field", "org_id"},
		{"bad mode", with("historical", map[string]any{"mode": "yesterday"}), 400, "invalid_field", "historical.mode"},
		{"all with a range", with("historical", map[string]any{"mode": "all", "from": "2026-11-30T00:00:00Z"}), 400, "invalid_field", "historical.from"},
		{"range backwards", with("historical", map[string]any{"mode": "range", "from": "2026-12-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}), 400, "invalid_field", "historical.to"},
		{"range in the future", with("historical", map[string]any{"mode": "range", "from": time.Now().Add(time.Hour).Format(time.RFC3339), "to": time.Now().Add(2 * time.Hour).Format(time.RFC3339)}), 400, "invalid_field", "historical.from"},
		{"range without from", with("historical", map[string]any{"mode": "range", "to": "2026-12-01T00:00:00Z"}), 400, "missing_field", "historical.from"},
		{"not JSON", "{org_id:", 400, "invalid_json", ""},
		{"two objects", `{"org_id":"org_a"}{}`, 400, "invalid_json", ""},
		{"empty body", "", 400, "invalid_json", ""},
		{"too large", `{"org_id":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "body_too_large", ""},
		{"rejected key", with("api_key", badKey), 422, "keys_rejected", "api_key"},
		{"owner of another org", with("org_id", "org_b"), 403, "forbidden", "org_id"},
	}
	for _, c := range cases {
		st, body := w.call("POST", "/api/v1/integrations", "acme", c.body)
		code, field := errCode(body)
		if st != c.status || code != c.code || field != c.field {
			t.Errorf("%s: got %d %s %q; want %d %s %q (%v)", c.name, st, code, field, c.status, c.code, c.field, body)
		}
	}
	st, body := w.call("POST", "/api/v1/integrations", "ops", without("org_id"))
	w.wantError(st, body, 400, "missing_field", "org_id")
	if n := len(w.svc.List()); n != 0 {
		t.Errorf("bad requests stored %d integrations", n)
	}
}

func TestLifecycleAndCrossOrg(t *testing.T) {
	w := newWorld(t)
	created := w.create("acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": appKeyA, "sync_interval": "1m"})
	id := created["id"].(string)
	if created["org_id"] != "org_a" || created["api_key_hint"] != "****8f90" || created["app_key_hint"] != "****2345" ||
		created["sync_interval"] != "1m" || created["managed_by"] != "api" || created["site"] != "US1" {
		t.Fatalf("created: %v", created)
	}
	at, _ := time.Parse(time.RFC3339, created["connected_at"].(string))
	if d := time.Until(at); d < 0 || d > integrations.ActivationDelay+2*time.Second {
		t.Errorf("connected_at %v is not just ahead of now", at)
	}
	w.waitStatus(id, "acme", "active")

	st, body := w.call("POST", "/api/v1/integrations", "ops", map[string]any{"org_id": "org_a", "site": "US1", "api_key": keyA})
	w.wantError(st, body, 409, "conflict", "org_id")

	// Another org's token learns nothing: 404, as for an unknown id.
	for _, c := range []struct{ method, path string }{
		{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/pause"}, {"POST", "/resume"}, {"POST", "/retry"},
	} {
		var b any
		if c.method == "PATCH" {
			b = map[string]any{"sync_interval": "2m"}
		}
		st, body := w.call(c.method, "/api/v1/integrations/"+id+c.path, "bravo", b)
		w.wantError(st, body, 404, "not_found", "")
	}
	if _, body := w.call("GET", "/api/v1/integrations", "bravo", nil); len(body["integrations"].([]any)) != 0 {
		t.Errorf("bravo lists org_a's integration: %v", body)
	}
	// A viewer reads, and may not write.
	if st, _ := w.call("GET", "/api/v1/integrations/"+id, "acme-ro", nil); st != 200 {
		t.Errorf("viewer GET: %d", st)
	}
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/pause", "acme-ro", nil)
	w.wantError(st, body, 403, "forbidden", "")

	// Pause, resume.
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/pause", "acme", nil)
	if st != 200 || body["status"] != "paused" || body["paused"] != true {
		t.Fatalf("pause: %d %v", st, body)
	}
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/resume", "acme", nil)
	if st != 200 || body["paused"] != false || body["resumed_at"] == nil {
		t.Fatalf("resume: %d %v", st, body)
	}
	w.waitStatus(id, "acme", "active")

	// A new interval applies from a boundary of both lengths.
	st, body = w.call("PATCH", "/api/v1/integrations/"+id, "acme", map[string]any{"sync_interval": "15m"})
	if st != 200 || body["sync_interval"] != "15m" || body["sync_interval_from"] == nil {
		t.Fatalf("patch interval: %d %v", st, body)
	}
	from, _ := time.Parse(time.RFC3339, body["sync_interval_from"].(string))
	if from.UnixNano()%int64(15*time.Minute) != 0 || time.Until(from) < integrations.ActivationDelay-time.Second {
		t.Errorf("sync_interval_from %v is not a boundary of 1m and 15m ahead of now", from)
	}
	st, body = w.call("PATCH", "/api/v1/integrations/"+id, "acme", map[string]any{})
	w.wantError(st, body, 400, "missing_field", "")

	// The key is revoked in Datadog: the integration goes to error, with a hint.
	w.dd.RevokeAPIKey(keyA)
	st, body = w.call("PATCH", "/api/v1/integrations/"+id, "acme", map[string]any{"site": "EU1"})
	w.wantError(st, body, 422, "keys_rejected", "api_key")
	// Force the replica to check the stored key again: it is refused.
	if _, err := w.svc.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	bad := w.waitStatus(id, "acme", "error")
	if bad["hint"] == "" || bad["status_message"] == "" {
		t.Errorf("error without message or hint: %v", bad)
	}
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/retry", "acme", nil)
	w.wantError(st, body, 422, "keys_rejected", "api_key")
	// The key is re-enabled in Datadog: Retry now brings it back.
	w.dd.AddAccount(ddfake.Account{Name: "org_a", APIKeys: []string{keyA, keyA2}, AppKeys: []string{appKeyA}})
	st, body = w.call("POST", "/api/v1/integrations/"+id+"/retry", "acme", nil)
	if st != 200 {
		t.Fatalf("retry with the key re-enabled: %d %v", st, body)
	}
	w.waitStatus(id, "acme", "active")
	// Revoked again, for the edit below.
	w.dd.RevokeAPIKey(keyA)
	if _, err := w.svc.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	w.waitStatus(id, "acme", "error")
	// A new key that validates brings it back.
	st, body = w.call("PATCH", "/api/v1/integrations/"+id, "acme", map[string]any{"api_key": keyA2, "app_key": nil})
	if st != 200 || body["api_key_hint"] != "****b1a0" || body["app_key_hint"] != nil {
		t.Fatalf("new key: %d %v", st, body)
	}
	w.waitStatus(id, "acme", "active")

	// Delete.
	if st, _ := w.call("DELETE", "/api/v1/integrations/"+id, "acme", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	st, body = w.call("GET", "/api/v1/integrations/"+id, "ops", nil)
	w.wantError(st, body, 404, "not_found", "")

	w.checkNoSecrets()
	// Every change left one audit line, with field names and no values.
	audits := w.logs.FilterMessage("audit").All()
	if len(audits) < 6 {
		t.Errorf("%d audit lines", len(audits))
	}
}

func TestListPaginates(t *testing.T) {
	w := newWorld(t)
	for _, org := range []string{"org_1", "org_2", "org_3", "org_4", "org_5"} {
		w.dd.AddAccount(ddfake.Account{Name: org, APIKeys: []string{keyA}})
		w.create("ops", map[string]any{"org_id": org, "site": "US1", "api_key": keyA})
	}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		_, body := w.call("GET", "/api/v1/integrations?page_size=2&page_token="+token, "ops", nil)
		for _, in := range body["integrations"].([]any) {
			id := in.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		token, _ = body["next_page_token"].(string)
		if token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 5 {
		t.Errorf("listed %d of 5", len(seen))
	}
	st, body := w.call("GET", "/api/v1/integrations?page_size=0", "ops", nil)
	w.wantError(st, body, 400, "invalid_field", "page_size")
	_, body = w.call("GET", "/api/v1/integrations?org_id=org_3", "ops", nil)
	if n := len(body["integrations"].([]any)); n != 1 {
		t.Errorf("org_id filter: %d", n)
	}
}

func TestFileManagedIsReadOnly(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.svc.SyncFile(ctx, "/etc/prism/tenants.yaml", []sink.Tenant{{ID: "org_b", Site: sink.SiteUS1, APIKey: keyB, SyncInterval: time.Minute}}, true); err != nil {
		t.Fatal(err)
	}
	id := integrations.FileID("org_b")
	_, body := w.call("GET", "/api/v1/integrations/"+id, "bravo", nil)
	if body["managed_by"] != "file" || body["file"] != "/etc/prism/tenants.yaml" || body["api_key_hint"] != "****b0b0" {
		t.Fatalf("file-managed view: %v", body)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{{"PATCH", "", map[string]any{"sync_interval": "2m"}}, {"DELETE", "", nil}, {"POST", "/pause", nil}} {
		st, body := w.call(c.method, "/api/v1/integrations/"+id+c.path, "bravo", c.body)
		w.wantError(st, body, 409, "managed_by_file", "")
		if msg, _ := body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "/etc/prism/tenants.yaml") {
			t.Errorf("409 does not name the file: %v", body)
		}
	}
	w.waitStatus(id, "bravo", "active")
	w.checkNoSecrets()
}

// checkNoSecrets looks for every key of the test in the raw integrations
// topic, every response body and every log line.
func (w *world) checkNoSecrets() {
	w.t.Helper()
	var raw strings.Builder
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: w.brokers, Topic: "integrations", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
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
		w.t.Fatal("read nothing from the integrations topic")
	}
	var logs strings.Builder
	for _, e := range w.logs.All() {
		logs.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			logs.WriteString(" " + k + "=" + toString(v))
		}
		logs.WriteString("\n")
	}
	for _, key := range allKeys {
		for name, text := range map[string]string{"integrations topic": raw.String(), "responses": w.bodies.String(), "logs": logs.String()} {
			if strings.Contains(text, key) || strings.Contains(text, key[:16]) {
				w.t.Errorf("a key appears in the %s", name)
			}
		}
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
