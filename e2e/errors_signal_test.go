//go:build linux

package e2e

// Ctrl-C and kill -9 in the middle of a RUN: the sandbox dies with the
// builder, no mount or work dir stays, and the next build works.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc identifies a process across pid reuse.
type proc struct {
	pid   int
	start string // starttime field of /proc/<pid>/stat
}

// procStat returns the ppid, state and start time of pid.
func procStat(pid int) (ppid int, state, start string, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", "", false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", "", false
	}
	f := strings.Fields(s[i+1:]) // f[0] = state (field 3), f[19] = starttime (field 22)
	if len(f) < 20 {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], f[19], true
}

// descendants lists the live processes below pid.
func descendants(pid int) []proc {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, start, ok := procStat(p); ok {
			children[ppid] = append(children[ppid], proc{p, start})
		}
	}
	var out []proc
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		for _, c := range children[p] {
			out = append(out, c)
			todo = append(todo, c.pid)
		}
	}
	return out
}

// alive reports whether p still runs (a zombie is dead).
func (p proc) alive() bool {
	_, state, start, ok := procStat(p.pid)
	return ok && start == p.start && state != "Z" && state != "X"
}

// startRun starts `builder build` of a long RUN and waits until its output
// shows the command runs; it returns the command and the sandbox processes.
func (e *env) startRun(t *testing.T, marker string) (*exec.Cmd, []proc, <-chan error) {
	t.Helper()
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo " + marker + "; sleep 30\n"})
	cmd := exec.Command(e.bin, "--root", e.root, "build", ctx)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !seen && strings.HasSuffix(sc.Text(), " "+marker) {
				seen = true
				close(started)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("build ended before the RUN started: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("RUN did not start within 30s")
	}
	procs := descendants(cmd.Process.Pid)
	if len(procs) == 0 {
		t.Fatal("no sandbox process under the builder")
	}
	return cmd, procs, done
}

// waitExit waits at most d for the build to end and returns its exit code
// (-1 when killed by a signal).
func waitExit(t *testing.T, cmd *exec.Cmd, done <-chan error, d time.Duration) int {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("builder still running %v after the signal", d)
	}
	return cmd.ProcessState.ExitCode()
}

// checkGone fails unless every process of procs is dead within d.
func checkGone(t *testing.T, procs []proc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, p := range procs {
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if p.alive() {
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
			t.Errorf("sandbox process %d (%q) survived the builder", p.pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

func TestBuildInterrupted(t *testing.T) {
	e := newEnv(t)
	before := e.snapState(t)

	t.Run("SIGINT", func(t *testing.T) {
		cmd, procs, done := e.startRun(t, "started-int")
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if code := waitExit(t, cmd, done, 5*time.Second); code != 130 {
			t.Errorf("exit %d after SIGINT, want 130", code)
		}
		checkGone(t, procs, time.Second)
		// A clean stop leaves nothing at all: no work dir, no snapshot.
		e.checkStore(t, &before)
		if n := listNames(t, filepath.Join(e.root, "snapshots", "active")); len(n) != 0 {
			t.Errorf("snapshots/active not empty: %v", n)
		}
	})

	t.Run("SIGKILL", func(t *testing.T) {
		cmd, procs, done := e.startRun(t, "started-kill")
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := waitExit(t, cmd, done, 5*time.Second); code == 0 {
			t.Error("killed builder exited 0")
		}
		// Pdeathsig kills the sandbox, and with it its PID namespace.
		checkGone(t, procs, 5*time.Second)
		checkNoMounts(t, e.root)
		e.checkRecords(t)
		if idx, _ := os.ReadFile(filepath.Join(e.root, "index.json")); string(idx) != string(before.index) {
			t.Errorf("index.json changed by a killed build:\n%s", idx)
		}
		// Leftovers of the dead build are removed by the next one, which works.
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo after > /after\n"})
		out := filepath.Join(t.TempDir(), "out")
		e.mustRun("build", ctx, "-o", "type=local,dest="+out)
		if data, err := os.ReadFile(filepath.Join(out, "after")); err != nil || string(data) != "after\n" {
			t.Errorf("/after = %q, %v", data, err)
		}
		e.checkStore(t, &before)
		e.mustRun("check")
	})
}
