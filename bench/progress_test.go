package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// The progress scenarios show what watching a build costs: a RUN that
// prints many lines and a COPY of many files, built with --no-cache under
// --progress quiet, plain (to a pipe, as in CI) and tty (on a
// pseudo-terminal, as a user sees it), the modes alternating in each run.

var (
	progressModes     = []string{"quiet", "plain", "tty"}
	progressScenarios = []string{"run-lines", "copy-files"}
)

// progressMaxX is the target: plain or tty over quiet, CPU time (user +
// system: wall times on a shared machine vary more than this between two
// runs of the same mode).
const progressMaxX = 1.10

type progressResult struct {
	Lines int `json:"lines"` // printed by the run-lines RUN
	Files int `json:"files"` // copied by copy-files
	// Samples by scenario, then mode.
	Samples map[string]map[string][]sample `json:"samples"`
	// Bytes is what each mode wrote on stderr in one run-lines build.
	Bytes map[string]int64 `json:"bytes"`
}

// progressSizes: 100,000 lines and 20,000 files on a full run.
func progressSizes(full bool) (lines, files int) {
	if full {
		return 100000, 20000
	}
	return 10000, 1000
}

// measureProgress builds both scenarios runs times in each mode, in a
// store of its own with base pulled.
func measureProgress(bin, base, tmp string, full bool, runs int) (*progressResult, error) {
	lines, files := progressSizes(full)
	root := filepath.Join(tmp, "progress-root")
	defer os.RemoveAll(root)
	if _, _, err := measure("", bin, "--root", root, "pull", base); err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, sc := range progressScenarios {
		dir := filepath.Join(tmp, "progress-"+sc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		dirs[sc] = dir
	}
	df := fmt.Sprintf("FROM %s\nRUN seq 1 %d\n", base, lines)
	if err := os.WriteFile(filepath.Join(dirs["run-lines"], "Dockerfile"), []byte(df), 0o644); err != nil {
		return nil, err
	}
	if err := writeFiles(dirs["copy-files"], files); err != nil {
		return nil, err
	}
	df = fmt.Sprintf("FROM %s\nCOPY . /data/\n", base)
	if err := os.WriteFile(filepath.Join(dirs["copy-files"], "Dockerfile"), []byte(df), 0o644); err != nil {
		return nil, err
	}
	// A first build of each unpacks the base and fills the page cache.
	for _, sc := range progressScenarios {
		if _, _, _, err := buildProgress(bin, root, dirs[sc], "quiet"); err != nil {
			return nil, fmt.Errorf("progress %s: %w", sc, err)
		}
	}
	runs = max(runs, 3) // cheap: three even on a quick run
	pr := &progressResult{Lines: lines, Files: files, Samples: map[string]map[string][]sample{}, Bytes: map[string]int64{}}
	for i := range runs {
		for _, sc := range progressScenarios {
			for _, mode := range progressModes {
				s, out, n, err := buildProgress(bin, root, dirs[sc], mode)
				if err != nil {
					return nil, fmt.Errorf("progress %s %s: %w", sc, mode, err)
				}
				if err := checkProgressOutput(mode, sc, out, lines); err != nil {
					return nil, err
				}
				if sc == "run-lines" {
					pr.Bytes[mode] = n
				}
				if pr.Samples[sc] == nil {
					pr.Samples[sc] = map[string][]sample{}
				}
				pr.Samples[sc][mode] = append(pr.Samples[sc][mode], s)
				logf("%-11s %-12s run %d/%d %-8s %9s  %s", "progress", sc, i+1, runs, mode, fmtMS(s.WallMS), fmtRSS(float64(s.MaxRSSKB)))
			}
		}
	}
	return pr, nil
}

// writeFiles makes n files of 100 bytes in dirs of 100.
func writeFiles(dir string, n int) error {
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), bytes.Repeat([]byte{'a' + byte(i%26)}, 100), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// countWriter counts what it is given and keeps its end.
type countWriter struct {
	n    atomic.Int64
	tail []byte // the last 256 KiB at least, for the checks
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	w.tail = append(w.tail, p...)
	if len(w.tail) > 512<<10 {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-256<<10:]...)
	}
	return len(p), nil
}

// buildProgress runs one --no-cache build in mode: stderr to a pipe, or
// for tty to a 120x40 pseudo-terminal that a goroutine drains. The sample
// is the wall time and the builder's rusage (its sandboxes included).
func buildProgress(bin, root, dir, mode string) (sample, string, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := command(ctx, "", bin, "--root", root, "build", "--no-cache", "--progress", mode, dir)
	out := &countWriter{}
	cmd.Stdout = io.Discard
	var drained chan struct{}
	if mode == "tty" {
		master, term, err := openPTY(120, 40)
		if err != nil {
			return sample{}, "", 0, err
		}
		defer master.Close()
		cmd.Stderr = term
		drained = make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(out, master) // ends with EIO once the terminal is closed
		}()
		start := time.Now()
		err = cmd.Start()
		term.Close() // the child has its own copy
		if err == nil {
			groups.Store(cmd.Process.Pid, true)
			err = cmd.Wait()
			groups.Delete(cmd.Process.Pid)
		}
		wall := time.Since(start)
		<-drained // the rest of what it drew, before the checks read it
		return progressSample(cmd, wall, err, out)
	}
	cmd.Stderr = out
	start := time.Now()
	err := runCmd(cmd)
	return progressSample(cmd, time.Since(start), err, out)
}

