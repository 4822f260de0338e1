// Package bench measures the real builder binary side by side with
// `buildah bud --layers` (and BuildKit, when BUILDKIT_HOST names a running
// buildkitd and buildctl is installed) on generated workloads, and checks
// the speed and memory targets.
//
// TestBench is the whole harness. Plain `go test` (and so `make test`) runs
// it in QUICK mode: every workload at tiny sizes (the fresh-runner
// scenarios on one of them), one run each, targets not judged, so the
// harness never rots. `make bench` passes -full.
package bench

import (
	"flag"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

var (
	fullRun  = flag.Bool("full", false, "full-size workloads, median of -runs runs, targets judged")
	runsOpt  = flag.Int("runs", 3, "runs per scenario and tool in a full run")
	only     = flag.String("workloads", "", "comma-separated workloads to run (default all)")
	strict   = flag.Bool("strict", false, "fail when a full run misses a target")
	rerender = flag.String("rerender", "", "re-judge and re-render this results JSON (TestRerender)")
	freshOpt = flag.String("fresh", "", "workloads to measure the fresh-runner scenarios on: a comma-separated list, all or none "+
		"(default: all on a full run, "+freshQuick+" on a quick one)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The measured commands run in their own process groups: on Ctrl-C or
	// SIGTERM kill them and refuse new ones, so that the run fails and its
	// cleanups (temp dirs, buildah's store, the registry) still run. A
	// second signal exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		interrupted.Store(true)
		killGroups()
		<-sigs
		killGroups()
		os.Exit(130)
	}()
	done := testutil.PrivateTempDir("builder-bench-")
	code := m.Run()
	testutil.RemoveBuiltBinary()
	os.Exit(done(code))
}
