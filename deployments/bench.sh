#!/usr/bin/env bash
# make bench: measures the whole exporter on this machine (see docs/benchmarks.md).
#
#   1. builds prism-exporter (plain, and a second copy with a pprof endpoint
#      added through `go build -overlay`, for the CPU profile) and prism-bench;
#   2. starts a real Apache Kafka 4.x broker on loopback (deployments/with-kafka.sh)
#      on its own ports, so that a `make test-kafka` running at the same time
#      keeps its broker;
#   3. runs prism-bench: pre-load, floor consumer, the exporter end to end as
#      its own process, its CPU profile, freshness under live traffic, and
#      capacity (10,000 tenants on 48 partitions: records/s per core, peak
#      RSS per replica, memory per open tenant window, rebalance time);
#   4. stops the broker, then runs the stage benchmarks (go test -bench) and,
#      when it can be fetched, summarises them with benchstat.
#
# Environment (all optional):
#   BENCH_PHASES       prism-bench phases (e2e,floor,profile,fresh,capacity);
#                      make bench-capacity runs capacity alone
#   BENCH_RECORDS      records pre-loaded (2000000)
#   BENCH_TENANTS      tenants (50)
#   BENCH_OUT          results directory (${TMPDIR:-/tmp}/prism-bench-<time>)
#   BENCH_PROFILE      1: also take the exporter's CPU profile (1)
#   BENCH_FRESH_FOR    how long each freshness load runs (40s)
#   BENCH_STAGES       1: also run the stage benchmarks (1)
#   BENCH_BENCHTIME    -benchtime of the stage benchmarks (1s)
#   BENCH_CAPACITY_TENANTS, BENCH_CAPACITY_PARTITIONS, BENCH_CAPACITY_RECORDS
#                      the capacity phase's tenants (10000), partitions (48)
#                      and pre-loaded records (2000000)
#   BENCH_TIMEOUT      prism-bench gives up after this (12m, plus 10m with capacity)
#   BENCH_ARGS         more prism-bench flags (go run ./cmd/prism-bench -h)
#   BENCH_KAFKA_PORT, BENCH_KAFKA_CONTROLLER_PORT   broker ports (39192, 39193)
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)
cd "$repo"
GO=${GO:-go}

records=${BENCH_RECORDS:-2000000}
tenants=${BENCH_TENANTS:-50}
out=${BENCH_OUT:-${TMPDIR:-/tmp}/prism-bench-$(date +%Y%m%d-%H%M%S)}
profile=${BENCH_PROFILE:-1}
fresh_for=${BENCH_FRESH_FOR:-40s}
stages=${BENCH_STAGES:-1}
benchtime=${BENCH_BENCHTIME:-1s}
phases=${BENCH_PHASES:-e2e,floor,profile,fresh,capacity}
cap_tenants=${BENCH_CAPACITY_TENANTS:-10000}
cap_partitions=${BENCH_CAPACITY_PARTITIONS:-48}
cap_records=${BENCH_CAPACITY_RECORDS:-2000000}
has_phase() { [[ ",$phases," == *",$1,"* ]]; }
# BENCH_PROFILE=0 drops the profile phase even when BENCH_PHASES names it.
if [ "$profile" != 1 ]; then
	kept=""
	IFS=, read -ra listed <<<"$phases"
	for p in ${listed[@]+"${listed[@]}"}; do
		if [ "$p" != profile ]; then
			kept=${kept:+$kept,}$p
		fi
	done
	phases=$kept
fi
if [ -z "${BENCH_TIMEOUT:-}" ]; then
	minutes=0
	for p in e2e floor profile fresh; do
		if has_phase "$p"; then
			minutes=12
		fi
	done
	if has_phase capacity; then
		minutes=$((minutes + 10))
	fi
	BENCH_TIMEOUT=$((minutes > 0 ? minutes : 12))m
fi

say() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
	printf 'bench.sh: error: %s\n' "$*" >&2
	exit 1
}

command -v "$GO" >/dev/null 2>&1 || die "'$GO' not found: install Go 1.26 or set GO"
# Unlike the tests, the benchmark has nothing to do without a broker: no
# silent skip.
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || die "java not found: install a JDK 17+ (the local Kafka broker runs on it)"
command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3.6+ (it fetches the Kafka jars)"

mkdir -p "$out"
out=$(cd -- "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prism-bench-bin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

say "building into $tmp"
"$GO" build -o "$tmp/prism-exporter" ./cmd/prism-exporter
"$GO" build -o "$tmp/prism-bench" ./cmd/prism-bench
prof_args=()
if has_phase profile || has_phase capacity; then
	# The profiling copy: the same package plus one file that serves pprof
	# (and a forced-GC memory reading, for the capacity phase's memory per
	# window) on PRISM_BENCH_PPROF_ADDR. The overlay adds the file only to
	# this build.
	printf '{"Replace":{"%s":"%s"}}\n' "$repo/cmd/prism-exporter/zz_bench_pprof.go" \
		"$repo/cmd/prism-bench/testdata/exporter_pprof.go" >"$tmp/overlay.json"
	"$GO" build -overlay "$tmp/overlay.json" -o "$tmp/prism-exporter-pprof" ./cmd/prism-exporter
	prof_args=(-exporter-pprof "$tmp/prism-exporter-pprof")
fi

export KAFKA_PORT=${BENCH_KAFKA_PORT:-39192}
export KAFKA_CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-39193}
export KAFKA_LOCAL_STATE="$tmp/kafka"
export KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
say "results go to $out"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
bash "$here/with-kafka.sh" "$tmp/prism-bench" \
	-exporter "$tmp/prism-exporter" ${prof_args[@]+"${prof_args[@]}"} \
	-kafka-pid-file "$KAFKA_LOCAL_STATE/kafka.pid" \
	-phases "$phases" -records "$records" -tenants "$tenants" -fresh-for "$fresh_for" \
	-capacity-tenants "$cap_tenants" -capacity-partitions "$cap_partitions" -capacity-records "$cap_records" \
	-out "$out" -timeout "$BENCH_TIMEOUT" ${BENCH_ARGS:-}

if [ "$stages" = 1 ]; then
	say "stage benchmarks (broker stopped): go test -bench . -benchmem -count=5 -benchtime=$benchtime"
	"$GO" test -run '^$' -bench . -benchmem -count=5 -benchtime="$benchtime" -timeout 10m \
		./schemas/... ./aggregate ./sink ./processor >"$out/stages.txt" 2>&1 ||
		say "some stage benchmarks failed; see $out/stages.txt"
	# benchstat is optional: fetched through the module proxy when reachable.
	# Five samples cannot give a 95% interval of the median; 90% they can.
	if timeout 120 "$GO" run golang.org/x/perf/cmd/benchstat@latest -confidence 0.9 "$out/stages.txt" \
		>"$out/stages-benchstat.txt" 2>"$out/benchstat.err"; then
		cat "$out/stages-benchstat.txt"
	else
		say "benchstat unavailable ($(tail -n1 "$out/benchstat.err")); raw results:"
		grep -E '^(Benchmark|ok|FAIL|pkg)' "$out/stages.txt" || true
	fi
fi
say "done; results, logs and profiles in $out"
