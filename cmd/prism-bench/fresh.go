package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// freshPhase is one load level of the freshness run.
type freshPhase struct {
	Name        string  `json:"name"`
	Rate        int     `json:"target_records_per_second"`
	Produced    int64   `json:"produced"`
	ActualRate  float64 `json:"records_per_second"`
	Windows     int     `json:"windows"`                 // tenant windows measured
	Freshness   dist    `json:"freshness_seconds"`       // the window complete: every series at its final value
	FirstSeen   dist    `json:"first_partition_seconds"` // its first point of any value
	CPUPerMil   float64 `json:"cpu_seconds_per_million"`
	Lag         int64   `json:"lag_at_end"` // records not yet fetched by the exporter when the phase ended
	PeakRSSMiB  float64 `json:"peak_rss_mib_so_far"`
	from, until time.Time
}

// dist is a distribution's summary, in seconds.
type dist struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func summarize(xs []float64) dist {
	if len(xs) == 0 {
		return dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return dist{P50: q(0.50), P95: q(0.95), Max: s[len(s)-1], N: len(s)}
}

type freshRun struct {
	// StatusCounts are the stand-ins' answers (logs, then the rest) by
	// HTTP status; 0 counts requests not answered.
	StatusCounts [2]map[int]int64 `json:"status_counts"`
	Window       float64          `json:"window_seconds"`
	Lateness     float64          `json:"lateness_seconds"`
	Phases       []freshPhase     `json:"phases"`
}

// runFresh produces live traffic, first at the low rate and then at the full
// one, into a new topic that one exporter consumes with short windows, and
// measures for each tenant window inside a phase the time from the window's
// end until the stand-in had accepted the final value of every one of its
// prism.gateway.requests series.
func runFresh(ctx context.Context, c config, suffix string) (freshRun, error) {
	topic := "bench-fresh-" + suffix
	admin := newAdmin(c.brokers, c.partitions)
	if err := admin.createTopics(ctx, topic, topic+".dlq"); err != nil {
		return freshRun{}, err
	}
	ids := tenantIDs(c.tenants)
	tenants, err := writeTenants(c.out, "tenants-fresh.yaml", ids, c.freshWindow)
	if err != nil {
		return freshRun{}, err
	}
	// Series go to a recording stand-in (it keeps every write with the time
	// it was accepted); logs to a cheap one that only counts them.
	logs := ddfake.New(ddfake.WithAccounts(accounts(ids)...), ddfake.WithCheapMode())
	recorder := ddfake.New(ddfake.WithAccounts(accounts(ids)...))
	si, err := startStandIn(logs, recorder, os.Stderr)
	if err != nil {
		return freshRun{}, err
	}
	defer si.close()
	er, err := startExporter(c, exporterSpec{
		binary: c.exporter, name: "exporter-fresh", topic: topic, dlq: topic + ".dlq", group: "bench-fresh-" + suffix,
		tenants: tenants, ddURL: si.url, lateness: c.freshLateness,
	})
	if err != nil {
		return freshRun{}, err
	}
	defer func() { _ = er.stop(30 * time.Second) }()
	if err := er.waitReady(ctx, 60*time.Second); err != nil {
		return freshRun{}, err
	}
	lp, err := newLiveProducer(c, topic)
	if err != nil {
		return freshRun{}, err
	}
	defer lp.close()

	run := freshRun{Window: c.freshWindow.Seconds(), Lateness: c.freshLateness.Seconds()}
	for _, ph := range []freshPhase{{Name: "low", Rate: c.freshLow}, {Name: "full", Rate: c.freshHigh}} {
		cpu0 := cpuOf(er.pid)
		ph.from = time.Now()
		pctx, cancel := context.WithTimeout(ctx, c.freshFor)
		n, err := lp.pump(pctx, ph.Rate)
		cancel()
		if err != nil {
			return run, fmt.Errorf("freshness, %s load: producing: %w", ph.Name, err)
		}
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		ph.until = time.Now()
		ph.Produced = n
		ph.ActualRate = float64(n) / ph.until.Sub(ph.from).Seconds()
		ph.Lag = lag(er.httpAddr)
		ps, _ := readProc(er.pid)
		ph.CPUPerMil = (ps.CPU - cpu0).Seconds() / (float64(n) / 1e6)
		ph.PeakRSSMiB = mib(ps.HWM)
		run.Phases = append(run.Phases, ph)
		if err, gone := er.exited(); gone {
			return run, fmt.Errorf("the exporter exited during the freshness run (%v); see %s", err, er.log)
		}
	}
	// Let the last measured windows close and arrive.
	select {
	case <-ctx.Done():
		return run, ctx.Err()
	case <-time.After(c.freshLateness + 5*time.Second):
	}

	run.StatusCounts = [2]map[int]int64{logs.Stats().ByStatus, recorder.Stats().ByStatus}

	// A window is complete when every one of its series (one per tag set)
	// holds its final value: the combiner may first send a provisional
	// total, which a later write with the last partitions' shares replaces.
	// Completion is the first write of the final value, the latest over the
	// window's series; first is its earliest write of anything.
	type key struct {
		tenant string
		ts     int64
	}
	type series struct {
		key
		tags string
	}
	type seen struct {
		first, final, last time.Time
		value              float64 // of the last write
	}
	bySeries := map[series]*seen{}
	var writes []ddfake.Write
	var owners []string
	for _, id := range ids {
		for _, w := range recorder.Writes(id) {
			if w.Point.Metric == "prism.gateway.requests" {
				writes, owners = append(writes, w), append(owners, id)
			}
		}
	}
	keyOf := func(i int) series {
		return series{key{owners[i], writes[i].Point.Timestamp}, fmt.Sprint(writes[i].Point.Tags)}
	}
	for i, w := range writes { // the last write's value is the final one
		k := keyOf(i)
		s := bySeries[k]
		if s == nil {
			s = &seen{first: w.Received}
			bySeries[k] = s
		}
		if w.Received.Before(s.first) {
			s.first = w.Received
		}
		if !w.Received.Before(s.last) {
			s.last, s.value = w.Received, w.Point.Value
		}
	}
	for i, w := range writes { // its first write
		s := bySeries[keyOf(i)]
		if w.Point.Value == s.value && (s.final.IsZero() || w.Received.Before(s.final)) {
			s.final = w.Received
		}
	}
	complete, first := map[key]time.Time{}, map[key]time.Time{}
	for k, s := range bySeries {
		if s.final.After(complete[k.key]) {
			complete[k.key] = s.final
		}
		if f, ok := first[k.key]; !ok || s.first.Before(f) {
			first[k.key] = s.first
		}
	}
	for i := range run.Phases {
		ph := &run.Phases[i]
		var xs, fs []float64
		for k, t := range complete {
			start := time.Unix(k.ts, 0)
			end := start.Add(c.freshWindow)
			// Only windows whose records all came from this phase, and
			// which closed on this phase's own traffic rather than on the
			// idle clock after the producer stopped.
			if start.Before(ph.from) || end.Add(c.freshLateness+time.Second).After(ph.until) {
				continue
			}
			xs = append(xs, t.Sub(end).Seconds())
			fs = append(fs, first[k].Sub(end).Seconds())
		}
		ph.Freshness, ph.FirstSeen = summarize(xs), summarize(fs)
		ph.Windows = len(xs)
		if len(xs) == 0 {
			return run, fmt.Errorf("freshness, %s load: no complete window was measured; is -fresh-for (%s) long enough for -fresh-window (%s)? see %s",
				ph.Name, c.freshFor, c.freshWindow, er.log)
		}
	}
	return run, nil
}
