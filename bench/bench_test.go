package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// Where the harness keeps generated workloads and writes results, relative
// to this package's dir (go test runs in it); git ignores both.
const (
	workloadDir = "workloads"
	resultDir   = "results"
	resultsFile = "RESULTS.md" // a full run's markdown, committed
)

// TestBench runs every workload in every scenario for each tool, writes
// results/<time>-<mode>.{json,md}, prints the markdown and, on a full run,
// writes RESULTS.md and lists the missed targets (a failure with -strict).
func TestBench(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, need := range []string{gnuTime, "/bin/busybox", "/usr/bin/docker-registry"} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("skipping: %s is missing (make deps installs it)", need)
		}
	}
	mode, sz, runs := "quick", quickSizes, 1
	if *fullRun {
		mode, sz, runs = "full", fullSizes, max(*runsOpt, 1)
	}
	start := time.Now()
	tmp := t.TempDir()
	// Before the temp dir goes (cleanups run last first): whatever a peer
	// left mounted in its store under it (buildah's overlay "merged" dirs).
	t.Cleanup(func() { testutil.UnmountUnder(tmp) })
	res := &results{Mode: mode, Started: start, Runs: runs, RunSteps: sz.runSteps, Machine: describeMachine(tmp)}

	bin := testutil.BuildBinary(t)
	reg := testutil.StartRegistry(t)
	prep := filepath.Join(tmp, "prep-root")
	bases := map[string]string{}
	var err error
	if bases["busybox"], err = pushBusybox(bin, prep, tmp, reg); err != nil {
		t.Fatal(err)
	}
	wls := selected(t)
	// The multi-platform scenarios (platforms_test.go), when QEMU can run
	// arm64 binaries here.
	multiBase, undoEmulation, err := pushMultiBusybox(bin, prep, tmp, reg)
	defer undoEmulation()
	switch {
	case errors.Is(err, testutil.ErrNoBinfmt):
		logf("no multi-platform scenarios: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	// The rootless scenarios (rootless_test.go), when a user can be made.
	rootless, undoRootless, err := newRootless(bin)
	defer undoRootless()
	if err != nil {
		logf("no rootless scenarios: %v", err)
		rootless = nil
	}
	if slices.ContainsFunc(wls, func(w workload) bool { return w.base == "debian" }) {
		logf("making the Debian %s base (debootstrap, cached under bench/%s for a week)", debianSuite, workloadDir)
		if bases["debian"], err = pushDebian(bin, prep, tmp, workloadDir, reg); err != nil {
			t.Fatal(err)
		}
	}

	tools := []tool{&builderTool{bin: bin, root: filepath.Join(tmp, "builder-root")}}
	if bh, err := newBuildah(filepath.Join(tmp, "buildah")); err == nil {
		tools = append(tools, bh)
	} else {
		logf("buildah is not installed: builder only (make bench installs it)")
	}
	if bk := newBuildkit(); bk != nil {
		tools = append(tools, bk)
	}
	defer func() {
		for _, tl := range tools {
			tl.close()
		}
	}()

	for _, w := range wls {
		ctx, err := prepareContext(filepath.Join(workloadDir, mode), w, sz, bases[w.base])
		if err != nil {
			t.Fatal(err)
		}
		wtools, fresh := tools, freshFor(w.name, *fullRun, *freshOpt)
		if w.huge {
			wtools, fresh = tools[:1], fresh && *freshOpt != ""
		}
		wr, err := runWorkload(wtools, w, ctx, bases[w.base], reg, sz, runs, tmp, fresh)
		if err != nil {
			t.Fatal(err)
		}
		if multiBase != "" {
			if err := runPlatforms(tools[0].(*builderTool), w, multiBase, sz, runs, tmp, &wr); err != nil {
				t.Fatal(err)
			}
		}
		if rootless != nil {
			if err := runRootless(rootless, w, ctx, bases[w.base], runs, &wr); err != nil {
				t.Fatal(err)
			}
		}
		if err := measureContextFloors(&wr, w, ctx); err != nil {
			t.Fatal(err)
		}
		res.Workloads = append(res.Workloads, wr)
		if w.name == "copy-big" {
			logf("floor: cat, sha256sum and tar+gzip of the copy-big context")
			f, err := measureFloor(ctx, runs)
			if err != nil {
				t.Fatal(err)
			}
			res.Floor = &f
		}
	}
	logf("progress: a RUN printing many lines and a COPY of many files, under each --progress mode")
	if res.Progress, err = measureProgress(bin, bases["busybox"], tmp, *fullRun, runs); err != nil {
		t.Fatal(err)
	}
	logf("floor: exec of a trivial static Go binary, and builder --help")
	if res.Startup, err = measureStartup(bin, tmp, startupRuns(runs)); err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		_, daemon := tl.(*buildkitTool)
		res.Tools = append(res.Tools, toolInfo{Name: tl.name(), Version: tl.version(), DaemonRSS: daemon, NotApplicable: notApplicable(tl)})
	}
	res.Seconds = time.Since(start).Seconds()
	res.judge()
	md := res.markdown()
	if err := writeResults(res, md); err != nil {
		t.Fatal(err)
	}
	fmt.Print("\n" + md)
	if missed := res.missed(); len(missed) > 0 {
		report := t.Logf
		if *strict {
			report = t.Errorf
		}
		report("targets missed (see %s and, for why, README.md):\n%s", resultsFile, strings.Join(missed, "\n"))
	}
}

