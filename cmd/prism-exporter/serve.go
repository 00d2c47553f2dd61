package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/processor"
	"github.com/futureagi/prism-exporter/sink"
)

// running is what serve built, for the demo's screen and for tests.
type running struct {
	proc     *processor.Processor
	sink     *sink.Sink
	registry *prometheus.Registry
	httpAddr string
}

// serve wires the exporter from s and runs it until ctx ends: the tenant
// registry and Datadog sink, the processor that feeds it, and the HTTP
// endpoints. started, when not nil, is called once everything is wired.
func serve(ctx context.Context, s settings, log *zap.Logger, started func(*running)) error {
	setMemoryLimit(s, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pcfg := s.processorConfig()
	dead, err := processor.NewDeadLetters(pcfg, log.Named("deadletters"))
	if err != nil {
		return err
	}
	snk, err := sink.New(sink.Config{
		Service:     s.DatadogService,
		BaseURL:     s.DatadogURL,
		HTTPTimeout: s.DatadogTimeout,
		Concurrency: s.DatadogConcurrency,
	}, reg, log.Named("sink"), dead)
	if err != nil {
		return err
	}
	tenants, err := sink.LoadTenants(s.TenantsFile)
	if err != nil {
		return fmt.Errorf("PRISM_TENANTS_FILE: %w", err)
	}
	snk.SetTenants(tenants)
	for _, t := range tenants {
		// Points are stamped with the window start and sent after the window
		// closes; Datadog drops points over an hour old.
		if t.SyncInterval > 50*time.Minute {
			log.Warn("sync_interval over 50m: Datadog will drop this tenant's metric points (over 1 h old when sent) unless Historical Metrics Ingestion is on; logs are unaffected",
				zap.String("tenant", t.ID), zap.Duration("sync_interval", t.SyncInterval))
		}
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go snk.WatchTenantsFile(watchCtx, s.TenantsFile, s.TenantsReload)

	proc, err := processor.New(pcfg, processor.Deps{
		Router:      snk,
		Deliverer:   deliverer{snk},
		DeadLetters: dead,
		Registerer:  reg,
		Logger:      log.Named("processor"),
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return fmt.Errorf("PRISM_HTTP_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           proc.Handler(reg, func() any { return snk.TenantStatus() }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	log.Info("exporter started", zap.String("http", ln.Addr().String()), zap.Strings("brokers", pcfg.Brokers),
		zap.String("topic", pcfg.Topic), zap.String("group", pcfg.Group), zap.Int("tenants", len(tenants)))
	if started != nil {
		started(&running{proc: proc, sink: snk, registry: reg, httpAddr: ln.Addr().String()})
	}

	runErr := proc.Run(ctx)

	// The processor has drained and committed; what the sink still holds was
	// not committed and will be read again.
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := snk.Close(closeCtx); err != nil {
		log.Warn("closing the sink", zap.Error(err))
	}
	if err := srv.Shutdown(closeCtx); err != nil {
		log.Warn("stopping the HTTP server", zap.Error(err))
	}
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP server", zap.Error(err))
	}
	log.Info("exporter stopped")
	return runErr
}

// setMemoryLimit gives the Go heap a soft limit of the record budget plus
// room for everything else, unless GOMEMLIMIT says otherwise: without one the
// collector lets the heap grow to twice what is live, which doubles the
// budget's footprint.
func setMemoryLimit(s settings, log *zap.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := (s.MemoryBudgetMiB + 192) << 20
	debug.SetMemoryLimit(limit)
	log.Info("heap soft limit set", zap.Int64("bytes", limit), zap.String("override", "GOMEMLIMIT"))
}

// deliverer adapts the sink to the processor: every outcome but Abandoned
// means the batch needs no more work.
type deliverer struct{ s *sink.Sink }

func (d deliverer) Deliver(b aggregate.Batch, done func(accepted bool)) {
	d.s.Deliver(b, func(o sink.Outcome) { done(o != sink.Abandoned) })
}
