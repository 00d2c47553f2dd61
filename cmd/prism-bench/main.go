// Command prism-bench measures the whole exporter against a real Kafka broker
// and the local Datadog stand-in, on the machine it runs on. deployments/bench.sh
// (make bench) builds the binaries, starts the broker and runs it.
//
//	prism-bench [flags]        the benchmark: pre-load, floor, end to end,
//	                           CPU profile, freshness, capacity (10,000
//	                           tenants on 48 partitions); results in -out
//	prism-bench floor [flags]  the floor consumer, run by the benchmark as a
//	                           child process so that its CPU and memory are its own
//
// The exporter always runs as a separate process, built from
// ./cmd/prism-exporter, configured by PRISM_* variables exactly as in
// production, so that its CPU time, peak RSS and allocations are read from
// that process alone. The Datadog stand-in (sink/ddfake) runs inside this
// process: the benchmark reads its counters directly, and its CPU is
// reported separately rather than charged to the exporter.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "floor" {
		return runFloorChild(args[1:])
	}
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "prism-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The whole benchmark must stop by itself, whatever the broker does.
	ctx, cancel := context.WithTimeout(ctx, cfg.totalTimeout)
	defer cancel()
	if err := benchmark(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "prism-bench: %v\n", err)
		return 1
	}
	return 0
}

