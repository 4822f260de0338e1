# builder: daemonless Dockerfile image builder.
GO       ?= go
BIN      := bin/builder
DEMO_DIR ?= $(CURDIR)/.demo
# Debian packages the tests use: real consumers of our output, the busybox
# base image, a real registry.
TEST_DEBS := skopeo umoci busybox-static docker-registry apache2-utils ca-certificates xz-utils bzip2 zstd
# What `make bench` adds: buildah, the baseline of the cached-rebuild benchmark.
BENCH_DEBS := buildah
export CGO_ENABLED := 0

.PHONY: all build demo test unit e2e lint deps bench clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/builder

deps:
	@scripts/deps.sh $(TEST_DEBS)

demo: deps build
	@DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

# Everything, as root in CI: unit tests, kernel tests (overlayfs,
# namespaces), and end-to-end tests that run the real binary.
test: deps lint
	$(GO) test -count=1 -timeout 20m ./...
	CGO_ENABLED=1 $(GO) test -count=1 -race -timeout 10m ./parser/... ./cache/... ./oci/... ./layer/... ./executor/... ./snapshot/...

# Benchmarks of the real binary (bench/, e2e/), as root; buildah is the
# baseline the cached-rebuild benchmark compares with. 10x: each benchmark
# reports the median of ten builds (the big-context ones take a minute).
bench: deps build
	@scripts/deps.sh $(BENCH_DEBS)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 10x -timeout 30m ./bench/ ./e2e/

clean:
	rm -rf bin $(DEMO_DIR)
