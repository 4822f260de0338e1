// Package bench measures the real builder binary (and buildah, when
// installed) on the workloads of the acceptance criteria. It holds only
// benchmarks: `make bench` runs them, `make test` does not. Every benchmark
// needs root and skips without it.
package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// fixtures are made once per test binary and removed by TestMain.
type fixtures struct {
	once sync.Once
	dir  string
	err  error
}

var shared fixtures

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuiltBinary()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// fixtureDir is a temp dir kept for the whole run (for the big context).
func fixtureDir(b *testing.B) string {
	b.Helper()
	shared.once.Do(func() { shared.dir, shared.err = os.MkdirTemp("", "builder-bench-") })
	if shared.err != nil {
		b.Fatal(shared.err)
	}
	return shared.dir
}

// store is one builder state dir with busybox:latest loaded.
type store struct {
	bin, root, base string
}

func newStore(b *testing.B) *store {
	b.Helper()
	testutil.RequiresRoot(b)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		b.Skip("skipping: /bin/busybox (Debian's busybox-static) is missing; make deps installs it")
	}
	dir := b.TempDir()
	s := &store{bin: testutil.BuildBinary(b), root: filepath.Join(dir, "root"), base: filepath.Join(dir, "busybox.tar")}
	if err := testutil.WriteBusyboxImage(s.base, testutil.BusyboxOptions{Name: "busybox:latest"}); err != nil {
		b.Fatal(err)
	}
	s.mustRun(b, "load", "-i", s.base)
	return s
}

// run runs builder and returns its combined output and wall time.
func (s *store) run(b *testing.B, args ...string) (string, time.Duration, error) {
	b.Helper()
	cmd := exec.Command(s.bin, append([]string{"--root", s.root}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return out.String(), time.Since(start), err
}

func (s *store) mustRun(b *testing.B, args ...string) (string, time.Duration) {
	b.Helper()
	out, d, err := s.run(b, args...)
	if err != nil {
		b.Fatalf("builder %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out, d
}

// build runs a plain-progress build of dir and checks that every step
// other than FROM ended in state ("CACHED" or "DONE").
func (s *store) build(b *testing.B, dir, state string, flags ...string) time.Duration {
	b.Helper()
	out, d := s.mustRun(b, append([]string{"build", "--progress", "plain", dir}, flags...)...)
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "#") || strings.Contains(l, "] FROM ") {
			continue
		}
		if f := strings.Fields(l); len(f) >= 2 && (f[len(f)-2] == "DONE" || f[len(f)-2] == "CACHED") && f[len(f)-2] != state {
			b.Fatalf("step not %s: %s\n%s", state, l, out)
		}
	}
	return d
}

func writeFiles(b *testing.B, dir string, files map[string]string) {
	b.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
