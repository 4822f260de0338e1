// Package bench measures the real builder binary side by side with
// `buildah bud --layers` (and BuildKit, when BUILDKIT_HOST names a running
// buildkitd and buildctl is installed) on generated workloads, and checks
// the speed and memory targets.
//
// TestBench is the whole harness. Plain `go test` (and so `make test`) runs
// it in QUICK mode: every workload at tiny sizes, one run each, targets
// not judged, so the harness never rots. `make bench` passes -full.
package bench

import (
	"flag"
	"os"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

var (
	fullRun  = flag.Bool("full", false, "full-size workloads, median of -runs runs, targets judged")
	runsOpt  = flag.Int("runs", 3, "runs per scenario and tool in a full run")
	only     = flag.String("workloads", "", "comma-separated workloads to run (default all)")
	rerender = flag.String("rerender", "", "re-judge and re-render this results JSON (TestRerender)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testutil.RemoveBuiltBinary()
	os.Exit(code)
}