// progressSample is the wall time and the rusage of cmd, which has
// ended with err; and the end of what it printed.
func progressSample(cmd *exec.Cmd, wall time.Duration, err error, out *countWriter) (sample, string, int64, error) {
	if err != nil {
		return sample{}, "", 0, fmt.Errorf("%s: %w\n%s", cmd, err, tail(string(out.tail), 20))
	}
	ps := cmd.ProcessState
	s := sample{WallMS: ms(wall), UserMS: ms(ps.UserTime()), SysMS: ms(ps.SystemTime()), MaxRSSKB: maxRSSKB(ps)}
	return s, string(out.tail), out.n.Load(), nil
}

// checkProgressOutput makes sure each mode did its job: quiet printed
// nothing, plain every line, tty drew frames and its summary.
func checkProgressOutput(mode, sc, out string, lines int) error {
	switch mode {
	case "quiet":
		if out != "" {
			return fmt.Errorf("progress %s quiet printed %q", sc, tail(out, 5))
		}
	case "plain":
		if sc == "run-lines" && !strings.Contains(out, fmt.Sprintf(" %d\n", lines)) {
			return fmt.Errorf("progress %s plain: the last line %d is missing:\n%s", sc, lines, tail(out, 5))
		}
	case "tty":
		if !strings.Contains(out, "\x1b[") || !strings.Contains(out, "built in ") {
			return fmt.Errorf("progress %s tty: no live view or no summary:\n%q", sc, tail(out, 5))
		}
	}
	return nil
}

// progressX is mode's median wall time in scenario over quiet's.
func (p *progressResult) x(scenario, mode string, f func(sample) float64) (float64, bool) {
	q, s := p.Samples[scenario]["quiet"], p.Samples[scenario][mode]
	if len(q) == 0 || len(s) == 0 || medianOf(q, f) == 0 {
		return 0, false
	}
	return medianOf(s, f) / medianOf(q, f), true
}

func cpuOf(s sample) float64 { return s.UserMS + s.SysMS }

// judgeProgress adds the target: watching costs nothing measurable.
func (r *results) judgeProgress(add func(target, got string, ok, judged bool, why string)) {
	p := r.Progress
	if p == nil {
		return
	}
	for _, sc := range progressScenarios {
		var got []string
		ok := true
		for _, mode := range progressModes[1:] {
			x, has := p.x(sc, mode, cpuOf)
			if !has {
				continue
			}
			got = append(got, fmt.Sprintf("%s %.2fx", mode, x))
			ok = ok && x <= progressMaxX
		}
		if len(got) > 0 {
			add(fmt.Sprintf("progress %s: plain and tty within %.2fx of quiet (CPU)", sc, progressMaxX), strings.Join(got, ", "), ok, true, "")
		}
	}
}

// progressTable writes the progress section of the markdown.
func (r *results) progressTable(b *strings.Builder) {
	p := r.Progress
	if p == nil {
		return
	}
	fmt.Fprintf(b, "\nWhat watching costs: run-lines is `RUN seq 1 %d` (%d lines of output), copy-files a `COPY . /data/` of %d files, "+
		"each built with `--no-cache` under every `--progress` mode, the modes alternating (plain to a pipe, as in CI; tty on a "+
		"120x40 pseudo-terminal that is drained). CPU is user + system of builder and its sandboxes; x: over quiet.\n\n", p.Lines, p.Lines, p.Files)
	b.WriteString("| scenario | mode | wall | x | CPU | x | peak RSS | stderr |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range progressScenarios {
		for _, mode := range progressModes {
			s := p.Samples[sc][mode]
			if len(s) == 0 {
				continue
			}
			xw, _ := p.x(sc, mode, wallOf)
			xc, _ := p.x(sc, mode, cpuOf)
			out := "—"
			if sc == "run-lines" {
				out = fmt.Sprintf("%.1f MB", float64(p.Bytes[mode])/1e6)
			}
			fmt.Fprintf(b, "| %s | %s | %s | %.2fx | %s | %.2fx | %s | %s |\n", sc, mode, fmtMS(medianOf(s, wallOf)), xw,
				fmtMS(medianOf(s, cpuOf)), xc, fmtRSS(medianOf(s, rssOf)), out)
		}
	}
}
