//go:build linux

package e2e

// The sandbox against hostile RUNs: Docker's default seccomp profile on
// every RUN (and RUN --security=insecure behind --allow), and the cgroup
// limits (--memory, --cpus, --pids-limit) stopping a fork bomb and a memory
// hog with a message that names the limit, leaving no cgroup behind. Every
// build here is bounded: small limits, and a timeout that kills builder.

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cgroupLines makes a RUN print its own cgroups under builder/ as
// "cg_<hierarchy>=<line of /proc/self/cgroup>".
const cgroupLines = `for l in $(grep /builder/ /proc/self/cgroup); do echo "cg_${l%%:*}=$l"; done`

// runCgroups returns the host dirs of the cgroups that RUNs printed with
// cgroupLines, and fails when there are none.
func runCgroups(t *testing.T, stderr string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^#\d+ \d+\.\d{3} cg_\d+=\d+:([^:]*):(/.*)$`)
	var dirs []string
	for _, m := range re.FindAllStringSubmatch(stderr, -1) {
		ctrl, _, _ := strings.Cut(m[1], ",") // v1: the hierarchy's dir; v2: none
		d := filepath.Join("/sys/fs/cgroup", ctrl, m[2])
		if !strings.Contains(d, "/builder/") {
			t.Errorf("RUN in cgroup %s, not one builder made", d)
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		t.Fatalf("no RUN printed a builder cgroup:\n%s", stderr)
	}
	return dirs
}

// noCgroupsLeft checks that the cgroups of the RUNs are gone.
func noCgroupsLeft(t *testing.T, dirs []string) {
	t.Helper()
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left after the build (%v)", d, err)
		}
	}
}

// boundedEnv is newEnv with builder killed after a minute, whatever happens.
func boundedEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.prefix = []string{"timeout", "-s", "KILL", "60"}
	return e
}

func TestSeccompDefaultProfile(t *testing.T) {
	e := boundedEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN echo "seccomp=$(grep Seccomp: /proc/self/status | cut -f2)"
RUN echo "userns=$(unshare -r true 2>&1)"; echo "netns=$(unshare -n true 2>&1)"
RUN echo "chroot=$(chroot / echo ok)"; ` + cgroupLines + `
`})
	r := e.mustRun("build", "--no-cache", dir)
	wantOutputs(t, r.stderr, map[string]string{
		"seccomp": "2", // a filter
		// Creating a user namespace needs no capability: only the filter stops it.
		"userns": "unshare: unshare(0x10000000): Operation not permitted",
		"netns":  "unshare: unshare(0x40000000): Operation not permitted",
		"chroot": "ok", // CAP_SYS_CHROOT is one of Docker's default capabilities
	})
	noCgroupsLeft(t, runCgroups(t, r.stderr))
}

func TestSecurityInsecure(t *testing.T) {
	e := boundedEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN echo sandboxed=$(grep Seccomp: /proc/self/status | cut -f2)
RUN --security=insecure echo "seccomp=$(grep Seccomp: /proc/self/status | cut -f2)"; \
    echo "caps=$(grep CapEff /proc/self/status | cut -f2)"; \
    unshare -r true && echo userns=ok
`})
	r := e.run("build", "--no-cache", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:3") ||
		!strings.Contains(r.stderr, "RUN --security=insecure needs --allow security.insecure") {
		t.Fatalf("without --allow: exit %d, want 1 naming line 3:\n%s", r.code, r.stderr)
	}
	r = e.mustRun("build", "--no-cache", "--allow", "security.insecure", dir)
	wantOutputs(t, r.stderr, map[string]string{"sandboxed": "2", "seccomp": "0", "userns": "ok"})
	if caps := runOutputs(t, r.stderr)["caps"]; caps == "" || caps == "00000000a80425fb" {
		t.Errorf("insecure RUN has capabilities %q, want all of them", caps)
	}
	if r := e.run("build", "--allow", "devices", dir); r.code != 2 {
		t.Errorf("--allow devices: exit %d, want 2 (usage)", r.code)
	}
}

