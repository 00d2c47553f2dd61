package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/futureagi/prism-exporter/sink"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// runFakeDatadog serves the local Datadog stand-in with one account per
// tenant of a tenants file, so docker compose runs without a Datadog account.
// It is test support: it keeps everything it receives in memory.
func runFakeDatadog(args []string) int {
	fs := flag.NewFlagSet("fake-datadog", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8126", "listen address")
	tenants := fs.String("tenants", "", "tenants file whose API keys become accounts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var accounts []ddfake.Account
	if *tenants != "" {
		ts, err := sink.LoadTenants(*tenants)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fake-datadog: %v\n", err)
			return 2
		}
		for _, t := range ts {
			a := ddfake.Account{Name: t.ID, APIKeys: []string{string(t.APIKey)}}
			if t.AppKey != "" {
				a.AppKeys = []string{string(t.AppKey)}
			}
			accounts = append(accounts, a)
		}
	}
	dd := ddfake.New(ddfake.WithAccounts(accounts...))
	// Served through its Handler rather than Start, which only listens on
	// loopback: in docker compose the exporter reaches it over the network.
	srv := &http.Server{Addr: *addr, Handler: dd.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("fake-datadog: serving %d accounts on %s (test support: keeps what it receives in memory)\n", len(accounts), *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "fake-datadog: %v\n", err)
		return 1
	}
	return 0
}
