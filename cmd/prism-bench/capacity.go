package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/schemas/gen"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// The capacity phase: what one replica does with many tenants on many
// partitions (10,000 and 48 by default), in three steps, each with its own
// exporter processes, consumer group and internal topics:
//
//   - throughput: one exporter over a pre-loaded backlog, as the end-to-end
//     phase, for records/s, records per CPU-second and peak RSS;
//   - windows: live records for one window per tenant on every partition,
//     for the memory a tenant window costs the second stage (the combiner
//     holds an hour of them, each summed over the partitions);
//   - rebalance: a second exporter joins the group of one that is working
//     through the backlog, for the time from its start (and its join) to
//     its first delivered window.
type capacityRun struct {
	Tenants    int            `json:"tenants"`
	Partitions int            `json:"partitions"`
	Window     string         `json:"window"`
	Preload    *preloadResult `json:"preload,omitempty"`
	Throughput *capThroughput `json:"throughput,omitempty"`
	Windows    *windowMemory  `json:"window_memory,omitempty"`
	Rebalance  *rebalanceRun  `json:"rebalance,omitempty"`
	Seconds    float64        `json:"seconds"`
}

// checkCapacity validates the capacity flags.
func (c config) checkCapacity() []error {
	var errs []error
	if c.capTenants < 1 || c.capPartitions < 1 {
		errs = append(errs, fmt.Errorf("-capacity-tenants (%d) and -capacity-partitions (%d) must be positive", c.capTenants, c.capPartitions))
	}
	if c.capRecords < c.capPartitions {
		errs = append(errs, fmt.Errorf("-capacity-records (%d) must be at least -capacity-partitions (%d)", c.capRecords, c.capPartitions))
	}
	if c.capWindow < time.Second || c.span+c.capWindow >= time.Hour {
		errs = append(errs, fmt.Errorf("-capacity-window (%s) must be at least 1s, and plus -span (%s) under 1h, Datadog's metric age limit", c.capWindow, c.span))
	}
	if c.capFor <= 0 || c.capTimeout <= 0 {
		errs = append(errs, errors.New("-capacity-for and -capacity-timeout must be positive"))
	}
	if c.capPerWindow < 1 || c.capBudgetMiB < 1 {
		errs = append(errs, fmt.Errorf("-capacity-window-records (%d) and -capacity-window-budget (%d) must be positive", c.capPerWindow, c.capBudgetMiB))
	}
	if c.capRebalanceAfter <= 0 {
		errs = append(errs, fmt.Errorf("-capacity-rebalance-after (%s) must be positive", c.capRebalanceAfter))
	}
	if len(c.capSteps) == 0 {
		errs = append(errs, errors.New("-capacity-steps: no step selected"))
	}
	if c.capSteps["windows"] && c.exporterProf == "" {
		errs = append(errs, errors.New("-exporter-pprof is required by the capacity phase's window-memory step: it collects the exporter's garbage through the overlay's /debug/prism-bench/memstats before each reading (deployments/bench.sh builds it)"))
	}
	if c.httpAddr2 == c.httpAddr || c.httpAddr2 == c.pprofAddr || c.httpAddr == c.pprofAddr {
		errs = append(errs, fmt.Errorf("-http-addr (%s), -http-addr-2 (%s) and -pprof-addr (%s) must differ", c.httpAddr, c.httpAddr2, c.pprofAddr))
	}
	return errs
}

// capConfig is c with the capacity phase's tenants, partitions, records and
// window, for the helpers the phases share (preload, newAdmin, ...).
func (c config) capConfig() config {
	cc := c
	cc.tenants, cc.partitions, cc.records, cc.window = c.capTenants, c.capPartitions, c.capRecords, c.capWindow
	return cc
}

