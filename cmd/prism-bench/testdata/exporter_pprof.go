// This file is not part of any package in the repository: deployments/bench.sh
// adds it to ./cmd/prism-exporter with `go build -overlay` to build a second
// exporter binary for the benchmark's CPU profile, so that the exporter
// itself carries no profiling endpoint. It lives under testdata so that the
// go command ignores it everywhere else.

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// init serves net/http/pprof on PRISM_BENCH_PPROF_ADDR (loopback only) when
// that is set, and /debug/prism-bench/memstats, which collects the garbage,
// returns the freed memory to the kernel (debug.FreeOSMemory) and answers
// the runtime's MemStats: the live heap, and an RSS that is not inflated by
// garbage, for the capacity phase's memory per open window. An init function, because the overlay may add a file but
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
	mux.HandleFunc("/debug/prism-bench/memstats", func(w http.ResponseWriter, _ *http.Request) {
		debug.FreeOSMemory() // a full GC first, then the scavenger
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint64{
			"heap_alloc": ms.HeapAlloc, "heap_inuse": ms.HeapInuse, "heap_objects": ms.HeapObjects,
			"heap_released": ms.HeapReleased, "stack_inuse": ms.StackInuse, "sys": ms.Sys, "num_gc": uint64(ms.NumGC),
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
}
