package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/builderdev/builder/internal/testutil"
)

// A tool is one image builder under measurement, with a private store.
type tool interface {
	name() string
	// version describes the tool for the results.
	version() string
	// reset empties the store and the cache, then pulls the base image:
	// the state a cold build starts from. The sample times the pull.
	reset(base string) (sample, error)
	// build builds the context dir as tag. want is "miss" when some step
	// must run, "hit" when every step must come from the cache, "" when
	// either may happen; a tool checks it where its output tells.
	build(dir, tag, want string) (sample, error)
	// export writes tag, built from the context dir, to dest as an OCI
	// archive.
	export(dir, tag, dest string) (sample, error)
	close()
}

// builderTool is our binary with its own --root.
type builderTool struct {
	bin, root string
	base      string // the base image the last reset pulled
}

func (b *builderTool) name() string { return "builder" }

func (b *builderTool) version() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "builder (this checkout)"
	}
	return "builder " + strings.TrimSpace(string(out))
}

func (b *builderTool) reset(base string) (sample, error) {
	if err := os.RemoveAll(b.root); err != nil {
		return sample{}, err
	}
	b.base = base
	s, _, err := measure("", b.bin, "--root", b.root, "pull", base)
	return s, err
}

func (b *builderTool) build(dir, tag, want string) (sample, error) {
	s, out, err := measure("", b.bin, "--root", b.root, "build", "--progress", "plain", "-t", tag, dir)
	if err != nil {
		return s, err
	}
	return s, checkSteps(out, want)
}

// builderStep matches the last line of a step in builder's plain progress:
// "#3 [stage-0 2/3] RUN true CACHED 0.000s", a hit from an imported cache
// "... CACHED (registry REF) 0.009s".
var builderStep = regexp.MustCompile(`^#\d+ \[[^\]]*\] .* (DONE|CACHED|CACHED \([^)]*\)) \d+\.\d+s$`)

// checkSteps reads builder's plain progress. FROM lines do not count.
func checkSteps(out, want string) error {
	steps, cached := 0, 0
	for _, l := range strings.Split(out, "\n") {
		m := builderStep.FindStringSubmatch(l)
		if m == nil || strings.Contains(l, "] FROM ") {
			continue
		}
		steps++
		if m[1] != "DONE" {
			cached++
		}
	}
	return checkCounts("builder", out, want, steps, cached)
}

func (b *builderTool) export(_, tag, dest string) (sample, error) {
	s, _, err := measure("", b.bin, "--root", b.root, "save", "--format", "oci", "-o", dest, tag)
	return s, err
}

func (b *builderTool) close() { _ = os.RemoveAll(b.root) }

// buildahTool is `buildah bud --layers` on a private overlay store (vfs when
// overlay does not work), chroot isolation: buildah's lightest sandbox.
type buildahTool struct {
	dir    string
	driver string
}

func newBuildah(dir string) (*buildahTool, error) {
	if _, err := exec.LookPath("buildah"); err != nil {
		return nil, err
	}
	return &buildahTool{dir: dir, driver: "overlay"}, nil
}

func (b *buildahTool) name() string { return "buildah" }

func (b *buildahTool) version() string {
	out, err := exec.Command("buildah", "--version").Output()
	if err != nil {
		return "buildah"
	}
	return strings.TrimSpace(string(out)) + ", " + b.driver + " driver, --isolation chroot"
}

func (b *buildahTool) cmd(args ...string) []string {
	return append([]string{"--root", filepath.Join(b.dir, "root"), "--runroot", filepath.Join(b.dir, "run"),
		"--storage-driver", b.driver}, args...)
}

func (b *buildahTool) wipe() error {
	_, _ = run("", "buildah", b.cmd("rmi", "--all", "--force")...)
	testutil.UnmountUnder(b.dir)
	return os.RemoveAll(b.dir)
}

func (b *buildahTool) reset(base string) (sample, error) {
	if err := b.wipe(); err != nil {
		return sample{}, err
	}
	s, _, err := measure("", "buildah", b.cmd("pull", "--quiet", "--tls-verify=false", "docker://"+base)...)
	if err != nil && b.driver == "overlay" {
		// No overlay here (nested overlay, say): fall back to vfs.
		b.driver = "vfs"
		return b.reset(base)
	}
	return s, err
}

// bud is the arguments of `buildah bud --layers` of dir as tag, with extra
// flags.
func (b *buildahTool) bud(dir, tag string, extra ...string) []string {
	args := append([]string{"bud", "--layers", "--pull=never", "--tls-verify=false", "--isolation", "chroot"}, extra...)
	return b.cmd(append(args, "-t", tag, dir)...)
}

func (b *buildahTool) build(dir, tag, want string) (sample, error) {
	s, out, err := measure("", "buildah", b.bud(dir, tag)...)
	if err != nil {
		return s, err
	}
	return s, checkBuildah(out, want)
}