func runCapacity(ctx context.Context, c config, suffix string, logf func(string, ...any)) (run capacityRun, err error) {
	started := time.Now()
	defer func() { run.Seconds = time.Since(started).Seconds() }()
	ctx, cancel := context.WithTimeout(ctx, c.capTimeout)
	defer cancel()
	cc := c.capConfig()
	run = capacityRun{Tenants: cc.tenants, Partitions: cc.partitions, Window: cc.window.String()}
	ids := tenantIDs(cc.tenants)
	admin := newAdmin(cc.brokers, cc.partitions)
	if err := admin.warmCoordinator(ctx); err != nil {
		return run, err
	}

	topic := "bench-capacity-" + suffix
	if c.capSteps["throughput"] || c.capSteps["rebalance"] {
		if err := admin.createTopics(ctx, topic, topic+".dlq"); err != nil {
			return run, err
		}
		logf("capacity: pre-loading %d records for %d tenants into %s (%d partitions, %s)", cc.records, cc.tenants, topic, cc.partitions, cc.compression)
		pl, err := preload(ctx, cc, topic)
		if err != nil {
			return run, err
		}
		run.Preload = &pl
		logf("capacity: pre-loaded %d records (%.0f MiB) in %.1f s", pl.Records, mib(pl.Bytes), pl.Seconds)
	}
	if c.capSteps["throughput"] {
		logf("capacity, throughput: one exporter, %d tenants, %d partitions, %d records, %s windows", cc.tenants, cc.partitions, cc.records, cc.window)
		t, err := runCapThroughput(ctx, cc, topic, ids, suffix)
		run.Throughput = &t
		if err != nil {
			return run, fmt.Errorf("capacity, throughput: %w", err)
		}
		logf("capacity, throughput: %.0f records/s on %.2f cores = %.0f records per CPU-second; peak RSS %.0f MiB with up to %.0f open windows; ready after %.1f s",
			t.SteadyRecordsPerS, t.CoresUsed, t.RecordsPerCPUSecond, t.PeakRSSMiB, t.OpenWindowsPeak, t.ReadySeconds)
	}
	if c.capSteps["windows"] {
		logf("capacity, windows: %d records per tenant and partition, baseline first", cc.capPerWindow)
		w, err := runWindowMemory(ctx, cc, ids, suffix, logf)
		run.Windows = &w
		if err != nil {
			return run, fmt.Errorf("capacity, window memory: %w", err)
		}
		logf("capacity, windows: %.0f tenant windows added; %.0f B of heap and %.0f B of RSS per tenant window held by the combiner", w.Windows, w.HeapPerWindow, w.RSSPerWindow)
	}
	if c.capSteps["rebalance"] {
		logf("capacity, rebalance: a second exporter joins the first's group %s after it joined, or once it has consumed half the backlog", cc.capRebalanceAfter)
		r, err := runRebalance(ctx, cc, topic, ids, suffix)
		run.Rebalance = &r
		if err != nil {
			return run, fmt.Errorf("capacity, rebalance: %w", err)
		}
		logf("capacity, rebalance: start to join %.2f s, join to first window %.2f s, start to first window %.2f s; longest stall of deliveries %.2f s",
			r.StartToJoin, r.JoinToFirstWindow, r.StartToFirstWindow, r.StallSeconds)
	}
	return run, nil
}

// capThroughput is one exporter over the pre-loaded backlog.
type capThroughput struct {
	Records int `json:"records"`
	// Complete: every record's log was accepted and every partition
	// committed to its end within -capacity-for of the join; otherwise the
	// rates are over the part that was delivered by then.
	Complete bool `json:"complete"`
	// ReadySeconds is process start to /readyz: the tenants file imported
	// into the integrations topic and read back, the group joined.
	ReadySeconds    float64 `json:"start_to_ready_seconds"`
	ReadyCPUSeconds float64 `json:"cpu_seconds_to_ready"`
	// Seconds and RecordsPerS run from process start to all committed and
	// accepted (complete runs only), as the end-to-end phase's.
	Seconds     float64 `json:"seconds,omitempty"`
	RecordsPerS float64 `json:"records_per_second,omitempty"`
	// The measured span: from ready to the last log accepted (or to the
	// time box), with the logs the stand-in accepted and the exporter's CPU
	// time in it.
	MeasuredSeconds     float64 `json:"measured_seconds"`
	Delivered           int64   `json:"delivered"`
	SteadyRecordsPerS   float64 `json:"steady_records_per_second"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	CoresUsed           float64 `json:"cores_used"`
	RecordsPerCPUSecond float64 `json:"records_per_cpu_second"`
	CPUPerMillion       float64 `json:"cpu_seconds_per_million"`

	PeakRSSMiB        float64     `json:"peak_rss_mib"`
	OpenWindowsPeak   float64     `json:"open_windows_peak"` // sum over partitions, sampled once a second
	GoroutinesPeak    float64     `json:"goroutines_peak"`   // sampled once a second
	OpenFDsPeak       float64     `json:"open_fds_peak"`
	GCCycles          float64     `json:"gc_cycles"`
	FetchPauses       float64     `json:"fetch_pauses"`
	SinkRequests      float64     `json:"datadog_requests"` // prism_exporter_sink_requests_total, logs and series
	SinkRetries       float64     `json:"datadog_retries"`  // prism_exporter_sink_retries_total: timeouts and refusals retried`
	StandInRequests   int64       `json:"stand_in_requests"`
	PointsAccepted    int64       `json:"points_accepted"`
	StandInCPUSeconds float64     `json:"stand_in_cpu_seconds"`
	BrokerCPUSeconds  float64     `json:"broker_cpu_seconds"`
	Timeline          []capSample `json:"timeline"`
}

type capSample struct {
	T           float64 `json:"t"`
	Logs        int64   `json:"logs"`
	CPU         float64 `json:"cpu_s"`
	RSSMiB      float64 `json:"rss_mib"`
	OpenWindows float64 `json:"open_windows"`
	BudgetMiB   float64 `json:"budget_used_mib"`
	Lag         float64 `json:"lag"`
	Goroutines  float64 `json:"goroutines"`
	OpenFDs     float64 `json:"open_fds"`
}

// capEnv is what the throughput and rebalance steps change from the other
// phases' environment: the production default Datadog timeout. With
// thousands of tenants the exporter has up to twice as many requests in
// flight (PRISM_DATADOG_CONCURRENCY per tenant), and the stand-in, sharing
// the machine's cores, answers some of them after the other phases' 10 s:
// retries that Datadog would not cause.
var capEnv = []string{"PRISM_DATADOG_TIMEOUT=30s"}

