package main

import (
	"context"
	"crypto/tls"
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
	"github.com/futureagi/prism-exporter/api"
	"github.com/futureagi/prism-exporter/console"
	"github.com/futureagi/prism-exporter/history"
	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/processor"
	"github.com/futureagi/prism-exporter/sink"
)

// running is what serve built, for the demo's screen and for tests.
type running struct {
	proc     *processor.Processor
	sink     *sink.Sink
	store    *integrations.Service
	jobs     *integrations.Jobs
	registry *prometheus.Registry
	httpAddr string
	apiAddr  string
}

// serve wires the exporter from s and runs it until ctx ends: the
// integrations store (read to its end before anything is exported), the
// tenants file import, the Datadog sink, the processor that feeds it, and
// the HTTP endpoints and API. started, when not nil, is called once
// everything is wired. A stop asked for at any point, start-up included,
// returns nil.
func serve(ctx context.Context, s settings, log *zap.Logger, started func(*running)) error {
	err := serveUntil(ctx, s, log, started)
	if ctx.Err() != nil {
		// A SIGTERM during start-up lands here through whatever step it
		// interrupted: nothing was committed that was not delivered.
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Info("stopped during start-up", zap.Error(err))
		}
		return nil
	}
	return err
}

func serveUntil(ctx context.Context, s settings, log *zap.Logger, started func(*running)) error {
	setMemoryLimit(s, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pcfg := s.processorConfig()
	dialer, transport, err := pcfg.Connections()
	if err != nil {
		return err
	}
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
	defer func() {
		// The processor has drained and committed; what the sink still
		// holds was not committed and will be read again.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := snk.Close(closeCtx); err != nil {
			log.Warn("closing the sink", zap.Error(err))
		}
	}()
	keys, err := s.keyring()
	if err != nil {
		return err
	}
	var tokens *api.Tokens
	if s.APITokensFile != "" {
		if tokens, err = api.LoadTokens(s.APITokensFile); err != nil {
			return fmt.Errorf("PRISM_API_TOKENS_FILE: %w", err)
		}
	}

	// The sync history: histWriter gets one entry per delivered tenant
	// window from the processor; histLog reads every replica's entries
	// back for the API. Write never blocks the pipeline (a full queue
	// drops, counted).
	hcfg := s.historyConfig()
	hcfg.Dialer, hcfg.Transport = dialer, transport
	histWriter, err := history.NewWriter(hcfg, reg, log.Named("history"))
	if err != nil {
		return err
	}
	histLog, err := history.NewLog(hcfg, reg, log.Named("history"))
	if err != nil {
		return err
	}

	proc, err := processor.New(pcfg, processor.Deps{
		Router:      snk,
		Horizon:     snk,
		Deliverer:   deliverer{snk},
		DeadLetters: dead,
		Registerer:  reg,
		Logger:      log.Named("processor"),
		History:     histWriter,
	})
	if err != nil {
		return err
	}
	store, err := integrations.NewStore(integrations.StoreConfig{
		Topic: s.IntegrationsTopic, Brokers: pcfg.Brokers, Dialer: dialer, Transport: transport,
		Create: true, Logger: log.Named("integrations"), Outage: proc,
	})
	if err != nil {
		return err
	}
	svc := integrations.NewService(store, keys, nil, log.Named("integrations"))
	// backfillJobs are the integrations' backfill jobs, in their own
	// compacted topic: creating an integration with history writes one,
	// the API starts and cancels them, deleting an integration cancels its
	// job. The runner claims them under this replica's member id
	// (board.Member()).
	backfillJobs, err := integrations.NewJobs(integrations.JobsConfig{
		Topic: s.BackfillsTopic, Brokers: pcfg.Brokers, Dialer: dialer, Transport: transport,
		Create: true, Logger: log.Named("backfills"), Outage: proc,
	})
	if err != nil {
		return fmt.Errorf("PRISM_BACKFILLS_TOPIC: %w", err)
	}
	svc.SetJobs(backfillJobs)

	// The HTTP endpoints come up first, so that /healthz answers while the
	// store is read; /readyz waits for the consumer group, which is joined
	// only after it.
	board := integrations.NewBoard(integrations.BoardConfig{
		Topic: s.StatusTopic, Brokers: pcfg.Brokers, Dialer: dialer, Transport: transport, Logger: log.Named("status"), Outage: proc,
	}, svc, snk.TenantStatus)
	var apiHandler http.Handler
	if tokens != nil {
		apiHandler = api.New(api.Config{Tokens: tokens, Logger: log.Named("api"), History: histLog, Backfills: backfillJobs,
			Dashboards: integrations.NewDashboards(svc, snk, log.Named("dashboards"))}, svc, snk, board)
	}
	servers, err := listen(s, proc.Handler(reg, func() any { return snk.TenantStatus() }), apiHandler, log)
	if err != nil {
		return err
	}
	defer servers.shutdown(log)

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	// The history writer outlives the processor, which writes the entries
	// of its last deliveries while it drains: it stops after proc.Run has
	// returned, and writes what is queued before serve returns.
	histDone := make(chan struct{})
	go func() { defer close(histDone); _ = histWriter.Run(bg) }()
	defer func() { stopBG(); <-histDone }()
	go func() {
		if err := histLog.Run(bg); err != nil && bg.Err() == nil {
			log.Error("history topic: stopped following it; the API's sync history stops here", zap.Error(err))
		}
	}()
	caughtUp := make(chan struct{})
	storeDone := make(chan error, 1)
	go func() { storeDone <- store.Run(bg, func() { close(caughtUp) }) }()
	jobsCaughtUp := make(chan struct{})
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- backfillJobs.Run(bg, func() { close(jobsCaughtUp) }) }()
	for _, up := range []chan struct{}{caughtUp, jobsCaughtUp} {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-storeDone:
			return err
		case err := <-jobsDone:
			return err
		case <-up:
		}
	}
	if err := svc.CheckKeys(); err != nil {
		return err
	}
	if err := svc.Reseal(ctx); err != nil {
		return fmt.Errorf("PRISM_SECRETS_KEY: sealing keys again under the first key: %w", err)
	}
	if s.TenantsFile != "" {
		ts, err := sink.LoadTenants(s.TenantsFile)
		if err != nil {
			return fmt.Errorf("PRISM_TENANTS_FILE: %w", err)
		}
		if err := svc.SyncFile(ctx, s.TenantsFile, ts, true); err != nil {
			return fmt.Errorf("PRISM_TENANTS_FILE: importing into %s: %w", s.IntegrationsTopic, err)
		}
		warnLongIntervals(ts, log)
		go sink.WatchTenantsFile(bg, s.TenantsFile, s.TenantsReload, log.Named("tenants"), func(ts []sink.Tenant) {
			warnLongIntervals(ts, log)
			if err := svc.SyncFile(bg, s.TenantsFile, ts, false); err != nil {
				log.Error("importing the tenants file failed; it is tried again at its next change", zap.Error(err))
			}
		})
	}
	// From here on the sink follows the store: every change read from the
	// topic, made by any replica, reaches the routes.
	store.OnChange(func() { snk.SetTenants(svc.Tenants()) })
	snk.SetTenants(svc.Tenants())
	// Any replica runs backfill jobs, whichever replica's API started
	// them; the jobs' leases keep each on one runner.
	proc.RunBackfills(newRunnerJobs(backfillJobs, svc, histLog), board.Member())
	go func() {
		if err := board.Run(bg); err != nil && bg.Err() == nil {
			log.Error("status topic: stopped following it; the API shows this replica's status only", zap.Error(err))
		}
	}()
	if tokens != nil {
		go watchTokens(bg, tokens, s.TenantsReload, log)
	}

	log.Info("exporter started", zap.String("http", servers.httpAddr), zap.String("api", servers.apiAddr),
		zap.Strings("brokers", pcfg.Brokers), zap.String("topic", pcfg.Topic), zap.String("group", pcfg.Group),
		zap.Int("integrations", len(svc.List())))
	if started != nil {
		started(&running{proc: proc, sink: snk, store: svc, jobs: backfillJobs, registry: reg, httpAddr: servers.httpAddr, apiAddr: servers.apiAddr})
	}

	runErr := proc.Run(ctx)
	log.Info("exporter stopped")
	return runErr
}

