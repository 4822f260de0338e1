package bench

// Step cache acceptance: a fully cached 10-step rebuild (alone, and against
// `buildah bud --layers` in the same run), and warm rebuilds of a 500 MB /
// 20,000-file COPY context, unchanged and after a one-file change. Each
// reports its median in ms and fails when it misses its target.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tenSteps is a Dockerfile of ten instructions after FROM: RUN, COPY, ENV
// and WORKDIR.
const tenSteps = `FROM busybox:latest
ENV APP=/app
WORKDIR /app
COPY go.mod ./
RUN mkdir -p /app/cache && echo deps > /app/cache/deps
COPY src/ ./src/
RUN find src -type f | wc -l > count
ENV MODE=prod
WORKDIR /app/out
RUN cp /app/count /app/out/count
COPY README.md /app/
`

func tenStepContext(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "ctx")
	files := map[string]string{"Dockerfile": tenSteps, "go.mod": "module example.com/app\n", "README.md": "readme\n"}
	for i := range 50 {
		files[fmt.Sprintf("src/pkg%d/file%d.go", i%5, i)] = strings.Repeat(fmt.Sprintf("// line of file %d\n", i), 40)
	}
	writeFiles(b, dir, files)
	return dir
}

const (
	cachedTarget  = 50 * time.Millisecond
	buildahFactor = 20.0
	warmTarget    = 500 * time.Millisecond
	oneFileTarget = 2 * time.Second
)

// BenchmarkCachedRebuild10Steps: wall time of a whole `builder build`
// process whose ten steps all hit the cache.
func BenchmarkCachedRebuild10Steps(b *testing.B) {
	s := newStore(b)
	dir := tenStepContext(b)
	s.build(b, dir, "DONE", "-t", "ten:v1")
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, s.build(b, dir, "CACHED", "-t", "ten:v1"))
	}
	m := median(ds)
	b.ReportMetric(ms(m), "ms/build")
	if m > cachedTarget {
		b.Errorf("fully cached 10-step rebuild: median %v, target under %v", m, cachedTarget)
	}
}

// buildah is a buildah command line on a private storage dir.
type buildah struct {
	args []string
}

// newBuildah loads the base image into a private buildah store and makes
// the first (uncached) build of dir, with the overlay driver or else vfs.
func newBuildah(b *testing.B, base, dir string) *buildah {
	b.Helper()
	if _, err := exec.LookPath("buildah"); err != nil {
		b.Skip("skipping: buildah is not installed (make bench installs it)")
	}
	storage := b.TempDir()
	var lastErr error
	for _, driver := range []string{"overlay", "vfs"} {
		bh := &buildah{args: []string{"--root", filepath.Join(storage, driver, "root"), "--runroot", filepath.Join(storage, driver, "run"),
			"--storage-driver", driver}}
		b.Cleanup(func() { _, _ = bh.run("rmi", "--all", "--force") })
		if _, err := bh.run("pull", "--quiet", "oci-archive:"+base); err != nil {
			lastErr = err
			continue
		}
		if _, err := bh.bud(dir); err != nil {
			lastErr = err
			continue
		}
		return bh
	}
	b.Fatalf("buildah cannot load the base image with the overlay or vfs driver: %v", lastErr)
	return nil
}

func (bh *buildah) run(args ...string) (time.Duration, error) {
	cmd := exec.Command("buildah", append(append([]string{}, bh.args...), args...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("buildah %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return d, nil
}

func (bh *buildah) bud(dir string) (time.Duration, error) {
	return bh.run("bud", "--layers", "--pull=never", "--isolation", "chroot", "-t", "ten:v1", dir)
}

// BenchmarkCachedRebuildVsBuildah: the fully cached 10-step rebuild by
// builder and by `buildah bud --layers`, alternately, in the same run.
func BenchmarkCachedRebuildVsBuildah(b *testing.B) {
	s := newStore(b)
	dir := tenStepContext(b)
	bh := newBuildah(b, s.base, dir)
	s.build(b, dir, "DONE", "-t", "ten:v1")
	var ours, theirs []time.Duration
	for b.Loop() {
		ours = append(ours, s.build(b, dir, "CACHED", "-t", "ten:v1"))
		d, err := bh.bud(dir)
		if err != nil {
			b.Fatal(err)
		}
		theirs = append(theirs, d)
	}
	o, t := median(ours), median(theirs)
	ratio := float64(t) / float64(o)
	b.ReportMetric(ms(o), "builder-ms")
	b.ReportMetric(ms(t), "buildah-ms")
	b.ReportMetric(ratio, "x-faster")
	if ratio < buildahFactor {
		b.Errorf("fully cached rebuild: builder %v, buildah %v: %.1fx, target at least %.0fx", o, t, ratio, buildahFactor)
	}
}

// bigContext makes (once per run) a 500 MB context of 20,000 files whose
// content is half random bytes, half repeated text: gzip works for real.
func bigContext(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(fixtureDir(b), "big")
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err == nil {
		return dir
	}
	const files, total = 20000, 500 << 20
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'}))
	buf := make([]byte, 2*total/files)
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", len(buf)/50))
	for i := range files {
		size := total/files/2 + rng.IntN(total/files) // average total/files
		rnd := buf[:size/2]
		for j := 0; j+8 <= len(rnd); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				rnd[j+k] = byte(v >> (8 * k))
			}
		}
		data := append(rnd[:size/2:size/2], text[:size-size/2]...)
		p := filepath.Join(dir, fmt.Sprintf("d%02d/e%02d/f%05d.dat", i%20, i/20%10, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox:latest\nCOPY . /data/\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkWarmRebuildBigContext: rebuild of an unchanged 500 MB /
// 20,000-file COPY context (the stat cache and page cache warm).
func BenchmarkWarmRebuildBigContext(b *testing.B) {
	s := newStore(b)
	dir := bigContext(b)
	s.build(b, dir, "DONE", "-t", "big:v1")
	s.build(b, dir, "CACHED", "-t", "big:v1")
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, s.build(b, dir, "CACHED", "-t", "big:v1"))
	}
	m := median(ds)
	b.ReportMetric(ms(m), "ms/build")
	if m > warmTarget {
		b.Errorf("warm rebuild of the 500 MB context: median %v, target under %v", m, warmTarget)
	}
}

// BenchmarkOneFileChangeBigContext: rebuild of the 500 MB context after
// one of its files changed: the COPY is redone (a new 500 MB layer), and
// only that file is read again for the cache key. Between builds the old
// layer is pruned (untimed) so the disk does not fill up.
func BenchmarkOneFileChangeBigContext(b *testing.B) {
	s := newStore(b)
	dir := bigContext(b)
	s.build(b, dir, "DONE", "-t", "big:v1")
	victim := filepath.Join(dir, "d07/e03/f00067.dat")
	orig, err := os.ReadFile(victim)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.WriteFile(victim, orig, 0o644) })
	var ds []time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		if err := os.WriteFile(victim, fmt.Appendf(append([]byte(nil), orig...), "change %d\n", n), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ds = append(ds, s.build(b, dir, "DONE", "-t", "big:v1"))
		b.StopTimer()
		s.mustRun(b, "prune")
		b.StartTimer()
	}
	m := median(ds)
	b.ReportMetric(ms(m), "ms/build")
	if m > oneFileTarget {
		b.Errorf("rebuild of the 500 MB context after a one-file change: median %v, target under %v", m, oneFileTarget)
	}
}
