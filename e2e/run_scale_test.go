//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// runStackDockerfile is FROM busybox and n RUNs that each add /<dir>/<i>; the
// last step prints how many files it sees.
func runStackDockerfile(dir string, n int) string {
	var b strings.Builder
	b.WriteString("FROM busybox\n")
	for i := 1; i <= n; i++ {
		if i == 1 {
			fmt.Fprintf(&b, "RUN mkdir /%s && echo %d >/%s/%03d\n", dir, i, dir, i)
			continue
		}
		fmt.Fprintf(&b, "RUN echo %d >/%s/%03d\n", i, dir, i)
	}
	fmt.Fprintf(&b, "RUN echo \"count=$(ls /%s | wc -l)\" && echo \"sum=$(cat /%s/* | awk '{s+=$1} END {print s}')\"\n", dir, dir)
	return b.String()
}

func TestRunManySteps(t *testing.T) {
	e := newEnv(t)
	const n = 40
	dir := writeContext(t, map[string]string{"Dockerfile": runStackDockerfile("steps", n)})
	r := e.mustRun("build", dir, "-t", "many:v1")
	wantOutputs(t, r.stderr, map[string]string{"count": fmt.Sprint(n), "sum": fmt.Sprint(n * (n + 1) / 2)})
	if got := countLines(r.stderr, "] RUN ") - countLines(r.stderr, "] RUN echo \"count"); got < n {
		t.Errorf("%d RUN progress lines, want at least %d", got, n)
	}
	// Every RUN is a layer (the last one, which only prints, an empty one).
	if l := len(e.runInspect("many:v1").Manifest.Layers); l != n+2 {
		t.Errorf("%d layers, want %d", l, n+2)
	}
	// All cached the second time.
	r = e.mustRun("build", dir, "-t", "many:v1")
	if c := countLines(r.stderr, " CACHED "); c != n+1 {
		t.Errorf("rebuild: %d CACHED steps, want %d:\n%s", c, n+1, r.stderr)
	}
	// Every mount lived in a sandbox's own namespace: none is on the host.
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), e.root) {
		t.Errorf("mounts under %s left on the host:\n%s", e.root, mi)
	}
}

// TestRunDeepStack mounts a rootfs of more than 128 layers: the lowerdir=
// option no longer fits in one page and the sandbox must use lowerdir+.
func TestRunDeepStack(t *testing.T) {
	e := newEnv(t)
	const n = 130
	// Each lower costs len(<root>/snapshots/<6 chars>/fs:) bytes of options.
	if opt := (n + 1) * len(filepath.Join(e.root, "snapshots", "abcdef", "fs:")); opt <= 4096 {
		t.Fatalf("lowerdir= of %d layers is only %d bytes: the test would not exercise lowerdir+", n+1, opt)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": runStackDockerfile("layers", n)})
	r := e.mustRun("build", dir, "-t", "deep:v1")
	wantOutputs(t, r.stderr, map[string]string{"count": fmt.Sprint(n), "sum": fmt.Sprint(n * (n + 1) / 2)})
	if l := len(e.runInspect("deep:v1").Manifest.Layers); l != n+2 {
		t.Errorf("%d layers, want %d", l, n+2)
	}
}

func TestRunConcurrentBuilds(t *testing.T) {
	e := newEnv(t)
	build := func(dir string, extraEnv []string, args ...string) result {
		return e.runEnv(extraEnv, "", append([]string{"build", dir}, args...)...)
	}
	t.Run("distinct", func(t *testing.T) {
		var wg sync.WaitGroup
		res := make([]result, 4)
		for i := range res {
			df := fmt.Sprintf("FROM busybox\nRUN echo %d >/id && mkdir /work%d\nRUN touch /work%d/a /work%d/b\nRUN echo \"seen=$(cat /id):$(ls /work%d | tr -d '\\n')\"\n", i, i, i, i, i)
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			wg.Go(func() { res[i] = build(dir, nil, "-t", fmt.Sprintf("conc%d:v1", i)) })
		}
		wg.Wait()
		for i, r := range res {
			if r.code != 0 {
				t.Errorf("build %d: exit %d\n%s", i, r.code, r.stderr)
				continue
			}
			wantOutputs(t, r.stderr, map[string]string{"seen": fmt.Sprintf("%d:ab", i)})
		}
	})
	t.Run("identical", func(t *testing.T) {
		df := "FROM busybox\nRUN echo same >/same && mkdir -p /x/y && touch /x/y/z\nRUN ln /same /same2 && chmod 700 /x\n"
		dir := writeContext(t, map[string]string{"Dockerfile": df})
		var wg sync.WaitGroup
		res := make([]result, 2)
		for i := range res {
			wg.Go(func() {
				res[i] = build(dir, []string{"SOURCE_DATE_EPOCH=1700000000"}, "-q", "-t", fmt.Sprintf("same%d:v1", i))
			})
		}
		wg.Wait()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("build %d: exit %d\n%s", i, r.code, r.stderr)
			}
		}
		if a, b := strings.TrimSpace(res[0].stdout), strings.TrimSpace(res[1].stdout); a != b || a == "" {
			t.Errorf("identical builds at once gave %q and %q", a, b)
		}
		if a, b := e.runInspect("same0:v1").Digest, e.runInspect("same1:v1").Digest; a != b || a == "" {
			t.Errorf("identical builds at once gave manifests %q and %q", a, b)
		}
	})
	if r := e.run("check"); r.code != 0 {
		t.Errorf("builder check after concurrent builds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestRunBigFile layers a 1 GiB file written by RUN in constant memory.
func TestRunBigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 1073741824 /dev/zero >/big\n"})
	cmd := exec.Command(e.bin, "--root", e.root, "build", dir, "-t", "big:v1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	// The peak RSS of builder and of the descendants it waited for (the
	// sandbox and head): wait4 reports the largest.
	peakKB := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	t.Logf("peak RSS while layering 1 GiB: %d MB", peakKB/1024)
	if peakKB > 200*1024 {
		t.Errorf("peak RSS %d MB, want under 200 MB: the layer is not streamed", peakKB/1024)
	}
	img := e.runInspect("big:v1")
	ents := e.runLayerEntries(img, -1)
	if b := findRunEntry(ents, "big"); b == nil || b.size != 1<<30 || len(ents) != 1 {
		t.Errorf("layer entries %+v, want only big with 1 GiB", ents)
	}
	// The active snapshot became the committed one: nothing is left in
	// tmp/ or active/.
	for _, d := range []string{"tmp", "snapshots/active", "snapshots/tmp"} {
		if ents, err := os.ReadDir(filepath.Join(e.root, d)); err == nil && len(ents) > 0 {
			t.Errorf("%s holds %d leftovers after the build", d, len(ents))
		}
	}
}
