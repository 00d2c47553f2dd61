package sink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTenantsExample(t *testing.T) {
	ts, err := LoadTenants("testdata/tenants.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("%d tenants", len(ts))
	}
	a, b, c := ts[0], ts[1], ts[2]
	if a.ID != "org_3f9a1c" || a.Site != SiteUS1 || a.SyncInterval != 5*time.Minute || a.Backfill || a.Paused || a.AppKey != "" ||
		string(a.APIKey) != "0123456789abcdef0123456789abcdef" || !a.ConnectedAt.IsZero() {
		t.Errorf("first: %+v", a)
	}
	if b.Site != SiteEU1 || b.SyncInterval != time.Minute || !b.Backfill || b.AppKey == "" {
		t.Errorf("second: %+v", b)
	}
	if c.Site != SiteAP1 || c.SyncInterval != 2*time.Minute || !c.Paused {
		t.Errorf("third: %+v", c)
	}
}

func TestLoadTenantsJSONAndDefaults(t *testing.T) {
	p := writeFile(t, "t.json", `{"tenants":[{"id":"org_j","api_key":"k1234567","connected_at":"2026-11-26T12:00:00Z"},
	  {"id":"org_k","site":"us5.datadoghq.com","api_key":"k7654321","sync_interval":"1h","backfill":true}]}`)
	ts, err := LoadTenants(p)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Site != SiteUS1 || ts[0].SyncInterval != DefaultSyncInterval || !ts[0].ConnectedAt.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", ts[0])
	}
	if ts[1].Site != SiteUS5 || ts[1].SyncInterval != time.Hour || !ts[1].Backfill {
		t.Errorf("%+v", ts[1])
	}
	p = writeFile(t, "none.yaml", "tenants: []\n")
	if ts, err := LoadTenants(p); err != nil || len(ts) != 0 {
		t.Errorf("empty list: %v %v", ts, err)
	}
}

func TestLoadTenantsErrors(t *testing.T) {
	const secretKey = "s3cr3t-api-key-value-0000000000"
	entry := func(extra string) string {
		return "tenants:\n  - id: org_a\n    api_key: k-aaaaaaaa\n  - id: org_b\n    api_key: k-bbbbbbbb\n  - id: org_c0ffee\n    api_key: " + secretKey + "\n" + extra
	}
	cases := []struct {
		name, content, want string
	}{
		{"interval too long", entry("    sync_interval: 2h\n"), `tenants[2] (org_c0ffee): sync_interval: must be between 1s and 1h, got "2h"`},
		{"interval too short", entry("    sync_interval: 500ms\n"), `tenants[2] (org_c0ffee): sync_interval: must be between 1s and 1h, got "500ms"`},
		{"interval not a duration", entry("    sync_interval: 300\n"), `tenants[2] (org_c0ffee): sync_interval: must be a Go duration such as 30s, 5m or 1h, got "300"`},
		{"unknown field", entry("    apikey: x\n"), `tenants[2] (org_c0ffee): unknown field "apikey" (known: id, site, api_key, app_key, sync_interval, backfill, paused, connected_at)`},
		{"bad site", entry("    site: EU2\n"), `tenants[2] (org_c0ffee): site: unknown Datadog site "EU2"`},
		{"bad bool", entry("    paused: yes\n"), `tenants[2] (org_c0ffee): paused: must be true or false, got "yes"`},
		{"bad connected_at", entry("    connected_at: yesterday\n"), `tenants[2] (org_c0ffee): connected_at: must be an RFC 3339 time`},
		{"duplicate", entry("  - id: org_a\n    api_key: k-dupdupdup\n"), `tenants[3] (org_a): id: duplicate of tenants[0]`},
		{"missing key", "tenants:\n  - id: org_a\n", `tenants[0] (org_a): api_key: required`},
		{"empty key", "tenants:\n  - id: org_a\n    api_key: \"\"\n", `tenants[0] (org_a): api_key: required`},
		{"missing id", "tenants:\n  - api_key: " + secretKey + "\n", `tenants[0]: id: required`},
		{"key as a list", "tenants:\n  - id: org_a\n    api_key: [" + secretKey + "]\n", `tenants[0] (org_a): api_key: expected a single value`},
		{"field twice", "tenants:\n  - id: org_a\n    api_key: " + secretKey + "\n    api_key: " + secretKey + "\n", `tenants[0] (org_a): api_key: given twice`},
		{"unknown top level", "tenant:\n  - id: org_a\n", `line 1: unknown top-level field "tenant"`},
		{"empty file", "\n", "file is empty"},
		{"not yaml", "tenants: [\n", "not valid YAML or JSON"},
		{"not a list", "tenants: 3\n", "line 1: tenants: expected a list of entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "x.yaml", c.content)
			_, err := LoadTenants(p)
			if err == nil {
				t.Fatal("no error")
			}
			want := "tenants file " + p + ": " + c.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, want)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), "k-aaaaaaaa") {
				t.Errorf("error prints a key: %s", err)
			}
		})
	}
	if _, err := LoadTenants(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNormalizeTenant(t *testing.T) {
	n, err := Tenant{ID: " org ", APIKey: "k", Site: "EU1"}.normalize()
	if err != nil || n.ID != "org" || n.Site != SiteEU1 || n.SyncInterval != DefaultSyncInterval {
		t.Errorf("%+v %v", n, err)
	}
	for _, bad := range []Tenant{{APIKey: "k"}, {ID: "o"}, {ID: "o", APIKey: "k", Site: "nowhere"}, {ID: "o", APIKey: "k", SyncInterval: 2 * time.Hour}} {
		if _, err := bad.normalize(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