// buildahStep matches a step line of `buildah bud`: "STEP 2/3: RUN true",
// in a multi-stage build "[2/3] STEP 1/4: FROM busybox AS gen".
var buildahStep = regexp.MustCompile(`^(\[\d+/\d+\] )?STEP \d+/\d+: (\S+)`)

// checkBuildah reads `buildah bud --layers` output: every step but FROM is
// followed by "--> Using cache <id>" when it hit the cache.
func checkBuildah(out, want string) error {
	steps, cached := 0, 0
	for _, l := range strings.Split(out, "\n") {
		if m := buildahStep.FindStringSubmatch(l); m != nil && m[2] != "FROM" {
			steps++
		}
		if strings.HasPrefix(l, "--> Using cache ") {
			cached++
		}
	}
	return checkCounts("buildah", out, want, steps, cached)
}

// checkCounts checks want ("hit", "miss" or "") against a build's number
// of steps and of cached steps.
func checkCounts(tool, out, want string, steps, cached int) error {
	switch {
	case steps == 0:
		return fmt.Errorf("%s: no build steps in its output:\n%s", tool, tail(out, 40))
	case want == "hit" && cached < steps:
		return fmt.Errorf("%s: %d of %d steps ran on a build that should be fully cached:\n%s", tool, steps-cached, steps, tail(out, 40))
	case want == "miss" && cached == steps:
		return fmt.Errorf("%s: every step hit the cache on a build that should miss:\n%s", tool, tail(out, 40))
	}
	return nil
}

func (b *buildahTool) export(_, tag, dest string) (sample, error) {
	s, _, err := measure("", "buildah", b.cmd("push", "--quiet", tag, "oci-archive:"+dest)...)
	return s, err
}

func (b *buildahTool) close() { _ = b.wipe() }

// buildkitTool drives a running buildkitd through buildctl: BUILDKIT_HOST
// names it. Its cache is the daemon's: reset prunes all of it.
type buildkitTool struct {
	host string
}

func newBuildkit() *buildkitTool {
	host := os.Getenv("BUILDKIT_HOST")
	if _, err := exec.LookPath("buildctl"); err != nil || host == "" {
		return nil
	}
	return &buildkitTool{host: host}
}

func (b *buildkitTool) name() string { return "buildkit" }

func (b *buildkitTool) version() string {
	out, err := exec.Command("buildctl", "--version").Output()
	if err != nil {
		return "buildkit at " + b.host
	}
	return strings.TrimSpace(string(out)) + " at " + b.host + " (buildctl's wall time; the daemon's memory is not measured; its pull is a throwaway build FROM the base)"
}

func (b *buildkitTool) reset(base string) (sample, error) {
	if _, err := run("", "buildctl", "prune", "--all"); err != nil {
		return sample{}, err
	}
	// BuildKit has no pull: a throwaway build that runs in the base makes
	// it present in its cache.
	dir, err := os.MkdirTemp("", "builder-bench-bk-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	df := fmt.Sprintf("FROM %s\nRUN echo warm-up %s\n", base, filepath.Base(dir))
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return sample{}, err
	}
	s, _, err := measure("", "buildctl", b.buildArgs(dir)...)
	return s, err
}

func (b *buildkitTool) buildArgs(dir string, output ...string) []string {
	return append([]string{"build", "--frontend", "dockerfile.v0", "--local", "context=" + dir,
		"--local", "dockerfile=" + dir, "--progress", "plain"}, output...)
}

func (b *buildkitTool) build(dir, tag, want string) (sample, error) {
	s, out, err := measure("", "buildctl", b.buildArgs(dir, "--output", "type=image,name=bench.local/"+tag)...)
	if err != nil {
		return s, err
	}
	return s, checkBuildkit(out, want)
}

// buildkitStep matches a Dockerfile step's vertex in plain progress:
// "#5 [gen 2/3] RUN true".
var buildkitStep = regexp.MustCompile(`^#(\d+) \[[^\]]*\d+/\d+\] (\S+)`)

// checkBuildkit reads buildctl's plain progress: a step's vertex is
// followed by "#N CACHED" when it hit the cache. FROM does not count.
func checkBuildkit(out, want string) error {
	steps := map[string]bool{}
	cachedIDs := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if m := buildkitStep.FindStringSubmatch(l); m != nil && m[2] != "FROM" {
			steps[m[1]] = true
		}
		if id, ok := strings.CutSuffix(l, " CACHED"); ok && strings.HasPrefix(id, "#") {
			cachedIDs[strings.TrimPrefix(id, "#")] = true
		}
	}
	cached := 0
	for id := range steps {
		if cachedIDs[id] {
			cached++
		}
	}
	return checkCounts("buildkit", out, want, len(steps), cached)
}

// export has BuildKit export the (cached) build of dir: buildkitd has no
// image store to save from.
func (b *buildkitTool) export(dir, _, dest string) (sample, error) {
	s, _, err := measure("", "buildctl", b.buildArgs(dir, "--output", "type=oci,dest="+dest)...)
	return s, err
}

func (b *buildkitTool) close() {}
