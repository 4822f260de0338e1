package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// requireCgroups skips when this machine gives the tests no cgroup.
func requireCgroups(t testing.TB) cgroupHost {
	t.Helper()
	requireRoot(t)
	h, err := detectCgroups()
	if err == nil {
		err = checkLimits(Limits{Memory: 64 << 20, CPUs: 1, Pids: 100})
	}
	if err != nil {
		t.Skipf("skipping: no writable cgroups for memory, cpu and pids: %v", err)
	}
	return h
}

// runDirs lists the run cgroup dirs of this process (named <pid>-<rand>).
func runDirs(t testing.TB, h cgroupHost) []string {
	t.Helper()
	var parents []string
	if h.v2 {
		parents = []string{filepath.Join(h.root, filepath.Dir(h.self[""]), "builder")}
	} else {
		for _, c := range []string{"memory", "pids", "cpu"} {
			parents = append(parents, filepath.Join(h.root, c, h.self[c], "builder"))
		}
	}
	var dirs []string
	for _, p := range parents {
		m, err := filepath.Glob(filepath.Join(p, strconv.Itoa(os.Getpid())+"-*"))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	return dirs
}

// cgroupScript prints "<file> <value>" for each limit file of the RUN's
// own cgroups, read through the host's /sys/fs/cgroup bound at /cg.
const cgroupScript = `
if [ -e /cg/cgroup.controllers ]; then
	while IFS=: read -r id ctrl path; do
		[ "$id" = 0 ] || continue
		for f in memory.max memory.swap.max pids.max cpu.max; do echo "$f $(cat /cg$path/$f)"; done
		echo "dir $path"
	done < /proc/self/cgroup
	exit
fi
while IFS=: read -r id ctrl path; do
	case ",$ctrl," in
	*,memory,*) files="memory.limit_in_bytes memory.memsw.limit_in_bytes"; dir=/cg/memory$path;;
	*,pids,*) files=pids.max; dir=/cg/pids$path;;
	*,cpu,*) files="cpu.cfs_quota_us cpu.cfs_period_us"; dir=/cg/cpu$path;;
	*) continue;;
	esac
	for f in $files; do echo "$f $(cat $dir/$f 2>/dev/null)"; done
	echo "dir ${dir#/cg}"
done < /proc/self/cgroup
`

func bindCgroupfs() snapshot.Mount {
	return snapshot.Mount{Type: "bind", Source: cgroupRoot, Target: "/cg", Options: []string{"rbind", "ro"}}
}

func TestLimits(t *testing.T) {
	h := requireCgroups(t)
	l := newLayout(t, nil)
	tests := []struct {
		name         string
		limits       Limits
		ctrls        []string          // v1: the hierarchies with a run cgroup, in /proc/self/cgroup's order
		want1, want2 map[string]string // cgroup v1 and v2 files
	}{
		{"all", Limits{Memory: 64 << 20, CPUs: 0.5, Pids: 100}, []string{"pids", "memory", "cpu"},
			map[string]string{"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "134217728",
				"pids.max": "100", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
			map[string]string{"memory.max": "67108864", "memory.swap.max": "67108864", "pids.max": "100", "cpu.max": "50000 100000"}},
		{"default pids only", Limits{}, []string{"pids"},
			map[string]string{"pids.max": strconv.FormatInt(defaultPids(), 10)},
			map[string]string{"pids.max": strconv.FormatInt(defaultPids(), 10), "memory.max": "max", "cpu.max": "max 100000"}},
		{"cpus", Limits{CPUs: 1.5, Pids: -1}, []string{"cpu"},
			map[string]string{"cpu.cfs_quota_us": "150000"},
			map[string]string{"cpu.max": "150000 100000", "pids.max": "max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config(cgroupScript)
			cfg.Limits = tt.limits
			cfg.Mounts = []snapshot.Mount{bindCgroupfs()}
			out, errOut, err := runOut(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nstderr: %s", err, errOut)
			}
			got := map[string]string{}
			var dirs []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				k, v, _ := strings.Cut(line, " ")
				if k == "dir" {
					dirs = append(dirs, filepath.Join(cgroupRoot, v))
					continue
				}
				got[k] = v
			}
			want := tt.want1
			if h.v2 {
				want = tt.want2
			}
			for k, w := range want {
				optional := k == "memory.memsw.limit_in_bytes" || k == "memory.swap.max" // no swap accounting
				if got[k] != w && !(optional && got[k] == "") {
					t.Errorf("%s = %q, want %q", k, got[k], w)
				}
			}
			// v1: a run cgroup in the hierarchy of each limited controller only.
			var inRun []string
			for _, d := range dirs {
				if !strings.Contains(d, "/builder/"+strconv.Itoa(os.Getpid())+"-") {
					continue
				}
				inRun = append(inRun, strings.Split(strings.TrimPrefix(d, cgroupRoot+"/"), "/")[0])
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cgroup %s left after the run (%v)", d, err)
				}
			}
			switch {
			case h.v2 && len(inRun) != 1:
				t.Errorf("%d run cgroups, want 1:\n%s", len(inRun), out)
			case !h.v2 && !slices.Equal(inRun, tt.ctrls):
				t.Errorf("run cgroups in %q, want %q:\n%s", inRun, tt.ctrls, out)
			}
			if left := runDirs(t, h); len(left) > 0 {
				t.Errorf("cgroups left: %q", left)
			}
		})
	}
}

