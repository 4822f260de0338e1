//go:build linux

package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

const (
	casesDir         = "testdata/cases"
	goldenDir        = "testdata/golden"
	expectedFailures = "testdata/expected-failures.txt"
	// goldenArch is the architecture the goldens were recorded on: their
	// config and the platform ARGs name it.
	goldenArch = "amd64"
)

// TestMain: the test runs the builder binary, never its own sandbox child,
// so there is no sandbox.IsInit() here.
func TestMain(m *testing.M) {
	// Context files are written 0644/0755 and chmod'ed where a case says:
	// a umask of 022 keeps those modes. Set once, before any goroutine.
	syscall.Umask(0o022)
	done := testutil.PrivateTempDir("builder-conformance-")
	code := m.Run()
	testutil.RemoveBuiltBinary()
	os.Exit(done(code))
}

// fieldDiff is one key whose value differs (absent: "<none>").
type fieldDiff struct{ key, golden, got string }

func (d fieldDiff) String() string {
	return fmt.Sprintf("%s:\n\t  buildkit: %s\n\t  builder:  %s", d.key, d.golden, d.got)
}

// compareSummaries returns the differences of got from golden, in golden's
// key order then got's, leaving out the deliberate ones (named in kept).
// When only one side failed, that is the one difference.
func compareSummaries(name string, golden, got *summary) (diffs []fieldDiff, kept []string) {
	gErr, bErr := golden.vals["error.exit"], got.vals["error.exit"]
	if (gErr == "") != (bErr == "") {
		for _, d := range deliberate {
			if d.key.MatchString("result") && (d.cases == nil || d.cases.MatchString(name)) {
				return nil, []string{d.name}
			}
		}
		return []fieldDiff{{"result", outcome(golden), outcome(got)}}, nil
	}
	var out []fieldDiff
	seen := map[string]bool{}
	check := func(k string) {
		if seen[k] {
			return
		}
		seen[k] = true
		g, gok := golden.vals[k]
		b, bok := got.vals[k]
		for _, d := range deliberate {
			if d.cases != nil && !d.cases.MatchString(name) || !d.key.MatchString(k) {
				continue
			}
			if g == b && gok == bok {
				break
			}
			if d.rewrite != nil && gok && bok && d.rewrite.Replace(b) == g ||
				(d.golden != nil || d.got != nil) && d.rewrite == nil &&
					(d.golden == nil || d.golden.MatchString(g)) && (d.got == nil || d.got.MatchString(b)) {
				if !d.common && !slices.Contains(kept, d.name) {
					kept = append(kept, d.name)
				}
				return
			}
		}
		if gok && bok && g == b {
			return
		}
		if !gok {
			g = "<none>"
		}
		if !bok {
			b = "<none>"
		}
		out = append(out, fieldDiff{k, g, b})
	}
	for _, k := range golden.keys {
		check(k)
	}
	for _, k := range got.keys {
		check(k)
	}
	return out, kept
}

// outcome says in one line how a build ended.
func outcome(s *summary) string {
	if code, failed := s.vals["error.exit"]; failed {
		return fmt.Sprintf("failed: exit %s, line %s, RUN exit code %s (%s)", code, s.vals["error.line"],
			s.vals["error.code"], strings.ReplaceAll(strings.TrimSpace(s.note), "\n", "; "))
	}
	return fmt.Sprintf("built an image with %s layers", s.vals["diff_ids"])
}

// readExpectedFailures reads "NAME reason" lines (# comments).
func readExpectedFailures(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, _ := strings.Cut(line, " ")
		out[name] = strings.TrimSpace(reason)
	}
	return out, sc.Err()
}

// baseInfo is what the summaries need to know about the base image.
type baseInfo struct {
	ref     string            // its reference in the Dockerfiles (replaces @BASE@)
	diffIDs map[string]bool   // its layers: counted, not listed
	files   map[string]string // sha256 of each regular file's content -> its path
}

// baseImage writes the busybox base archive into dir and returns its path
// and what the summaries need to know about it.
func baseImage(t testing.TB, dir, ref string) (string, baseInfo) {
	t.Helper()
	file := filepath.Join(dir, "busybox.tar")
	if err := testutil.WriteBusyboxImage(file, testutil.BusyboxOptions{Name: "busybox:latest"}); err != nil {
		t.Fatalf("make busybox image: %v", err)
	}
	a, err := readOCIArchive(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, layers, err := a.image()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	b := baseInfo{ref: ref, diffIDs: map[string]bool{}, files: map[string]string{}}
	for _, d := range cfg.RootFS.DiffIDs {
		b.diffIDs[d] = true
	}
	for _, l := range layers {
		blob, err := a.blob(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := baseFiles(blob, b.files); err != nil {
			t.Fatal(err)
		}
	}
	return file, b
}

// buildFunc builds case c (its context in ctxDir) into an OCI archive out and
// returns the CLI's exit status and stderr.
type buildFunc func(ctx context.Context, c *testCase, ctxDir, out string) (int, string, error)

// summarizeAll builds every case with build, `workers` at a time, and
// returns each case's summary (nil with an error when the harness failed).
func summarizeAll(ctx context.Context, cases []*testCase, work string, base baseInfo, workers int, build buildFunc) ([]*summary, []error) {
	sums := make([]*summary, len(cases))
	errs := make([]error, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sums[i], errs[i] = summarizeOne(ctx, cases[i], filepath.Join(work, cases[i].name), base, build)
			}
		}()
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	return sums, errs
}

func summarizeOne(ctx context.Context, c *testCase, dir string, base baseInfo, build buildFunc) (*summary, error) {
	ctxDir := filepath.Join(dir, "context")
	if err := c.materialize(ctxDir, base.ref); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "image.tar")
	code, stderr, err := build(ctx, c, ctxDir, out)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return errorSummary(code, stderr), nil
	}
	s, err := imageSummary(ctx, out, base)
	if err != nil {
		return nil, fmt.Errorf("summarize the image: %w\n%s", err, stderr)
	}
	return s, nil
}

