package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The floors a run measures next to the builds, on the same machine in the
// same minutes, so that a figure reads as a ratio to what the machine
// itself needs:
//
//   - start-up: the exec of a trivial static Go binary (`builder --help`'s
//     floor), and `builder --help` (a fully cached build's floor);
//   - warm: `find CTX -printf '%s %T@\n'` of the context, one thread: one
//     stat per file, what a fully cached COPY must at least do;
//   - huge cold: read + tar + sha256 + gzip of the context in one pass on
//     one core (tarGzip; the copy-big floor table has the same for
//     copy-big).

// startupResult is the exec floor and builder's start-up, medians in ms,
// all measured as the builds are (under GNU time, from this process).
type startupResult struct {
	TrivialMS float64      `json:"trivial_ms"` // a static Go binary whose main returns
	HelpMS    float64      `json:"help_ms"`    // builder --help
	Samples   [][2]float64 `json:"samples"`    // (trivial, help) per run
}

// Targets of the floors (issue: "at the machine's floor").
const (
	helpMaxX     = 2.0  // builder --help over the trivial binary
	cachedMaxX   = 1.5  // meta warm over builder --help
	warmMaxFindX = 1.2  // copy-big and small-files warm over find
	smallMaxRSS  = 48.0 // MB, small-files cold
	hugeMaxRSS   = 64.0 // MB, huge cold
	hugeMaxFloor = 1.3  // huge cold over its one-pass floor
)

// startupRuns is how many execs each start-up figure takes the median of.
func startupRuns(runs int) int { return 10*runs + 1 }

// measureStartup builds the trivial binary under tmp and measures it and
// `bin --help`, n times each, alternating.
func measureStartup(bin, tmp string, n int) (*startupResult, error) {
	dir := filepath.Join(tmp, "trivial")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module trivial\n\ngo 1.22\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return nil, err
	}
	trivial := filepath.Join(dir, "trivial")
	cmd := exec.Command("go", "build", "-trimpath", "-o", trivial, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the trivial binary: %w\n%s", err, out)
	}
	var triv, help []sample
	r := &startupResult{}
	for range n {
		t, _, err := measure("", trivial)
		if err != nil {
			return nil, err
		}
		h, _, err := measure("", bin, "--help")
		if err != nil {
			return nil, err
		}
		triv, help = append(triv, t), append(help, h)
		r.Samples = append(r.Samples, [2]float64{t.WallMS, h.WallMS})
	}
	r.TrivialMS, r.HelpMS = medianOf(triv, wallOf), medianOf(help, wallOf)
	return r, nil
}

// measureContextFloors measures the floors of w's context into wr: find
// for every workload with a generated context, the one-pass floor for
// huge (once: it reads 10 GB).
func measureContextFloors(wr *workloadResult, w workload, ctx string, runs int) error {
	if w.generate == nil {
		return nil
	}
	logf("floor: find -printf of the %s context", w.name)
	for range runs {
		s, _, err := measure(ctx, "sh", "-c", `find . -printf '%s %T@\n' > /dev/null`)
		if err != nil {
			return err
		}
		wr.Find = append(wr.Find, s)
	}
	if !w.huge {
		return nil
	}
	logf("floor: read + tar + sha256 + gzip of the %s context, one core", w.name)
	d, err := timeIt(func() error { return tarGzip(ctx, io.Discard, true) })
	if err != nil {
		return err
	}
	wr.OnePass = append(wr.OnePass, sample{WallMS: ms(d)})
	return nil
}

// workload returns the named workload's results.
func (r *results) workload(name string) *workloadResult {
	for i := range r.Workloads {
		if r.Workloads[i].Name == name {
			return &r.Workloads[i]
		}
	}
	return nil
}

