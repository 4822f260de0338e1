package e2e

// The store lock policy of package client, raced for real: a load, build,
// tag or save started a few milliseconds before a prune --all or an rmi
// either completes with a whole image (and the store stays consistent), or,
// where the other command legitimately went first, fails cleanly with "no
// such image". Never a half-written image, a missing blob or a false
// message. Before the policy was one, `load` took no lock and lost to
// `prune --all` in 9 of 12 rounds ("archive has no blob ...: not found").

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raceRounds is how many times each race is run; the offsets between the
// two commands sweep 0-22 ms so both orders happen.
const raceRounds = 12

func raceOffset(i int) time.Duration { return time.Duration(i*2) * time.Millisecond }

// bigContext is a context whose image has a 24 MB layer of random bytes
// (incompressible: loading and saving it takes long enough to race).
func bigContext(t *testing.T) string {
	t.Helper()
	data := make([]byte, 24<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox:latest\nCOPY big /big\nRUN echo built > /stamp\n"})
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// finish waits for a racer and returns its exit status and output.
func (s *started) finish() (bool, string) {
	<-s.done
	return s.err == nil, s.out.String()
}

func TestLockLoadRacesPrune(t *testing.T) {
	e := newEnv(t)
	e.mustRun("build", "--progress", "quiet", bigContext(t), "-t", "big:1")
	tar := filepath.Join(t.TempDir(), "big.tar")
	e.mustRun("save", "big:1", "-o", tar)
	for i := range raceRounds {
		// An empty store but for busybox: the load writes every blob.
		e.mustRun("rmi", "big:1")
		e.prune(t, "--all")
		load := e.startBuilder(t, nil, "load", "-i", tar)
		time.Sleep(raceOffset(i))
		prune := e.startBuilder(t, nil, "prune", "--all")
		if ok, out := load.finish(); !ok {
			t.Fatalf("round %d: load failed while a prune ran:\n%s", i, out)
		}
		if ok, out := prune.finish(); !ok {
			t.Fatalf("round %d: prune failed:\n%s", i, out)
		}
		e.mustCheck(t)
		e.mustRun("save", "big:1", "-o", filepath.Join(t.TempDir(), "again.tar"))
	}
}

func TestLockBuildRacesPrune(t *testing.T) {
	e := newEnv(t)
	dir := bigContext(t)
	for i := range raceRounds / 3 {
		build := e.startBuilder(t, nil, "build", "--progress", "plain", "--no-cache", dir, "-t", "big:1")
		time.Sleep(raceOffset(i * 3))
		prune := e.startBuilder(t, nil, "prune", "--all")
		if ok, out := build.finish(); !ok {
			t.Fatalf("round %d: build failed while a prune ran:\n%s", i, out)
		}
		if ok, out := prune.finish(); !ok {
			t.Fatalf("round %d: prune failed:\n%s", i, out)
		}
		e.mustCheck(t)
		// Whole: every blob of the image is there to export.
		e.mustRun("save", "big:1", "-o", filepath.Join(t.TempDir(), "big.tar"))
	}
}

// untaggedImage builds dir without a tag and returns its manifest digest
// (the store resolves an untagged image by it while its blobs exist).
func untaggedImage(t *testing.T, e *env, dir string) string {
	t.Helper()
	return manifestOf(t, e.mustRun("build", "--progress", "plain", dir).stderr)
}

func TestLockTagRacesPrune(t *testing.T) {
	e := newEnv(t)
	dir := bigContext(t)
	tagged, gone := 0, 0
	for i := range raceRounds {
		id := untaggedImage(t, e, dir)
		// Odd rounds start the prune first: both orders happen.
		var tag, prune *started
		if i%2 == 0 {
			tag = e.startBuilder(t, nil, "tag", id, "won:1")
			time.Sleep(raceOffset(i))
			prune = e.startBuilder(t, nil, "prune", "--all")
		} else {
			prune = e.startBuilder(t, nil, "prune", "--all")
			time.Sleep(raceOffset(i))
			tag = e.startBuilder(t, nil, "tag", id, "won:1")
		}
		ok, out := tag.finish()
		if pok, pout := prune.finish(); !pok {
			t.Fatalf("round %d: prune failed:\n%s", i, pout)
		}
		switch {
		case ok:
			// Tagged before the prune: the prune kept every blob of it.
			tagged++
			e.mustRun("save", "won:1", "-o", filepath.Join(t.TempDir(), "won.tar"))
			e.mustRun("rmi", "won:1")
		case strings.Contains(out, "no such image"):
			gone++ // the prune went first and removed the untagged image
		default:
			t.Fatalf("round %d: tag failed with something else than a prune that went first:\n%s", i, out)
		}
		e.mustCheck(t)
	}
	t.Logf("tag first: %d rounds, prune first: %d rounds", tagged, gone)
}

func TestLockSaveRacesRmiAndPrune(t *testing.T) {
	e := newEnv(t)
	dir := bigContext(t)
	saved, gone := 0, 0
	for i := range raceRounds {
		e.mustRun("build", "--progress", "quiet", dir, "-t", "big:1")
		out := filepath.Join(t.TempDir(), fmt.Sprintf("save-%d.tar", i))
		save := e.startBuilder(t, nil, "save", "big:1", "-o", out)
		time.Sleep(raceOffset(i))
		rmi := e.startBuilder(t, nil, "rmi", "big:1")
		if ok, rout := rmi.finish(); !ok {
			t.Fatalf("round %d: rmi failed:\n%s", i, rout)
		}
		prune := e.startBuilder(t, nil, "prune", "--all")
		ok, sout := save.finish()
		if pok, pout := prune.finish(); !pok {
			t.Fatalf("round %d: prune failed:\n%s", i, pout)
		}
		switch {
		case ok:
			saved++
			// The archive is whole: a fresh store loads it and finds every blob intact.
			other := &env{t: t, bin: e.bin, root: filepath.Join(t.TempDir(), "other")}
			other.mustRun("load", "-i", out)
			other.mustCheck(t)
		case strings.Contains(sout, "no such image"):
			gone++ // the rmi went first
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("round %d: a failed save left %s behind", i, out)
			}
		default:
			t.Fatalf("round %d: save failed with something else than an rmi that went first:\n%s", i, sout)
		}
		e.mustCheck(t)
	}
	t.Logf("save first: %d rounds, rmi first: %d rounds", saved, gone)
}
