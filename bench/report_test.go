package bench

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured; it is written as JSON (the raw
// samples) and rendered as markdown.
type results struct {
	Mode      string           `json:"mode"` // "full" or "quick"
	Started   time.Time        `json:"started"`
	Seconds   float64          `json:"seconds"` // wall time of the whole run
	Runs      int              `json:"runs"`    // samples per scenario and tool
	RunSteps  int              `json:"run_true_steps"`
	Machine   machine          `json:"machine"`
	Tools     []toolInfo       `json:"tools"`
	Workloads []workloadResult `json:"workloads"`
	Floor     *floorResult     `json:"floor,omitempty"`
	Progress  *progressResult  `json:"progress,omitempty"` // progress_test.go
	Startup   *startupResult   `json:"startup,omitempty"`  // exec floors (floors_test.go)
	Targets   []targetResult   `json:"targets"`
}

type toolInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// DaemonRSS: the work runs in a daemon, so GNU time's peak RSS is the
	// client's only and the table does not show it.
	DaemonRSS bool `json:"daemon_rss,omitempty"`
	// NotApplicable: the scenarios the tool cannot do (buildah's
	// --cache-to has no mode=min); the table says n/a.
	NotApplicable []string `json:"not_applicable,omitempty"`
}

type workloadResult struct {
	Name  string `json:"name"`
	Desc  string `json:"desc"`
	Files int    `json:"files"` // context files (the Dockerfile included)
	Bytes int64  `json:"bytes"`
	// Samples[scenario][tool]; scenarios: pull, cold, warm, one-change,
	// export, and the fresh-runner ones (freshScenarios).
	Samples map[string]map[string][]sample `json:"samples"`
	// SkopeoCopy: skopeo copy of the image fresh-pushed pushed, from the
	// registry into an empty OCI layout: fresh-kept's floor.
	SkopeoCopy []sample `json:"skopeo_copy,omitempty"`
	// Errors[failKey(tool, scenario)] says why a peer has no samples for
	// this workload (its fresh-runner scenarios, or the others).
	Errors map[string]string `json:"errors,omitempty"`
	// Find: `find CTX -printf '%s %T@\n'` of the context, warm's floor;
	// OnePass: read + tar + sha256 + gzip of it on one core (huge only),
	// cold's floor (floors_test.go).
	Find    []sample `json:"find,omitempty"`
	OnePass []sample `json:"one_pass,omitempty"`
	// WarmPairs: (warm build, its floor) in ms, measured in alternation:
	// find of the context, or for meta `builder --help`.
	WarmPairs [][2]float64 `json:"warm_pairs,omitempty"`
}

type targetResult struct {
	Target string `json:"target"`
	Got    string `json:"got"`
	Status string `json:"status"` // "holds", "MISSED", or why it was not judged
}

// scenarios in table order; "peak RSS" is read from the cold samples.
var scenarios = slices.Concat([]string{"pull", "cold", "warm", "one-change", "export"}, platformScenarios, freshScenarios)

type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	FS     string `json:"fs"` // filesystem of the stores' temp dir
	Go     string `json:"go"`
}

func describeMachine(tmp string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.CPU = firstField("/proc/cpuinfo", "model name")
	if kb := firstField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		fmt.Sscanf(kb, "%d", &n)
		m.Memory = fmt.Sprintf("%.0f GiB", float64(n)/(1<<20))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	m.OS = strings.Trim(firstField("/etc/os-release", "PRETTY_NAME="), `"`)
	if out, err := exec.Command("stat", "-f", "-c", "%T", tmp).Output(); err == nil {
		m.FS = strings.TrimSpace(string(out))
	}
	return m
}

// firstField returns what follows key (and a ':' or '=') on the first line
// of file that starts with key.
func firstField(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(rest), ":="))
		}
	}
	return ""
}

