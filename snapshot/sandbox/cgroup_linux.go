package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The cgroup of one Run. The parent makes it before starting the child.
// With v1 the child is born in it: the thread that clones it moves itself
// in for the clone and back out after (cgroup_thread_linux.go). Else (v2,
// or that failed) the parent moves the child in (cgroup.procs) before
// sending it the spec: the child reads the spec before any setup step, so
// nothing it does, let alone the command, runs outside the cgroup. Either
// way needs no cgroupfs inside the child's mount namespace and leaves the
// child no way to skip the join.
//
// Where: under the cgroup of this process, in a dir "builder" holding one
// dir per run named <pid of builder>-<random>, so that a run's cgroup stays
// inside any limit this process has:
//
//	v1: /sys/fs/cgroup/<controller>/<own path>/builder/<pid>-<rand>, per controller needed
//	v2: /sys/fs/cgroup/<parent of own path>/builder/<pid>-<rand>
//
// v2 uses the parent of this process's cgroup, because a v2 cgroup that
// holds processes (ours) cannot hand controllers to children; the parent,
// as systemd and container runtimes leave it, holds none. Each run's dir is
// removed after the run (failures and cancellation included: the command's
// namespace dies with its PID 1, so the dir is empty by then); dirs left by
// a builder that was killed outright are removed by the next run, by their
// pid. The "builder" dirs stay, like Docker's.

const cgroupRoot = "/sys/fs/cgroup"

// errNoCgroup marks the failures that mean this machine gives us no
// cgroup: no hierarchy for a controller, or no permission to write it.
var errNoCgroup = errors.New("cgroups unavailable")

// cgroupHost is how cgroups are set up on this machine.
type cgroupHost struct {
	root string // where the cgroup filesystems are, /sys/fs/cgroup
	v2   bool
	// self is this process's cgroup by controller ("pids": "/a/b") for v1,
	// and at "" for v2 (the "0::/path" line of /proc/self/cgroup).
	self map[string]string
}

func detectCgroups() (cgroupHost, error) {
	h := cgroupHost{root: cgroupRoot}
	var st unix.Statfs_t
	if err := unix.Statfs(h.root, &st); err != nil {
		return h, fmt.Errorf("%w: %s: %w", errNoCgroup, h.root, err)
	}
	h.v2 = st.Type == unix.CGROUP2_SUPER_MAGIC
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return h, fmt.Errorf("%w: %w", errNoCgroup, err)
	}
	h.self = parseProcCgroup(data)
	return h, nil
}

// parseProcCgroup reads /proc/self/cgroup: "id:controller,...:path" lines.
func parseProcCgroup(data []byte) map[string]string {
	self := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			self[c] = parts[2]
		}
	}
	return self
}

// cgroup is the cgroup of one run: a dir per controller (v1) or one dir (v2).
type cgroup struct {
	v2     bool
	dirs   []string
	homes  []string // v1: this process's own dir beside each of dirs
	memory int64    // the limits as set, for messages
	pids   int64

	// where each limited controller's files are
	memDir, pidsDir, cpuDir string
}

// defaultPids is the pids limit when Limits.Pids is 0.
func defaultPids() int64 { return max(1024, 64*int64(runtime.NumCPU())) }

// cgroupPids is the pids limit l sets (0: none).
func cgroupPids(l Limits) int64 {
	switch {
	case l.Pids == 0:
		return defaultPids()
	case l.Pids < 0:
		return 0
	}
	return l.Pids
}

// checkLimitValues rejects limits no cgroup can take.
func checkLimitValues(l Limits) error {
	switch {
	case l.Memory < 0:
		return fmt.Errorf("sandbox: negative memory limit %d", l.Memory)
	case l.Memory > 0 && l.Memory < 6<<20:
		return fmt.Errorf("sandbox: memory limit %s is below Docker's minimum of 6MiB", formatBytes(l.Memory))
	case math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0) || l.CPUs < 0:
		return fmt.Errorf("sandbox: bad CPU limit %v", l.CPUs)
	case l.CPUs > 0 && cpuQuota(l.CPUs) < 1000:
		return fmt.Errorf("sandbox: CPU limit %v is below the minimum of 0.01", l.CPUs)
	}
	return nil
}

// cpuPeriod is the CFS period (µs) of a CPU limit; the quota is CPUs times it.
const cpuPeriod = 100000

func cpuQuota(cpus float64) int64 { return int64(math.Round(cpus * cpuPeriod)) }