func TestLimitReached(t *testing.T) {
	h := requireCgroups(t)
	l := newLayout(t, nil)
	tests := []struct {
		name     string
		script   string
		limits   Limits
		wantCode int
		wantMsg  string
	}{
		{
			// Forks 200 sleeps: the 64th fork fails, the shell exits 2.
			name:     "pids",
			script:   "i=0; while [ $i -lt 200 ]; do sleep 100 & i=$((i+1)); done; wait",
			limits:   Limits{Pids: 64},
			wantCode: 2,
			wantMsg:  "exit code 2: pids limit 64 reached",
		},
		{
			name:     "fork bomb",
			script:   "f() { f | f; }; f",
			limits:   Limits{Pids: 64},
			wantCode: -1, // whichever
			wantMsg:  "pids limit 64 reached",
		},
		{
			// The shell holds 300 MB in a variable: the OOM killer kills it.
			name:     "memory",
			script:   "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}",
			limits:   Limits{Memory: 64 << 20},
			wantCode: 137,
			wantMsg:  "killed: memory limit 64MiB reached (OOM)",
		},
		{
			name:     "plain failure",
			script:   "exit 3",
			limits:   Limits{Memory: 64 << 20, Pids: 64},
			wantCode: 3,
			wantMsg:  "exit code 3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config(tt.script)
			cfg.Limits = tt.limits
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			err := Run(ctx, cfg)
			t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
			var ee *ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Run: %v, want an ExitError", err)
			}
			if tt.wantCode >= 0 && ee.Code != tt.wantCode {
				t.Errorf("exit code %d, want %d", ee.Code, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if left := runDirs(t, h); len(left) > 0 {
				t.Errorf("cgroups left: %q", left)
			}
		})
	}
}

func TestLimitsCancel(t *testing.T) {
	h := requireCgroups(t)
	l := newLayout(t, nil)
	cfg := l.config("sleep 100 & sleep 100")
	cfg.Limits = Limits{Memory: 64 << 20, CPUs: 1, Pids: 100}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(runDirs(t, h)) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := runDirs(t, h); len(got) == 0 {
		t.Fatal("no cgroup made")
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	if left := runDirs(t, h); len(left) > 0 {
		t.Errorf("cgroups left after cancel: %q", left)
	}
}

func TestLimitsRemoveStale(t *testing.T) {
	h := requireCgroups(t)
	if h.v2 {
		t.Skip("v1 layout")
	}
	parent := filepath.Join(h.root, "pids", h.self["pids"], "builder")
	// A dir of a builder that was killed (no such pid), and one of a live
	// process, which stays.
	dead := filepath.Join(parent, "999999999-0badf00d")
	live := filepath.Join(parent, "1-0badf00d")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Remove(live)
	l := newLayout(t, nil)
	if _, errOut, err := runOut(t, l.config("true")); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s not removed (%v)", dead, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("%s of a live process removed: %v", live, err)
	}
}

func TestLimitsBad(t *testing.T) {
	l := newLayout(t, nil)
	for _, tt := range []struct {
		limits Limits
		want   string
	}{
		{Limits{Memory: -1}, "negative memory limit"},
		{Limits{Memory: 1 << 20}, "below Docker's minimum of 6MiB"},
		{Limits{CPUs: -1}, "bad CPU limit"},
		{Limits{CPUs: 0.001}, "below the minimum of 0.01"},
	} {
		cfg := l.config("true")
		cfg.Limits = tt.limits
		if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run with %+v: %v, want %q", tt.limits, err, tt.want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	v1 := "12:pids:/user.slice\n4:memory:/process_api/c7b0\n1:cpu,cpuacct:/\n9:name=systemd:/x\n0::/\n"
	got := parseProcCgroup([]byte(v1))
	want := map[string]string{"pids": "/user.slice", "memory": "/process_api/c7b0", "cpu": "/", "cpuacct": "/", "name=systemd": "/x", "": "/"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %q, want %q", k, got[k], v)
		}
	}
	if got := parseProcCgroup([]byte("0::/a/b:c\n")); got[""] != "/a/b:c" {
		t.Errorf("v2 path with a colon: %q", got[""])
	}
}

