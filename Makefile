# prism-exporter. `make run` shows the exporter working on embedded defaults;
# `make test` runs every test, against kfake and against a real Kafka broker.
SHELL := bash
GO ?= go
export GOFLAGS ?= -buildvcs=false
KAFKA_LOCAL := deployments/kafka-local/kafka.sh

.PHONY: run build test test-unit test-integration test-kafka test-deploy vet fmt-check fuzz bench bench-capacity docker clean

run:
	$(GO) run ./cmd/prism-exporter demo

build:
	$(GO) build -o bin/prism-exporter ./cmd/prism-exporter
	$(GO) build -o bin/prism-trafficgen ./cmd/prism-trafficgen

# The whole suite: static checks, unit and kfake integration tests with the
# race detector, the console in a real headless Chromium, then the
# integration and fault tests again against a real Apache Kafka 4.x broker
# that the script fetches and starts on loopback, then the deployment files
# against the exporter.
test: vet fmt-check test-unit test-integration test-browser test-kafka test-deploy

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

# -short keeps the race-detector run quick: the end-to-end tests use 10k
# records there, and the full 100k run below without the race detector.
test-unit:
	$(GO) test -race -short -count=1 -timeout 20m ./...

test-integration:
	$(GO) test -count=1 -timeout 20m -run 'Integration|Demo' ./cmd/prism-exporter/

# -v so that the fault tests' measurements (duplicates per crash, catch-up
# times) show in the output; the exporter's per-record warnings do not.
test-kafka:
	@set -o pipefail; bash deployments/with-kafka.sh $(GO) test -count=1 -timeout 40m -run 'Integration|Fault' -v ./cmd/prism-exporter/ 2>&1 | grep -v -E 'dead-lettered|^=== (RUN|PAUSE|CONT)'

# Kubernetes manifests, docker-compose.yml, the Dockerfile's build and the
# alert rules, checked against the exporter (built with deployments/build.sh
# and run in demo mode). A module of its own (deployments/go.mod), so that the
# exporter's module does not depend on Kubernetes or Prometheus server code.
test-deploy:
	cd deployments && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

# Every decoder of outside input, one after the other (go test fuzzes one
# target at a time). FUZZTIME is per target.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./schemas:FuzzDecode ./sink:FuzzParseTenants ./sink:FuzzServerWait \
	./sink/ddfake:FuzzCheapCounters \
	./api:FuzzParseTokens ./api:FuzzRequests ./aggregate:FuzzDecodePartial \
	./history:FuzzDecode ./integrations:FuzzJobsFold
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME); \
	done

bench:
	@bash deployments/bench.sh

# The capacity phase of make bench alone: 10,000 tenants on 48 partitions
# (docs/benchmarks.md, Capacity).
bench-capacity:
	@BENCH_PHASES=capacity BENCH_STAGES=0 bash deployments/bench.sh

# The image's build is deployments/build.sh: static, -trimpath, and the
# version stamped (prism-exporter version prints it).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
docker:
	docker build -f deployments/Dockerfile --build-arg VERSION=$(VERSION) -t prism-exporter:$(VERSION) .

clean:
	rm -rf bin

# The web console in a real headless Chromium against the real exporter,
# with kfake and the local Datadog stand-in; the script installs Chromium
# and fetches axe-core when they are missing. -v shows where the
# screenshots of each step went.
.PHONY: test-browser
test-browser:
	@set -o pipefail; bash deployments/with-chromium.sh $(GO) test -count=1 -timeout 20m -v -run Browser ./cmd/prism-exporter/ 2>&1 | grep -v -E 'dead-lettered|^=== (RUN|PAUSE|CONT)'