func runCapThroughput(ctx context.Context, c config, topic string, ids []string, suffix string) (capThroughput, error) {
	r := capThroughput{Records: c.records}
	tenants, err := writeTenants(c.out, "tenants-capacity.yaml", ids, c.window)
	if err != nil {
		return r, err
	}
	dd := ddfake.New(ddfake.WithAccounts(accounts(ids)...), ddfake.WithCheapMode())
	si, err := startStandIn(dd, dd, os.Stderr)
	if err != nil {
		return r, err
	}
	defer si.close()
	admin := newAdmin(c.brokers, c.partitions)
	end, err := admin.endOffsets(ctx, topic)
	if err != nil {
		return r, err
	}
	group := "bench-capacity-" + suffix
	self0, broker0 := selfCPU(), cpuOf(c.kafkaPID)
	er, err := startExporter(c, exporterSpec{
		binary: c.exporter, name: "exporter-capacity", topic: topic, dlq: topic + ".dlq", group: group,
		tenants: tenants, ddURL: si.url, lateness: c.lateness, extraEnv: capEnv,
	})
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = er.stop(30 * time.Second)
		}
	}()
	if err := er.waitReady(ctx, 3*time.Minute); err != nil {
		return r, err
	}
	ready := time.Now()
	ps0, err := readProc(er.pid)
	if err != nil {
		return r, fmt.Errorf("reading the exporter's /proc: %w", err)
	}
	r.ReadySeconds = ready.Sub(er.started).Seconds()
	r.ReadyCPUSeconds = ps0.CPU.Seconds()
	logs0 := dd.Stats().LogsAccepted
	deadline := ready.Add(c.capFor)

	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	nextSample := time.Now()
	var logsDone time.Time
	var cpuDone time.Duration
	var logsAtDone int64
	for {
		now := time.Now()
		st := dd.Stats()
		if logsDone.IsZero() && st.LogsAccepted >= int64(c.records) {
			logsDone, logsAtDone = now, st.LogsAccepted
			if ps, err := readProc(er.pid); err == nil {
				cpuDone = ps.CPU
			}
		}
		if !now.Before(nextSample) {
			ps, _ := readProc(er.pid)
			s := capSample{T: now.Sub(er.started).Seconds(), Logs: st.LogsAccepted, CPU: ps.CPU.Seconds(), RSSMiB: mib(ps.RSS)}
			if m, err := scrape(ctx, er.httpAddr); err == nil {
				s.OpenWindows = m["prism_exporter_open_windows"]
				s.BudgetMiB = m["prism_exporter_memory_budget_used_bytes"] / (1 << 20)
				s.Lag = m["prism_exporter_partition_lag"]
				s.Goroutines, s.OpenFDs = m["go_goroutines"], m["process_open_fds"]
			}
			r.Timeline = append(r.Timeline, s)
			nextSample = nextSample.Add(time.Second)
		}
		if !logsDone.IsZero() && reached(admin.committed(ctx, group, topic), end) {
			r.Complete = true
			break
		}
		if err, gone := er.exited(); gone {
			return r, fmt.Errorf("the exporter exited during the run (%v); see %s", err, er.log)
		}
		if now.After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("not done: %d of %d logs accepted, committed %v of %v; see %s",
				st.LogsAccepted, c.records, admin.committed(context.Background(), group, topic), end, er.log)
		case <-poll.C:
		}
	}
	done := time.Now()
	ps, err := readProc(er.pid)
	if err != nil {
		return r, fmt.Errorf("reading the exporter's /proc: %w", err)
	}
	ms, err := scrapeSeries(ctx, er.httpAddr)
	if err != nil {
		return r, err
	}
	m := map[string]float64{}
	for k, v := range ms {
		m[metricName(k)] += v
	}
	st := dd.Stats()
	if logsDone.IsZero() { // the time box ended the run
		logsDone, cpuDone, logsAtDone = done, ps.CPU, st.LogsAccepted
	}
	if r.Complete {
		r.Seconds = done.Sub(er.started).Seconds()
		r.RecordsPerS = float64(c.records) / r.Seconds
	}
	r.Delivered = logsAtDone - logs0
	r.MeasuredSeconds = logsDone.Sub(ready).Seconds()
	r.CPUSeconds = (cpuDone - ps0.CPU).Seconds()
	if r.MeasuredSeconds > 0 && r.CPUSeconds > 0 && r.Delivered > 0 {
		r.SteadyRecordsPerS = float64(r.Delivered) / r.MeasuredSeconds
		r.CoresUsed = r.CPUSeconds / r.MeasuredSeconds
		r.RecordsPerCPUSecond = float64(r.Delivered) / r.CPUSeconds
		r.CPUPerMillion = r.CPUSeconds / (float64(r.Delivered) / 1e6)
	}
	r.PeakRSSMiB = mib(ps.HWM)
	r.OpenWindowsPeak = m["prism_exporter_open_windows"]
	for _, s := range r.Timeline {
		r.OpenWindowsPeak = max(r.OpenWindowsPeak, s.OpenWindows)
		r.GoroutinesPeak = max(r.GoroutinesPeak, s.Goroutines)
		r.OpenFDsPeak = max(r.OpenFDsPeak, s.OpenFDs)
	}
	r.GCCycles = m["go_gc_duration_seconds_count"]
	r.FetchPauses = m["prism_exporter_fetch_pauses_total"]
	// Logs and series: the key validations (one per tenant, at the start)
	// are not traffic.
	r.SinkRequests = sumWhere(ms, "prism_exporter_sink_requests_total", `endpoint="logs"`) +
		sumWhere(ms, "prism_exporter_sink_requests_total", `endpoint="series"`)
	r.SinkRetries = m["prism_exporter_sink_retries_total"]
	r.StandInRequests = st.Requests
	r.PointsAccepted = st.PointsAccepted
	r.StandInCPUSeconds = (selfCPU() - self0).Seconds()
	if c.kafkaPID > 0 {
		r.BrokerCPUSeconds = (cpuOf(c.kafkaPID) - broker0).Seconds()
	}
	if r.Delivered <= 0 {
		return r, fmt.Errorf("the exporter delivered nothing within %s of joining; see %s", c.capFor, er.log)
	}
	stopped = true
	return r, er.stop(30 * time.Second)
}

