package e2e

// Several builder processes on one store: builds share the store lock,
// prune takes it exclusively and waits for them.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// started is a builder process running in the background.
type started struct {
	cmd          *exec.Cmd
	out          bytes.Buffer // stdout and stderr
	done         chan struct{}
	err          error
	start, ended time.Time
}

// startBuilder starts builder --root <root> args... without waiting.
func (e *env) startBuilder(t testing.TB, extraEnv []string, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command(e.bin, append([]string{"--root", e.root}, args...)...), done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.start = time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start builder %v: %v", args, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		s.ended = time.Now()
		close(s.done)
	}()
	return s
}

// wait waits for s and fails the test when it did not exit 0.
func (s *started) wait(t testing.TB) string {
	t.Helper()
	<-s.done
	if s.err != nil {
		t.Fatalf("builder %v: %v\n%s", s.cmd.Args[1:], s.err, s.out.String())
	}
	return s.out.String()
}

func TestCacheConcurrentBuildsAndPrune(t *testing.T) {
	e := newEnv(t)
	const n = 3
	var builds []*started
	for i := range n {
		dir := writeContext(t, map[string]string{
			"f": fmt.Sprintf("concurrent %d\n", i),
			"Dockerfile": fmt.Sprintf("FROM busybox:latest\nCOPY f /f\nRUN sleep 1 && echo concurrent-%d > /c\n"+
				"WORKDIR /w%d\n", i, i),
		})
		builds = append(builds, e.startBuilder(t, nil, "build", "--progress", "plain", dir, "-t", fmt.Sprintf("conc:%d", i)))
	}
	// Every build holds the shared lock well before its RUN ends.
	time.Sleep(300 * time.Millisecond)
	prune := e.startBuilder(t, nil, "prune", "--all")
	for i, b := range builds {
		if got := stepStates(b.wait(t)); got != "MMM" {
			t.Errorf("build %d: states %q, want MMM", i, got)
		}
	}
	out := prune.wait(t)
	m := pruneLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("prune printed:\n%s", out)
	}
	// Had prune not waited, it would have found nothing to remove and the
	// builds' records would remain.
	if m[1] != fmt.Sprint(3*n) {
		t.Errorf("prune --all removed %s records, want the %d the builds wrote:\n%s", m[1], 3*n, out)
	}
	if recs := e.records(t); len(recs) != 0 {
		t.Errorf("%d records survived prune --all", len(recs))
	}
	last := time.Time{}
	for _, b := range builds {
		if b.ended.After(last) {
			last = b.ended
		}
	}
	if d := prune.ended.Sub(prune.start); d < 500*time.Millisecond {
		t.Errorf("prune took %v: it did not wait for the builds (which end %v after it started)", d, last.Sub(prune.start))
	}
	e.mustCheck(t)
	for i := range n {
		e.mustRun("inspect", fmt.Sprintf("conc:%d", i))
	}
}

func TestCacheIdenticalConcurrentBuilds(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"a/one.txt":  "one\n",
		"a/two.txt":  "two\n",
		"Dockerfile": "FROM busybox:latest\nCOPY a/ /a/\nRUN sleep 0.5 && cat /a/*.txt > /all\nWORKDIR /same\nCOPY a/one.txt /same/\n",
	})
	sde := []string{"SOURCE_DATE_EPOCH=0"}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	procs := make([]*started, 2)
	for i := range procs {
		procs[i] = e.startBuilder(t, sde, "build", "--progress", "plain", dir, "-t", fmt.Sprintf("same:%d", i))
	}
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-p.done
			outs[i] = p.out.String()
		}()
	}
	wg.Wait()
	for i, p := range procs {
		if p.err != nil {
			t.Fatalf("build %d: %v\n%s", i, p.err, outs[i])
		}
	}
	m0, m1 := manifestOf(t, outs[0]), manifestOf(t, outs[1])
	if m0 != m1 {
		t.Fatalf("identical concurrent builds made manifests %s and %s\n%s\n%s", m0, m1, outs[0], outs[1])
	}
	// Both ran the RUN at the same time: neither could use the other's record.
	for i, o := range outs {
		if got := stepStates(o); got[:2] != "MM" {
			t.Errorf("build %d: states %q, want the COPY and the RUN to run", i, got)
		}
	}
	r := e.runEnv(sde, "", "build", "--progress", "plain", "--no-cache", dir, "-t", "same:2")
	if r.code != 0 {
		t.Fatalf("--no-cache build: %s", r.stderr)
	}
	if m := manifestOf(t, r.stderr); m != m0 {
		t.Fatalf("--no-cache build after the concurrent ones: manifest %s, want %s", m, m0)
	}
	e.mustCheck(t)
}
