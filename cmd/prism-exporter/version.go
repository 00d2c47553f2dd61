package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the release, stamped by the image build:
//
//	go build -ldflags "-X main.version=1.4.0" ./cmd/prism-exporter
//
// It is a package-level variable because -X can set nothing else.
var version string

// versionString is the stamped version, or what the Go toolchain recorded
// for an unstamped build ("(devel)" from a working tree).
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func printVersion(w io.Writer) int {
	fmt.Fprintf(w, "prism-exporter %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
