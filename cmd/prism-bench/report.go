package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one benchmark run measured; results.json holds it.
type results struct {
	Started time.Time      `json:"started"`
	Machine machine        `json:"machine"`
	Setup   map[string]any `json:"setup"`
	Preload *preloadResult `json:"preload,omitempty"`
	Floor   *floorRun      `json:"floor,omitempty"`
	E2E     *e2eRun        `json:"end_to_end,omitempty"`
	Profile *profileRun    `json:"profile,omitempty"`
	Fresh   *freshRun      `json:"freshness,omitempty"`

	Capacity *capacityRun `json:"capacity,omitempty"`
}

type machine struct {
	CPUs    int    `json:"cpus"`
	Model   string `json:"cpu_model"`
	MemGiB  string `json:"memory"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Kafka   string `json:"kafka"`
	LoadAvg string `json:"load_average_at_start"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kafka: os.Getenv("KAFKA_VERSION")}
	if m.Kafka == "" {
		m.Kafka = "unknown (set KAFKA_VERSION)"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && k == "MemTotal" {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
				m.MemGiB = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// benchmark runs the phases asked for, in an order where each measured run
// has the machine to itself: pre-load, floor, end to end, profile,
// freshness.
func benchmark(ctx context.Context, c config) error {
	res := results{Started: time.Now(), Machine: describeMachine(), Setup: map[string]any{
		"records": c.records, "tenants": c.tenants, "partitions": c.partitions, "span": c.span.String(),
		"window": c.window.String(), "lateness": c.lateness.String(), "kafka_compression": c.compression,
		"fresh_low": c.freshLow, "fresh_high": c.freshHigh, "fresh_for": c.freshFor.String(),
		"fresh_window": c.freshWindow.String(), "fresh_lateness": c.freshLateness.String(),
		"brokers": c.brokers, "out": c.out, "phases": phaseList(c.phases),
	}}
	if c.phases["capacity"] {
		res.Setup["capacity_tenants"], res.Setup["capacity_partitions"] = c.capTenants, c.capPartitions
		res.Setup["capacity_records"], res.Setup["capacity_window"] = c.capRecords, c.capWindow.String()
		res.Setup["capacity_for"], res.Setup["capacity_window_records"] = c.capFor.String(), c.capPerWindow
		res.Setup["capacity_window_budget_mib"], res.Setup["capacity_rebalance_after"] = c.capBudgetMiB, c.capRebalanceAfter.String()
		res.Setup["capacity_steps"] = phaseList(c.capSteps)
	}
	defer func() { writeResults(c, &res) }()
	suffix := fmt.Sprintf("%s-%04d", time.Now().Format("150405"), rand.IntN(10000))
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "prism-bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	logf("machine: %d CPUs (%s), %s, %s, Kafka %s; results in %s", res.Machine.CPUs, res.Machine.Model, res.Machine.MemGiB, res.Machine.Go, res.Machine.Kafka, c.out)

	topic := "bench-e2e-" + suffix
	if c.phases["e2e"] || c.phases["floor"] || c.phases["profile"] {
		admin := newAdmin(c.brokers, c.partitions)
		if err := admin.createTopics(ctx, topic, topic+".dlq"); err != nil {
			return err
		}
		if err := admin.warmCoordinator(ctx); err != nil {
			return err
		}
		logf("pre-loading %d records for %d tenants into %s (%d partitions, %s)", c.records, c.tenants, topic, c.partitions, c.compression)
		pl, err := preload(ctx, c, topic)
		if err != nil {
			return err
		}
		res.Preload = &pl
		logf("pre-loaded %d records (%.0f MiB) in %.1f s (%.0f records/s); event time %s to %s",
			pl.Records, mib(pl.Bytes), pl.Seconds, float64(pl.Records)/pl.Seconds, pl.From.Format(time.TimeOnly), pl.To.Format(time.TimeOnly))
	}
	if c.phases["floor"] {
		logf("floor: plain kafka-go consumer, encoding/json and gzip")
		f, err := runFloor(ctx, c, topic, c.records)
		if err != nil {
			return err
		}
		res.Floor = &f
		logf("floor: %.0f records/s, %.2f CPU-s per million, peak RSS %.0f MiB", f.RecordsPerS, f.CPUPerMillon, f.PeakRSSMiB)
	}
	profileFor := c.profileFor
	if c.phases["e2e"] {
		logf("end to end: the exporter as its own process, %d records", c.records)
		e, err := runE2E(ctx, c, topic, c.records, suffix)
		if err != nil {
			return err
		}
		res.E2E = &e
		logf("end to end: %.0f records/s (steady %.0f), %.2f CPU-s per million, peak RSS %.0f MiB, %.1f allocs per record",
			e.RecordsPerS, e.SteadyRecordsPerS, e.CPUPerMillion, e.PeakRSSMiB, e.AllocsPerRecord)
		// Profile the steady state only, not the tail after the data.
		profileFor = min(profileFor, time.Duration((e.LogsSeconds-e.JoinSeconds)*float64(time.Second)))
	}
	if c.phases["profile"] {
		logf("profile: CPU profile of the exporter for %s", profileFor.Round(time.Second))
		p, err := runProfile(ctx, c, topic, suffix, profileFor)
		if err != nil {
			return err
		}
		res.Profile = &p
	}
	if c.phases["fresh"] {
		logf("freshness: %d then %d records/s for %s each, %s windows, %s lateness", c.freshLow, c.freshHigh, c.freshFor, c.freshWindow, c.freshLateness)
		f, err := runFresh(ctx, c, suffix)
		if err != nil {
			return err
		}
		res.Fresh = &f
	}
	if c.phases["capacity"] {
		logf("capacity: %d tenants on %d partitions (steps: %s)", c.capTenants, c.capPartitions, strings.Join(phaseList(c.capSteps), ", "))
		cp, err := runCapacity(ctx, c, suffix, logf)
		res.Capacity = &cp
		if err != nil {
			return err
		}
	}
	return nil
}

// phaseList is a set's members, in order.
func phaseList(set map[string]bool) []string {
	var out []string
	for k, on := range set {
		if on {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// writeResults writes results.json and results.md and prints the summary,
// whatever was measured before an error.
func writeResults(c config, res *results) {
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(c.out, "results.json"), b, 0o644)
	}
	var md strings.Builder
	report(&md, res)
	_ = os.WriteFile(filepath.Join(c.out, "results.md"), []byte(md.String()), 0o644)
	fmt.Print(md.String())
	if res.Profile != nil {
		var pb strings.Builder
		fmt.Fprintf(&pb, "CPU profile (%.0f s) by package, flat:\n", res.Profile.Seconds)
		for i, p := range res.Profile.Packages {
			if i == 20 {
				break
			}
			fmt.Fprintf(&pb, "  %6.2f%%  %s\n", p.Flat, p.Package)
		}
		fmt.Fprintf(&pb, "\nStages, cumulative (they overlap):\n")
		for _, st := range res.Profile.Stages {
			fmt.Fprintf(&pb, "  %6.2f%%  %s\n", st.Flat, st.Package)
		}
		fmt.Fprintf(&pb, "\n%s\n%s\nAllocations (objects, whole run):\n%s\nHeap in use at the end of the CPU profile (RSS then %.0f MiB):\n%s",
			res.Profile.TopText, res.Profile.CumText, res.Profile.AllocText, res.Profile.HeapMiB, res.Profile.HeapText)
		_ = os.WriteFile(filepath.Join(c.out, "hotspots.txt"), []byte(pb.String()), 0o644)
		fmt.Print("\n" + pb.String())
	}
	fmt.Fprintf(os.Stderr, "prism-bench: results in %s\n", c.out)
}

// report writes the results as the Markdown of docs/benchmarks.md, targets
// checked.
func report(w io.Writer, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s, Linux %s, %s, Apache Kafka %s; load average at start %s.\n\n",
		m.CPUs, m.Model, m.MemGiB, m.Kernel, m.Go, m.Kafka, m.LoadAvg)
	if p := r.Preload; p != nil {
		fmt.Fprintf(w, "Pre-load: %d records, %.0f MiB of JSON (%.0f bytes each), produced in %.1f s.\n\n",
			p.Records, mib(p.Bytes), float64(p.Bytes)/float64(p.Records), p.Seconds)
	}
	e, f := r.E2E, r.Floor
	if e != nil || f != nil {
		fmt.Fprintf(w, "| measure | exporter | floor | exporter / floor | target | met |\n|---|---|---|---|---|---|\n")
	}
	ok := func(b bool) string {
		if b {
			return "yes"
		}
		return "**no**"
	}
	if e != nil {
		ratio, fr, fc, fm, cr := "", "", "", "", ""
		half := true
		if f != nil {
			ratio = fmt.Sprintf("%.2f", e.RecordsPerS/f.RecordsPerS)
			half = e.RecordsPerS >= f.RecordsPerS/2
			fr, fc, fm = fmt.Sprintf("%.0f", f.RecordsPerS), fmt.Sprintf("%.2f", f.CPUPerMillon), fmt.Sprintf("%.0f", f.PeakRSSMiB)
			cr = fmt.Sprintf("%.2f", e.CPUPerMillion/f.CPUPerMillon)
		}
		fmt.Fprintf(w, "| records/s, start to all committed and accepted | %.0f | %s | %s | >= 150,000 and >= 0.5 x floor | %s |\n",
			e.RecordsPerS, fr, ratio, ok(e.RecordsPerS >= 150_000 && half))
		fmt.Fprintf(w, "| records/s, steady (joined to last log) | %.0f | | | | |\n", e.SteadyRecordsPerS)
		fmt.Fprintf(w, "| CPU-s per million records | %.2f | %s | %s | <= 10 | %s |\n", e.CPUPerMillion, fc, cr, ok(e.CPUPerMillion <= 10))
		fmt.Fprintf(w, "| peak RSS, MiB (5-minute windows, full load) | %.0f | %s | | < 256 | %s |\n", e.PeakRSSMiB, fm, ok(e.PeakRSSMiB < 256))
		fmt.Fprintf(w, "| allocations per record | %.1f | | | | |\n", e.AllocsPerRecord)
		fmt.Fprintf(w, "\nEnd to end: %.1f s in all; %.1f s to join the group, last log at %.1f s, then %.1f s until the last commit. "+
			"%.0f GC cycles, %.0f fetch pauses (memory budget). In the same time the stand-in and polling (bench process) used %.1f CPU-s "+
			"and the broker %.1f CPU-s. Stand-in: %d logs accepted, %d requests, %d points, %.0f MiB gzip on the wire for %.0f MiB of JSON.\n",
			e.Seconds, e.JoinSeconds, e.LogsSeconds, e.CommitTailSeconds, e.GCCycles, e.FetchPauses, e.StandInCPUSeconds,
			e.BrokerCPUSeconds, e.LogsAccepted, e.LogRequests, e.PointsAccepted, e.WireMiB, e.BodyMiB)
		fmt.Fprintf(w, "Second stage: %.0f window shares written to the partials topic (%.1f per 1,000 records), %.0f window totals sent by the combiner by then.\n",
			e.PartialsProduced, 1000*e.PartialsProduced/float64(max(1, e.Records)), e.CombinerSends)
	} else if f != nil {
		fmt.Fprintf(w, "| records/s | | %.0f | | | |\n| CPU-s per million | | %.2f | | | |\n", f.RecordsPerS, f.CPUPerMillon)
	}
	if f != nil {
		fmt.Fprintf(w, "\nFloor: %d records in %.1f s, %.1f CPU-s, broker %.1f CPU-s meanwhile; gzip at BestSpeed shrinks the records %.1fx.\n",
			f.Records, f.Seconds, f.CPUSeconds, f.BrokerCPU, f.GzRatio)
	}
	if fr := r.Fresh; fr != nil {
		fmt.Fprintf(w, "\nFreshness (window end to the final value of every one of its `prism.gateway.requests` series accepted; %.0f s windows, %.0f s lateness, target <= %.0f s):\n\n",
			fr.Window, fr.Lateness, fr.Lateness+2)
		fmt.Fprintf(w, "| load | records/s | windows | p50 s | p95 s | max s | first point p50 s | CPU-s per million | lag at end | peak RSS MiB | met |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, ph := range fr.Phases {
			fmt.Fprintf(w, "| %s | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %d | %.0f | %s |\n", ph.Name, ph.ActualRate, ph.Windows,
				ph.Freshness.P50, ph.Freshness.P95, ph.Freshness.Max, ph.FirstSeen.P50, ph.CPUPerMil, ph.Lag, ph.PeakRSSMiB,
				ok(ph.Freshness.Max <= fr.Lateness+2))
		}
	}
	if r.Capacity != nil {
		reportCapacity(w, r.Capacity)
	}
}

// reportCapacity writes the capacity phase's table: the quantities
// docs/operations.md sizes replicas and partitions with.
func reportCapacity(w io.Writer, cp *capacityRun) {
	fmt.Fprintf(w, "\nCapacity: %d tenants on %d partitions, %s windows", cp.Tenants, cp.Partitions, cp.Window)
	if p := cp.Preload; p != nil {
		fmt.Fprintf(w, ", %d records pre-loaded (%.0f MiB)", p.Records, mib(p.Bytes))
	}
	fmt.Fprintf(w, "; the phase took %.0f s.\n\n| measure | value | how |\n|---|---|---|\n", cp.Seconds)
	if t := cp.Throughput; t != nil {
		span := "ready to last log"
		if !t.Complete {
			span = fmt.Sprintf("ready to the time box, %d of %d records delivered", t.Delivered, t.Records)
		}
		fmt.Fprintf(w, "| records/s on this machine (%d CPUs shared with the broker and the stand-in) | %.0f | logs accepted by the stand-in, %s (%.1f s) |\n",
			runtime.NumCPU(), t.SteadyRecordsPerS, span, t.MeasuredSeconds)
		fmt.Fprintf(w, "| exporter CPU meanwhile | %.2f cores | utime+stime of its /proc entry, %.1f CPU-s |\n", t.CoresUsed, t.CPUSeconds)
		fmt.Fprintf(w, "| **records/s per core** (records per CPU-second) | **%.0f** | records / exporter CPU-seconds over the same span |\n", t.RecordsPerCPUSecond)
		fmt.Fprintf(w, "| CPU-s per million records | %.2f | |\n", t.CPUPerMillion)
		if t.Complete {
			fmt.Fprintf(w, "| records/s, start to all committed and accepted | %.0f | %.1f s from the process start |\n", t.RecordsPerS, t.Seconds)
		}
		fmt.Fprintf(w, "| start to ready | %.1f s | tenants file imported into the integrations topic, group joined (/readyz); %.1f CPU-s |\n", t.ReadySeconds, t.ReadyCPUSeconds)
		fmt.Fprintf(w, "| **peak RSS per replica** (one replica, all %d partitions) | **%.0f MiB** | VmHWM of its /proc entry |\n", cp.Partitions, t.PeakRSSMiB)
		fmt.Fprintf(w, "| tenant windows in a segment, peak | %.0f | sum of prism_exporter_open_windows, sampled once a second |\n", t.OpenWindowsPeak)
	}
	if m := cp.Windows; m != nil && m.Windows > 0 {
		fmt.Fprintf(w, "| **memory per tenant window held by the combiner**, heap | **%.0f B** | live heap after a forced GC, %.0f windows (each fed by every partition) over a baseline of %.0f |\n",
			m.HeapPerWindow, m.Windows, m.Baseline.OpenWindows)
		fmt.Fprintf(w, "| memory per tenant window held by the combiner, RSS | %.0f B | RSS after the same GC and debug.FreeOSMemory |\n", m.RSSPerWindow)
		if d := float64(m.Loaded.HeapAlloc) - float64(m.Baseline.HeapAlloc); d < 16<<20 {
			fmt.Fprintf(w, "| | | **too few windows for a reading**: the heap grew %.1f MiB, within a few MiB of noise (more tenants or partitions) |\n", d/(1<<20))
		}
	}
	if r := cp.Rebalance; r != nil && r.StartToFirstWindow > 0 {
		fmt.Fprintf(w, "| rebalance: second member's start to join | %.2f s | its \"joined generation\" log line (/readyz: %.2f s) |\n", r.StartToJoin, r.StartToReady)
		fmt.Fprintf(w, "| **rebalance: join to first delivered window** | **%.2f s** | its prism_exporter_sink_items_total{kind=\"metrics\",outcome=\"delivered\"} above 0 |\n", r.JoinToFirstWindow)
		fmt.Fprintf(w, "| rebalance: start to first delivered window | %.2f s | (first delivered batch of any kind: %.2f s) |\n", r.StartToFirstWindow, r.StartToFirstBatch)
		fmt.Fprintf(w, "| rebalance: longest stall of the group's deliveries | %.2f s | no log accepted from either member, start to first window |\n", r.StallSeconds)
	}
	if t := cp.Throughput; t != nil {
		fmt.Fprintf(w, "\nThroughput step: %.0f GC cycles, %.0f fetch pauses (memory budget); up to %.0f goroutines and %.0f open file descriptors; "+
			"the exporter made %.0f Datadog requests (%.1f per 1,000 records delivered) and retried %.0f; the stand-in answered %d requests and accepted %d metric points; "+
			"meanwhile the bench process (stand-in, polling) used %.1f CPU-s and the broker %.1f CPU-s.\n",
			t.GCCycles, t.FetchPauses, t.GoroutinesPeak, t.OpenFDsPeak, t.SinkRequests, 1000*t.SinkRequests/float64(max(1, t.Delivered)), t.SinkRetries,
			t.StandInRequests, t.PointsAccepted, t.StandInCPUSeconds, t.BrokerCPUSeconds)
	}
	if m := cp.Windows; m != nil && m.Windows > 0 {
		fmt.Fprintf(w, "\nWindow memory: %d records per tenant and partition (%.2f tag sets per window), sync_interval %s so that no window closes (none did), "+
			"PRISM_MEMORY_BUDGET_MIB=%d; baseline (one tenant, the same records per partition) %.0f windows, heap %.1f MiB, RSS %.1f MiB; "+
			"loaded %.0f windows, heap %.1f MiB, RSS %.1f MiB; budget in use %.2f / %.2f MiB; peak RSS %.0f MiB.\n",
			m.RecordsPerWindow, m.TagSetsPerWindow, m.Interval, m.BudgetMiB, m.Baseline.OpenWindows, float64(m.Baseline.HeapAlloc)/(1<<20), mib(m.Baseline.RSS),
			m.Loaded.OpenWindows, float64(m.Loaded.HeapAlloc)/(1<<20), mib(m.Loaded.RSS), m.Baseline.BudgetUsed/(1<<20), m.Loaded.BudgetUsed/(1<<20), m.PeakRSSMiB)
	}
	if r := cp.Rebalance; r != nil && r.StartToFirstWindow > 0 {
		fmt.Fprintf(w, "\nRebalance: the second member started %.0f s after the first joined, when the first had consumed %.0f records (lag %.0f); generation %d split the partitions %d / %d; "+
			"the first member rejoined %.2f s after the second's start. Peak RSS %.0f / %.0f MiB.\n",
			r.AfterSeconds, r.ConsumedAtStart, r.LagAtStart, r.Generation, r.Partitions[0], r.Partitions[1], r.FirstRejoin, r.PeakRSSMiB[0], r.PeakRSSMiB[1])
	}
}
