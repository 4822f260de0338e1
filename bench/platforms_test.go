package bench

// The multi-platform scenarios (builder only; the peers' cells stay
// empty): on the meta and run-true workloads, FROM a busybox image index
// of amd64 and arm64 (the arm64 half Debian's arm64 busybox-static, run
// under QEMU user-mode emulation through binfmt_misc):
//
//	2-platform cold  --platform linux/amd64,linux/arm64 from an empty cache
//	                 (both platforms of the base pulled first, untimed)
//	2-platform warm  the same again: every step of both platforms cached
//	arm64 cold       --platform linux/arm64 alone: every RUN emulated
//
// "arm64 cold" of run-true minus that of meta, over RunSteps-1 steps, is
// what one emulated `RUN true` costs, reported next to the native figure.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/builderdev/builder/internal/testutil"
)

// platformScenarios in table order.
var platformScenarios = []string{"2-platform cold", "2-platform warm", "arm64 cold"}

// platformWorkloads are the workloads measured in platformScenarios.
var platformWorkloads = []string{"meta", "run-true"}

// bothPlatforms is the --platform of the 2-platform scenarios.
const bothPlatforms = "linux/amd64,linux/arm64"

// pushMultiBusybox makes QEMU run arm64 binaries here (undo puts the host
// back) and pushes a busybox index of amd64 and arm64 to reg. An error
// wrapping testutil.ErrNoBinfmt: this kernel cannot emulate (the
// scenarios are skipped).
func pushMultiBusybox(bin, root, tmp, reg string) (string, func(), error) {
	arm64, undo, err := testutil.Emulate("arm64")
	if err != nil {
		return "", undo, err
	}
	archive := filepath.Join(tmp, "busybox-multi.tar")
	err = testutil.WriteBusyboxImage(archive, testutil.BusyboxOptions{Name: "busybox:multi", Tag: "multi",
		Others: []testutil.BusyboxPlatform{{Arch: "arm64", Busybox: arm64}}})
	if err != nil {
		return "", undo, err
	}
	ref := reg + "/bench/busybox:multi"
	for _, args := range [][]string{{"load", "-i", archive}, {"tag", "busybox:multi", ref}, {"push", ref}} {
		if _, err := run("", bin, append([]string{"--root", root}, args...)...); err != nil {
			return "", undo, err
		}
	}
	return ref, undo, nil
}

// runPlatforms measures w in platformScenarios with builder, FROM base
// (pushMultiBusybox's), adding the samples to wr.
func runPlatforms(b *builderTool, w workload, base string, sz sizes, runs int, tmp string, wr *workloadResult) error {
	if !slices.Contains(platformWorkloads, w.name) {
		return nil
	}
	dir := filepath.Join(tmp, "platforms-"+w.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(w.dockerfile(base, sz)), 0o644); err != nil {
		return err
	}
	tag := "bench-" + w.name + "-multi:v1"
	add := func(scenario string, i int, s sample) {
		if wr.Samples[scenario] == nil {
			wr.Samples[scenario] = map[string][]sample{}
		}
		wr.Samples[scenario][b.name()] = append(wr.Samples[scenario][b.name()], s)
		logf("%-11s %-15s run %d/%d %-8s %9s  %s", w.name, scenario, i+1, runs, b.name(), fmtMS(s.WallMS), fmtRSS(float64(s.MaxRSSKB)))
	}
	// reset empties the store and pulls the platforms of base.
	reset := func(platforms ...string) error {
		if _, err := b.reset(base); err != nil {
			return err
		}
		for _, p := range platforms {
			if _, err := run("", b.bin, "--root", b.root, "pull", "--platform", p, base); err != nil {
				return err
			}
		}
		return nil
	}
	build := func(platform, want string) (sample, error) {
		s, out, err := measure("", b.bin, "--root", b.root, "build", "--progress", "plain", "--platform", platform, "-t", tag, dir)
		if err == nil {
			err = checkSteps(out, want)
		}
		if err != nil {
			return s, fmt.Errorf("%s --platform %s: %w", w.name, platform, err)
		}
		return s, nil
	}
	for i := range runs {
		if err := reset("linux/arm64"); err != nil {
			return err
		}
		if err := settle(); err != nil {
			return err
		}
		s, err := build(bothPlatforms, "miss")
		if err != nil {
			return err
		}
		add("2-platform cold", i, s)
	}
	for i := range runs {
		s, err := build(bothPlatforms, "hit")
		if err != nil {
			return err
		}
		add("2-platform warm", i, s)
	}
	for i := range runs {
		if err := reset("linux/arm64"); err != nil {
			return err
		}
		if err := settle(); err != nil {
			return err
		}
		s, err := build("linux/arm64", "miss")
		if err != nil {
			return err
		}
		add("arm64 cold", i, s)
	}
	return nil
}

// judgePlatforms reports the emulated RUN overhead (no target: QEMU's
// cost is not ours to set) next to the native one.
func (r *results) judgePlatforms(add func(target, got string, ok, judged bool, why string)) {
	rt, ok1 := r.median("run-true", "arm64 cold", baseline, wallOf)
	meta, ok2 := r.median("meta", "arm64 cold", baseline, wallOf)
	if !ok1 || !ok2 || r.RunSteps < 2 {
		return
	}
	per := (rt - meta) / float64(r.RunSteps-1)
	got := fmt.Sprintf("%s ((run-true arm64 cold %s - meta arm64 cold %s) / %d)", fmtMS(per), fmtMS(rt), fmtMS(meta), r.RunSteps-1)
	nrt, ok3 := r.median("run-true", "cold", baseline, wallOf)
	nmeta, ok4 := r.median("meta", "cold", baseline, wallOf)
	if ok3 && ok4 {
		got += fmt.Sprintf("; native: %s", fmtMS((nrt-nmeta)/float64(r.RunSteps-1)))
	}
	add("emulated `RUN true` overhead (arm64 under QEMU), per step", got, true, false, "reported (no target)")
}
