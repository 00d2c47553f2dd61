package history

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzDecode: whatever a history record holds (any key, any value), decode
// does not panic; what it refuses wraps ErrInvalid, so the Log skips it;
// what it accepts is a valid entry that encodes and decodes to itself, and
// that the index takes and pages back.
func FuzzDecode(f *testing.F) {
	good := Entry{OrgID: "org_a", Start: t0, End: t0.Add(time.Minute), Source: SourceLive, Records: 12, Logs: 12, Points: 40,
		Bytes: 2048, Requests: 2, DurationMS: 180, Outcome: Success, At: t0.Add(70 * time.Second)}
	raw, _ := json.Marshal(good)
	f.Add([]byte("org_a"), raw)
	f.Add([]byte(""), raw)
	f.Add([]byte("org_b"), raw)
	f.Add([]byte("org_a"), []byte(strings.Replace(string(raw), `"success"`, `"exploded"`, 1)))
	f.Add([]byte("org_a"), []byte(strings.Replace(string(raw), `"records":12`, `"records":-1`, 1)))
	f.Add([]byte("org_a"), []byte(strings.Replace(string(raw), `2026-12-01T10:01:00Z`, `2026-12-01T09:00:00Z`, 1)))
	f.Add([]byte("org_a"), []byte(`{"org_id":"org_a","window_start":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte("org_a"), []byte(`{"org_id":"org_a","window_start":"9999-12-31T23:59:59Z","window_end":"9999-12-31T23:59:59.5Z"}`))
	f.Add([]byte("x"), []byte(`{`))
	f.Add([]byte("x"), []byte(`null`))
	f.Add([]byte("x"), []byte(`[]`))
	f.Add([]byte("x"), []byte{})
	f.Add([]byte("org_a"), []byte(`{"org_id":"org_a","outcome":"failed","error":"a\nb","records":1e400}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := decode(key, value)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := e.check(); err != nil {
			t.Fatalf("accepted an invalid entry: %v", err)
		}
		enc, err := encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(key, enc)
		if err != nil || !sameEntry(back, e) {
			t.Fatalf("%+v does not round-trip: %+v, %v", e, back, err)
		}
		ix := newIndex(2, 2)
		ix.put(e)
		p := ix.query(e.OrgID, Query{Outcome: e.Outcome})
		if len(p.Entries) != 1 || !sameEntry(p.Entries[0], e) {
			t.Fatalf("indexed %+v, paged %+v", e, p.Entries)
		}
	})
}

func TestShortError(t *testing.T) {
	long := strings.Repeat("é", 400)
	for in, want := range map[string]string{
		"":                                       "",
		"  Datadog answered 403  ":               "Datadog answered 403",
		"panic: boom\ngoroutine 1 [running]:\n":  "panic: boom",
		"Traceback (most recent call last):\r\n": "Traceback (most recent call last):",
	} {
		if got := shortError(in); got != want {
			t.Errorf("shortError(%q) = %q, want %q", in, got, want)
		}
	}
	got := shortError(long)
	if len(got) > maxErrorLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("shortError of %d bytes: %d bytes %q", len(long), len(got), got)
	}
	if !isUTF8(got) {
		t.Errorf("cut inside a rune: %q", got)
	}
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }
