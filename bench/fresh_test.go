package bench

// The fresh-runner scenarios: a CI runner starts from an empty store (the
// base image only) and a build cache in a registry, here the harness's
// local one. For each tool that can export and import a registry cache
// (builder: --cache-to/--cache-from type=registry; buildah: bud --layers
// --cache-to/--cache-from REPO):
//
//	cache-to-min, cache-to-max  a cold build that exports its cache (to a new
//	                            repository each run, so every blob is uploaded)
//	fresh-pushed  empty store, --cache-from the last cache-to-max export,
//	              fully cached, pushed to the cache's registry
//	fresh-kept    the same, kept in the store (its layers downloaded)
//	fresh-change  the one-change edit, --cache-from, empty store
//
// and `skopeo copy` of the image fresh-pushed pushed, from that registry
// into an empty OCI layout, is fresh-kept's floor.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// freshScenarios in table order.
var freshScenarios = []string{"cache-to-min", "cache-to-max", "fresh-pushed", "fresh-kept", "fresh-change"}

func isFresh(scenario string) bool { return slices.Contains(freshScenarios, scenario) }

// failKey is the key of a tool's failure in a scenario: a peer failing a
// fresh-runner scenario keeps its other scenarios, and the reverse.
func failKey(tool, scenario string) string {
	if isFresh(scenario) {
		return tool + " fresh-runner"
	}
	return tool
}

// errSkip: the tool does not do this scenario (no samples, no failure).
var errSkip = errors.New("scenario not supported by this tool")

// freshQuick is the workload a quick run measures the fresh-runner
// scenarios on (a full run: every workload).
const freshQuick = "copy-big"

// freshFor reports whether the fresh-runner scenarios run for workload
// name: -fresh names them (all, none, or a list), else every workload on
// a full run and freshQuick on a quick one.
func freshFor(name string, full bool, opt string) bool {
	switch opt {
	case "":
		return full || name == freshQuick
	case "all":
		return true
	case "none":
		return false
	}
	return slices.Contains(strings.Split(opt, ","), name)
}

// notApplicable lists the fresh-runner scenarios tl cannot do.
func notApplicable(tl tool) []string {
	ct, ok := tl.(cacheTool)
	if !ok {
		return freshScenarios
	}
	var out []string
	for _, mode := range []string{"min", "max"} {
		if !slices.Contains(ct.cacheModes(), mode) {
			out = append(out, "cache-to-"+mode)
		}
	}
	return out
}

// A cacheTool can export its build cache to a registry and import it.
type cacheTool interface {
	// cacheModes lists the --cache-to modes the tool has: "min", "max".
	cacheModes() []string
	// buildCacheTo builds the context dir as tag, exporting its cache in
	// mode to the registry repository repo; every step must run.
	buildCacheTo(dir, tag, repo, mode string) (sample, error)
	// buildCacheFrom builds dir with the cache of repo imported; pushed
	// to push when not "", else kept as tag. want is as for build.
	buildCacheFrom(dir, tag, repo, push, want string) (sample, error)
}

// builder's summary lines on stderr (cmd/builder printCacheStats).
var (
	cacheImported = regexp.MustCompile(`(?m)^cache: imported (\d+) records from registry (\S+); fetched (\d+) layers`)
	cacheExported = regexp.MustCompile(`(?m)^cache: exported (\d+) records to registry (\S+); uploaded (\d+) layers[^;\n]*(?:; (\d+) layers \([^)]*\) streamed during the build)?`)
)

// builderCacheRef is builder's cache reference in repo.
func builderCacheRef(repo string) string { return repo + ":cache" }

func (b *builderTool) cacheModes() []string { return []string{"min", "max"} }

func (b *builderTool) buildCacheTo(dir, tag, repo, mode string) (sample, error) {
	ref := builderCacheRef(repo)
	s, out, err := measure("", b.bin, "--root", b.root, "build", "--progress", "plain", "-t", tag,
		"--cache-to", "type=registry,ref="+ref+",mode="+mode, dir)
	if err != nil {
		return s, err
	}
	if err := checkSteps(out, "miss"); err != nil {
		return s, err
	}
	n, err := uploadedBlobs(out, ref)
	if err != nil {
		return s, err
	}
	// The repository being new, every layer the image has over its base
	// is uploaded; mode=max also uploads other stages' layers.
	layers, err := b.newLayers(tag)
	if err != nil {
		return s, err
	}
	if n < layers || mode == "min" && n != layers {
		return s, fmt.Errorf("builder: exported the cache of an image of %d layers over its base in mode=%s to a new repository, uploading %d blobs:\n%s",
			layers, mode, n, tail(out, 40))
	}
	return s, nil
}