// newCgroup makes the cgroup of one run; nil when l sets no limit, or when
// only the default pids limit applies and this machine gives no cgroup.
func newCgroup(l Limits) (*cgroup, error) {
	if l.Memory == 0 && l.CPUs == 0 && cgroupPids(l) == 0 {
		return nil, nil
	}
	h, err := detectCgroups()
	var cg *cgroup
	if err == nil {
		cg, err = makeCgroup(h, l, fmt.Sprintf("%d-%08x", os.Getpid(), rand.Uint32()))
	}
	if errors.Is(err, errNoCgroup) && l == (Limits{}) {
		return nil, nil // the default pids limit is best effort
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: make cgroup: %w", err)
	}
	return cg, nil
}

func checkLimits(l Limits) error {
	if err := checkLimitValues(l); err != nil {
		return err
	}
	h, err := detectCgroups()
	if err != nil {
		return err
	}
	cg, err := makeCgroup(h, l, fmt.Sprintf("%d-%08x", os.Getpid(), rand.Uint32()))
	if err != nil || cg == nil {
		return err
	}
	return cg.remove()
}

// makeCgroup makes the cgroup name for l on host h and writes its limits.
func makeCgroup(h cgroupHost, l Limits, name string) (*cgroup, error) {
	cg := &cgroup{v2: h.v2, memory: l.Memory, pids: cgroupPids(l)}
	var need []string
	if l.Memory > 0 {
		need = append(need, "memory")
	}
	if cg.pids > 0 {
		need = append(need, "pids")
	}
	if l.CPUs > 0 {
		need = append(need, "cpu")
	}
	if len(need) == 0 {
		return nil, nil
	}
	var err error
	if h.v2 {
		err = cg.make2(h, need, name)
	} else {
		err = cg.make1(h, need, name)
	}
	if err == nil {
		err = cg.setLimits(l)
	}
	if err != nil {
		_ = cg.remove()
		return nil, err
	}
	return cg, nil
}

// make1 makes a dir in the v1 hierarchy of each controller.
func (cg *cgroup) make1(h cgroupHost, need []string, name string) error {
	for _, c := range need {
		self, ok := h.self[c]
		if !ok {
			return fmt.Errorf("%w: no cgroup v1 hierarchy for %s in /proc/self/cgroup", errNoCgroup, c)
		}
		own := filepath.Join(h.root, c, self)
		if _, err := os.Stat(filepath.Join(own, "cgroup.procs")); err != nil {
			return fmt.Errorf("%w: %s is not a cgroup: %w", errNoCgroup, own, err)
		}
		dir, err := makeRunDir(filepath.Join(own, "builder"), name)
		if err != nil {
			return err
		}
		cg.dirs, cg.homes = append(cg.dirs, dir), append(cg.homes, own)
		switch c {
		case "memory":
			cg.memDir = dir
		case "pids":
			cg.pidsDir = dir
		case "cpu":
			cg.cpuDir = dir
		}
	}
	return nil
}

// make2 makes the run's dir in the v2 hierarchy, enabling the controllers
// on the way down.
func (cg *cgroup) make2(h cgroupHost, need []string, name string) error {
	self, ok := h.self[""]
	if !ok {
		return fmt.Errorf("%w: no cgroup v2 path in /proc/self/cgroup", errNoCgroup)
	}
	base := filepath.Join(h.root, filepath.Dir(self)) // the parent of ours; "/" stays "/"
	if err := enableControllers(base, need); err != nil {
		return err
	}
	parent := filepath.Join(base, "builder")
	if err := mkdirCgroup(parent); err != nil {
		return err
	}
	if err := enableControllers(parent, need); err != nil {
		return err
	}
	dir, err := makeRunDir(parent, name)
	if err != nil {
		return err
	}
	cg.dirs = []string{dir}
	cg.memDir, cg.pidsDir, cg.cpuDir = dir, dir, dir
	return nil
}

// enableControllers makes the controllers available to dir's children.
func enableControllers(dir string, need []string) error {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("%w: %s is not a cgroup: %w", errNoCgroup, dir, err)
	}
	enabled, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("%w: %w", errNoCgroup, err)
	}
	var add []string
	for _, c := range need {
		if !slices.Contains(strings.Fields(string(avail)), c) {
			return fmt.Errorf("%w: controller %s is not available in %s", errNoCgroup, c, dir)
		}
		if !slices.Contains(strings.Fields(string(enabled)), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := writeCgroupFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
		// EBUSY: dir holds processes of its own (the root of a container's
		// cgroup namespace, say), so it cannot hand controllers down.
		return fmt.Errorf("%w: %w", errNoCgroup, err)
	}
	return nil
}

