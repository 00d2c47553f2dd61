package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/schemas/gen"
	"github.com/futureagi/prism-exporter/sink"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// demoTenants are the five organisations of the shared samples, each on its
// own site and sync interval, so the screen shows windows of several lengths.
var demoTenants = []struct {
	id, site string
	interval time.Duration
}{
	{"org_3f9a1c", "US1", 10 * time.Second},
	{"org_77b2e0", "EU1", 15 * time.Second},
	{"org_5a1e5", "AP1", 10 * time.Second},
	{"org_c0ffee", "US5", 20 * time.Second},
	{"org_9d2b7", "UK1", 30 * time.Second},
}

// runDemo runs the exporter on embedded defaults: an in-process Kafka broker
// (kfake) fed by generated gateway traffic, and the local Datadog stand-in,
// or real Datadog when DD_API_KEY is set. It prints one screen every few
// seconds.
func runDemo(args []string, sig chan os.Signal) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rate := fs.Int("rate", 2000, "generated gateway records per second")
	malformed := fs.Int("malformed-every", 200, "every Nth generated record is malformed (0: none)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	every := fs.Duration("screen", 3*time.Second, "how often to print the screen")
	lateness := fs.Duration("lateness", 2*time.Second, "allowed lateness")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address of the console, API, /metrics and /status")
	logLevel := fs.String("log-level", "error", "exporter log level (JSON logs go to stderr; info shows every dead letter and commit decision)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level, err := zapcore.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: -log-level: %v\n", err)
		return 2
	}
	log := newLogger(level)
	ctx, stop := signalContext(log, sig)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := demo(ctx, os.Stdout, log, *addr, *rate, *malformed, *every, *lateness); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer, log *zap.Logger, addr string, rate, malformedEvery int, every, lateness time.Duration) error {
	const topic, dlq = "prism.gateway.events", "prism.gateway.events.dlq"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, topic, dlq))
	if err != nil {
		return fmt.Errorf("starting the in-process Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	realKey, realSite := os.Getenv("DD_API_KEY"), os.Getenv("DD_SITE")
	var dd *ddfake.Server
	ddURL, ddName := "", ""
	if realKey == "" {
		var accounts []ddfake.Account
		for _, t := range demoTenants {
			keys := []string{"demo-key-" + t.id}
			if t.id == demoBrokenTenant {
				keys = []string{demoFixedKey}
			}
			// An application key each, so that the console's dashboard
			// and monitors can be tried on the local Datadog.
			accounts = append(accounts, ddfake.Account{Name: t.id, APIKeys: keys, AppKeys: []string{"demo-app-key-" + t.id}})
		}
		dd = ddfake.New(ddfake.WithAccounts(accounts...))
		if ddURL, err = dd.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the local Datadog: %w", err)
		}
		defer dd.Close()
		ddName = "local stand-in " + ddURL
	} else {
		if realSite == "" {
			realSite = "datadoghq.com"
		}
		ddName = "real Datadog, site " + realSite + " (DD_API_KEY)"
	}

	dir, err := os.MkdirTemp("", "prism-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secrets, token, tokensFile, err := demoSecrets(dir)
	if err != nil {
		return err
	}

	s := settings{
		KafkaBrokers: brokers, KafkaTopic: topic, KafkaGroup: "prism-exporter-demo", DLQTopic: dlq,
		IntegrationsTopic: "prism.exporter.integrations", StatusTopic: "prism.exporter.status", SecretsKey: sink.Secret(secrets), APITokensFile: tokensFile,
		TenantsReload: 2 * time.Second,
		DatadogURL:    ddURL, DatadogService: "prism-gateway", DatadogTimeout: 30 * time.Second, DatadogConcurrency: 2,
		AllowedLateness: lateness, MaxTagSets: 1000, MemoryBudgetMiB: 128,
		CommitInterval: time.Second, DrainTimeout: 5 * time.Second,
		KafkaSessionTimeout: 10 * time.Second, KafkaRebalanceTimeout: 30 * time.Second,
		HTTPAddr: demoAddr(out, addr), LogLevel: "warn",
	}

	var produced atomic.Int64
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	go func() {
		ids := make([]string, len(demoTenants))
		for i, t := range demoTenants {
			ids[i] = t.id
		}
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchTimeout: 20 * time.Millisecond, BatchSize: 1000}
		defer w.Close()
		err := gen.Pump(trafficCtx, gen.New(gen.Config{Tenants: ids, Seed: time.Now().UnixNano(), MalformedEvery: malformedEvery}), rate,
			gen.KafkaSender(w, func(n int) { produced.Add(int64(n)) }))
		if err != nil && trafficCtx.Err() == nil {
			log.Warn("traffic generator stopped", zap.Error(err))
		}
	}()

	started := time.Now()
	fmt.Fprintf(out, "prism-exporter demo: Kafka in-process at %s, %d records/s generated for %d tenants; Datadog: %s\n",
		strings.Join(brokers, ","), rate, len(demoTenants), ddName)
	fmt.Fprintf(out, "window totals go out about a second after each window ends (at most end + %s lateness + 5s), one series per tag set; Ctrl-C stops (what is in flight is delivered or left uncommitted)\n\n", lateness)

	fmt.Fprintf(out, "secrets key: generated for this demo only (PRISM_SECRETS_KEY); a production start never invents one\n")
	return serve(ctx, s, log, func(r *running) {
		if err := connectDemoTenants(ctx, r, realKey, realSite); err != nil {
			log.Error("connecting the demo tenants", zap.Error(err))
		}
		fmt.Fprintf(out, "console: http://%s/ui/   admin token: %s\n", r.httpAddr, token)
		fmt.Fprintf(out, "API:     curl -H 'Authorization: Bearer %s' http://%s/api/v1/integrations\n", token, r.httpAddr)
		fmt.Fprintf(out, "metrics and status: http://%s/metrics  http://%s/status\n", r.httpAddr, r.httpAddr)
		if realKey == "" {
			fmt.Fprintf(out, "%s starts with a revoked key: fix it by editing its API key to %q\n\n", demoBrokenTenant, demoFixedKey)
		}
		go screen(ctx, out, r, dd, &produced, started, every)
	})
}