// Targets of the issue; judged only on a full run.
const (
	warmMaxMS        = 50.0
	warmMinRatio     = 20.0
	runTrueMaxMS     = 15.0
	bigMinRatio      = 1.5
	bigMaxFloor      = 1.5
	bigMaxRSSMB      = 100.0
	smallMinRatio    = 2.0
	oneChangeMaxMS   = 2000.0
	freshPushedMaxMS = 1000.0 // copy-big fresh-pushed
	freshKeptMaxX    = 1.2    // fresh-kept over skopeo copy of the image
	cacheToMaxAdd    = 0.10   // cache-to-max over cold, minus 1
	baseline         = "builder"
	defaultPeer      = "buildah"
	quickNotJudged   = "not judged (quick sizes)"
	peerMissingNote  = "not judged (no buildah)"
)

// median of tool's wall times in scenario of workload name, and whether
// there are samples.
func (r *results) median(name, scenario, tool string, f func(sample) float64) (float64, bool) {
	for _, w := range r.Workloads {
		if w.Name == name {
			s := w.Samples[scenario][tool]
			return medianOf(s, f), len(s) > 0
		}
	}
	return 0, false
}

// judge fills r.Targets from the samples.
func (r *results) judge() {
	r.Targets = nil
	add := func(target, got string, ok, judged bool, why string) {
		status := "holds"
		switch {
		case r.Mode != "full":
			status = quickNotJudged
		case !judged:
			status = why
		case !ok:
			status = "MISSED"
		}
		r.Targets = append(r.Targets, targetResult{Target: target, Got: got, Status: status})
	}
	ratio := func(name, scenario string) (float64, bool) {
		ours, ok1 := r.median(name, scenario, baseline, wallOf)
		peer, ok2 := r.median(name, scenario, defaultPeer, wallOf)
		if !ok1 || !ok2 || ours == 0 {
			return 0, false
		}
		return peer / ours, true
	}
	for _, w := range r.Workloads {
		ours, ok := r.median(w.Name, "warm", baseline, wallOf)
		if !ok {
			continue
		}
		// Without buildah the absolute half is still judged.
		x, hasPeer := ratio(w.Name, "warm")
		got := fmtMS(ours)
		why := ""
		if hasPeer {
			got += fmt.Sprintf(", %.0fx buildah", x)
		} else {
			x = warmMinRatio
			why = " (the ratio: no buildah)"
		}
		add(fmt.Sprintf("%s warm: under %.0f ms, at least %.0fx faster than buildah%s", w.Name, warmMaxMS, warmMinRatio, why),
			got, ours < warmMaxMS && x >= warmMinRatio, true, "")
	}
	// One RUN's cost: run-true and meta start the same way (FROM busybox,
	// the base unpacked for the first RUN), then run-true has RunSteps RUN
	// steps where meta has one and ten metadata instructions; the cold
	// builds' difference, over RunSteps-1 steps, is what a RUN adds. (A
	// one-change build minus a warm one would also count the new image's
	// config, manifest and index writes and their fsyncs.)
	rt, ok1 := r.median("run-true", "cold", baseline, wallOf)
	meta, ok2 := r.median("meta", "cold", baseline, wallOf)
	if ok1 && ok2 && r.RunSteps > 1 {
		per := (rt - meta) / float64(r.RunSteps-1)
		got := fmt.Sprintf("%s ((run-true cold %s - meta cold %s) / %d)", fmtMS(per), fmtMS(rt), fmtMS(meta), r.RunSteps-1)
		oc, ok3 := r.median("run-true", "one-change", baseline, wallOf)
		warm, ok4 := r.median("run-true", "warm", baseline, wallOf)
		if ok3 && ok4 {
			got += fmt.Sprintf("; one RUN plus writing a new image: run-true one-change - warm = %s", fmtMS(oc-warm))
		}
		add(fmt.Sprintf("`RUN true` overhead: under %.0f ms per step", runTrueMaxMS), got, per < runTrueMaxMS, true, "")
	}
	if _, ok := r.median("copy-big", "cold", baseline, wallOf); ok {
		x, hasPeer := ratio("copy-big", "cold")
		add(fmt.Sprintf("copy-big cold: at least %.1fx faster than buildah", bigMinRatio), fmt.Sprintf("%.1fx", x), x >= bigMinRatio, hasPeer, peerMissingNote)
	}
	if ours, ok := r.median("copy-big", "cold", baseline, wallOf); ok && r.Floor != nil && r.Floor.FloorMS > 0 {
		x := ours / r.Floor.FloorMS
		add(fmt.Sprintf("copy-big cold: within %.1fx of the floor (read + sha256 + gzip)", bigMaxFloor),
			fmt.Sprintf("%s = %.2fx the floor's %s", fmtMS(ours), x, fmtMS(r.Floor.FloorMS)), x <= bigMaxFloor, true, "")
	}
	if rss, ok := r.median("copy-big", "cold", baseline, rssOf); ok {
		add(fmt.Sprintf("copy-big cold: peak RSS under %.0f MB", bigMaxRSSMB), fmtRSS(rss), rss/1024 < bigMaxRSSMB, true, "")
	}
	if _, ok := r.median("small-files", "cold", baseline, wallOf); ok {
		x, hasPeer := ratio("small-files", "cold")
		add(fmt.Sprintf("small-files cold: at least %.0fx faster than buildah", smallMinRatio), fmt.Sprintf("%.1fx", x), x >= smallMinRatio, hasPeer, peerMissingNote)
	}
	if ours, ok := r.median("copy-big", "one-change", baseline, wallOf); ok {
		add(fmt.Sprintf("copy-big one-change: under %.0f s", oneChangeMaxMS/1000), fmtMS(ours), ours < oneChangeMaxMS, true, "")
	}
	r.judgeFresh(add)
	r.judgePlatforms(add)
	r.judgeRootless(add)
	r.judgeProgress(add)
	r.judgeFloors(add)
}

// judgeFresh adds the fresh-runner targets.
func (r *results) judgeFresh(add func(target, got string, ok, judged bool, why string)) {
	if ours, ok := r.median("copy-big", "fresh-pushed", baseline, wallOf); ok {
		add(fmt.Sprintf("copy-big fresh runner, fully cached, pushed to the cache's registry: under %.0f s", freshPushedMaxMS/1000),
			fmtMS(ours), ours < freshPushedMaxMS, true, "")
	}
	for _, w := range r.Workloads {
		kept, ok := r.median(w.Name, "fresh-kept", baseline, wallOf)
		if !ok {
			continue
		}
		target := fmt.Sprintf("%s fresh runner, fully cached, kept: within %.1fx of skopeo copy of the image", w.Name, freshKeptMaxX)
		if len(w.SkopeoCopy) == 0 {
			add(target, fmtMS(kept), false, false, "not judged (no skopeo)")
			continue
		}
		floor := medianOf(w.SkopeoCopy, wallOf)
		x := kept / floor
		add(target, fmt.Sprintf("%s = %.2fx skopeo's %s", fmtMS(kept), x, fmtMS(floor)), x <= freshKeptMaxX, true, "")
	}
	for _, w := range r.Workloads {
		withExport, ok1 := r.median(w.Name, "cache-to-max", baseline, wallOf)
		cold, ok2 := r.median(w.Name, "cold", baseline, wallOf)
		if !ok1 || !ok2 || cold == 0 {
			continue
		}
		added := withExport/cold - 1
		add(fmt.Sprintf("%s cold: --cache-to mode=max adds under %.0f%%", w.Name, cacheToMaxAdd*100),
			fmt.Sprintf("%+.0f%% (%s, cold %s)", added*100, fmtMS(withExport), fmtMS(cold)), added < cacheToMaxAdd, true, "")
	}
}

// hasFresh reports whether some workload has fresh-runner samples.
func (r *results) hasFresh() bool {
	for _, w := range r.Workloads {
		for _, sc := range freshScenarios {
			if len(w.Samples[sc]) > 0 {
				return true
			}
		}
	}
	return false
}

// missed lists the targets a full run missed.
func (r *results) missed() []string {
	var out []string
	for _, t := range r.Targets {
		if t.Status == "MISSED" {
			out = append(out, t.Target+": "+t.Got)
		}
	}
	return out
}

func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// fmtDelta is a signed fmtMS.
func fmtDelta(v float64) string {
	if v < 0 {
		return "-" + fmtMS(-v)
	}
	return "+" + fmtMS(v)
}

