package e2e

// Crash safety: `builder build` killed with SIGKILL at 20 seeded random
// moments; after each kill the store must be consistent and the next build
// must make the very image an uninterrupted build makes.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCacheCrashSafety(t *testing.T) {
	files := map[string]string{
		"b.txt": "b\n",
		"Dockerfile": "FROM busybox:latest\nCOPY src/ /src/\nRUN cp -r /src /copy && sleep 0.1 && echo one > /one\n" +
			"COPY b.txt /b.txt\nRUN find /src -type f | sort | xargs cat > /all && sleep 0.1\n" +
			"WORKDIR /w\nRUN echo done > /w/done\n",
	}
	for i := range 300 {
		files[fmt.Sprintf("src/d%d/f%03d.txt", i%7, i)] = strings.Repeat(fmt.Sprintf("line %d\n", i), 1+i%50)
	}
	dir := writeContext(t, files)
	sde := []string{"SOURCE_DATE_EPOCH=0"}

	// The uninterrupted build, in a store of its own.
	ref := newEnv(t)
	begin := time.Now()
	r := ref.runEnv(sde, "", "build", "--progress", "plain", dir, "-t", "crash:v1")
	took := time.Since(begin)
	if r.code != 0 {
		t.Fatalf("uninterrupted build: %s", r.stderr)
	}
	want := manifestOf(t, r.stderr)

	e := newEnv(t)
	rng := rand.New(rand.NewPCG(20, 1))
	finished := 0
	for i := range 20 {
		// Half the killed builds start from a store without cache or
		// snapshots (but with the image's blobs once it exists), half
		// redo every step with --no-cache: both do real work when killed.
		args := []string{"build", "--progress", "plain", dir, "-t", "crash:v1"}
		if i%2 == 0 {
			e.prune(t, "--all")
		} else {
			args = append(args, "--no-cache")
		}
		// Kill within the first 60% of the reference build's time: the
		// reference may have run on a busier machine than the killed build.
		delay := time.Duration(rng.Int64N(int64(took) * 6 / 10))
		p := e.startBuilder(t, sde, args...)
		time.Sleep(delay)
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("kill %d: %v", i, err)
		}
		<-p.done
		what := fmt.Sprintf("kill %d after %v", i, delay.Round(time.Millisecond))
		if p.err == nil {
			finished++
			what += " (the build had finished)"
		}
		noOverlayMounts(t, what, e.root)

		r := e.runEnv(sde, "", "build", "--progress", "plain", dir, "-t", "crash:v1")
		if r.code != 0 {
			t.Fatalf("%s: the next build failed: exit %d\n%s", what, r.code, r.stderr)
		}
		if got := manifestOf(t, r.stderr); got != want {
			t.Fatalf("%s: the next build made manifest %s, the uninterrupted one %s\n%s", what, got, want, r.stderr)
		}
		if c := e.run("check"); c.code != 0 || strings.TrimSpace(c.stdout) != "store is consistent" {
			t.Fatalf("%s: check: exit %d\n%s%s", what, c.code, c.stdout, c.stderr)
		}
		e.verifyRecords(t, what)
		e.verifySnapshots(t, what)
		noOverlayMounts(t, what, e.root)
	}
	t.Logf("uninterrupted build: %v; %d of 20 builds killed before they finished", took.Round(time.Millisecond), 20-finished)
	if finished > 10 {
		t.Errorf("only %d of 20 builds were killed while running", 20-finished)
	}
	// Every process is gone: nothing of theirs may remain in work dirs.
	for _, d := range []string{"tmp", "snapshots/active", "snapshots/tmp"} {
		ents, _ := os.ReadDir(filepath.Join(e.root, d))
		for _, ent := range ents {
			t.Errorf("left behind after the last build: %s/%s", d, ent.Name())
		}
	}
}

// verifyRecords checks that every record's layer blob is present, of the
// recorded size, and hashes to its digest.
func (e *env) verifyRecords(t testing.TB, what string) {
	t.Helper()
	for _, r := range e.records(t) {
		if r.Layer == "" {
			continue
		}
		f, err := os.Open(e.blobPath(r.Layer))
		if err != nil {
			t.Fatalf("%s: record %s: %v", what, r.Key, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		cacheMust(t, err)
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != r.Layer || n != r.LayerSize {
			t.Fatalf("%s: record %s: blob %s has %d bytes hashing to %s (recorded size %d)", what, r.Key, r.Layer, n, got, r.LayerSize)
		}
	}
}

// verifySnapshots checks that every committed snapshot (a by-chain link) is
// a whole dir: its files, its chain ID, and its parent committed too.
func (e *env) verifySnapshots(t testing.TB, what string) {
	t.Helper()
	byChain := filepath.Join(e.root, "snapshots", "by-chain")
	links, err := os.ReadDir(byChain)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, l := range links {
		dir, err := filepath.EvalSymlinks(filepath.Join(byChain, l.Name()))
		if err != nil {
			t.Fatalf("%s: snapshot %s: %v", what, l.Name(), err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "fs")); err != nil || !fi.IsDir() {
			t.Fatalf("%s: snapshot %s has no fs dir: %v", what, l.Name(), err)
		}
		chain, err := os.ReadFile(filepath.Join(dir, "chain"))
		if err != nil || string(chain) != "sha256:"+l.Name() {
			t.Fatalf("%s: snapshot %s: chain file %q, %v", what, l.Name(), chain, err)
		}
		parent, err := os.ReadFile(filepath.Join(dir, "parent"))
		cacheMust(t, err)
		if p := strings.TrimPrefix(string(parent), "sha256:"); p != "" {
			if _, err := os.Stat(filepath.Join(byChain, p)); err != nil {
				t.Fatalf("%s: snapshot %s: parent %s is not committed", what, l.Name(), p)
			}
		}
	}
}

// noOverlayMounts fails when an overlay mount of the store is visible.
func noOverlayMounts(t testing.TB, what, root string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	cacheMust(t, err)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, root) {
			t.Fatalf("%s: a mount of the store remains: %s", what, l)
		}
	}
}
