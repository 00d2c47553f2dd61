package main

import (
	"os"
	"strings"
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

func TestPickIntervalLeavesTheStepItsTime(t *testing.T) {
	const need = 5 * time.Minute
	for m := 0; m < 24*60; m++ {
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(m)*time.Minute + 17*time.Second)
		d, end := pickInterval(now, need)
		if end.Sub(now) < need {
			t.Fatalf("%s: %s windows end at %s, under %s away", now.Format(time.TimeOnly), d, end.Format(time.TimeOnly), need)
		}
		if d > time.Hour || end.UnixNano()%int64(d) != 0 {
			t.Fatalf("%s: %s windows end at %s: not a window boundary since the epoch", now, d, end)
		}
	}
}

func TestLongestStall(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []logSample{
		{at(-100), 5}, {at(0), 10}, {at(100), 20}, {at(200), 20}, {at(300), 20},
		{at(1300), 20}, {at(1400), 30}, {at(1500), 40}, {at(2000), 40},
	}
	// Increases at 100, 1400, 1500; the longest stretch without one is
	// 100 -> 1400.
	if got := longestStall(samples, at(0), at(2000)); got != 1300*time.Millisecond {
		t.Errorf("stall %v, want 1.3s", got)
	}
	// Nothing accepted at all: the whole span.
	if got := longestStall([]logSample{{at(0), 1}, {at(500), 1}}, at(0), at(500)); got != 500*time.Millisecond {
		t.Errorf("stall %v, want 0.5s", got)
	}
}

func TestParseJoins(t *testing.T) {
	log := `{"level":"info","ts":"2026-12-01T02:15:30.123Z","logger":"processor","msg":"tenant added","tenant":"org_bench001"}
not json at all
{"level":"info","ts":"2026-12-01T02:15:31.500Z","logger":"processor","msg":"joined generation","generation":1,"member":"m-1","partitions":[0,1,2,3]}
{"level":"info","ts":"2026-12-01T02:15:41.250+0000","logger":"processor","msg":"joined generation","generation":2,"member":"m-1","partitions":[0,1]}
`
	js, err := parseJoins(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 2 || js[0].generation != 1 || js[0].partitions != 4 || js[1].generation != 2 || js[1].partitions != 2 {
		t.Fatalf("%+v", js)
	}
	if d := js[1].at.Sub(js[0].at); d != 9750*time.Millisecond {
		t.Errorf("between the joins: %v", d)
	}
}

func TestExpositionLabels(t *testing.T) {
	text := `# HELP prism_exporter_sink_items_total Logs and metric series completed.
# TYPE prism_exporter_sink_items_total counter
prism_exporter_sink_items_total{kind="logs",outcome="delivered"} 1500
prism_exporter_sink_items_total{kind="metrics",outcome="delivered"} 42
prism_exporter_sink_items_total{kind="metrics",outcome="undeliverable"} 7
prism_exporter_open_windows{partition="0"} 10
prism_exporter_open_windows{partition="1"} 12
prism_exporter_sink_tenants{state="error"} 3
prism_exporter_sink_tenants{state="active"} 2
go_gc_duration_seconds_count 9
`
	m, err := parseExposition(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"prism_exporter_sink_items_total", []string{`kind="metrics"`, `outcome="delivered"`}, 42},
		{"prism_exporter_sink_items_total", []string{`outcome="delivered"`}, 1542},
		{"prism_exporter_sink_items_total", nil, 1549},
		{"prism_exporter_open_windows", nil, 22},
		{"prism_exporter_sink_tenants", []string{`state="error"`}, 3},
		{"go_gc_duration_seconds_count", nil, 9},
		{"prism_exporter_sink_tenants", []string{`state="err"`}, 0},
	} {
		if got := sumWhere(m, c.name, c.labels...); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestCapacityFlags(t *testing.T) {
	base := []string{"-brokers", "127.0.0.1:1", "-exporter", "/bin/true", "-out", t.TempDir()}
	c, err := parseFlags(append(base, "-phases", "capacity", "-exporter-pprof", "/bin/true"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.phases["capacity"] || len(c.phases) != 1 || c.capTenants != 10_000 || c.capPartitions != 48 ||
		!c.capSteps["throughput"] || !c.capSteps["windows"] || !c.capSteps["rebalance"] {
		t.Errorf("defaults: %+v", c)
	}
	cc := c.capConfig()
	if cc.tenants != 10_000 || cc.partitions != 48 || cc.records != c.capRecords || cc.window != c.capWindow {
		t.Errorf("capConfig: %+v", cc)
	}
	// The window-memory step needs the overlay build; the others do not.
	if _, err := parseFlags(append(base, "-phases", "capacity")); err == nil || !strings.Contains(err.Error(), "-exporter-pprof") {
		t.Errorf("without -exporter-pprof: %v", err)
	}
	if _, err := parseFlags(append(base, "-phases", "capacity", "-capacity-steps", "throughput,rebalance")); err != nil {
		t.Errorf("throughput and rebalance without -exporter-pprof: %v", err)
	}
	if _, err := parseFlags(append(base, "-phases", "capacity", "-capacity-steps", "bogus")); err == nil {
		t.Error("an unknown step was accepted")
	}
	if _, err := parseFlags(append(base, "-phases", "capacity,e2e", "-exporter-pprof", "/bin/true", "-http-addr-2", "127.0.0.1:39180")); err == nil {
		t.Error("two exporters on one address were accepted")
	}
}

func TestCapacityReport(t *testing.T) {
	r := &results{Capacity: &capacityRun{
		Tenants: 10_000, Partitions: 48, Window: "5m0s", Seconds: 300,
		Preload:    &preloadResult{Records: 2_000_000, Bytes: 1 << 30},
		Throughput: &capThroughput{Records: 2_000_000, Complete: true, Delivered: 2_000_000, SteadyRecordsPerS: 100_000, CoresUsed: 1.5, RecordsPerCPUSecond: 66_667, PeakRSSMiB: 300, OpenWindowsPeak: 90_000},
		Windows:    &windowMemory{Windows: 480_000, HeapPerWindow: 700, RSSPerWindow: 800},
		Rebalance:  &rebalanceRun{StartToJoin: 4, JoinToFirstWindow: 1.5, StartToFirstWindow: 5.5, StallSeconds: 3},
	}}
	var b strings.Builder
	report(&b, r)
	out := b.String()
	for _, want := range []string{"Capacity: 10000 tenants on 48 partitions", "| **records/s per core** (records per CPU-second) | **66667** |",
		"| **peak RSS per replica** (one replica, all 48 partitions) | **300 MiB** |", "| **memory per tenant window held by the combiner**, heap | **700 B** |",
		"| **rebalance: join to first delivered window** | **1.50 s** |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| measure | exporter | floor |") {
		t.Errorf("the end-to-end table's header without an end-to-end run:\n%s", out)
	}
}