func fmtRSS(kb float64) string { return fmt.Sprintf("%.0f MB", kb/1024) }

// markdown renders r: the machine, the table of workload x scenario, the
// floor and the targets.
func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# builder benchmarks (%s run, %s)\n\n", r.Mode, r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s RAM; %s; %s; stores on %s; %s.\n\n", m.CPU, m.Cores, m.Memory, m.OS, m.Kernel, m.FS, m.Go)
	b.WriteString("Tools:\n")
	for _, t := range r.Tools {
		fmt.Fprintf(&b, "- %s\n", t.Version)
	}
	fmt.Fprintf(&b, "\nEach cell is the median of %d runs (wall time of the whole command; peak RSS from GNU time). "+
		"A ratio is the peer's figure over builder's: above 1, builder is faster (or smaller). "+
		"pull: the base image from a local registry into an empty store (builder keeps it as a blob and unpacks it when a RUN "+
		"first needs it, inside cold; buildah unpacks it here); "+
		"cold: empty store and cache, base image present; warm: fully cached rebuild; "+
		"one-change: one context file, or the last RUN line, changed; export: the image to an OCI tar.", r.Runs)
	if r.hasFresh() {
		b.WriteString(" Fresh runner (a CI runner: an empty store with the base image pulled, the build cache in the local registry): " +
			"cache-to-min, cache-to-max: cold with `--cache-to type=registry,ref=...,mode=min|max`, each run to a new repository " +
			"(buildah: `bud --cache-to REPO`, which has no mode and pushes every step, as max does); " +
			"fresh-pushed: fully cached from the last cache-to-max export and pushed to the same registry " +
			"(builder mounts the layers and downloads none; buildah: `bud --cache-from REPO`, then `buildah push`); " +
			"fresh-kept: the same without a push, the image kept in the store (its layers downloaded); " +
			"fresh-change: one-change's edit, built with the cache.")
	}
	b.WriteString("\n\n")
	var peers []string
	daemon := map[string]bool{}
	na := map[string][]string{}
	for _, t := range r.Tools {
		if t.Name != baseline {
			peers = append(peers, t.Name)
		}
		daemon[t.Name] = t.DaemonRSS
		na[t.Name] = t.NotApplicable
	}
	b.WriteString("| workload | scenario | builder |")
	for _, p := range peers {
		fmt.Fprintf(&b, " %s | %s / builder |", p, p)
	}
	b.WriteString("\n|---|---|---:|")
	b.WriteString(strings.Repeat("---:|---:|", len(peers)))
	b.WriteString("\n")
	for _, w := range r.Workloads {
		rows := append(append([]string{}, scenarios...), "peak RSS (cold)")
		for _, sc := range rows {
			f, key, format := wallOf, sc, fmtMS
			if sc == "peak RSS (cold)" {
				f, key, format = rssOf, "cold", fmtRSS
			}
			ours := w.Samples[key][baseline]
			if len(ours) == 0 {
				continue
			}
			o := medianOf(ours, f)
			fmt.Fprintf(&b, "| %s | %s | %s |", w.Name, sc, format(o))
			for _, p := range peers {
				s := w.Samples[key][p]
				if sc == "peak RSS (cold)" && daemon[p] {
					b.WriteString(" in the daemon | — |")
					continue
				}
				if len(s) == 0 {
					miss := "—" // not measured
					if slices.Contains(na[p], key) {
						miss = "n/a"
					} else if w.Errors[failKey(p, key)] != "" {
						miss = "failed"
					}
					fmt.Fprintf(&b, " %s | — |", miss)
					continue
				}
				v := medianOf(s, f)
				fmt.Fprintf(&b, " %s | %s |", format(v), fmtRatio(v, o))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nWorkloads:\n")
	for _, w := range r.Workloads {
		fmt.Fprintf(&b, "- %s: %s (%d files, %.1f MB in the context).", w.Name, w.Desc, w.Files, float64(w.Bytes)/(1<<20))
		for _, p := range peers {
			if e := w.Errors[p]; e != "" {
				fmt.Fprintf(&b, " %s failed: %s.", p, firstLine(e))
			}
			if e := w.Errors[failKey(p, freshScenarios[0])]; e != "" {
				fmt.Fprintf(&b, " %s failed (fresh runner): %s.", p, firstLine(e))
			}
		}
		b.WriteString("\n")
	}
	r.freshTable(&b)
	if f := r.Floor; f != nil {
		b.WriteString("\nThe floor on this machine, for the copy-big context (page cache warm, as for the builds):\n\n")
		b.WriteString("| work | time |\n|---|---:|\n")
		fmt.Fprintf(&b, "| cat of every file | %s |\n| cat \\| sha256sum | %s |\n| tar + gzip (builder's compressor and level), one core | %s |\n"+
			"| floor: read + tar + sha256 + gzip in one pass, one core | %s |\n", fmtMS(f.CatMS), fmtMS(f.SHA256MS), fmtMS(f.TarGzipMS), fmtMS(f.FloorMS))
		if ours, ok := r.median("copy-big", "cold", baseline, wallOf); ok && f.FloorMS > 0 {
			fmt.Fprintf(&b, "| builder, copy-big cold (whole build: also writes and fsyncs the blob) | %s (%.2fx the floor) |\n", fmtMS(ours), ours/f.FloorMS)
		}
	}
	r.progressTable(&b)
	r.floorsTable(&b)
	b.WriteString("\nTargets:\n\n| target | measured | status |\n|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Target, t.Got, t.Status)
	}
	fmt.Fprintf(&b, "\nThe whole run took %.0f s.\n", r.Seconds)
	return b.String()
}

func fmtRatio(peer, ours float64) string {
	if ours == 0 || math.IsNaN(peer/ours) {
		return "—"
	}
	x := peer / ours
	if x >= 10 {
		return fmt.Sprintf("%.0fx", x)
	}
	return fmt.Sprintf("%.2fx", x)
}

// firstLine is the first line of s, without the colon that introduces
// the output quoted below it.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSuffix(line, ":")
}

// freshTable renders what exporting the cache adds to a cold build and
// fresh-kept against its floor, skopeo copy of the same image from the
// same registry, for every tool with fresh-runner samples.
func (r *results) freshTable(b *strings.Builder) {
	if !r.hasFresh() {
		return
	}
	b.WriteString("\nFresh runner: the cold build with the cache exported, over the cold build without (same run), " +
		"and the kept build over its floor, `skopeo copy --src-tls-verify=false docker://REG/IMG oci:DIR:IMG` of the image fresh-pushed pushed:\n\n")
	b.WriteString("| workload | tool | cold | cache-to-min | cache-to-max | fresh-kept | skopeo copy | fresh-kept / skopeo copy |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range r.Workloads {
		floor := medianOf(w.SkopeoCopy, wallOf)
		for _, t := range r.Tools {
			has := false
			for _, sc := range freshScenarios {
				has = has || len(w.Samples[sc][t.Name]) > 0
			}
			if !has {
				continue
			}
			cell := func(sc string) (float64, string) {
				s := w.Samples[sc][t.Name]
				if len(s) == 0 && slices.Contains(t.NotApplicable, sc) {
					return 0, "n/a"
				}
				if len(s) == 0 {
					return 0, "—"
				}
				v := medianOf(s, wallOf)
				return v, fmtMS(v)
			}
			cold, coldCell := cell("cold")
			fmt.Fprintf(b, "| %s | %s | %s |", w.Name, t.Name, coldCell)
			for _, sc := range []string{"cache-to-min", "cache-to-max"} {
				v, c := cell(sc)
				if v > 0 && cold > 0 {
					c += fmt.Sprintf(" (%s, %s)", fmtRatio(v, cold), fmtDelta(v-cold))
				}
				fmt.Fprintf(b, " %s |", c)
			}
			kept, keptCell := cell("fresh-kept")
			floorCell, x := "—", "—"
			if floor > 0 {
				floorCell = fmtMS(floor)
				if kept > 0 {
					x = fmtRatio(kept, floor)
				}
			}
			fmt.Fprintf(b, " %s | %s | %s |\n", keptCell, floorCell, x)
		}
	}
}
