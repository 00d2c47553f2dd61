// Command prism-exporter exports the Prism gateway's request records from
// Kafka to each tenant's own Datadog account.
//
//	prism-exporter               run the exporter, configured by PRISM_* variables
//	prism-exporter demo          run it on embedded defaults: an in-process Kafka
//	                             broker fed with generated traffic, and a local
//	                             Datadog stand-in (or real Datadog with DD_API_KEY)
//	prism-exporter fake-datadog  serve the local Datadog stand-in (docker compose)
//	prism-exporter healthcheck URL
//	                             exit 0 when URL answers 200 (container probes)
//	prism-exporter config [--markdown|--json]
//	                             print every PRISM_* variable, its default and meaning
//	prism-exporter version       print the version the build was stamped with
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	// Signals are caught before anything else runs: a SIGTERM that arrives
	// while the configuration is read must stop the start-up cleanly, not
	// kill the process.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], sig))
}

func run(args []string, sig chan os.Signal) int {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(args[1:], sig)
		case "fake-datadog":
			return runFakeDatadog(args[1:])
		case "healthcheck":
			return healthcheck(args[1:])
		case "config":
			return runConfig(args[1:], os.Stdout, os.Stderr)
		case "version", "--version":
			return printVersion(os.Stdout)
		case "-h", "--help", "help":
			return usage(os.Stdout)
		default:
			fmt.Fprintf(os.Stderr, "prism-exporter: unknown command %q (want demo, fake-datadog, healthcheck, config or version; -h lists them)\n", args[0])
			return 2
		}
	}
	s, err := loadSettings()
	if err != nil {
		fmt.Fprintf(os.Stderr, "prism-exporter: invalid configuration:\n%s\n", indent(err.Error()))
		return 2
	}
	level, _ := s.logLevel()
	log := newLogger(level)
	defer func() { _ = log.Sync() }()

	ctx, stop := signalContext(log, sig)
	defer stop()
	if err := serve(ctx, s, log, nil); err != nil {
		log.Error("exporter stopped", zap.Error(err))
		return 1
	}
	return 0
}

// signalContext ends on the first SIGTERM or SIGINT; a second one exits at
// once. That loses nothing: offsets are only ever committed for delivered
// data, so whatever was in flight is read again by the next owner.
func signalContext(log *zap.Logger, sig chan os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		s := <-sig
		log.Info("stopping: finishing in-flight deliveries and committing", zap.String("signal", s.String()))
		cancel()
		s = <-sig
		log.Warn("second signal: exiting now; uncommitted records will be read again", zap.String("signal", s.String()))
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(sig); cancel() }
}

func newLogger(level zapcore.Level) *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	// Stack traces say nothing to an operator about a refused key or an
	// unreachable broker, and make a log line hard to read.
	cfg.DisableStacktrace = true
	log, err := cfg.Build()
	if err != nil {
		return zap.NewExample()
	}
	return log
}

func healthcheck(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: prism-exporter healthcheck URL")
		return 2
	}
	c := &http.Client{Timeout: 4 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

func indent(s string) string {
	out := "  "
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += "  "
		}
	}
	return out
}
