# builder: daemonless Dockerfile image builder.
GO       ?= go
BIN      := bin/builder
DEMO_DIR ?= $(CURDIR)/.demo
# Debian packages the tests use: real consumers of our output, the busybox
# base image, a real registry; and for the benchmark harness (which `make
# test` runs once in QUICK mode): buildah, the peer it measures us against,
# debootstrap for the Debian base image, GNU time for peak RSS; uidmap
# (newuidmap, newgidmap) for the tests of builds by an unprivileged user;
# git (with http-backend and daemon) for git sources, which builder runs too;
# qemu-user-static for RUN of other platforms (the multi-platform tests
# also fetch Debian's arm64 busybox-static: scripts/foreign-busybox.sh);
# tmux: a real terminal for the --progress tty test.
TEST_DEBS := skopeo umoci busybox-static docker-registry apache2-utils ca-certificates xz-utils bzip2 zstd \
	buildah debootstrap time uidmap openssh-client git qemu-user-static tmux
export CGO_ENABLED := 0

.PHONY: all build demo test unit e2e lint deps bench fuzz conformance clean

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
	GOOS=windows $(GO) vet ./...

# Everything, as root in CI: unit tests, kernel tests (overlayfs,
# namespaces), and end-to-end tests that run the real binary.
test: deps lint
	$(GO) test -count=1 -timeout 20m ./...
	CGO_ENABLED=1 $(GO) test -count=1 -race -timeout 10m ./parser/... ./fileset/... ./cache/... ./oci/... ./layer/... ./executor/... ./client/... ./snapshot/... ./imagediff/... ./internal/atomicfile/... ./internal/ctxio/... ./internal/fsmode/... ./internal/refgrammar/... ./source/... ./sshforward/... ./provenance/...

# The benchmark harness (bench/): every workload and scenario for builder
# and buildah side by side; prints the table, writes bench/results/ and, on
# a full run, bench/RESULTS.md. QUICK=1: tiny sizes, one run each (under a
# minute once the Debian base is cached). WORKLOADS=meta,copy-big: a subset.
# Missed targets are listed (bench/README.md says why); STRICT=1 fails on them.
bench: deps build
	$(GO) test -count=1 -v -run '^TestBench$$' -timeout 90m ./bench/ -args \
	  $(if $(QUICK),,-full) $(if $(WORKLOADS),-workloads=$(WORKLOADS)) $(if $(STRICT),-strict)

# The differential suite against BuildKit (e2e/conformance/): re-record the
# goldens from a live BuildKit (buildctl on PATH or $$BUILDCTL, talking to
# $$BUILDKIT_HOST), then compare builder with them. `make test` runs only the
# comparison, against the committed goldens. CONFORMANCE_CASES=regexp: a subset;
# CONFORMANCE_REPORTS=DIR: also imagediff's full report of every pair that differs.
conformance: deps
	CONFORMANCE_RECORD=1 CONFORMANCE_REPORTS=$(CONFORMANCE_REPORTS) CONFORMANCE_CASES='$(CONFORMANCE_CASES)' \
	  $(GO) test -count=1 -timeout 30m -run '^TestRecordGoldens$$' ./e2e/conformance/
	CONFORMANCE_CASES='$(CONFORMANCE_CASES)' $(GO) test -count=1 -timeout 30m -run '^TestConformance$$' ./e2e/conformance/

# Fuzzing (native Go fuzz targets): each target for FUZZTIME, one after the
# other, on one core, each new input minimized in 200 runs at most (FUZZFLAGS).
# `make test` runs the seed corpora (<pkg>/testdata/fuzz/<FuzzName>/); a
# failing input a run finds is written there too.
FUZZTIME  ?= 60s
FUZZFLAGS ?= -parallel 1 -fuzzminimizetime 200x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzApply$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./layer/
	$(GO) test -run '^$$' -fuzz '^FuzzFrontEnd$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./executor/
	$(GO) test -run '^$$' -fuzz '^FuzzParseChmod$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./fileset/
	$(GO) test -run '^$$' -fuzz '^FuzzSelect$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./fileset/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./oci/
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./oci/registry/
	$(GO) test -run '^$$' -fuzz '^FuzzCompare$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./imagediff/

clean:
	rm -rf bin $(DEMO_DIR)