// fakeCgroup makes dir with the given files, as a cgroup dir would hold.
func fakeCgroup(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCgroupV2Files(t *testing.T) {
	// The files a v2 run writes and reads, on a plain dir standing in for
	// cgroupfs: this machine's controllers may all be on v1.
	dir := t.TempDir()
	fakeCgroup(t, dir, map[string]string{"cgroup.controllers": "cpu memory pids\n", "cgroup.subtree_control": "memory\n"})
	if err := enableControllers(dir, []string{"memory", "pids", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+pids +cpu" {
		t.Errorf("subtree_control: %q, want the missing two enabled", got)
	}
	if err := enableControllers(dir, []string{"io"}); !errors.Is(err, errNoCgroup) {
		t.Errorf("enabling a missing controller: %v, want errNoCgroup", err)
	}

	run := filepath.Join(dir, "run")
	fakeCgroup(t, run, map[string]string{"memory.max": "", "memory.swap.max": "", "pids.max": "", "cpu.max": ""})
	cg := &cgroup{v2: true, dirs: []string{run}, memDir: run, pidsDir: run, cpuDir: run, memory: 64 << 20, pids: 50}
	if err := cg.setLimits(Limits{Memory: 64 << 20, CPUs: 1.5, Pids: 50}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"memory.max": "67108864", "memory.swap.max": "67108864", "pids.max": "50", "cpu.max": "150000 100000"} {
		if got := readFile(t, filepath.Join(run, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	for _, tt := range []struct {
		events map[string]string
		want   string
	}{
		{map[string]string{"memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n", "pids.events": "max 0\n"}, "memory limit 64MiB reached (OOM)"},
		{map[string]string{"memory.events": "low 0\nhigh 0\nmax 12\noom 0\noom_kill 0\n", "pids.events": "max 7\n"}, "pids limit 50 reached"},
		{map[string]string{"memory.events": "oom_kill 0\n", "pids.events": "max 0\n"}, ""},
	} {
		fakeCgroup(t, run, tt.events)
		if got := cg.reached(); got != tt.want {
			t.Errorf("reached() with %q = %q, want %q", tt.events, got, tt.want)
		}
	}
}

func TestCgroupV2Real(t *testing.T) {
	// The dirs and the join of a v2 run on the kernel's cgroup2 (the
	// unified hierarchy of a hybrid machine works, controllers or not).
	requireRoot(t)
	root := cgroupRoot
	var st unix.Statfs_t
	if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		root = filepath.Join(cgroupRoot, "unified")
		if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			t.Skip("skipping: no cgroup2 mount")
		}
	}
	self := parseProcCgroup([]byte(readFile(t, "/proc/self/cgroup")))[""]
	h := cgroupHost{root: root, v2: true, self: map[string]string{"": self}}
	cg := &cgroup{v2: true}
	name := strconv.Itoa(os.Getpid()) + "-v2test"
	if err := cg.make2(h, nil, name); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, filepath.Dir(self), "builder", name)
	if !slices.Equal(cg.dirs, []string{want}) {
		t.Fatalf("dirs %q, want %q", cg.dirs, want)
	}
	sleep := exec.Command("sleep", "100")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.add(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	in := readFile(t, "/proc/"+strconv.Itoa(sleep.Process.Pid)+"/cgroup")
	if !strings.Contains(in, "0::"+strings.TrimPrefix(want, root)+"\n") {
		t.Errorf("the process is not in %s:\n%s", want, in)
	}
	// Still populated: remove kills what is left (cgroup.kill) and retries.
	if err := cg.remove(); err != nil {
		t.Error(err)
	}
	_ = sleep.Wait()
	if _, err := os.Stat(want); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left (%v)", want, err)
	}
}

func TestExitErrorMessage(t *testing.T) {
	for _, tt := range []struct {
		e    ExitError
		want string
	}{
		{ExitError{Code: 2}, "exit code 2"},
		{ExitError{Code: 137, Limit: "memory limit 64MiB reached (OOM)"}, "killed: memory limit 64MiB reached (OOM)"},
		{ExitError{Code: 2, Limit: "pids limit 64 reached"}, "exit code 2: pids limit 64 reached"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
	for n, want := range map[int64]string{64 << 20: "64MiB", 1 << 30: "1GiB", 3 << 29: "1536MiB", 6<<20 + 1: "6291457B", 1536: "1536B", 2048: "2KiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