// warnLongIntervals: points are stamped with the window start and sent after
// the window closes; Datadog drops points over an hour old.
func warnLongIntervals(ts []sink.Tenant, log *zap.Logger) {
	for _, t := range ts {
		if t.SyncInterval > 50*time.Minute {
			log.Warn("sync_interval over 50m: Datadog will drop this tenant's metric points (over 1 h old when sent) unless Historical Metrics Ingestion is on; logs are unaffected",
				zap.String("tenant", t.ID), zap.Duration("sync_interval", t.SyncInterval))
		}
	}
}

// watchTokens reads the tokens file again whenever it changes.
func watchTokens(ctx context.Context, tokens *api.Tokens, every time.Duration, log *zap.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := tokens.Reload()
			switch {
			case err != nil:
				log.Error("tokens file rejected; keeping the last good tokens", zap.Error(err))
			case changed:
				log.Info("tokens file reloaded")
			}
		}
	}
}

// servers are the HTTP listeners: the operational endpoints, and the API
// and console, on the same listener or on PRISM_API_ADDR.
type servers struct {
	list              []*http.Server
	done              []chan error
	httpAddr, apiAddr string
}

func listen(s settings, ops, apiHandler http.Handler, log *zap.Logger) (*servers, error) {
	var tlsCfg *tls.Config
	if s.APITLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.APITLSCertFile, s.APITLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("PRISM_API_TLS_CERT_FILE, PRISM_API_TLS_KEY_FILE: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	out := &servers{}
	main := http.NewServeMux()
	main.Handle("/", ops)
	var apiMux *http.ServeMux
	if apiHandler != nil {
		apiMux = main
		if s.APIAddr != "" {
			apiMux = http.NewServeMux()
		}
		apiMux.Handle("/api/", apiHandler)
		// The console only calls the API: it is served where the API is.
		apiMux.Handle("/ui/", console.Handler())
		apiMux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	start := func(addr, env string, h http.Handler, tc *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("%s: %w", env, err)
		}
		if tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: zap.NewStdLog(log.Named("http"))}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		out.list, out.done = append(out.list, srv), append(out.done, done)
		return ln.Addr().String(), nil
	}
	mainTLS := tlsCfg
	if s.APIAddr != "" || apiHandler == nil {
		mainTLS = nil
	}
	var err error
	if out.httpAddr, err = start(s.HTTPAddr, "PRISM_HTTP_ADDR", main, mainTLS); err != nil {
		return nil, err
	}
	out.apiAddr = out.httpAddr
	if apiHandler != nil && s.APIAddr != "" {
		if out.apiAddr, err = start(s.APIAddr, "PRISM_API_ADDR", apiMux, tlsCfg); err != nil {
			out.shutdown(log)
			return nil, err
		}
	}
	if apiHandler == nil {
		out.apiAddr = ""
	}
	return out, nil
}

func (s *servers) shutdown(log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, srv := range s.list {
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("stopping the HTTP server", zap.Error(err))
		}
		if err := <-s.done[i]; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("HTTP server", zap.Error(err))
		}
	}
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

func (d deliverer) Deliver(b aggregate.Batch, done func(processor.Receipt)) {
	d.s.Deliver(b, func(r sink.Receipt) {
		var limited int64
		if r.RateLimited {
			limited = 1
		}
		done(processor.Receipt{
			Accepted: r.Outcome != sink.Abandoned,
			Delivery: aggregate.Delivery{
				Logs: r.Logs, LogsDropped: r.LogsDropped, Requests: r.Requests, Retries: r.Retries,
				Bytes: r.Bytes, Micros: r.Duration.Microseconds(), RateLimited: limited, Status: int64(r.StatusCode),
			},
			Points: r.Points, PointsDropped: r.PointsDropped, PointsTooOld: r.PointsTooOld, Error: r.Error,
		})
	})
}