// judgeFloors adds the targets stated as ratios to the floors.
func (r *results) judgeFloors(add func(target, got string, ok, judged bool, why string)) {
	if s := r.Startup; s != nil && s.TrivialMS > 0 {
		x := s.HelpMS / s.TrivialMS
		add(fmt.Sprintf("`builder --help`: within %.1fx the exec of a trivial static Go binary", helpMaxX),
			fmt.Sprintf("%s = %.2fx %s", fmtMS(s.HelpMS), x, fmtMS(s.TrivialMS)), x <= helpMaxX, true, "")
		if warm, ok := r.median("meta", "warm", baseline, wallOf); ok && s.HelpMS > 0 {
			x := warm / s.HelpMS
			add(fmt.Sprintf("meta warm (fully cached): within %.1fx `builder --help`", cachedMaxX),
				fmt.Sprintf("%s = %.2fx %s", fmtMS(warm), x, fmtMS(s.HelpMS)), x <= cachedMaxX, true, "")
		}
	}
	for _, name := range []string{"copy-big", "small-files"} {
		w := r.workload(name)
		warm, ok := r.median(name, "warm", baseline, wallOf)
		if w == nil || !ok || len(w.Find) == 0 {
			continue
		}
		find := medianOf(w.Find, wallOf)
		x := warm / find
		add(fmt.Sprintf("%s warm: within %.1fx a one-thread `find -printf '%%s %%T@'` of the context", name, warmMaxFindX),
			fmt.Sprintf("%s = %.2fx %s", fmtMS(warm), x, fmtMS(find)), x <= warmMaxFindX, true, "")
	}
	if rss, ok := r.median("small-files", "cold", baseline, rssOf); ok {
		add(fmt.Sprintf("small-files cold: peak RSS under %.0f MB", smallMaxRSS), fmtRSS(rss), rss/1024 < smallMaxRSS, true, "")
	}
	if rss, ok := r.median("huge", "cold", baseline, rssOf); ok {
		add(fmt.Sprintf("huge cold: peak RSS under %.0f MB", hugeMaxRSS), fmtRSS(rss), rss/1024 < hugeMaxRSS, true, "")
	}
	if w := r.workload("huge"); w != nil && len(w.OnePass) > 0 {
		if cold, ok := r.median("huge", "cold", baseline, wallOf); ok {
			floor := medianOf(w.OnePass, wallOf)
			x := cold / floor
			add(fmt.Sprintf("huge cold: within %.1fx read + sha256 + gzip of the same bytes on one core", hugeMaxFloor),
				fmt.Sprintf("%s = %.2fx %s", fmtMS(cold), x, fmtMS(floor)), x <= hugeMaxFloor, true, "")
		}
	}
}

// floorsTable renders each builder figure that has a floor in this run as
// a ratio to it.
func (r *results) floorsTable(b *strings.Builder) {
	type row struct {
		figure string
		ours   float64
		floor  string
		ms     float64
	}
	var rows []row
	if s := r.Startup; s != nil {
		rows = append(rows, row{"`builder --help`", s.HelpMS, "exec of a trivial static Go binary", s.TrivialMS})
		if warm, ok := r.median("meta", "warm", baseline, wallOf); ok {
			rows = append(rows, row{"meta warm (fully cached)", warm, "`builder --help`", s.HelpMS})
		}
	}
	for _, w := range r.Workloads {
		if warm, ok := r.median(w.Name, "warm", baseline, wallOf); ok && len(w.Find) > 0 {
			rows = append(rows, row{w.Name + " warm", warm, "`find -printf '%s %T@'` of the context, one thread", medianOf(w.Find, wallOf)})
		}
		if cold, ok := r.median(w.Name, "cold", baseline, wallOf); ok && len(w.OnePass) > 0 {
			rows = append(rows, row{w.Name + " cold", cold, "read + tar + sha256 + gzip in one pass, one core", medianOf(w.OnePass, wallOf)})
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\nbuilder over the floors measured in this run (medians")
	if r.Floor != nil {
		b.WriteString("; the copy-big floor table above has its cold floor")
	}
	b.WriteString("):\n\n")
	b.WriteString("| builder | time | floor | time | ratio |\n|---|---:|---|---:|---:|\n")
	for _, rw := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", rw.figure, fmtMS(rw.ours), rw.floor, fmtMS(rw.ms), fmtRatio(rw.ours, rw.ms))
	}
}