// windowMemory is the memory per tenant window the combiner holds: the
// exporter's live heap (after a forced collection) and RSS with one window
// per tenant, fed by every partition, less the same with one tenant's
// window after the same traffic, divided by the windows added.
type windowMemory struct {
	Interval  string    `json:"sync_interval"`
	WindowEnd time.Time `json:"window_end"`
	// RecordsPerWindow records were produced for every tenant on every
	// partition, each with the generator's random model, provider, gateway
	// and routing: TagSetsPerWindow distinct tag sets per window on average.
	RecordsPerWindow int      `json:"records_per_window"`
	TagSetsPerWindow float64  `json:"tag_sets_per_window"`
	BudgetMiB        int      `json:"memory_budget_mib"`
	ReadySeconds     float64  `json:"start_to_ready_seconds"`
	Baseline         memPoint `json:"baseline"`
	Loaded           memPoint `json:"loaded"`
	Windows          float64  `json:"windows_added"`
	HeapPerWindow    float64  `json:"heap_bytes_per_window"`
	RSSPerWindow     float64  `json:"rss_bytes_per_window"`
	PeakRSSMiB       float64  `json:"peak_rss_mib"`
}

// memPoint is one reading, taken once the exporter has consumed everything
// produced so far, right after debug.FreeOSMemory in the exporter.
type memPoint struct {
	Produced    int64   `json:"records_produced"`
	OpenWindows float64 `json:"open_windows"`
	HeapAlloc   uint64  `json:"heap_alloc_bytes"`
	HeapInuse   uint64  `json:"heap_inuse_bytes"`
	HeapObjects uint64  `json:"heap_objects"`
	Sys         uint64  `json:"sys_bytes"`
	RSS         int64   `json:"rss_bytes"`
	BudgetUsed  float64 `json:"memory_budget_used_bytes"`
}

// windowIntervals are the sync intervals the window-memory step may use: one
// whose current window still has the step's duration to run is picked, so
// that no window closes while it is measured.
var windowIntervals = []time.Duration{30 * time.Minute, 40 * time.Minute, 45 * time.Minute, 50 * time.Minute,
	20 * time.Minute, 25 * time.Minute, 35 * time.Minute, 55 * time.Minute, time.Hour}

// pickInterval returns the first of windowIntervals whose window around now
// (windows start at multiples of their length since the Unix epoch, as
// aggregate places them) ends at least need after now, or else the one that
// ends last.
func pickInterval(now time.Time, need time.Duration) (time.Duration, time.Time) {
	var best time.Duration
	var bestEnd time.Time
	for _, d := range windowIntervals {
		ns := now.UnixNano()
		end := time.Unix(0, ns-ns%int64(d)+int64(d))
		if end.Sub(now) >= need {
			return d, end
		}
		if end.After(bestEnd) {
			best, bestEnd = d, end
		}
	}
	return best, bestEnd
}