// runCmd runs argv and returns its exit status and stderr; err only when it
// could not run.
func runCmd(ctx context.Context, env []string, argv ...string) (int, string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String(), nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("run %s: %w", argv[0], err)
	}
	return 0, stderr.String(), nil
}

// builderBase is the base image's name in builder's store.
const builderBase = "busybox:latest"

// builderBuild makes a builder store under work with the base image loaded
// and returns how to build a case with the builder binary into it (cases
// share the store and its cache: their steps differ, and a hit gives the
// same layer a miss would), and the base image.
func builderBuild(t *testing.T, work string) (buildFunc, baseInfo) {
	t.Helper()
	bin := testutil.BuildBinary(t)
	root := filepath.Join(work, "root")
	baseTar, base := baseImage(t, work, builderBase)
	if code, out, err := runCmd(t.Context(), nil, bin, "--root", root, "load", "-i", baseTar); err != nil || code != 0 {
		t.Fatalf("load base: exit %d, %v\n%s", code, err, out)
	}
	return func(ctx context.Context, c *testCase, ctxDir, out string) (int, string, error) {
		argv := []string{bin, "--root", root, "build", "--progress", "plain", "--source-date-epoch", "0",
			"-o", "type=oci,dest=" + out}
		for _, a := range c.args {
			argv = append(argv, "--build-arg", a)
		}
		if c.target != "" {
			argv = append(argv, "--target", c.target)
		}
		return runCmd(ctx, nil, append(argv, ctxDir)...)
	}, base
}

// TestConformance builds every case with the builder binary and compares
// the result with BuildKit's golden summary.
func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	if runtime.GOARCH != goldenArch {
		t.Skipf("the goldens were recorded on %s, this is %s", goldenArch, runtime.GOARCH)
	}
	cases, err := loadCases(casesDir)
	if err != nil {
		t.Fatal(err)
	}
	if pat := os.Getenv("CONFORMANCE_CASES"); pat != "" {
		cases = filterCases(t, cases, pat)
	}
	xfail, err := readExpectedFailures(expectedFailures)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	build, base := builderBuild(t, work)
	workers := max(3, runtime.NumCPU()+1)
	sums, errs := summarizeAll(t.Context(), cases, filepath.Join(work, "cases"), base, workers, build)

	identical, deliberateOnly, failing := 0, 0, 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatalf("build: %v", errs[i])
			}
			raw, err := os.ReadFile(filepath.Join(goldenDir, c.name+".txt"))
			if err != nil {
				t.Fatalf("no golden (run make conformance with a live BuildKit): %v", err)
			}
			golden, err := parseSummary(string(raw))
			if err != nil {
				t.Fatalf("golden: %v", err)
			}
			diffs, kept := compareSummaries(c.name, golden, sums[i])
			reason, expected := xfail[c.name]
			switch {
			case len(diffs) == 0 && expected:
				t.Errorf("identical to BuildKit now: remove it from %s (%s)", expectedFailures, reason)
			case len(diffs) == 0 && len(kept) > 0:
				deliberateOnly++
				t.Logf("identical but for deliberate differences: %s", strings.Join(kept, ", "))
			case len(diffs) == 0:
				identical++
			case expected:
				failing++
				t.Logf("expected failure (%s): %d differences, first: %s", reason, len(diffs), diffs[0])
			default:
				failing++
				var b strings.Builder
				for _, d := range diffs {
					fmt.Fprintf(&b, "\n\t%s", d)
				}
				if golden.note != "" || sums[i].note != "" {
					fmt.Fprintf(&b, "\n\tbuildkit said: %s\n\tbuilder said: %s",
						strings.TrimSpace(golden.note), strings.TrimSpace(sums[i].note))
				}
				t.Errorf("differs from BuildKit in %d fields:%s", len(diffs), b.String())
			}
		})
	}
	t.Logf("%d cases: %d identical to BuildKit, %d identical but for deliberate differences other than the "+
		"history comment, %d differ (%d expected failures listed)", len(cases), identical, deliberateOnly, failing, len(xfail))
}

func filterCases(t *testing.T, cases []*testCase, pat string) []*testCase {
	re, err := regexp.Compile(pat)
	if err != nil {
		t.Fatalf("CONFORMANCE_CASES: %v", err)
	}
	var out []*testCase
	for _, c := range cases {
		if re.MatchString(c.name) {
			out = append(out, c)
		}
	}
	return out
}