// screen prints what happened since the last screen: one compact block.
func screen(ctx context.Context, out io.Writer, r *running, dd *ddfake.Server, produced *atomic.Int64, started time.Time, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastConsumed int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := r.proc.Status()
			rate := float64(st.Consumed-lastConsumed) / now.Sub(last).Seconds()
			lastConsumed, last = st.Consumed, now
			var b strings.Builder
			fmt.Fprintf(&b, "── %s ─ produced %d ─ consumed %d (%.0f/s) ─ dead letters %d ─ lag %d ─ held %.1f MiB ─ partitions %d\n",
				now.Sub(started).Truncate(time.Second), produced.Load(), st.Consumed, rate, st.DeadLettered, st.Lag,
				float64(st.BudgetUsed)/(1<<20), st.Partitions)
			tenants := r.sink.TenantStatus()
			sort.Slice(tenants, func(i, j int) bool { return tenants[i].ID < tenants[j].ID })
			fmt.Fprintf(&b, "   %-12s %-18s %-10s %9s %7s", "tenant", "site", "state", "batches", "queued")
			if dd != nil {
				fmt.Fprintf(&b, " %10s %8s", "logs", "windows")
			}
			b.WriteString("\n")
			for _, ts := range tenants {
				fmt.Fprintf(&b, "   %-12s %-18s %-10s %9d %7d", ts.ID, ts.Site, ts.State, ts.Delivered, ts.QueuedBatches)
				if dd != nil {
					fmt.Fprintf(&b, " %10d %8d", dd.LogCount(ts.ID), windowsOf(dd, ts.ID))
				}
				if ts.LastError != "" {
					fmt.Fprintf(&b, "  %s", ts.LastError)
				}
				b.WriteString("\n")
			}
			_, _ = io.WriteString(out, b.String())
		}
	}
}

// windowsOf counts the distinct window starts the account holds request
// counts for.
func windowsOf(dd *ddfake.Server, account string) int {
	seen := map[int64]bool{}
	for _, p := range dd.Points(account) {
		if p.Metric == "prism.gateway.requests" {
			seen[p.Timestamp] = true
		}
	}
	return len(seen)
}

// The demo tenant that starts in Error: the local Datadog knows it under
// demoFixedKey only, so that the console's Error path and its fix (Edit the
// API key) can be tried.
const (
	demoBrokenTenant = "org_9d2b7"
	demoFixedKey     = "demo-key-org_9d2b7-renewed"
)

// demoSecrets makes what a production start is given: a secrets key and a
// tokens file with one admin token. Both are random, for this run only.
func demoSecrets(dir string) (secretsKey, token, tokensFile string, err error) {
	var k, t [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return "", "", "", err
	}
	if _, err := rand.Read(t[:]); err != nil {
		return "", "", "", err
	}
	token = "demo-" + hex.EncodeToString(t[:12])
	sum := sha256.Sum256([]byte(token))
	tokensFile = filepath.Join(dir, "tokens.yaml")
	body := fmt.Sprintf("tokens:\n  - name: demo-admin\n    sha256: %s\n    role: admin\n", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(tokensFile, []byte(body), 0o600); err != nil {
		return "", "", "", err
	}
	return base64.StdEncoding.EncodeToString(k[:]), token, tokensFile, nil
}

// connectDemoTenants connects the five demo organisations through the
// integrations store, as the console would, so that every one of them can
// be edited, paused and deleted there. Already connected ones (a demo
// restarted on the same broker) are left as they are.
func connectDemoTenants(ctx context.Context, r *running, realKey, realSite string) error {
	for _, t := range demoTenants {
		if _, taken := r.store.Owner(t.id); taken {
			continue
		}
		key, app, site := "demo-key-"+t.id, "demo-app-key-"+t.id, t.site
		if realKey != "" {
			key, app, site = realKey, os.Getenv("DD_APP_KEY"), realSite
		}
		st, err := sink.ParseSite(site)
		if err != nil {
			return err
		}
		if _, err := r.store.Create(ctx, integrations.New{
			OrgID: t.id, Site: st, APIKey: key, AppKey: app, SyncInterval: t.interval,
			Historical: integrations.Historical{Mode: integrations.NewOnly},
		}); err != nil {
			return fmt.Errorf("%s: %w", t.id, err)
		}
	}
	return nil
}

// demoAddr is addr when it is free, else a free port on the same host: a
// demo should not fail because something else holds 8080. It says so, as
// the console's address is printed later.
func demoAddr(out io.Writer, addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		_ = ln.Close()
		return addr
	}
	host, _, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return addr // the exporter's own error will name it
	}
	fmt.Fprintf(out, "%s is taken (%v): using a free port instead\n", addr, err)
	return net.JoinHostPort(host, "0")
}
