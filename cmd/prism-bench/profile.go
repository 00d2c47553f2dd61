package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// profileRun is where the profiles went and what they say.
type profileRun struct {
	Seconds   float64   `json:"seconds"`
	CPU       string    `json:"cpu_profile"`
	Allocs    string    `json:"allocs_profile"`
	Heap      string    `json:"heap_profile"`
	HeapMiB   float64   `json:"rss_mib_at_heap_profile"`
	Packages  []pkgTime `json:"packages"`
	Stages    []pkgTime `json:"stages"` // cumulative, so they overlap
	TopText   string    `json:"-"`
	CumText   string    `json:"-"`
	AllocText string    `json:"-"`
	HeapText  string    `json:"-"`
}

type pkgTime struct {
	Package string  `json:"package"`
	Flat    float64 `json:"flat_percent"`
}

// runProfile runs the pprof-enabled exporter over the pre-loaded topic with a
// new group (so it does the same work as the measured run, from the start)
// and takes a CPU profile of its first d of consumption, then the
// allocation profile. Profiling costs a few percent of CPU, which is why
// this is a separate run from the measured one.
func runProfile(ctx context.Context, c config, topic, suffix string, d time.Duration) (profileRun, error) {
	if err := portFree(c.pprofAddr); err != nil {
		return profileRun{}, err
	}
	ids := tenantIDs(c.tenants)
	tenants, err := writeTenants(c.out, "tenants-profile.yaml", ids, c.window)
	if err != nil {
		return profileRun{}, err
	}
	dd := ddfake.New(ddfake.WithAccounts(accounts(ids)...), ddfake.WithCheapMode())
	si, err := startStandIn(dd, dd, os.Stderr)
	if err != nil {
		return profileRun{}, err
	}
	defer si.close()
	er, err := startExporter(c, exporterSpec{
		binary: c.exporterProf, name: "exporter-profile", topic: topic, dlq: topic + ".dlq", group: "bench-profile-" + suffix,
		tenants: tenants, ddURL: si.url, lateness: c.lateness,
		extraEnv: []string{"PRISM_BENCH_PPROF_ADDR=" + c.pprofAddr},
	})
	if err != nil {
		return profileRun{}, err
	}
	defer func() { _ = er.stop(30 * time.Second) }()
	if err := er.waitReady(ctx, 60*time.Second); err != nil {
		return profileRun{}, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	pr := profileRun{Seconds: float64(secs), CPU: filepath.Join(c.out, "exporter-cpu.pprof"),
		Allocs: filepath.Join(c.out, "exporter-allocs.pprof"), Heap: filepath.Join(c.out, "exporter-heap.pprof")}
	base := "http://" + c.pprofAddr + "/debug/pprof/"
	if err := fetchTo(ctx, base+"profile?seconds="+strconv.Itoa(secs), pr.CPU, time.Duration(secs)*time.Second+30*time.Second); err != nil {
		return pr, fmt.Errorf("CPU profile: %w (was the exporter built with the overlay? see deployments/bench.sh)", err)
	}
	// The heap as of the last GC, while the run is still in full swing:
	// what the peak RSS is made of.
	ps, _ := readProc(er.pid)
	pr.HeapMiB = mib(ps.RSS)
	if err := fetchTo(ctx, base+"heap", pr.Heap, 30*time.Second); err != nil {
		return pr, fmt.Errorf("heap profile: %w", err)
	}
	if err := fetchTo(ctx, base+"allocs", pr.Allocs, 30*time.Second); err != nil {
		return pr, fmt.Errorf("allocation profile: %w", err)
	}
	if dd.Stats().LogsAccepted == 0 {
		return pr, fmt.Errorf("the profiled exporter delivered nothing; see %s", er.log)
	}
	if err := pr.analyse(ctx, c.exporterProf); err != nil {
		return pr, err
	}
	return pr, nil
}

func fetchTo(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// analyse turns the profiles into text with `go tool pprof`, and sums the
// flat CPU time by package, which pprof itself does not offer.
func (pr *profileRun) analyse(ctx context.Context, binary string) error {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("profiles are in %s and %s, but `go` is not on PATH to read them: %w", pr.CPU, pr.Allocs, err)
	}
	pprof := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, gotool, append([]string{"tool", "pprof"}, args...)...).Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof %s: %w", strings.Join(args, " "), err)
		}
		return string(out), nil
	}
	all, err := pprof("-top", "-nodecount=100000", "-nodefraction=0", binary, pr.CPU)
	if err != nil {
		return err
	}
	pr.Packages = byPackage(all)
	cum, err := pprof("-top", "-cum", "-nodecount=100000", "-nodefraction=0", binary, pr.CPU)
	if err != nil {
		return err
	}
	pr.Stages = stages(cum)
	if pr.TopText, err = pprof("-top", "-nodecount=30", binary, pr.CPU); err != nil {
		return err
	}
	if pr.CumText, err = pprof("-top", "-cum", "-nodecount=40", binary, pr.CPU); err != nil {
		return err
	}
	if pr.AllocText, err = pprof("-top", "-sample_index=alloc_objects", "-nodecount=25", binary, pr.Allocs); err != nil {
		return err
	}
	if pr.HeapText, err = pprof("-top", "-sample_index=inuse_space", "-nodecount=20", binary, pr.Heap); err != nil {
		return err
	}
	return nil
}