func runWindowMemory(ctx context.Context, c config, ids []string, suffix string, logf func(string, ...any)) (windowMemory, error) {
	const need = 5 * time.Minute
	interval, windowEnd := pickInterval(time.Now(), need)
	w := windowMemory{Interval: interval.String(), WindowEnd: windowEnd, RecordsPerWindow: c.capPerWindow, BudgetMiB: c.capBudgetMiB}
	if time.Until(windowEnd) < need {
		return w, fmt.Errorf("no sync interval of %v leaves %s before its window ends", windowIntervals, need)
	}
	pprofAddr, err := pickAddr(c.pprofAddr)
	if err != nil {
		return w, err
	}
	c.pprofAddr = pprofAddr
	topic := "bench-windows-" + suffix
	admin := newAdmin(c.brokers, c.partitions)
	if err := admin.createTopics(ctx, topic, topic+".dlq"); err != nil {
		return w, err
	}
	tenants, err := writeTenants(c.out, "tenants-windows.yaml", ids, interval)
	if err != nil {
		return w, err
	}
	// A stand-in that knows none of the keys: every tenant goes to error,
	// where a batch completes at once, as undeliverable, without a request.
	// Windows are built the same whatever the tenant's state (only paused
	// tenants are not routed); what this spares is a request per flushed
	// chunk of one or two logs, which the small budget below would
	// otherwise cost by the hundred thousand.
	dd := ddfake.New(ddfake.WithCheapMode())
	si, err := startStandIn(dd, dd, os.Stderr)
	if err != nil {
		return w, err
	}
	defer si.close()
	er, err := startExporter(c, exporterSpec{
		binary: c.exporterProf, name: "exporter-windows", topic: topic, dlq: topic + ".dlq", group: "bench-windows-" + suffix,
		tenants: tenants, ddURL: si.url, lateness: c.lateness,
		extraEnv: []string{
			"PRISM_BENCH_PPROF_ADDR=" + c.pprofAddr,
			// The budget bounds the logs held in open windows' partial
			// chunks (over it, a partition hands them on): at 1 MiB they
			// are noise next to the windows.
			fmt.Sprintf("PRISM_MEMORY_BUDGET_MIB=%d", c.capBudgetMiB),
			// The default soft limit (budget + 192 MiB) sits below the heap
			// of a few hundred thousand shares, and the collector would
			// run without pause while they arrive; the readings are taken
			// after a forced collection either way.
			"GOMEMLIMIT=8GiB",
			// Held in full: an eviction would void the reading.
			"PRISM_COMBINER_MEMORY_MIB=4096",
		},
	})
	if err != nil {
		return w, err
	}
	defer func() { _ = er.stop(30 * time.Second) }()
	if err := er.waitReady(ctx, 3*time.Minute); err != nil {
		return w, err
	}
	w.ReadySeconds = time.Since(er.started).Seconds()
	// Every tenant settled (in error) before any record: a tenant still
	// validating would hold its batches in its queue.
	if err := waitMetric(ctx, er, 2*time.Minute, "every tenant in state error", func(m map[string]float64) bool {
		return sumWhere(m, "prism_exporter_sink_tenants", `state="error"`) >= float64(len(ids))
	}); err != nil {
		return w, err
	}

	gens := make([]*gen.Generator, len(ids))
	for i, id := range ids {
		gens[i] = gen.New(gen.Config{Tenants: []string{id}, Seed: c.seed + int64(i)})
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(mustCodec(c.compression)),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
	)
	if err != nil {
		return w, err
	}
	defer cl.Close()

	// Baseline: the same number of records per partition, all of one
	// tenant: the fetch, decode and delivery paths warmed and their free
	// lists filled, one window per partition.
	perPartition := c.capPerWindow * len(ids)
	n0, _, err := produceWindows(ctx, cl, c.partitions, gens[:1], 1, perPartition, windowEnd)
	if err != nil {
		return w, err
	}
	if w.Baseline, err = memReading(ctx, c, er, n0); err != nil {
		return w, err
	}
	logf("capacity, windows: baseline %.0f windows, heap %.1f MiB, RSS %.1f MiB", w.Baseline.OpenWindows, float64(w.Baseline.HeapAlloc)/(1<<20), mib(w.Baseline.RSS))

	// Loaded: every tenant on every partition.
	n1, tagSets, err := produceWindows(ctx, cl, c.partitions, gens, c.capPerWindow, 1, windowEnd)
	if err != nil {
		return w, err
	}
	w.TagSetsPerWindow = tagSets
	if w.Loaded, err = memReading(ctx, c, er, n0+n1); err != nil {
		return w, err
	}
	m, err := scrapeSeries(ctx, er.httpAddr)
	if err != nil {
		return w, err
	}
	logf("capacity, windows: the combiner holds %.0f shares not yet folded and %.0f windows (%.0f B); it read %.0f progress records",
		sumWhere(m, "prism_exporter_combiner_held", `what="partials"`), sumWhere(m, "prism_exporter_combiner_held", `what="windows"`),
		sumWhere(m, "prism_exporter_combiner_held", `what="bytes"`), sumWhere(m, "prism_exporter_combiner_partials_total", `result="progress"`))
	if evicted := sumWhere(m, "prism_exporter_combiner_partials_total", `result="evicted"`); evicted > 0 {
		return w, fmt.Errorf("the combiner evicted %.0f shares during the step; the reading is void", evicted)
	}
	w.Windows = w.Loaded.OpenWindows - w.Baseline.OpenWindows
	if want := float64(len(ids) - 1); w.Windows < 0.99*want {
		return w, fmt.Errorf("%.0f tenant windows held, want %.0f (one per tenant); see %s", w.Windows, want, er.log)
	}
	w.HeapPerWindow = (float64(w.Loaded.HeapAlloc) - float64(w.Baseline.HeapAlloc)) / w.Windows
	w.RSSPerWindow = float64(w.Loaded.RSS-w.Baseline.RSS) / w.Windows
	if ps, err := readProc(er.pid); err == nil {
		w.PeakRSSMiB = mib(ps.HWM)
	}
	return w, nil
}

