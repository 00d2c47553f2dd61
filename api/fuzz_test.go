package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

// FuzzParseTokens: the tokens file is outside input. Whatever it holds, the
// parser answers a list or an error, never panics, and an error never
// quotes a value that may be a token.
func FuzzParseTokens(f *testing.F) {
	sum := sha256.Sum256([]byte("t"))
	h := hex.EncodeToString(sum[:])
	f.Add([]byte("tokens:\n  - name: ops\n    sha256: " + h + "\n    role: admin\n"))
	f.Add([]byte(`{"tokens":[{"name":"acme","sha256":"` + h + `","role":"owner","org_id":"org_a"}]}`))
	f.Add([]byte("tokens:\n  - name: x\n    sha256: nothex\n    role: root\n"))
	f.Add([]byte("tokens: [{name: a, sha256: " + h + ", role: viewer}]"))
	f.Add([]byte("secret0123456789abcdefsecret: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := parseTokens(data)
		if err != nil {
			if run := longRun(err.Error()); run != "" && bytes.Contains(data, []byte(run)) && !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("the error quotes %q from the file: %v", run, err)
			}
			return
		}
		for _, tk := range list {
			if tk.Name == "" || (tk.Role != Admin && tk.Role != Owner && tk.Role != Viewer) {
				t.Fatalf("accepted a bad token entry: %+v", tk)
			}
		}
	})
}

// longRun returns the first run of 24 or more letters and digits in s: the
// shape of a token or key (a SHA-256 in hex is allowed to be named as a
// field's value only by its length).
func longRun(s string) string {
	start, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if n == 0 {
				start = i
			}
			if n++; n >= 24 {
				j := i
				for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
					j++
				}
				return s[start:j]
			}
		} else {
			n = 0
		}
	}
	return ""
}

// memStore is an in-memory Integrations for the fuzzer: the handlers'
// decoding and checks are under test, not the Kafka store.
type memStore struct {
	byID map[string]integrations.Integration
}

func (m *memStore) Create(_ context.Context, n integrations.New) (integrations.Integration, error) {
	in := integrations.Integration{ID: "dd_" + n.OrgID, OrgID: n.OrgID, Site: n.Site, SyncInterval: n.SyncInterval,
		ManagedBy: integrations.ManagedByAPI, APIKeyHint: integrations.KeyHint(n.APIKey), Version: 1}
	m.byID[in.ID] = in
	return in, nil
}
func (m *memStore) Update(_ context.Context, id string, p integrations.Patch) (integrations.Integration, error) {
	in := m.byID[id]
	if p.SyncInterval != nil {
		in.SyncInterval = *p.SyncInterval
	}
	in.Version++
	m.byID[id] = in
	return in, nil
}
func (m *memStore) set(id string, f func(*integrations.Integration)) (integrations.Integration, error) {
	in, ok := m.byID[id]
	if !ok {
		return in, integrations.ErrNotFound
	}
	f(&in)
	m.byID[id] = in
	return in, nil
}
func (m *memStore) Pause(_ context.Context, id string) (integrations.Integration, error) {
	return m.set(id, func(in *integrations.Integration) { in.Paused = true })
}
func (m *memStore) Resume(_ context.Context, id string) (integrations.Integration, error) {
	return m.set(id, func(in *integrations.Integration) { in.Paused = false })
}
func (m *memStore) Retry(_ context.Context, id string) (integrations.Integration, error) {
	return m.set(id, func(in *integrations.Integration) { in.Retries++ })
}
func (m *memStore) Delete(_ context.Context, id string) error { delete(m.byID, id); return nil }
func (m *memStore) Get(id string) (integrations.Integration, bool) {
	in, ok := m.byID[id]
	return in, ok
}
func (m *memStore) Owner(org string) (integrations.Integration, bool) {
	for _, in := range m.byID {
		if in.OrgID == org {
			return in, true
		}
	}
	return integrations.Integration{}, false
}
func (m *memStore) List() []integrations.Integration {
	var out []integrations.Integration
	for _, in := range m.byID {
		out = append(out, in)
	}
	return out
}
func (m *memStore) Ready() bool { return true }
func (m *memStore) OpenKeys(integrations.Integration) (string, string, error) {
	return "stored-api-key-000000", "", nil
}

type noLive struct{}

func (noLive) Live(string) (integrations.Live, bool) { return integrations.Live{}, false }

// FuzzRequests: whatever body a caller sends to any call, the API answers
// 2xx or 4xx (never 5xx, never a panic), every 4xx carries a code, and an
// owner's request never touches another org's integration.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"org_id":"org_a","site":"US1","api_key":"k","sync_interval":"5m","historical":{"mode":"new_only"}}`,
		`{"site":"EU1","api_key":"k","app_key":null}`,
		`{"sync_interval":"15m"}`, `{"app_key":null}`, `{"historical":{"mode":"range","from":"x"}}`,
		`[]`, `null`, `{"org_id":1}`, `{"a":`, "", `{"site":"` + strings.Repeat("A", 300) + `"}`,
	} {
		for _, path := range []string{"/api/v1/integrations", "/api/v1/integrations/validate", "/api/v1/integrations/dd_org_b", "/api/v1/integrations/dd_org_a"} {
			f.Add("POST", path, []byte(s))
			f.Add("PATCH", path, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		// The API is mounted at /api/; other paths never reach it.
		if !strings.HasPrefix(path, "/api/") || strings.ContainsAny(path, "#?%") || len(path) > 200 ||
			strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return
		}
		switch method {
		case "GET", "POST", "PATCH", "DELETE", "PUT":
		default:
			return
		}
		store := &memStore{byID: map[string]integrations.Integration{
			"dd_org_b": {ID: "dd_org_b", OrgID: "org_b", Site: sink.SiteUS1, SyncInterval: time.Minute, ManagedBy: integrations.ManagedByAPI, Version: 1},
		}}
		sum := sha256.Sum256([]byte("tok"))
		tokens := &Tokens{}
		list := []Token{{Name: "acme", Role: Owner, OrgID: "org_a", sum: sum}}
		tokens.set.Store(&list)
		srv := New(Config{Tokens: tokens, ValidatePerMinute: 6000, ValidateBurst: 1000}, store, fakeOK{}, noLive{})
		req := httptest.NewRequest(method, "http://x"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && !strings.Contains(w.Body.String(), `"code"`) && w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: %d without a code: %s", method, path, w.Code, w.Body)
		}
		if b := store.byID["dd_org_b"]; b.Version != 1 || b.Paused {
			t.Fatalf("an org_a token changed org_b's integration: %s %s %q", method, path, body)
		}
	})
}