func TestRunPidsLimitForkBomb(t *testing.T) {
	e := boundedEnv(t)
	// The classic :(){ :|:& };: backgrounds its pipelines, and PID 1 would
	// exit at once, taking them all with it; this one waits for them.
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN ` + cgroupLines + `; bomb() { bomb | bomb; }; bomb
`})
	start := time.Now()
	r := e.run("build", "--no-cache", "--pids-limit", "64", dir)
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2") || !strings.Contains(r.stderr, "pids limit 64 reached") {
		t.Fatalf("fork bomb: exit %d after %v, want 1 with the pids limit named:\n%s", r.code, took, r.stderr)
	}
	t.Logf("fork bomb stopped after %v: %s", took, firstLine(r.stderr, "pids limit"))
	if took > 30*time.Second {
		t.Errorf("fork bomb took %v to stop", took)
	}
	noCgroupsLeft(t, runCgroups(t, r.stderr))
}

func TestRunMemoryLimitOOM(t *testing.T) {
	e := boundedEnv(t)
	// The shell keeps 300 MB in a variable: far past 64 MiB.
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN ` + cgroupLines + `; x=$(head -c 300000000 /dev/zero | tr '\0' a); echo "len=${#x}"
`})
	start := time.Now()
	r := e.run("build", "--no-cache", "--memory", "64m", dir)
	took := time.Since(start)
	want := "killed: memory limit 64MiB reached (OOM)"
	if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2") || !strings.Contains(r.stderr, want) {
		t.Fatalf("memory hog: exit %d after %v, want 1 and %q:\n%s", r.code, took, want, r.stderr)
	}
	t.Logf("memory hog stopped after %v: %s", took, firstLine(r.stderr, want))
	noCgroupsLeft(t, runCgroups(t, r.stderr))
}

func TestRunLimitsNormalBuild(t *testing.T) {
	e := boundedEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN ` + cgroupLines + `; head -c 10000000 /dev/zero > /blob; echo forked=$(echo a | cat)
RUN ` + cgroupLines + `; echo size=$(wc -c < /blob)
`})
	r := e.mustRun("build", "--no-cache", "--memory", "128m", "--cpus", "1", "--pids-limit", "100", "-t", "lim:v1", dir)
	wantOutputs(t, r.stderr, map[string]string{"forked": "a", "size": "10000000"})
	dirs := runCgroups(t, r.stderr)
	if len(dirs) < 2 {
		t.Errorf("RUN cgroups %q: want one per RUN at least", dirs)
	}
	noCgroupsLeft(t, dirs)
	for _, bad := range [][]string{{"--memory", "1m"}, {"--memory", "lots"}, {"--cpus", "0"}, {"--cpus", "1000"}} {
		if r := e.run(append([]string{"build"}, append(bad, dir)...)...); r.code != 2 {
			t.Errorf("build %v: exit %d, want 2 (usage)", bad, r.code)
		}
	}
}

func TestRunLimitsWithoutCgroups(t *testing.T) {
	// No cgroup filesystem (an empty tmpfs over /sys/fs/cgroup, in a mount
	// namespace of builder's own): one warning, and RUN runs unlimited.
	e := boundedEnv(t)
	e.prefix = append(e.prefix, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /sys/fs/cgroup && exec "$@"`, "sh")
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN echo one=$(grep -c /builder/ /proc/self/cgroup)
RUN echo two=ok
`})
	r := e.mustRun("build", "--no-cache", "--memory", "64m", dir)
	wantOutputs(t, r.stderr, map[string]string{"one": "0", "two": "ok"})
	if n := strings.Count(r.stderr, "RUN steps run without resource limits"); n != 1 {
		t.Errorf("%d warnings about limits, want 1:\n%s", n, r.stderr)
	}
}

func TestRunLimitsInterrupted(t *testing.T) {
	// Ctrl-C: builder removes the RUN's cgroup on its way out. kill -9: it
	// cannot; the next build removes it (its builder is gone).
	e := newEnv(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, procs, done := e.startRun(t, "limits-"+strconv.Itoa(int(sig)))
			dirs := pidsCgroups(t, cmd.Process.Pid)
			if len(dirs) == 0 {
				t.Fatal("the RUN has no pids cgroup")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, done, 5*time.Second)
			checkGone(t, procs, 5*time.Second)
			if sig == syscall.SIGINT {
				if code != 130 {
					t.Errorf("exit %d after SIGINT, want 130", code)
				}
				noCgroupsLeft(t, dirs)
				return
			}
			for _, d := range dirs {
				// Any builder removes the cgroups of dead builders: another
				// package's tests (run at the same time) may have already.
				if _, err := os.Stat(d); err != nil {
					t.Logf("cgroup %s of the killed builder already removed by another builder: %v", d, err)
				}
			}
			ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
			e.mustRun("build", "--no-cache", ctx)
			noCgroupsLeft(t, dirs)
		})
	}
}

// pidsCgroups lists the RUN cgroups of the builder process pid in the pids
// hierarchy (v1) or the unified one (v2): <own cgroup>/builder/<pid>-*.
func pidsCgroups(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup") // builder's, as its parent's
	if err != nil {
		t.Fatal(err)
	}
	_, v2err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	var parent string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) != 3:
		case v2err == nil && f[0] == "0":
			parent = filepath.Join("/sys/fs/cgroup", filepath.Dir(f[2]), "builder")
		case v2err != nil && strings.Contains(","+f[1]+",", ",pids,"):
			parent = filepath.Join("/sys/fs/cgroup/pids", f[2], "builder")
		}
	}
	dirs, err := filepath.Glob(filepath.Join(parent, strconv.Itoa(pid)+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// firstLine returns the first line of s that contains sub.
func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