func mustCodec(name string) kgo.CompressionCodec {
	cc, _ := codec(name) // checked by parseFlags
	return cc
}

// produceWindows produces, rounds times over, perWindow records of each
// generator's tenant to each partition, stamped with the current time (before
// windowEnd), and waits for the broker's acknowledgements. It returns the
// records produced and, when rounds is 1, the average number of distinct tag
// sets (model, provider, gateway, routing) per tenant and partition.
func produceWindows(ctx context.Context, cl *kgo.Client, partitions int, gens []*gen.Generator, perWindow, rounds int, windowEnd time.Time) (int64, float64, error) {
	var firstErr error
	var errOnce sync.Once
	var n int64
	var acked atomic.Int64
	var dec schemas.Decoder
	var ev schemas.Event
	var tagSets, windows int
	seen := make([]string, 0, perWindow)
	const chunk = 4 << 20
	arena := make([]byte, 0, chunk)
	ts := time.Now()
	for r := 0; r < rounds; r++ {
		for p := 0; p < partitions; p++ {
			for _, g := range gens {
				seen = seen[:0]
				for j := 0; j < perWindow; j++ {
					if ctx.Err() != nil {
						return n, 0, ctx.Err()
					}
					if n%1024 == 0 {
						ts = time.Now()
						if !ts.Before(windowEnd) {
							return n, 0, fmt.Errorf("producing reached the window's end (%s)", windowEnd.Format(time.TimeOnly))
						}
					}
					if cap(arena)-len(arena) < 4096 {
						arena = make([]byte, 0, chunk)
					}
					at := len(arena)
					arena, _ = g.AppendNext(arena, ts)
					v := arena[at:len(arena):len(arena)]
					if rounds == 1 && dec.Decode(v, &ev) == nil {
						k := ev.Model + "\x00" + ev.Provider + "\x00" + ev.GatewayID + "\x00" + ev.RoutingStrategy
						if !contains(seen, k) {
							seen = append(seen, k)
						}
					}
					n++
					cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: v}, func(_ *kgo.Record, err error) {
						if err != nil {
							errOnce.Do(func() { firstErr = err })
							return
						}
						acked.Add(1)
					})
				}
				tagSets += len(seen)
				windows++
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return n, 0, err
	}
	if firstErr != nil {
		return n, 0, firstErr
	}
	if acked.Load() != n {
		return n, 0, fmt.Errorf("%d of %d records acknowledged", acked.Load(), n)
	}
	if rounds != 1 || windows == 0 {
		return n, 0, nil
	}
	return n, float64(tagSets) / float64(windows), nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// memReading waits until the exporter has consumed the records produced so
// far and handed on what it holds, then reads its memory after a forced
// collection.
func memReading(ctx context.Context, c config, er *exporterRun, produced int64) (memPoint, error) {
	pt := memPoint{Produced: produced}
	budget := float64(c.capBudgetMiB) * (1 << 20)
	err := waitMetric(ctx, er, 3*time.Minute, fmt.Sprintf("%d records consumed and the memory budget freed", produced), func(m map[string]float64) bool {
		return sumWhere(m, "prism_exporter_records_consumed_total") >= float64(produced) &&
			sumWhere(m, "prism_exporter_memory_budget_used_bytes") <= budget &&
			sumWhere(m, "prism_exporter_sink_queued_batches") == 0 &&
			sumWhere(m, "prism_exporter_combiner_lag") == 0
	})
	if err != nil {
		return pt, err
	}
	// Answers and their bookkeeping settle, the segments are cut (every
	// second) and the combiner reads their shares.
	select {
	case <-ctx.Done():
		return pt, ctx.Err()
	case <-time.After(3 * time.Second):
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprofAddr+"/debug/prism-bench/memstats", nil)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return pt, fmt.Errorf("memstats: %w (was the exporter built with the overlay? see deployments/bench.sh)", err)
	}
	var ms struct {
		HeapAlloc   uint64 `json:"heap_alloc"`
		HeapInuse   uint64 `json:"heap_inuse"`
		HeapObjects uint64 `json:"heap_objects"`
		Sys         uint64 `json:"sys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ms)
	resp.Body.Close()
	if err != nil {
		return pt, fmt.Errorf("memstats: %w", err)
	}
	pt.HeapAlloc, pt.HeapInuse, pt.HeapObjects, pt.Sys = ms.HeapAlloc, ms.HeapInuse, ms.HeapObjects, ms.Sys
	ps, err := readProc(er.pid)
	if err != nil {
		return pt, err
	}
	pt.RSS = ps.RSS
	m, err := scrapeSeries(ctx, er.httpAddr)
	if err != nil {
		return pt, err
	}
	pt.OpenWindows = sumWhere(m, "prism_exporter_combiner_held", `what="windows"`)
	pt.BudgetUsed = sumWhere(m, "prism_exporter_memory_budget_used_bytes")
	return pt, nil
}

// waitMetric polls the exporter's /metrics until ok holds.
func waitMetric(ctx context.Context, er *exporterRun, timeout time.Duration, what string, ok func(map[string]float64) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last map[string]float64
	for {
		if m, err := scrapeSeries(ctx, er.httpAddr); err == nil {
			last = m
			if ok(m) {
				return nil
			}
		}
		if err, gone := er.exited(); gone {
			return fmt.Errorf("the exporter exited while waiting for %s (%v); see %s", what, err, er.log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: not within %s (consumed %.0f, budget used %.0f B, tenants in error %.0f); see %s", what, timeout,
				sumWhere(last, "prism_exporter_records_consumed_total"), sumWhere(last, "prism_exporter_memory_budget_used_bytes"),
				sumWhere(last, "prism_exporter_sink_tenants", `state="error"`), er.log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// rebalanceRun is a second exporter joining the group of one that works
// through the backlog.
type rebalanceRun struct {
	Records int `json:"records"`
	// The second member starts AfterSeconds after the first joined. The
	// first member then: what it had consumed of the backlog and how far it
	// was behind.
	AfterSeconds      float64 `json:"second_started_after_seconds"`
	ConsumedAtStart   float64 `json:"first_consumed_at_second_start"`
	LagAtStart        float64 `json:"first_lag_at_second_start"`
	FirstReadySeconds float64 `json:"first_start_to_ready_seconds"`
	// The second member, from its process start: its "joined generation"
	// log line, /readyz answering 200 (polled every 50 ms), its first
	// delivered window (prism_exporter_sink_items_total{kind="metrics",
	// outcome="delivered"} above 0 on its /metrics, polled every 100 ms)
	// and its first delivered batch of any kind (a chunk of logs, usually).
	StartToJoin        float64 `json:"start_to_join_seconds"`
	StartToReady       float64 `json:"start_to_ready_seconds"`
	StartToFirstBatch  float64 `json:"start_to_first_delivered_batch_seconds"`
	StartToFirstWindow float64 `json:"start_to_first_window_seconds"`
	JoinToFirstWindow  float64 `json:"join_to_first_window_seconds"`
	// FirstRejoin is when the first member's log says it joined the new
	// generation, from the second's start.
	FirstRejoin float64 `json:"first_rejoined_seconds"`
	Generation  int32   `json:"generation"`
	Partitions  [2]int  `json:"partitions"` // each member's in the new generation
	// StallSeconds is the longest time, from the second's start to its
	// first window, in which the stand-in accepted no log from either.
	StallSeconds float64    `json:"longest_delivery_stall_seconds"`
	PeakRSSMiB   [2]float64 `json:"peak_rss_mib"`
}

func runRebalance(ctx context.Context, c config, topic string, ids []string, suffix string) (rebalanceRun, error) {
	r := rebalanceRun{Records: c.records}
	tenants, err := writeTenants(c.out, "tenants-rebalance.yaml", ids, c.window)
	if err != nil {
		return r, err
	}
	dd := ddfake.New(ddfake.WithAccounts(accounts(ids)...), ddfake.WithCheapMode())
	si, err := startStandIn(dd, dd, os.Stderr)
	if err != nil {
		return r, err
	}
	defer si.close()
	spec := exporterSpec{
		binary: c.exporter, topic: topic, dlq: topic + ".dlq", group: "bench-rebalance-" + suffix,
		tenants: tenants, ddURL: si.url, lateness: c.lateness, logLevel: "info", extraEnv: capEnv,
	}
	s1 := spec
	s1.name, s1.httpAddr = "exporter-rebalance-1", c.httpAddr
	first, err := startExporter(c, s1)
	if err != nil {
		return r, err
	}
	var second *exporterRun
	defer func() {
		// Both at once: each drains up to PRISM_DRAIN_TIMEOUT.
		var wg sync.WaitGroup
		for _, er := range []*exporterRun{first, second} {
			if er == nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = er.stop(30 * time.Second) }()
		}
		wg.Wait()
	}()
	if err := first.waitReady(ctx, 3*time.Minute); err != nil {
		return r, err
	}
	r.FirstReadySeconds = time.Since(first.started).Seconds()
	// The second member starts after -capacity-rebalance-after, or sooner
	// once the first has consumed half the backlog: it must find work left.
	half := float64(c.records) / 2
	var m1 map[string]float64
	for deadline := time.Now().Add(c.capRebalanceAfter); time.Now().Before(deadline); {
		m, err := scrapeSeries(ctx, first.httpAddr)
		if err == nil {
			m1 = m
			if sumWhere(m, "prism_exporter_records_consumed_total") >= half {
				break
			}
		}
		if err, gone := first.exited(); gone {
			return r, fmt.Errorf("the first exporter exited (%v); see %s", err, first.log)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.AfterSeconds = time.Since(first.started).Seconds() - r.FirstReadySeconds
	if m1 == nil {
		return r, fmt.Errorf("the first exporter's /metrics did not answer; see %s", first.log)
	}
	r.ConsumedAtStart = sumWhere(m1, "prism_exporter_records_consumed_total")
	r.LagAtStart = sumWhere(m1, "prism_exporter_partition_lag")
	// The second member must find work: a backlog on the partitions it
	// will take over.
	if left := float64(c.records) - r.ConsumedAtStart; left < 0.2*float64(c.records) {
		return r, fmt.Errorf("the first exporter had consumed %.0f of %d records %.1f s after joining: too little backlog left for the second; raise -capacity-records",
			r.ConsumedAtStart, c.records, r.AfterSeconds)
	}

	s2 := spec
	s2.name, s2.httpAddr = "exporter-rebalance-2", c.httpAddr2
	var samples []logSample
	second, err = startExporter(c, s2)
	if err != nil {
		return r, err
	}
	t0 := second.started
	var ready, firstBatch, firstWindow time.Time
	hc := &http.Client{Timeout: time.Second}
	timeout := time.After(3 * time.Minute)
	for i := 0; firstWindow.IsZero(); i++ {
		now := time.Now()
		samples = append(samples, logSample{at: now, logs: dd.Stats().LogsAccepted})
		if ready.IsZero() {
			if resp, err := hc.Get("http://" + second.httpAddr + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready = now
				}
			}
		}
		if i%2 == 0 {
			if m, err := scrapeSeries(ctx, second.httpAddr); err == nil {
				if firstBatch.IsZero() && sumWhere(m, "prism_exporter_sink_batches_total", `outcome="delivered"`) > 0 {
					firstBatch = now
				}
				if sumWhere(m, "prism_exporter_sink_items_total", `kind="metrics"`, `outcome="delivered"`) > 0 {
					firstWindow = now
				}
			}
		}
		for _, er := range []*exporterRun{first, second} {
			if err, gone := er.exited(); gone {
				return r, fmt.Errorf("an exporter exited during the rebalance (%v); see %s", err, er.log)
			}
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-timeout:
			return r, fmt.Errorf("the second exporter delivered no window within 3 minutes of its start (ready: %v); see %s and %s", !ready.IsZero(), second.log, first.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.StartToReady = ready.Sub(t0).Seconds()
	if !firstBatch.IsZero() {
		r.StartToFirstBatch = firstBatch.Sub(t0).Seconds()
	}
	r.StartToFirstWindow = firstWindow.Sub(t0).Seconds()
	r.StallSeconds = longestStall(samples, t0, firstWindow).Seconds()

	j2, err := joins(second.log)
	if err != nil {
		return r, err
	}
	if len(j2) == 0 {
		return r, fmt.Errorf("no \"joined generation\" line in %s", second.log)
	}
	// The wall clock of the log line against the wall clock of the start:
	// Round(0) drops the monotonic reading, which the log line has not.
	r.StartToJoin = j2[0].at.Sub(t0.Round(0)).Seconds()
	r.JoinToFirstWindow = firstWindow.Round(0).Sub(j2[0].at).Seconds()
	r.Generation = j2[0].generation
	r.Partitions[1] = j2[0].partitions
	j1, err := joins(first.log)
	if err != nil {
		return r, err
	}
	for _, j := range j1 {
		if j.generation == r.Generation {
			r.FirstRejoin = j.at.Sub(t0.Round(0)).Seconds()
			r.Partitions[0] = j.partitions
		}
	}
	for i, er := range []*exporterRun{first, second} {
		if ps, err := readProc(er.pid); err == nil {
			r.PeakRSSMiB[i] = mib(ps.HWM)
		}
	}
	return r, nil
}

type logSample struct {
	at   time.Time
	logs int64
}

// longestStall is the longest time within [from, to] between two
// increases of the accepted logs (from and to count as increases).
func longestStall(samples []logSample, from, to time.Time) time.Duration {
	last := from
	var longest time.Duration
	var prev int64 = -1
	for _, s := range samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		if prev >= 0 && s.logs > prev {
			longest = max(longest, s.at.Sub(last))
			last = s.at
		}
		prev = s.logs
	}
	return max(longest, to.Sub(last))
}

type join struct {
	at         time.Time
	generation int32
	partitions int
}

// zapTime is the exporter's log time format (zapcore.ISO8601TimeEncoder).
const zapTime = "2006-01-02T15:04:05.000Z0700"

// joins reads the "joined generation" lines of an exporter's JSON log.
func joins(path string) ([]join, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseJoins(f)
}

func parseJoins(r io.Reader) ([]join, error) {
	var out []join
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"joined generation"`)) {
			continue
		}
		var l struct {
			TS         string `json:"ts"`
			Msg        string `json:"msg"`
			Generation int32  `json:"generation"`
			Partitions []int  `json:"partitions"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "joined generation" {
			continue
		}
		at, err := time.Parse(zapTime, l.TS)
		if err != nil {
			return out, fmt.Errorf("log time %q: %w", l.TS, err)
		}
		out = append(out, join{at: at, generation: l.Generation, partitions: len(l.Partitions)})
	}
	return out, sc.Err()
}
