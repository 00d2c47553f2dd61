package ddfake

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzCheapCounters: on any valid JSON the cheap counters agree with
// encoding/json: the elements of a top-level array (or 1 for an object), and
// at least the points of every series (they also count "points" arrays
// nested elsewhere, which Datadog's schema has no room for).
func FuzzCheapCounters(f *testing.F) {
	for _, s := range []string{`[]`, `[{"message":"a"},{"message":"b\"],"}]`, `{"message":"x"}`, `[1,[2,3],"4"]`,
		`{"series":[{"metric":"m","points":[{"timestamp":1,"value":2}],"tags":["points:[x]"]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			countLogItems(data) // no panic is all that is asked
			countPoints(data)
			return
		}
		n, ok := countLogItems(data)
		switch trimmed := bytes.TrimSpace(data); trimmed[0] {
		case '[':
			var items []json.RawMessage
			if err := json.Unmarshal(data, &items); err != nil || !ok || n != len(items) {
				t.Fatalf("%s: counted %d (%v), encoding/json %d", data, n, ok, len(items))
			}
		case '{':
			if !ok || n != 1 {
				t.Fatalf("%s: counted %d (%v) for an object", data, n, ok)
			}
		}
		// Exact key names, as Datadog reads them (encoding/json's struct
		// decoding would also take "Points").
		var doc any
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		want := 0
		if m, ok := doc.(map[string]any); ok {
			series, _ := m["series"].([]any)
			for _, s := range series {
				if sm, ok := s.(map[string]any); ok {
					points, _ := sm["points"].([]any)
					want += len(points)
				}
			}
		}
		if got, ok := countPoints(data); !ok || got < want {
			t.Fatalf("%s: counted %d points (%v), encoding/json %d", data, got, ok, want)
		}
	})
}