// uploadedBlobs is the number of layer blobs a build uploaded with its
// cache export to ref (at the export or streamed while the build packed
// them), which must have exported records.
func uploadedBlobs(out, ref string) (int, error) {
	m := cacheExported.FindStringSubmatch(out)
	switch {
	case m == nil || m[2] != ref:
		return 0, fmt.Errorf("builder: no cache export to %s in its output:\n%s", ref, tail(out, 40))
	case m[1] == "0":
		return 0, fmt.Errorf("builder: exported no records to %s:\n%s", ref, tail(out, 40))
	}
	n, err := strconv.Atoi(m[3])
	if err == nil && m[4] != "" {
		var streamed int
		streamed, err = strconv.Atoi(m[4])
		n += streamed
	}
	return n, err
}

// fetchedBlobs is the number of layer blobs a build downloaded from the
// cache at ref, which it must have imported records from.
func fetchedBlobs(out, ref string) (int, error) {
	m := cacheImported.FindStringSubmatch(out)
	switch {
	case m == nil || m[2] != ref:
		return 0, fmt.Errorf("builder: no cache import from %s in its output:\n%s", ref, tail(out, 40))
	case m[1] == "0":
		return 0, fmt.Errorf("builder: imported no records from %s:\n%s", ref, tail(out, 40))
	}
	return strconv.Atoi(m[3])
}

func (b *builderTool) buildCacheFrom(dir, tag, repo, push, want string) (sample, error) {
	ref := builderCacheRef(repo)
	args := []string{"--root", b.root, "build", "--progress", "plain", "--cache-from", "type=registry,ref=" + ref}
	if push != "" {
		args = append(args, "-t", push, "--push")
	} else {
		args = append(args, "-t", tag)
	}
	s, out, err := measure("", b.bin, append(args, dir)...)
	if err != nil {
		return s, err
	}
	if err := checkSteps(out, want); err != nil {
		return s, err
	}
	n, err := fetchedBlobs(out, ref)
	if err != nil || want != "hit" {
		return s, err
	}
	if push != "" {
		// Every layer is mounted from the cache's repository.
		if n != 0 {
			return s, fmt.Errorf("builder: pushed to the cache's registry, yet fetched %d blobs:\n%s", n, tail(out, 40))
		}
		return s, nil
	}
	// Kept: exactly the image's layers that the base does not have.
	layers, err := b.newLayers(tag)
	if err != nil {
		return s, err
	}
	if n != layers {
		return s, fmt.Errorf("builder: kept a fully cached image of %d layers over its base, yet fetched %d blobs:\n%s", layers, n, tail(out, 40))
	}
	return s, nil
}

// newLayers counts the distinct layers of image tag that its base (the
// image reset pulled) does not have.
func (b *builderTool) newLayers(tag string) (int, error) {
	img, err := b.layerDigests(tag)
	if err != nil {
		return 0, err
	}
	base, err := b.layerDigests(b.base)
	if err != nil {
		return 0, err
	}
	n := 0
	for d := range img {
		if !base[d] {
			n++
		}
	}
	return n, nil
}