// byPackage sums pprof -top's flat percentages by package.
func byPackage(top string) []pkgTime {
	sums := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(top))
	inTable := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && f[0] == "flat" {
			inTable = true
			continue
		}
		if !inTable || len(f) < 6 {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err != nil {
			continue
		}
		sums[packageOf(strings.Join(f[5:], " "))] += pct
	}
	out := make([]pkgTime, 0, len(sums))
	for p, v := range sums {
		out = append(out, pkgTime{Package: p, Flat: v})
	}
	slices.SortFunc(out, func(a, b pkgTime) int { return cmp.Compare(b.Flat, a.Flat) })
	return out
}

// stages picks, from pprof -top -cum, the cumulative share of the
// functions that stand for the pipeline's stages. A function renamed by its
// owners simply drops out of the list.
func stages(cum string) []pkgTime {
	const mod = "github.com/futureagi/prism-exporter/"
	want := []struct{ label, fn string }{
		{"kafka-go readers (fetch, decompress, parse batches)", "github.com/segmentio/kafka-go.(*Reader).start.func1"},
		{"processor.fetch (FetchMessage loop)", mod + "processor.fetch"},
		{"processor.(*partition).handle (decode, route, aggregate)", mod + "processor.(*partition).handle"},
		{"  schemas.(*Decoder).Decode", mod + "schemas.(*Decoder).Decode"},
		{"  aggregate.(*Aggregator).Add", mod + "aggregate.(*Aggregator).Add"},
		{"sink.(*tenantQueue).sendLogs (encode, gzip, POST)", mod + "sink.(*tenantQueue).sendLogs"},
		{"sink.(*tenantQueue).sendSeries (build, split, marshal, gzip, POST)", mod + "sink.(*tenantQueue).sendSeries"},
		{"  sink.splitSeries", mod + "sink.splitSeries"},
		{"  datadogV2.(*MetricsApi).SubmitMetrics", "github.com/DataDog/datadog-api-client-go/v2/api/datadogV2.(*MetricsApi).SubmitMetrics"},
		{"net/http client connections (read/write loops)", "net/http.(*persistConn).readLoop"},
		{"", "net/http.(*persistConn).writeLoop"},
		{"runtime.gcBgMarkWorker (GC marking)", "runtime.gcBgMarkWorker"},
		{"runtime.mallocgc (allocation)", "runtime.mallocgc"},
	}
	pct := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(cum))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64); err == nil {
			pct[strings.Join(f[5:], " ")] = v
		}
	}
	var out []pkgTime
	for _, w := range want {
		v, ok := pct[w.fn]
		if !ok {
			continue
		}
		if w.label == "" && len(out) > 0 { // adds to the line before
			out[len(out)-1].Flat += v
			continue
		}
		out = append(out, pkgTime{Package: w.label, Flat: v})
	}
	return out
}

// packageOf is the import path of a pprof function name such as
// "github.com/segmentio/kafka-go.(*Reader).run.func1" or "runtime.mallocgc".
func packageOf(fn string) string {
	if i := strings.IndexByte(fn, ' '); i >= 0 {
		fn = fn[:i]
	}
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}
