//go:build linux

package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// TestRecordGoldens re-records testdata/golden from a live BuildKit. It runs
// only with CONFORMANCE_RECORD=1 (`make conformance`): buildctl from
// $BUILDCTL or PATH, talking to $BUILDKIT_HOST (buildctl's default when
// unset). The base image is pushed to $CONFORMANCE_REGISTRY (host:port) or
// to a throwaway local registry: BuildKit pulls from 127.0.0.1 over plain
// HTTP without configuration. With $CONFORMANCE_REPORTS=DIR it also builds
// every case with builder and writes imagediff's full report of each pair
// of images that differ into DIR (writeReports).
func TestRecordGoldens(t *testing.T) {
	if os.Getenv("CONFORMANCE_RECORD") != "1" {
		t.Skip("recording goldens needs a live BuildKit: make conformance")
	}
	buildctl := os.Getenv("BUILDCTL")
	if buildctl == "" {
		var err error
		if buildctl, err = exec.LookPath("buildctl"); err != nil {
			t.Fatal("make conformance needs BuildKit: put buildctl on PATH (or set BUILDCTL) and " +
				"point BUILDKIT_HOST at a running buildkitd (e.g. unix:///run/buildkit/buildkitd.sock)")
		}
	}
	if code, out, err := runCmd(t.Context(), nil, buildctl, "debug", "workers"); err != nil || code != 0 {
		t.Fatalf("buildctl cannot reach buildkitd (BUILDKIT_HOST=%q): exit %d %v\n%s", os.Getenv("BUILDKIT_HOST"), code, err, out)
	}
	if runtime.GOARCH != goldenArch {
		t.Fatalf("record on %s (the architecture the test compares against), not %s", goldenArch, runtime.GOARCH)
	}
	cases, err := loadCases(casesDir)
	if err != nil {
		t.Fatal(err)
	}
	if pat := os.Getenv("CONFORMANCE_CASES"); pat != "" {
		cases = filterCases(t, cases, pat)
	}
	work := t.TempDir()
	reg := os.Getenv("CONFORMANCE_REGISTRY")
	if reg == "" {
		reg = testutil.StartRegistry(t)
	}
	baseTar, base := baseImage(t, work, reg+"/busybox:latest")
	if code, out, err := runCmd(t.Context(), nil, "skopeo", "copy", "--dest-tls-verify=false",
		"oci-archive:"+baseTar, "docker://"+base.ref); err != nil || code != 0 {
		t.Fatalf("push the base image: exit %d %v\n%s", code, err, out)
	}
	build := func(ctx context.Context, c *testCase, ctxDir, out string) (int, string, error) {
		argv := []string{buildctl, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
			"--local", "context=" + ctxDir, "--local", "dockerfile=" + ctxDir,
			"--opt", "build-arg:SOURCE_DATE_EPOCH=0",
			"--output", "type=oci,dest=" + out + ",rewrite-timestamp=true"}
		for _, a := range c.args {
			argv = append(argv, "--opt", "build-arg:"+a)
		}
		if c.target != "" {
			argv = append(argv, "--opt", "target="+c.target)
		}
		return runCmd(ctx, nil, argv...)
	}
	reports := os.Getenv("CONFORMANCE_REPORTS")
	if reports != "" {
		if err := os.MkdirAll(reports, 0o755); err != nil {
			t.Fatal(err)
		}
		build = keepArchive(build, reports, "buildkit")
	}
	sums, errs := summarizeAll(t.Context(), cases, filepath.Join(work, "cases"), base, 4, build)
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if errs[i] != nil {
			t.Errorf("%s: %v", c.name, errs[i])
			continue
		}
		text := fmt.Sprintf("# BuildKit's result for cases/%s.txt (make conformance)\n%s", c.name, sums[i])
		if err := os.WriteFile(filepath.Join(goldenDir, c.name+".txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recorded %d goldens", len(cases))
	if reports != "" {
		writeReports(t, cases, reports, work)
	}
}
