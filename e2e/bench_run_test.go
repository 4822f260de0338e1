package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchRunSteps is the number of RUN steps of each benchmarked build.
const benchRunSteps = 20

// runStepDurations parses the "#N [...] RUN ... DONE 0.012s" lines of a
// plain progress output.
func runStepDurations(tb testing.TB, stderr string) []time.Duration {
	tb.Helper()
	re := regexp.MustCompile(`(?m)^#\d+ \[[^\]]+\] RUN .* DONE ([0-9.]+)s$`)
	var out []time.Duration
	for _, m := range re.FindAllStringSubmatch(stderr, -1) {
		s, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			tb.Fatalf("parse duration %q: %v", m[1], err)
		}
		out = append(out, time.Duration(s*float64(time.Second)))
	}
	return out
}

// benchRun builds a Dockerfile of benchRunSteps RUN steps (line(i) each)
// with --no-cache b.N times and reports the median and 90th percentile of
// the per-step durations the progress output prints: cache key, rootfs
// view, snapshot Prepare, sandbox start to exit, upper dir diff, layer
// write, snapshot Commit and cache record.
func benchRun(b *testing.B, line func(i int) string) {
	e := newEnv(b)
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := range benchRunSteps {
		df.WriteString(line(i) + "\n")
	}
	dir := writeContext(b, map[string]string{"Dockerfile": df.String()})
	e.mustRun("build", dir) // unpack the base snapshot once
	var steps []time.Duration
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(e.bin, "--root", e.root, "build", "--no-cache", dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("build: %v\n%s", err, stderr.String())
		}
		// CPU of builder, the sandboxes and the commands: unlike the step
		// durations, it hardly depends on what else the machine runs.
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		d := runStepDurations(b, stderr.String())
		if len(d) != benchRunSteps {
			b.Fatalf("parsed %d RUN durations, want %d:\n%s", len(d), benchRunSteps, stderr.String())
		}
		steps = append(steps, d...)
	}
	slices.Sort(steps)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(steps[len(steps)/2]), "ms/run")
	b.ReportMetric(ms(steps[len(steps)*9/10]), "p90-ms/run")
	b.ReportMetric(ms(cpu)/float64(len(steps)), "cpu-ms/run")
	b.ReportMetric(0, "ns/op") // a whole build per op says nothing
}

// BenchmarkRunTrue is the overhead of one `RUN true`: no layer.
func BenchmarkRunTrue(b *testing.B) {
	benchRun(b, func(int) string { return "RUN true" })
}

// BenchmarkRunTouch is one RUN that adds a file: a layer is packed and the
// snapshot committed.
func BenchmarkRunTouch(b *testing.B) {
	benchRun(b, func(i int) string { return fmt.Sprintf("RUN touch /f%d", i) })
}