// selected is the workloads -workloads names (all by default).
func selected(t *testing.T) []workload {
	all := workloads()
	if *only == "" {
		return withoutHuge(all)
	}
	var out []workload
	for _, name := range strings.Split(*only, ",") {
		i := slices.IndexFunc(all, func(w workload) bool { return w.name == name })
		if i < 0 {
			t.Fatalf("unknown workload %q", name)
		}
		out = append(out, all[i])
	}
	return withoutHuge(out)
}

// withoutHuge drops the huge workload from a quick run's list: a quick
// run never generates its 10 GB.
func withoutHuge(ws []workload) []workload {
	if *fullRun {
		return ws
	}
	return slices.DeleteFunc(ws, func(w workload) bool {
		if w.huge && *only != "" {
			logf("%s: full runs only, skipped", w.name)
		}
		return w.huge
	})
}

// runWorkload measures w in every scenario (with fresh, the fresh-runner
// ones too, against the registry reg), the tools alternating within each
// run so that they share the machine's noise. builder failing fails the
// harness; a peer failing is recorded and skipped for this workload (for
// the fresh-runner scenarios, or for the others).
func runWorkload(tools []tool, w workload, ctx, base, reg string, sz sizes, runs int, tmp string, fresh bool) (workloadResult, error) {
	wr := workloadResult{Name: w.name, Desc: w.desc, Samples: map[string]map[string][]sample{}, Errors: map[string]string{}}
	var err error
	if wr.Files, wr.Bytes, err = contextSize(ctx); err != nil {
		return wr, err
	}
	tag := "bench-" + w.name + ":v1"
	failed := map[string]bool{}
	step := func(scenario string, i int, f func(tl tool) (sample, error)) error {
		for _, tl := range tools {
			key := failKey(tl.name(), scenario)
			if failed[key] {
				continue
			}
			s, err := f(tl)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				if tl.name() == baseline {
					return fmt.Errorf("%s %s: %w", w.name, scenario, err)
				}
				failed[key] = true
				wr.Errors[key] = fmt.Sprintf("%s: %v", scenario, err)
				logf("%s failed on %s %s: %v", tl.name(), w.name, scenario, err)
				continue
			}
			if wr.Samples[scenario] == nil {
				wr.Samples[scenario] = map[string][]sample{}
			}
			wr.Samples[scenario][tl.name()] = append(wr.Samples[scenario][tl.name()], s)
			logf("%-11s %-12s run %d/%d %-8s %9s  %s", w.name, scenario, i+1, runs, tl.name(), fmtMS(s.WallMS), fmtRSS(float64(s.MaxRSSKB)))
		}
		return nil
	}
	fr := &freshRun{w: w, ctx: ctx, tag: tag, base: base, reg: reg, tmp: tmp, step: step, repo: map[string]string{}}
	for i := range runs {
		// The export cost first, so that warm finds the state cold left.
		if fresh {
			if err := fr.exportCost(i); err != nil {
				return wr, err
			}
		}
		if err := step("pull", i, func(tl tool) (sample, error) { return tl.reset(base) }); err != nil {
			return wr, err
		}
		if w.huge {
			// As for its floor: the builds before it may have pushed
			// part of the 10 GB out of the page cache (the first cold run
			// of a full run read it from the disk: sys 12 s of 19.7 s).
			if err := readAll(ctx); err != nil {
				return wr, err
			}
		}
		if err := settle(); err != nil {
			return wr, err
		}
		if err := step("cold", i, func(tl tool) (sample, error) { return tl.build(ctx, tag, "miss") }); err != nil {
			return wr, err
		}
	}
	for i := range runs {
		if err := step("warm", i, func(tl tool) (sample, error) { return tl.build(ctx, tag, "hit") }); err != nil {
			return wr, err
		}
	}
	if b, ok := tools[0].(*builderTool); ok {
		if err := measureWarmPairs(&wr, w, b, ctx, tag, runs); err != nil {
			return wr, err
		}
	}
	restore, err := oneChange(w, ctx, base, sz)
	if err != nil {
		return wr, err
	}
	for i := range runs {
		if w.huge {
			break // no one-change: a second 10 GB cold build
		}
		if err := restore.change(i + 1); err != nil {
			return wr, err
		}
		if err := step("one-change", i, func(tl tool) (sample, error) { return tl.build(ctx, tag, "miss") }); err != nil {
			restore.undo()
			return wr, err
		}
	}
	if err := restore.undo(); err != nil {
		return wr, err
	}
	dest := filepath.Join(tmp, "export.tar")
	for i := range runs {
		err := step("export", i, func(tl tool) (sample, error) {
			defer os.Remove(dest)
			return tl.export(ctx, tag, dest)
		})
		if err != nil {
			return wr, err
		}
	}
	if fresh {
		if err := fr.fresh(runs, restore, &wr); err != nil {
			return wr, err
		}
	}
	return wr, nil
}

