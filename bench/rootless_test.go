package bench

// The rootless scenarios (builder only): on meta, run-true and copy-big,
// the same cold and warm builds run by an unprivileged user the harness
// makes for the run (with a subordinate id range, as README's rootless
// setup says), so builder re-executes itself in its own user namespace
// (newuidmap, newgidmap):
//
//	rootless cold  an empty store of that user, the base pulled (untimed)
//	rootless warm  the same again: every step cached
//
// The targets table gives each over the root figure of the same run
// (issue: within 10 %).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/builderdev/builder/internal/testutil"
)

// rootlessScenarios in table order; rootlessWorkloads are measured.
var (
	rootlessScenarios = []string{"rootless cold", "rootless warm"}
	rootlessWorkloads = []string{"meta", "run-true", "copy-big"}
)

const benchUser = "builder-bench"

// rootlessRunner runs builder as benchUser.
type rootlessRunner struct {
	uid, gid string
	bin      string // a copy the user may run
	root     string // the user's store
}

// newRootless makes benchUser (and its subordinate ids) for the run; undo
// puts /etc/passwd, /etc/subuid and /etc/subgid back. An error: this
// machine cannot run builder rootless (the scenarios are skipped).
func newRootless(bin string) (*rootlessRunner, func(), error) {
	var undos []func()
	undo := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	if os.Geteuid() != 0 {
		return nil, undo, fmt.Errorf("not root: cannot make a user")
	}
	for _, tool := range []string{"useradd", "userdel", "newuidmap", "newgidmap", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, undo, fmt.Errorf("%s is missing: %w", tool, err)
		}
	}
	uid, gid, undoUser, err := testutil.MakeUser(benchUser, 400000)
	undos = append(undos, undoUser)
	if err != nil {
		return nil, undo, err
	}
	// In /var/tmp: the harness's temp dirs are 0700, out of the user's
	// reach.
	home, err := os.MkdirTemp("/var/tmp", "builder-bench-rootless-")
	if err != nil {
		return nil, undo, err
	}
	undos = append(undos, func() { _ = os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		return nil, undo, err
	}
	if err := os.Chown(home, uid, gid); err != nil {
		return nil, undo, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, undo, err
	}
	r := &rootlessRunner{uid: strconv.Itoa(uid), gid: strconv.Itoa(gid), bin: filepath.Join(home, "builder"), root: filepath.Join(home, "root")}
	if err := os.WriteFile(r.bin, data, 0o755); err != nil {
		return nil, undo, err
	}
	return r, undo, nil
}

// args is the command line of builder args... as the user.
func (r *rootlessRunner) args(args ...string) []string {
	// --reset-env: the user's own HOME (root's holds credentials the user
	// may not read), with no env exec between setpriv and builder.
	return append([]string{"--reuid", r.uid, "--regid", r.gid, "--clear-groups", "--reset-env", r.bin, "--root", r.root}, args...)
}

// runRootless measures w in rootlessScenarios, FROM base, adding the
// samples to wr. The context dir must be readable by everyone.
func runRootless(r *rootlessRunner, w workload, ctx, base string, runs int, wr *workloadResult) error {
	if !slices.Contains(rootlessWorkloads, w.name) {
		return nil
	}
	add := func(scenario string, i int, s sample) {
		if wr.Samples[scenario] == nil {
			wr.Samples[scenario] = map[string][]sample{}
		}
		wr.Samples[scenario]["builder"] = append(wr.Samples[scenario]["builder"], s)
		logf("%-11s %-15s run %d/%d %-8s %9s  %s", w.name, scenario, i+1, runs, "builder", fmtMS(s.WallMS), fmtRSS(float64(s.MaxRSSKB)))
	}
	tag := "bench-" + w.name + "-rootless:v1"
	build := func(want string) (sample, error) {
		s, out, err := measure("", "setpriv", r.args("build", "--progress", "plain", "-t", tag, ctx)...)
		if err == nil {
			err = checkSteps(out, want)
		}
		if err != nil {
			return s, fmt.Errorf("%s rootless: %w", w.name, err)
		}
		return s, nil
	}
	for i := range runs {
		if err := os.RemoveAll(r.root); err != nil {
			return err
		}
		if _, err := run("", "setpriv", r.args("pull", base)...); err != nil {
			return err
		}
		if err := settle(); err != nil {
			return err
		}
		s, err := build("miss")
		if err != nil {
			return err
		}
		add("rootless cold", i, s)
	}
	for i := range runs {
		s, err := build("hit")
		if err != nil {
			return err
		}
		add("rootless warm", i, s)
	}
	return nil
}

// judgeRootless gives each rootless figure over root's of the same run
// (target: within 10 %).
func (r *results) judgeRootless(add func(target, got string, ok, judged bool, why string)) {
	for _, name := range rootlessWorkloads {
		for _, sc := range []string{"cold", "warm"} {
			rl, ok1 := r.median(name, "rootless "+sc, baseline, wallOf)
			root, ok2 := r.median(name, sc, baseline, wallOf)
			if !ok1 || !ok2 || root == 0 {
				continue
			}
			x := rl / root
			add(fmt.Sprintf("%s %s rootless: within %.0f%% of root", name, sc, rootlessMaxAdd*100),
				fmt.Sprintf("%+.0f%% (%s, root %s)", (x-1)*100, fmtMS(rl), fmtMS(root)), x-1 <= rootlessMaxAdd, true, "")
		}
	}
}

// rootlessMaxAdd is the target: rootless within 10 % of root.
const rootlessMaxAdd = 0.10
