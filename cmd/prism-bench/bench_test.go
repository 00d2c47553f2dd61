package main

import (
	"os"
	"testing"
	"time"
)

func TestClosedSpanEndsOnAClosedWindow(t *testing.T) {
	const window, lateness = 5 * time.Minute, 2 * time.Second
	for _, now := range []time.Time{
		time.Date(2026, 11, 26, 12, 7, 30, 0, time.UTC),
		time.Date(2026, 11, 26, 12, 5, 1, 0, time.UTC), // just past a boundary, within the lateness
		time.Date(2026, 11, 26, 12, 5, 0, 0, time.UTC),
	} {
		from, to := closedSpan(now, 45*time.Minute, window, lateness)
		if to.UnixNano()%int64(window) != 0 {
			t.Errorf("now %s: span ends at %s, not on a window boundary", now, to)
		}
		if now.Sub(to) < lateness {
			t.Errorf("now %s: span ends at %s, a window that cannot close yet", now, to)
		}
		if now.Sub(from) > time.Hour-window {
			t.Errorf("now %s: span starts at %s, too old for Datadog's 1 h metric limit", now, from)
		}
	}
}

func TestReadProcOfSelf(t *testing.T) {
	ps, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ps.HWM <= 0 || ps.RSS <= 0 || ps.HWM < ps.RSS || !ps.Alive {
		t.Errorf("implausible %+v", ps)
	}
}

func TestPprofTextParsing(t *testing.T) {
	top := `File: prism-exporter
Showing nodes accounting for 4.05s, 77.74% of 5.21s total
      flat  flat%   sum%        cum   cum%
     0.43s  8.25%  8.25%      0.71s 13.63%  compress/flate.(*compressor).deflate
     0.29s  5.57% 13.82%      0.81s 15.55%  encoding/json.appendCompact
     0.10s  2.00% 15.82%      0.20s  4.00%  compress/flate.matchLen (inline)
     0.05s  1.00% 16.82%      3.68s 15.11%  github.com/futureagi/prism-exporter/schemas.(*Decoder).Decode
     0.01s  0.50% 17.32%      0.01s  0.50%  github.com/segmentio/kafka-go.(*Reader).start.func1
`
	got := map[string]float64{}
	for _, p := range byPackage(top) {
		got[p.Package] = p.Flat
	}
	want := map[string]float64{"compress/flate": 10.25, "encoding/json": 5.57,
		"github.com/futureagi/prism-exporter/schemas": 1, "github.com/segmentio/kafka-go": 0.5}
	for k, v := range want {
		if d := got[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	st := stages(top)
	if len(st) != 2 || st[0].Flat != 0.5 || st[1].Flat != 15.11 {
		t.Errorf("stages: %+v", st)
	}
}

func TestSummarize(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	d := summarize(xs)
	if d.P50 != 51 || d.P95 != 96 || d.Max != 100 || d.N != 100 {
		t.Errorf("%+v", d)
	}
	if summarize(nil) != (dist{}) {
		t.Error("empty input")
	}
}