// changer edits one context file, or the last RUN line, for one-change,
// and puts it back afterwards (the context is kept for later runs). While
// a context file is edited, the context's stamp is away: a run killed
// meanwhile leaves a context the next run generates again.
type changer struct {
	path  string
	orig  []byte
	edit  func(n int) []byte
	stamp string // the context's stamp file, "" for a Dockerfile edit
	saved []byte // its content while removed
}

func oneChange(w workload, ctx, base string, sz sizes) (*changer, error) {
	if w.changeFile == "" {
		df := w.dockerfile(base, sz)
		return &changer{path: filepath.Join(ctx, "Dockerfile"), orig: []byte(df),
			edit: func(n int) []byte { return []byte(withChange(df, n)) }}, nil
	}
	p := filepath.Join(ctx, w.changeFile)
	orig, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", w.name, err)
	}
	return &changer{path: p, orig: orig, stamp: stampPath(filepath.Dir(ctx), w.name),
		edit: func(n int) []byte { return fmt.Appendf(append([]byte(nil), orig...), "change %d\n", n) }}, nil
}

func (c *changer) change(n int) error {
	if c.stamp != "" && c.saved == nil {
		data, err := os.ReadFile(c.stamp)
		if err != nil {
			return err
		}
		if err := os.Remove(c.stamp); err != nil {
			return err
		}
		c.saved = data
	}
	return os.WriteFile(c.path, c.edit(n), 0o644)
}

func (c *changer) undo() error {
	if err := os.WriteFile(c.path, c.orig, 0o644); err != nil {
		return err
	}
	if c.saved != nil {
		if err := os.WriteFile(c.stamp, c.saved, 0o644); err != nil {
			return err
		}
		c.saved = nil // the next change removes the stamp again
	}
	return nil
}

// writeResults writes results/<time>-<mode>.json and .md, and on a full
// run RESULTS.md.
func writeResults(r *results, md string) error {
	if err := os.MkdirAll(resultDir, 0o755); err != nil {
		return err
	}
	stem := filepath.Join(resultDir, r.Started.UTC().Format("20060102-150405")+"-"+r.Mode)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(stem+".json", append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(stem+".md", []byte(md), 0o644); err != nil {
		return err
	}
	if r.Mode == "full" && len(r.Workloads) == len(workloads()) {
		return os.WriteFile(resultsFile, []byte(md), 0o644)
	}
	return nil
}

// logf prints a progress line (shown by `go test -v`, as `make bench` runs it).
func logf(format string, args ...any) {
	fmt.Printf("bench: "+format+"\n", args...)
}

// TestRerender re-judges and re-renders the results JSON -rerender names
// (after a change to the targets or the table), rewriting its markdown and,
// for a full run of every workload, RESULTS.md. Skipped without the flag.
func TestRerender(t *testing.T) {
	if *rerender == "" {
		t.Skip("skipping: -rerender results/<run>.json not given")
	}
	data, err := os.ReadFile(*rerender)
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", *rerender, err)
	}
	r.judge()
	md := r.markdown()
	if err := writeResults(&r, md); err != nil {
		t.Fatal(err)
	}
	fmt.Print(md)
}

// settle writes out the dirty pages of what ran before a timed build (the
// previous store's removal, the pull, a generated context): the cold
// build's own fsyncs would otherwise wait for them. The first workload of
// a full run, right after the Debian base was made, measured meta cold at
// 86-327 ms against 49 ms alone; 300 MB written just before a cold meta
// build added 80-160 ms to it.
func settle() error {
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		return fmt.Errorf("sync: %w: %s", err, out)
	}
	return nil
}
