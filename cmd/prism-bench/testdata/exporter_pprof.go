// This file is not part of any package in the repository: deployments/bench.sh
// adds it to ./cmd/prism-exporter with `go build -overlay` to build a second
// exporter binary for the benchmark's CPU profile, so that the exporter
// itself carries no profiling endpoint. It lives under testdata so that the
// go command ignores it everywhere else.

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// init serves net/http/pprof on PRISM_BENCH_PPROF_ADDR (loopback only) when
// that is set. An init function, because the overlay may add a file but
// must not edit main.
func init() {
	addr := os.Getenv("PRISM_BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "PRISM_BENCH_PPROF_ADDR: %q is not a loopback host:port; profiling disabled\n", addr)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PRISM_BENCH_PPROF_ADDR: %v; profiling disabled\n", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
}