// mkdirCgroup makes a cgroup dir (it may exist); failures for lack of
// permission or of a hierarchy mean no cgroups.
func mkdirCgroup(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS), errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: mkdir %s: %w", errNoCgroup, dir, err)
	}
	return fmt.Errorf("mkdir %s: %w", dir, err)
}

// makeRunDir makes parent (if needed), removes the dirs of dead builders in
// it and makes the run's dir.
func makeRunDir(parent, name string) (string, error) {
	if err := mkdirCgroup(parent); err != nil {
		return "", err
	}
	removeStale(parent)
	dir := filepath.Join(parent, name)
	if err := unix.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) {
			return "", fmt.Errorf("%w: mkdir %s: %w", errNoCgroup, dir, err)
		}
		return "", fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return dir, nil
}

// removeStale removes the run dirs of builder processes that are gone
// (killed before they could clean up): empty, since their commands died
// with them.
func removeStale(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		p, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(p)
		if !e.IsDir() || !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			_ = unix.Rmdir(filepath.Join(parent, e.Name()))
		}
	}
}

func (cg *cgroup) setLimits(l Limits) error {
	type file struct {
		dir, name, value string
		optional         bool // absent when the kernel lacks the feature (swap accounting)
	}
	var files []file
	if l.Memory > 0 {
		mem := strconv.FormatInt(l.Memory, 10)
		// As docker run --memory without --memory-swap: as much swap again.
		if cg.v2 {
			files = append(files, file{cg.memDir, "memory.max", mem, false}, file{cg.memDir, "memory.swap.max", mem, true})
		} else {
			files = append(files, file{cg.memDir, "memory.limit_in_bytes", mem, false},
				file{cg.memDir, "memory.memsw.limit_in_bytes", strconv.FormatInt(2*l.Memory, 10), true})
		}
	}
	if cg.pids > 0 {
		files = append(files, file{cg.pidsDir, "pids.max", strconv.FormatInt(cg.pids, 10), false})
	}
	if l.CPUs > 0 {
		quota := strconv.FormatInt(cpuQuota(l.CPUs), 10)
		if cg.v2 {
			files = append(files, file{cg.cpuDir, "cpu.max", quota + " " + strconv.Itoa(cpuPeriod), false})
		} else {
			files = append(files, file{cg.cpuDir, "cpu.cfs_period_us", strconv.Itoa(cpuPeriod), false},
				file{cg.cpuDir, "cpu.cfs_quota_us", quota, false})
		}
	}
	for _, f := range files {
		err := writeCgroupFile(f.dir, f.name, f.value)
		if err != nil && !(f.optional && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
	}
	return nil
}

func writeCgroupFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// add moves the process pid (all its threads) into the cgroup.
func (cg *cgroup) add(pid int) error {
	for _, d := range cg.dirs {
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("sandbox: join cgroup: %w", err)
		}
	}
	return nil
}

// reached says which limit the run hit: a process killed by the OOM killer
// (memory.events or memory.oom_control: oom_kill), else a fork refused
// (pids.events: max); "" when neither.
func (cg *cgroup) reached() string {
	if cg.memDir != "" && cg.memory > 0 {
		name := "memory.oom_control"
		if cg.v2 {
			name = "memory.events"
		}
		if cgroupCounter(cg.memDir, name, "oom_kill") > 0 {
			return fmt.Sprintf("memory limit %s reached (OOM)", formatBytes(cg.memory))
		}
	}
	if cg.pidsDir != "" && cgroupCounter(cg.pidsDir, "pids.events", "max") > 0 {
		return fmt.Sprintf("pids limit %d reached", cg.pids)
	}
	return ""
}

// cgroupCounter reads key from a flat-keyed cgroup file ("key value" lines).
func cgroupCounter(dir, name, key string) int64 {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// remove removes the run's dirs. The command's PID namespace has died with
// its PID 1 by the time the parent reaps it, so they are empty; a process
// still there (a kernel slow to release it) is killed, and removal retried.
func (cg *cgroup) remove() error {
	var errs []error
	for _, d := range cg.dirs {
		deadline := time.Now().Add(2 * time.Second)
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("sandbox: remove cgroup %s: %w", d, err))
				break
			}
			cg.killAll(d)
			time.Sleep(delay)
		}
	}
	return errors.Join(errs...)
}

func (cg *cgroup) killAll(dir string) {
	if cg.v2 && writeCgroupFile(dir, "cgroup.kill", "1") == nil {
		return
	}
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(data)) {
		// Never this process: with v1 a thread of ours that could not
		// leave (startInside) lists it here.
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = unix.Kill(pid, syscall.SIGKILL)
		}
	}
}

// formatBytes writes n in the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
