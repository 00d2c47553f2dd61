package sink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Tenant is one organisation's Datadog integration: where its data goes and
// with which keys.
type Tenant struct {
	// ID is the organisation id, as records carry it in metadata.org_id.
	ID string
	// Site is the tenant's Datadog site; the zero value is US1.
	Site Site
	// APIKey submits logs and metrics; AppKey, when given, is only
	// validated (it will be needed to create dashboards).
	APIKey, AppKey Secret
	// SyncInterval is the length of the tenant's metric windows.
	SyncInterval time.Duration
	// Backfill exports records older than ConnectedAt too.
	Backfill bool
	// Paused tenants are not exported; their queued batches are skipped.
	Paused bool
	// ConnectedAt is the cut-off between history and new traffic: without
	// Backfill, records whose event time is before it are not exported. Zero
	// exports everything. The integrations store fixes it once and for all
	// when an entry is first imported; the sink never invents one, since a
	// moment known to one process only would move at every restart.
	ConnectedAt time.Time
	// PrevSyncInterval, when set, is the window length of records whose
	// event time is before IntervalFrom: a change of sync interval applies
	// from a boundary of both lengths, so that no window is split.
	PrevSyncInterval time.Duration
	IntervalFrom     time.Time
	// Generation changes when the keys are to be checked again (a retry
	// asked for through the API): a tenant in Error validates again.
	Generation int64
}

// Limits and defaults of a tenants file entry.
const (
	DefaultSyncInterval = 5 * time.Minute
	MinSyncInterval     = time.Second
	MaxSyncInterval     = time.Hour
)

// tenantFields are the keys an entry may have, in the order they are
// documented, for the "unknown field" message.
func tenantFields() []string {
	return []string{"id", "site", "api_key", "app_key", "sync_interval", "backfill", "paused", "connected_at"}
}

// LoadTenants reads a tenants file: YAML (or JSON, which YAML reads too)
// of the shape
//
//	tenants:
//	  - id: org_3f9a1c
//	    site: US1            # region code or site name; default US1
//	    api_key: "..."
//	    app_key: "..."       # optional
//	    sync_interval: 5m    # Go duration, 1s..1h; default 5m
//	    backfill: false      # export records older than connected_at
//	    paused: false
//	    connected_at: 2026-11-26T12:00:00Z   # RFC 3339, optional
//
// Every error names the file, the entry and the field, and never prints a
// key. An empty file is an error (a file caught half-written must not remove
// every tenant); `tenants: []` is the way to say there are none.
func LoadTenants(path string) ([]Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	ts, err := parseTenants(data)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	return ts, nil
}

// parseTenants walks the YAML node tree by hand rather than decoding into a
// struct: that way every message names the entry and the field in the file's
// own terms, unknown keys are rejected with the list of known ones, and no
// decoder message can echo a key's value.
func parseTenants(data []byte) ([]Tenant, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("file is empty: write `tenants: []` for no tenants")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("expected one document with a `tenants` list")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping with a `tenants` list", root.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "tenants" {
			return nil, fmt.Errorf("line %d: unknown top-level field %s (the file has one field, `tenants`)", k.Line, shown(k.Value))
		}
		list = v
	}
	if list == nil {
		return nil, errors.New("missing the `tenants` list")
	}
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return []Tenant{}, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: tenants: expected a list of entries", list.Line)
	}

	out := make([]Tenant, 0, len(list.Content))
	seen := make(map[string]int, len(list.Content))
	for i, n := range list.Content {
		t, err := parseTenant(n)
		if err != nil {
			return nil, fmt.Errorf("tenants[%d]%s: %w", i, entryName(n), err)
		}
		if j, dup := seen[t.ID]; dup {
			return nil, fmt.Errorf("tenants[%d] (%s): id: duplicate of tenants[%d]", i, t.ID, j)
		}
		seen[t.ID] = i
		out = append(out, t)
	}
	return out, nil
}

// entryName is " (<id>)" when the entry has a readable id, for messages.
func entryName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
			if id := strings.TrimSpace(n.Content[i+1].Value); id != "" {
				return " (" + id + ")"
			}
		}
	}
	return ""
}

// fieldError names the field that is wrong.
func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
}

