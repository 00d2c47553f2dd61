package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// e2eRun is the exporter's end-to-end result over the pre-loaded records.
type e2eRun struct {
	Records int `json:"records"`
	// Seconds runs from the exporter's process start until every
	// partition's committed offset reached the end and every record's log
	// was accepted by the stand-in.
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_second"`
	// JoinSeconds is start to /readyz (process start and group join);
	// LogsSeconds is start to the last log accepted. Steady is the rate
	// between the two; CommitTail what the last window's close and commit
	// add after the last log.
	JoinSeconds       float64 `json:"join_seconds"`
	LogsSeconds       float64 `json:"logs_seconds"`
	SteadyRecordsPerS float64 `json:"steady_records_per_second"`
	CommitTailSeconds float64 `json:"commit_tail_seconds"`

	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUPerMillion   float64 `json:"cpu_seconds_per_million"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	AllocsPerRecord float64 `json:"allocs_per_record"`
	GCCycles        float64 `json:"gc_cycles"`
	FetchPauses     float64 `json:"fetch_pauses"`

	StandInCPUSeconds float64 `json:"stand_in_cpu_seconds"` // this process: the stand-in and polling
	BrokerCPUSeconds  float64 `json:"broker_cpu_seconds"`
	LogsAccepted      int64   `json:"logs_accepted"`
	LogRequests       int64   `json:"log_and_series_requests"`
	PointsAccepted    int64   `json:"points_accepted"`
	WireMiB           float64 `json:"wire_mib"`
	BodyMiB           float64 `json:"body_mib"`

	// The second stage, at the moment the clock stops: window shares the
	// partitions wrote to the partials topic, and window totals the
	// combiner handed to the sink (it may still be sending the last ones).
	PartialsProduced float64 `json:"partials_produced"`
	CombinerSends    float64 `json:"combiner_windows_sent"`

	Timeline []sample `json:"timeline"`
}

// sample is the run once a second, to see whether the rate is steady and
// when the memory peak happens.
type sample struct {
	T      float64 `json:"t"`
	Logs   int64   `json:"logs"`
	CPU    float64 `json:"cpu_s"`
	RSSMiB float64 `json:"rss_mib"`
}

// runE2E runs one exporter process over the pre-loaded topic with a fresh
// consumer group and a cheap stand-in, and measures it.
func runE2E(ctx context.Context, c config, topic string, want int, suffix string) (e2eRun, error) {
	ids := tenantIDs(c.tenants)
	tenants, err := writeTenants(c.out, "tenants-e2e.yaml", ids, c.window)
	if err != nil {
		return e2eRun{}, err
	}
	dd := ddfake.New(ddfake.WithAccounts(accounts(ids)...), ddfake.WithCheapMode())
	si, err := startStandIn(dd, dd, os.Stderr)
	if err != nil {
		return e2eRun{}, err
	}
	defer si.close()
	admin := newAdmin(c.brokers, c.partitions)
	end, err := admin.endOffsets(ctx, topic)
	if err != nil {
		return e2eRun{}, err
	}
	group := "bench-e2e-" + suffix
	if c.standInProfile {
		f, err := os.Create(filepath.Join(c.out, "standin-cpu.pprof"))
		if err != nil {
			return e2eRun{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return e2eRun{}, err
		}
		defer pprof.StopCPUProfile()
	}
	self0, broker0 := selfCPU(), cpuOf(c.kafkaPID)
	started := time.Now()
	er, err := startExporter(c, exporterSpec{
		binary: c.exporter, name: "exporter-e2e", topic: topic, dlq: topic + ".dlq", group: group,
		tenants: tenants, ddURL: si.url, lateness: c.lateness,
	})
	if err != nil {
		return e2eRun{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = er.stop(30 * time.Second)
		}
	}()
	if err := er.waitReady(ctx, 60*time.Second); err != nil {
		return e2eRun{}, err
	}
	r := e2eRun{Records: want, JoinSeconds: time.Since(started).Seconds()}

	ctx, cancel := context.WithTimeout(ctx, c.e2eTimeout)
	defer cancel()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	nextSample := time.Now()
	var logsDone time.Time
	for {
		now := time.Now()
		st := dd.Stats()
		if logsDone.IsZero() && st.LogsAccepted >= int64(want) {
			logsDone = now
		}
		if !now.Before(nextSample) {
			ps, _ := readProc(er.pid)
			r.Timeline = append(r.Timeline, sample{T: now.Sub(started).Seconds(), Logs: st.LogsAccepted, CPU: ps.CPU.Seconds(), RSSMiB: mib(ps.RSS)})
			nextSample = nextSample.Add(time.Second)
		}
		// Offsets are committed only after delivery, so they cannot be at
		// the end before the logs are in: no need to ask the broker sooner.
		if !logsDone.IsZero() && reached(admin.committed(ctx, group, topic), end) {
			break
		}
		if err, gone := er.exited(); gone {
			return r, fmt.Errorf("the exporter exited during the run (%v); see %s", err, er.log)
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("end to end: not done within %s: %d of %d logs accepted, committed %v of %v; exporter status %s; see %s",
				c.e2eTimeout, st.LogsAccepted, want, admin.committed(context.Background(), group, topic), end, status(er.httpAddr), er.log)
		case <-poll.C:
		}
	}
	done := time.Now()
	ps, err := readProc(er.pid)
	if err != nil {
		return r, fmt.Errorf("reading the exporter's /proc: %w", err)
	}
	m, err := scrape(ctx, er.httpAddr)
	if err != nil {
		return r, err
	}
	st := dd.Stats()
	r.Seconds = done.Sub(started).Seconds()
	r.RecordsPerS = float64(want) / r.Seconds
	r.LogsSeconds = logsDone.Sub(started).Seconds()
	r.SteadyRecordsPerS = float64(want) / (r.LogsSeconds - r.JoinSeconds)
	r.CommitTailSeconds = r.Seconds - r.LogsSeconds
	r.CPUSeconds = ps.CPU.Seconds()
	r.CPUPerMillion = r.CPUSeconds / (float64(want) / 1e6)
	r.PeakRSSMiB = mib(ps.HWM)
	r.AllocsPerRecord = m["go_memstats_mallocs_total"] / float64(want)
	r.GCCycles = m["go_gc_duration_seconds_count"]
	r.FetchPauses = m["prism_exporter_fetch_pauses_total"]
	if ms, err := scrapeSeries(ctx, er.httpAddr); err == nil {
		r.PartialsProduced = sumWhere(ms, "prism_exporter_partials_produced_total", `result="produced"`)
		r.CombinerSends = sumWhere(ms, "prism_exporter_combiner_windows_sent_total")
	}
	r.StandInCPUSeconds = (selfCPU() - self0).Seconds()
	if c.kafkaPID > 0 {
		r.BrokerCPUSeconds = (cpuOf(c.kafkaPID) - broker0).Seconds()
	}
	r.LogsAccepted = st.LogsAccepted
	r.LogRequests = st.Requests
	r.PointsAccepted = st.PointsAccepted
	r.WireMiB, r.BodyMiB = mib(st.WireBytes), mib(st.BodyBytes)
	if consumed := m["prism_exporter_records_consumed_total"]; consumed < float64(want) {
		return r, fmt.Errorf("the exporter reports %.0f records consumed, want %d; see %s", consumed, want, er.log)
	}
	stopped = true
	if err := er.stop(30 * time.Second); err != nil {
		return r, err
	}
	return r, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// status is the member part of the exporter's /status, for error messages.
func status(addr string) string {
	m, err := member(addr)
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return string(m)
}

// member reads the exporter's /status "member" object.
func member(addr string) (json.RawMessage, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// With thousands of tenants /status runs to megabytes.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var v struct {
		Member json.RawMessage `json:"member"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Member == nil {
		return nil, fmt.Errorf("/status without a member object: %.200s", b)
	}
	return v.Member, nil
}

// lag is the exporter's consumer lag: records in the topic it has not
// fetched yet, summed over its partitions; -1 when unknown.
func lag(addr string) int64 {
	m, err := member(addr)
	if err != nil {
		return -1
	}
	var v struct {
		Lag int64 `json:"lag"`
	}
	if json.Unmarshal(m, &v) != nil {
		return -1
	}
	return v.Lag
}