// config is everything the benchmark was asked to do.
type config struct {
	brokers      []string
	exporter     string // the exporter binary
	exporterProf string // the same built with the pprof overlay; "" skips profiling
	out          string // results directory
	kafkaPID     int    // the broker's JVM, for its CPU; 0 unknown
	phases       map[string]bool

	records     int
	tenants     int
	partitions  int
	span        time.Duration
	window      time.Duration
	lateness    time.Duration
	compression string
	seed        int64

	httpAddr   string // the exporter's PRISM_HTTP_ADDR
	pprofAddr  string // the profiling exporter's pprof listener
	profileFor time.Duration

	freshLow, freshHigh int // records per second
	freshFor            time.Duration
	freshWindow         time.Duration
	freshLateness       time.Duration

	e2eTimeout   time.Duration
	totalTimeout time.Duration

	standInProfile bool

	// The capacity phase (capacity.go).
	capTenants        int
	capPartitions     int
	capRecords        int
	capWindow         time.Duration
	capFor            time.Duration
	capPerWindow      int
	capBudgetMiB      int
	capRebalanceAfter time.Duration
	capTimeout        time.Duration
	capSteps          map[string]bool
	httpAddr2         string // the second exporter's PRISM_HTTP_ADDR (rebalance)
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("prism-bench", flag.ContinueOnError)
	var c config
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (default $KAFKA_BROKERS)")
	fs.StringVar(&c.exporter, "exporter", "", "prism-exporter binary (go build -o ... ./cmd/prism-exporter)")
	fs.StringVar(&c.exporterProf, "exporter-pprof", "", "prism-exporter built with cmd/prism-bench/testdata/exporter_pprof.go as an overlay; empty skips the profile")
	fs.StringVar(&c.out, "out", "", "directory for results, logs and profiles (default: a new temporary directory)")
	fs.IntVar(&c.kafkaPID, "kafka-pid", 0, "pid of the broker, to report its CPU time too (optional)")
	pidFile := fs.String("kafka-pid-file", "", "file holding the broker's pid (deployments/kafka-local/kafka.sh writes $KAFKA_LOCAL_STATE/kafka.pid); optional")
	phases := fs.String("phases", "e2e,floor,profile,fresh,capacity", "what to run, comma-separated: e2e, floor, profile, fresh, capacity")

	fs.IntVar(&c.records, "records", 2_000_000, "records pre-loaded for the end-to-end and floor runs")
	fs.IntVar(&c.tenants, "tenants", 50, "tenants (organisations) the records are spread over")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of the benchmark topics")
	fs.DurationVar(&c.span, "span", 45*time.Minute, "event time the pre-loaded records cover, ending at the last closed window; keep span+window+run time under Datadog's 1 h metric age limit")
	fs.DurationVar(&c.window, "window", 5*time.Minute, "tenants' sync_interval for the end-to-end run")
	fs.DurationVar(&c.lateness, "lateness", 2*time.Second, "PRISM_ALLOWED_LATENESS for the end-to-end run")
	fs.StringVar(&c.compression, "compression", "snappy", "Kafka batch compression of the produced records: none, snappy, lz4, zstd, gzip (snappy is franz-go's default)")
	fs.Int64Var(&c.seed, "seed", 1, "generator seed")

	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:39180", "the exporter's PRISM_HTTP_ADDR (a fixed free loopback port)")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "127.0.0.1:39181", "the profiling exporter's pprof listener (loopback)")
	fs.DurationVar(&c.profileFor, "profile-for", 20*time.Second, "CPU profile length (shortened to the end-to-end run's length when that was shorter)")

	fs.IntVar(&c.freshLow, "fresh-low", 1000, "freshness: low-load records per second")
	fs.IntVar(&c.freshHigh, "fresh-high", 10000, "freshness: full-load records per second")
	fs.DurationVar(&c.freshFor, "fresh-for", 40*time.Second, "freshness: how long each load is produced")
	fs.DurationVar(&c.freshWindow, "fresh-window", 10*time.Second, "freshness: tenants' sync_interval")
	fs.DurationVar(&c.freshLateness, "fresh-lateness", 2*time.Second, "freshness: PRISM_ALLOWED_LATENESS")

	fs.IntVar(&c.capTenants, "capacity-tenants", 10_000, "capacity: tenants in the tenants file and the traffic")
	fs.IntVar(&c.capPartitions, "capacity-partitions", 48, "capacity: partitions of the capacity topics")
	fs.IntVar(&c.capRecords, "capacity-records", 2_000_000, "capacity: records pre-loaded for the throughput and rebalance steps")
	fs.DurationVar(&c.capWindow, "capacity-window", 5*time.Minute, "capacity: tenants' sync_interval in the throughput and rebalance steps")
	fs.DurationVar(&c.capFor, "capacity-for", 2*time.Minute, "capacity: the throughput step stops measuring this long after the exporter joined, done or not")
	fs.IntVar(&c.capPerWindow, "capacity-window-records", 2, "capacity: records per tenant and partition in the window-memory step (each opens or feeds one tenant window)")
	fs.IntVar(&c.capBudgetMiB, "capacity-window-budget", 1, "capacity: PRISM_MEMORY_BUDGET_MIB in the window-memory step, which bounds the logs held in open windows")
	fs.DurationVar(&c.capRebalanceAfter, "capacity-rebalance-after", 20*time.Second, "capacity: the second exporter starts this long after the first joined, or sooner once the first has consumed half of -capacity-records")
	fs.DurationVar(&c.capTimeout, "capacity-timeout", 10*time.Minute, "capacity: give up on the capacity phase after this long")
	capSteps := fs.String("capacity-steps", "throughput,windows,rebalance", "capacity: steps to run, comma-separated: throughput, windows, rebalance")
	fs.StringVar(&c.httpAddr2, "http-addr-2", "127.0.0.1:39182", "the second exporter's PRISM_HTTP_ADDR in the rebalance step (loopback)")

	fs.BoolVar(&c.standInProfile, "standin-profile", false, "also write this process's CPU profile during the end-to-end run (standin-cpu.pprof: the stand-in's cost)")
	fs.DurationVar(&c.e2eTimeout, "e2e-timeout", 4*time.Minute, "give up on an end-to-end or floor run after this long")
	fs.DurationVar(&c.totalTimeout, "timeout", 15*time.Minute, "give up on the whole benchmark after this long")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q (flags only; see -h)", fs.Args())
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.brokers = append(c.brokers, b)
		}
	}
	c.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "e2e", "floor", "profile", "fresh", "capacity":
			c.phases[p] = true
		case "":
		default:
			return c, fmt.Errorf("-phases: unknown phase %q (want e2e, floor, profile, fresh, capacity)", p)
		}
	}
	c.capSteps = map[string]bool{}
	for _, p := range strings.Split(*capSteps, ",") {
		switch p = strings.TrimSpace(p); p {
		case "throughput", "windows", "rebalance":
			c.capSteps[p] = true
		case "":
		default:
			return c, fmt.Errorf("-capacity-steps: unknown step %q (want throughput, windows, rebalance)", p)
		}
	}
	var errs []error
	if *pidFile != "" && c.kafkaPID == 0 {
		b, err := os.ReadFile(*pidFile)
		if err == nil {
			c.kafkaPID, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("-kafka-pid-file: %w", err))
		}
	}
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("-brokers (or KAFKA_BROKERS) is required: start a broker with deployments/kafka-local/kafka.sh start, or run make bench"))
	}
	if (c.phases["e2e"] || c.phases["fresh"] || c.phases["capacity"]) && c.exporter == "" {
		errs = append(errs, errors.New("-exporter is required: go build -o /tmp/prism-exporter ./cmd/prism-exporter"))
	}
	if c.phases["profile"] && c.exporterProf == "" {
		delete(c.phases, "profile")
	}
	if c.phases["capacity"] {
		errs = append(errs, c.checkCapacity()...)
	}
	if c.records < c.partitions || c.partitions < 1 {
		errs = append(errs, fmt.Errorf("-records (%d) must be at least -partitions (%d), which must be positive", c.records, c.partitions))
	}
	if c.tenants < 1 {
		errs = append(errs, errors.New("-tenants must be positive"))
	}
	if c.span <= 0 || c.window <= 0 || c.span+c.window >= time.Hour {
		errs = append(errs, fmt.Errorf("-span (%s) plus -window (%s) must be positive and under 1h, Datadog's metric age limit", c.span, c.window))
	}
	if _, err := codec(c.compression); err != nil {
		errs = append(errs, err)
	}
	if c.freshLow <= 0 || c.freshHigh <= 0 || c.freshFor < 3*c.freshWindow {
		errs = append(errs, fmt.Errorf("-fresh-low and -fresh-high must be positive and -fresh-for (%s) at least 3 windows (%s)", c.freshFor, 3*c.freshWindow))
	}
	for _, a := range []string{c.httpAddr, c.pprofAddr, c.httpAddr2} {
		if err := loopback(a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.out == "" {
		dir, err := os.MkdirTemp("", "prism-bench-")
		if err != nil {
			return c, err
		}
		c.out = dir
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return c, fmt.Errorf("-out: %w", err)
	}
	c.out, _ = filepath.Abs(c.out)
	return c, nil
}