func (b *builderTool) layerDigests(ref string) (map[string]bool, error) {
	out, err := exec.Command(b.bin, "--root", b.root, "inspect", ref).Output()
	if err != nil {
		return nil, fmt.Errorf("builder inspect %s: %w", ref, err)
	}
	var img struct {
		Manifest struct {
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal(out, &img); err != nil {
		return nil, fmt.Errorf("builder inspect %s: %w", ref, err)
	}
	set := map[string]bool{}
	for _, l := range img.Manifest.Layers {
		set[l.Digest] = true
	}
	return set, nil
}

// buildah 1.28's --cache-to has no mode: it pushes every step's layer, as
// mode=max does.
func (b *buildahTool) cacheModes() []string { return []string{"max"} }

func (b *buildahTool) buildCacheTo(dir, tag, repo, _ string) (sample, error) {
	s, out, err := measure("", "buildah", b.bud(dir, tag, "--cache-to", repo)...)
	if err != nil {
		return s, err
	}
	if err := checkBuildah(out, "miss"); err != nil {
		return s, err
	}
	if !strings.Contains(out, "--> Pushing cache "+repo+":") {
		return s, fmt.Errorf("buildah: pushed no cache to %s:\n%s", repo, tail(out, 40))
	}
	return s, nil
}

// buildCacheFrom: buildah bud has no --push, so a pushed build is bud
// then `buildah push`, the sample their sum.
func (b *buildahTool) buildCacheFrom(dir, tag, repo, push, want string) (sample, error) {
	s, out, err := measure("", "buildah", b.bud(dir, tag, "--cache-from", repo)...)
	if err != nil {
		return s, err
	}
	if err := checkBuildah(out, want); err != nil {
		return s, err
	}
	if want == "hit" && !strings.Contains(out, "--> Cache pulled from remote "+repo+":") {
		return s, fmt.Errorf("buildah: fully cached in an empty store, yet no cache pulled from %s:\n%s", repo, tail(out, 40))
	}
	if push == "" {
		return s, nil
	}
	p, _, err := measure("", "buildah", b.cmd("push", "--quiet", "--tls-verify=false", tag, "docker://"+push)...)
	return s.plus(p), err
}

// plus is s and t run one after the other.
func (s sample) plus(t sample) sample {
	return sample{WallMS: s.WallMS + t.WallMS, UserMS: s.UserMS + t.UserMS, SysMS: s.SysMS + t.SysMS, MaxRSSKB: max(s.MaxRSSKB, t.MaxRSSKB)}
}

// A freshRun measures one workload's fresh-runner scenarios.
type freshRun struct {
	w         workload
	ctx, tag  string
	base, reg string
	tmp       string
	step      func(scenario string, i int, f func(tl tool) (sample, error)) error
	// repo[tool] is the cache repository of the tool's last cache-to-max
	// export, which the fresh builds import.
	repo map[string]string
}

// repoName is a registry repository for workload w, tool and what, run i.
func (f *freshRun) repoName(kind, tool, what string, i int) string {
	return fmt.Sprintf("%s/%s/%s-%s-%s-r%d", f.reg, kind, f.w.name, tool, what, i+1)
}

// exportCost measures run i of cache-to-min and cache-to-max, each from
// the state a cold build starts from.
func (f *freshRun) exportCost(i int) error {
	for _, mode := range []string{"min", "max"} {
		err := f.step("cache-to-"+mode, i, func(tl tool) (sample, error) {
			ct, ok := tl.(cacheTool)
			if !ok || !slices.Contains(ct.cacheModes(), mode) {
				return sample{}, errSkip
			}
			if _, err := tl.reset(f.base); err != nil {
				return sample{}, err
			}
			if err := settle(); err != nil { // as before the plain cold build
				return sample{}, err
			}
			repo := f.repoName("cache", tl.name(), mode, i)
			s, err := ct.buildCacheTo(f.ctx, f.tag, repo, mode)
			if err == nil && mode == "max" {
				f.repo[tl.name()] = repo
			}
			return s, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fromCache is a fresh runner's build of the context with the tool's
// cache imported: an empty store with the base, then the build.
func (f *freshRun) fromCache(tl tool, push func(tool) string, want string) (sample, error) {
	ct, ok := tl.(cacheTool)
	repo := f.repo[tl.name()]
	if !ok || repo == "" {
		return sample{}, errSkip
	}
	if _, err := tl.reset(f.base); err != nil {
		return sample{}, err
	}
	return ct.buildCacheFrom(f.ctx, f.tag, repo, push(tl), want)
}

// fresh measures the fully cached fresh-runner scenarios, the skopeo
// floor, and fresh-change; wr gets the skopeo samples.
func (f *freshRun) fresh(runs int, restore *changer, wr *workloadResult) error {
	keep := func(tool) string { return "" }
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		logf("skopeo is not installed: no floor for fresh-kept (make deps installs it)")
	}
	for i := range runs {
		pushed := map[string]string{}
		err := f.step("fresh-pushed", i, func(tl tool) (sample, error) {
			img := f.repoName("app", tl.name(), "pushed", i) + ":v1"
			s, err := f.fromCache(tl, func(tool) string { return img }, "hit")
			if err == nil {
				pushed[tl.name()] = img
			}
			return s, err
		})
		if err != nil {
			return err
		}
		if img := pushed[baseline]; img != "" && skopeo != "" {
			dir := filepath.Join(f.tmp, "skopeo-oci")
			s, _, err := measure("", skopeo, "copy", "--src-tls-verify=false", "docker://"+img, "oci:"+dir+":"+f.tag)
			os.RemoveAll(dir)
			if err != nil {
				return fmt.Errorf("%s skopeo copy: %w", f.w.name, err)
			}
			wr.SkopeoCopy = append(wr.SkopeoCopy, s)
			logf("%-11s %-12s run %d/%d %-8s %9s", f.w.name, "skopeo-copy", i+1, runs, "skopeo", fmtMS(s.WallMS))
		}
		if err := f.step("fresh-kept", i, func(tl tool) (sample, error) { return f.fromCache(tl, keep, "hit") }); err != nil {
			return err
		}
	}
	for i := range runs {
		if err := restore.change(i + 1); err != nil {
			return err
		}
		if err := f.step("fresh-change", i, func(tl tool) (sample, error) { return f.fromCache(tl, keep, "miss") }); err != nil {
			restore.undo()
			return err
		}
	}
	return restore.undo()
}