func parseTenant(n *yaml.Node) (Tenant, error) {
	var t Tenant
	if n.Kind != yaml.MappingNode {
		return t, fmt.Errorf("line %d: expected a mapping with id, site, api_key...", n.Line)
	}
	var haveAPIKey bool
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := k.Value
		if seen[field] {
			return t, fieldError(field, "given twice")
		}
		seen[field] = true
		if field != "id" && field != "site" && field != "api_key" && field != "app_key" &&
			field != "sync_interval" && field != "backfill" && field != "paused" && field != "connected_at" {
			return t, fmt.Errorf("unknown field %s (known: %s)", shown(field), strings.Join(tenantFields(), ", "))
		}
		// Keys are read from the node's raw value: a decoder's message for a
		// badly typed key could quote it.
		if v.Kind != yaml.ScalarNode {
			return t, fieldError(field, "expected a single value, got a list or mapping")
		}
		null := v.Tag == "!!null"
		switch field {
		case "id":
			t.ID = strings.TrimSpace(v.Value)
		case "site":
			if null {
				continue
			}
			s, err := ParseSite(v.Value)
			if err != nil {
				return t, fieldError(field, "%v", err)
			}
			t.Site = s
		case "api_key":
			t.APIKey = Secret(strings.TrimSpace(v.Value))
			haveAPIKey = !null && t.APIKey != ""
		case "app_key":
			if !null {
				t.AppKey = Secret(strings.TrimSpace(v.Value))
			}
		case "sync_interval":
			if null {
				continue
			}
			d, err := time.ParseDuration(strings.TrimSpace(v.Value))
			if err != nil {
				return t, fieldError(field, "must be a Go duration such as 30s, 5m or 1h, got %s", shown(v.Value))
			}
			if d < MinSyncInterval || d > MaxSyncInterval {
				return t, fieldError(field, "must be between %v and %v, got %s", fmtDur(MinSyncInterval), fmtDur(MaxSyncInterval), shown(v.Value))
			}
			t.SyncInterval = d
		case "backfill", "paused":
			if null {
				continue
			}
			b, err := parseBool(v)
			if err != nil {
				return t, fieldError(field, "%v", err)
			}
			if field == "backfill" {
				t.Backfill = b
			} else {
				t.Paused = b
			}
		case "connected_at":
			if null {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v.Value))
			if err != nil {
				return t, fieldError(field, "must be an RFC 3339 time such as 2026-11-26T12:00:00Z, got %s", shown(v.Value))
			}
			t.ConnectedAt = at
		}
	}
	if t.ID == "" {
		return t, fieldError("id", "required (the organisation id records carry in metadata.org_id)")
	}
	if strings.ContainsAny(t.ID, " \t\r\n") {
		return t, fieldError("id", "must not contain whitespace, got %s", shown(t.ID))
	}
	if !haveAPIKey {
		return t, fieldError("api_key", "required")
	}
	if t.SyncInterval == 0 {
		t.SyncInterval = DefaultSyncInterval
	}
	if t.Site == "" {
		t.Site = SiteUS1
	}
	return t, nil
}

// parseBool takes YAML 1.2 booleans only: "yes"/"on" are errors rather than
// surprises.
func parseBool(v *yaml.Node) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v.Value)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false, got %s", shown(v.Value))
}

// fmtDur prints 1s and 1h rather than Go's 1h0m0s.
func fmtDur(d time.Duration) string {
	switch {
	case d != 0 && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d != 0 && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// normalize fills the defaults of a Tenant built in code rather than read
// from a file, and reports what is wrong with it.
func (t Tenant) normalize() (Tenant, error) {
	t.ID = strings.TrimSpace(t.ID)
	if t.ID == "" {
		return t, fieldError("id", "required")
	}
	if t.Site == "" {
		t.Site = SiteUS1
	}
	if !t.Site.known() {
		s, err := ParseSite(string(t.Site))
		if err != nil {
			return t, fieldError("site", "%v", err)
		}
		t.Site = s
	}
	if t.APIKey == "" {
		return t, fieldError("api_key", "required")
	}
	if t.SyncInterval == 0 {
		t.SyncInterval = DefaultSyncInterval
	}
	if t.SyncInterval < MinSyncInterval || t.SyncInterval > MaxSyncInterval {
		return t, fieldError("sync_interval", "must be between %v and %v, got %q", fmtDur(MinSyncInterval), fmtDur(MaxSyncInterval), t.SyncInterval.String())
	}
	return t, nil
}

// shown quotes a file's text for an error message, unless it could be a key:
// API and application keys are runs of 32 or 40 letters and digits, so text
// with a run of 16 or more is replaced by its length. A key typed at the
// wrong indentation or without its space after the colon becomes a field
// name or another field's value, and errors reach logs.
func shown(s string) string {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if run++; run >= 16 {
				return fmt.Sprintf("<%d characters, not shown: they may hold a key>", len(s))
			}
		} else {
			run = 0
		}
	}
	return strconv.Quote(s)
}
