package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStartInside: with v1 the child is born in the run's cgroup of each
// limited controller, and the thread that cloned it is back in this
// process's cgroups afterwards; a small pids limit falls back to moving
// the child. offMainThread gives it a thread other than the main one.
func TestStartInside(t *testing.T) {
	h := requireCgroups(t)
	if h.v2 {
		t.Skip("skipping: cgroup v2 moves the child (no per-thread move of a domain cgroup)")
	}
	for _, tc := range []struct {
		name   string
		limits Limits
		inside bool
	}{
		{"all", Limits{Memory: 64 << 20, CPUs: 0.5, Pids: 100}, true},
		{"default pids", Limits{}, true},
		{"pids under 64", Limits{Pids: 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cg, err := makeCgroup(h, tc.limits, strconv.Itoa(os.Getpid())+"-thread-"+strings.ReplaceAll(tc.name, " ", "-"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := cg.remove(); err != nil {
					t.Error(err)
				}
			}()
			offMainThread(func() {
				before := readFile(t, "/proc/thread-self/cgroup")
				sleep := exec.Command("sleep", "100")
				inside, err := cg.startInside(sleep.Start)
				if err != nil {
					t.Error(err)
					return
				}
				defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
				if inside != tc.inside {
					t.Errorf("born inside %v, want %v", inside, tc.inside)
				}
				if after := readFile(t, "/proc/thread-self/cgroup"); after != before {
					t.Errorf("the thread's cgroups changed:\n%s\nwant\n%s", after, before)
				}
				in := readFile(t, "/proc/"+strconv.Itoa(sleep.Process.Pid)+"/cgroup")
				for _, d := range cg.dirs {
					ctrl, path, _ := strings.Cut(strings.TrimPrefix(d, cgroupRoot+"/"), "/")
					if got := strings.Contains(in, ":"+ctrl+":/"+path+"\n"); got != tc.inside {
						t.Errorf("child in %s: %v, want %v:\n%s", d, got, tc.inside, in)
					}
				}
			})
		})
	}
}

// TestStartInsideStuck: a thread that cannot leave the run's cgroup is
// reported, and killing what is left in that cgroup spares this process.
func TestStartInsideStuck(t *testing.T) {
	h := requireCgroups(t)
	if h.v2 {
		t.Skip("skipping: cgroup v2 moves the child")
	}
	cg, err := makeCgroup(h, Limits{}, strconv.Itoa(os.Getpid())+"-thread-stuck")
	if err != nil {
		t.Fatal(err)
	}
	homes := cg.homes
	cg.homes = []string{filepath.Join(t.TempDir(), "gone")}
	offMainThread(func() {
		sleep := exec.Command("sleep", "100")
		inside, err := cg.startInside(sleep.Start)
		if !inside || !errors.Is(err, errThreadInCgroup) {
			t.Errorf("inside %v, err %v; want true, %v", inside, err, errThreadInCgroup)
		}
		cg.killAll(cg.dirs[0]) // the sleep, not this process
		if err := sleep.Wait(); err == nil {
			t.Error("the child was not killed")
		}
		cg.homes = homes
		if err := cg.leave(len(homes)); err != nil {
			t.Error(err)
		}
	})
	if err := cg.remove(); err != nil {
		t.Error(err)
	}
}

// TestOffMainThread: f never runs on the main thread, also when called
// from it.
func TestOffMainThread(t *testing.T) {
	runtime.LockOSThread() // wherever the test runs; the main thread or not
	defer runtime.UnlockOSThread()
	for range 20 {
		var tid int
		offMainThread(func() { tid = unix.Gettid() })
		if tid == unix.Getpid() {
			t.Fatal("f ran on the main thread")
		}
	}
}
