#!/bin/sh
# The release build of the exporter and the traffic generator, shared by the
# image (deployments/Dockerfile) and the test that checks its result
# (deployments/image_test.go):
#
#   sh deployments/build.sh OUTDIR [VERSION]
#
# Static (cgo off: the image has no libc; the Datadog client's cgo-only zstd
# is not used), -trimpath (no build machine paths in the binary), and the
# version stamped into main.version (`prism-exporter version` prints it).
set -eu
out=${1:?usage: build.sh OUTDIR [VERSION]}
version=${2:-dev}
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
go build -trimpath -ldflags="-s -w -X main.version=$version" -o "$out/prism-exporter" ./cmd/prism-exporter
go build -trimpath -ldflags="-s -w" -o "$out/prism-trafficgen" ./cmd/prism-trafficgen
