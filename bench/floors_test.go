package bench

import (
	"fmt"
	"io"
	"io/fs"
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
//
// A millisecond figure and its floor are measured in alternation, as
// pairs, and the ratio judged is the median of the pairs' ratios: medians
// measured minutes apart moved by 10-20% between two runs of the same
// binary, more than the margins the targets judge.
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

// measureWarmPairs measures, for a workload with a generated context,
// find in alternation with b's fully cached build of it (tag), and for
// meta `builder --help` in alternation with its fully cached build; run
// right after the warm scenario, from the state it leaves.
func measureWarmPairs(wr *workloadResult, w workload, b *builderTool, ctx, tag string, runs int) error {
	var floor func() (sample, error)
	switch {
	case w.generate != nil:
		logf("floor: find -printf of the %s context, alternating with the warm build", w.name)
		floor = func() (sample, error) {
			s, _, err := measure(ctx, "sh", "-c", `find . -printf '%s %T@\n' > /dev/null`)
			return s, err
		}
	case w.name == "meta":
		logf("floor: builder --help, alternating with the meta warm build")
		floor = func() (sample, error) {
			s, _, err := measure("", b.bin, "--help")
			return s, err
		}
	default:
		return nil
	}
	for range startupRuns(runs) {
		warm, err := b.build(ctx, tag, "hit")
		if err != nil {
			return err
		}
		f, err := floor()
		if err != nil {
			return err
		}
		wr.WarmPairs = append(wr.WarmPairs, [2]float64{warm.WallMS, f.WallMS})
		if w.generate != nil {
			wr.Find = append(wr.Find, f)
		}
	}
	return nil
}

// measureContextFloors measures the one-pass floor of huge's context
// (once: it reads 10 GB).
func measureContextFloors(wr *workloadResult, w workload, ctx string) error {
	if !w.huge {
		return nil
	}
	logf("floor: read + tar + sha256 + gzip of the %s context, one core", w.name)
	if err := readAll(ctx); err != nil {
		return err
	}
	d, err := timeIt(func() error { return tarGzip(ctx, io.Discard, true) })
	if err != nil {
		return err
	}
	wr.OnePass = append(wr.OnePass, sample{WallMS: ms(d)})
	return nil
}

// readAll reads every regular file under dir, untimed, so that a
// measurement after it finds them in the page cache whatever ran before.
func readAll(dir string) error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		for { // not io.Copy to io.Discard: its ReadFrom reads 8 KB at a time
			if _, err := f.Read(buf); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
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
		help, triv, x := s.ratio()
		add(fmt.Sprintf("`builder --help`: within %.1fx the exec of a trivial static Go binary", helpMaxX),
			fmtPair(help, triv, x, len(s.Samples)), x <= helpMaxX, true, "")
		if warm, help, x, n, ok := r.warmRatio("meta", s.HelpMS); ok {
			add(fmt.Sprintf("meta warm (fully cached): within %.1fx `builder --help`", cachedMaxX),
				fmtPair(warm, help, x, n), x <= cachedMaxX, true, "")
		}
	}
	for _, name := range []string{"copy-big", "small-files"} {
		w := r.workload(name)
		if w == nil || len(w.Find) == 0 {
			continue
		}
		if warm, find, x, n, ok := r.warmRatio(name, medianOf(w.Find, wallOf)); ok {
			add(fmt.Sprintf("%s warm: within %.1fx a one-thread `find -printf '%%s %%T@'` of the context", name, warmMaxFindX),
				fmtPair(warm, find, x, n), x <= warmMaxFindX, true, "")
		}
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

// pairRatio is the medians of a pair's two figures and the median of their
// ratios (first over second).
func pairRatio(pairs [][2]float64) (a, b, x float64) {
	var as, bs, xs []sample
	for _, p := range pairs {
		as, bs = append(as, sample{WallMS: p[0]}), append(bs, sample{WallMS: p[1]})
		if p[1] > 0 {
			xs = append(xs, sample{WallMS: p[0] / p[1]})
		}
	}
	return medianOf(as, wallOf), medianOf(bs, wallOf), medianOf(xs, wallOf)
}

// ratio is --help over the trivial binary, from the alternated pairs (the
// medians' ratio for results from before the pairs were kept).
func (s *startupResult) ratio() (help, trivial, x float64) {
	if len(s.Samples) == 0 {
		return s.HelpMS, s.TrivialMS, s.HelpMS / s.TrivialMS
	}
	flipped := make([][2]float64, len(s.Samples))
	for i, p := range s.Samples {
		flipped[i] = [2]float64{p[1], p[0]}
	}
	return pairRatio(flipped)
}

// warmRatio is workload name's warm build over its floor: from the pairs
// measured in alternation when the run has them (n of them), else the warm
// scenario's median over floorMS (n 0).
func (r *results) warmRatio(name string, floorMS float64) (warm, floor, x float64, n int, ok bool) {
	if w := r.workload(name); w != nil && len(w.WarmPairs) > 0 {
		warm, floor, x = pairRatio(w.WarmPairs)
		return warm, floor, x, len(w.WarmPairs), true
	}
	warm, ok = r.median(name, "warm", baseline, wallOf)
	if !ok || floorMS <= 0 {
		return 0, 0, 0, 0, false
	}
	return warm, floorMS, warm / floorMS, 0, true
}

// fmtPair renders a judged ratio: "5.1 ms = 1.31x 3.9 ms", saying how
// many alternated pairs it is the median of.
func fmtPair(a, b, x float64, n int) string {
	s := fmt.Sprintf("%s = %.2fx %s", fmtMS(a), x, fmtMS(b))
	if n > 0 {
		s += fmt.Sprintf(" (median of %d alternated pairs)", n)
	}
	return s
}

// floorsTable renders each builder figure that has a floor in this run as
// a ratio to it.
func (r *results) floorsTable(b *strings.Builder) {
	type row struct {
		figure string
		ours   float64
		floor  string
		ms, x  float64
		pairs  int // alternated pairs the figures are medians of (0: medians of separate runs)
	}
	var rows []row
	if s := r.Startup; s != nil && s.TrivialMS > 0 {
		help, triv, x := s.ratio()
		rows = append(rows, row{"`builder --help`", help, "exec of a trivial static Go binary", triv, x, len(s.Samples)})
		if warm, help, x, n, ok := r.warmRatio("meta", s.HelpMS); ok {
			rows = append(rows, row{"meta warm (fully cached)", warm, "`builder --help`", help, x, n})
		}
	}
	for _, w := range r.Workloads {
		if len(w.Find) > 0 {
			if warm, find, x, n, ok := r.warmRatio(w.Name, medianOf(w.Find, wallOf)); ok {
				rows = append(rows, row{w.Name + " warm", warm, "`find -printf '%s %T@'` of the context, one thread", find, x, n})
			}
		}
		if cold, ok := r.median(w.Name, "cold", baseline, wallOf); ok && len(w.OnePass) > 0 {
			floor := medianOf(w.OnePass, wallOf)
			rows = append(rows, row{w.Name + " cold", cold, "read + tar + sha256 + gzip in one pass, one core", floor, cold / floor, 0})
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\nbuilder over the floors measured in this run (medians; where the two were measured in alternation, " +
		"the ratio is the median of the pairs' ratios")
	if r.Floor != nil {
		b.WriteString("; the copy-big floor table above has its cold floor")
	}
	b.WriteString("):\n\n")
	b.WriteString("| builder | time | floor | time | ratio | measured |\n|---|---:|---|---:|---:|---|\n")
	for _, rw := range rows {
		how := "medians of separate runs"
		if rw.pairs > 0 {
			how = fmt.Sprintf("%d alternated pairs", rw.pairs)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %.2fx | %s |\n", rw.figure, fmtMS(rw.ours), rw.floor, fmtMS(rw.ms), rw.x, how)
	}
}
