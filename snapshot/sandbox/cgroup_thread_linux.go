package sandbox

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// startInside runs start, the clone of the child, with the calling thread
// (locked to its goroutine: offMainThread) in the run's v1 cgroups, so that
// the child is born in them; it reports whether it was, else the caller
// moves the child in by its pid.
//
// Why: moving a process (cgroup.procs) takes the kernel's global
// threadgroup lock for writing, which waits for an RCU grace period
// whenever no other move ran in the last few milliseconds: 5-20 ms on the
// 2-core build machine, more than the child's whole setup, so every RUN
// waited for it. A thread that moves itself alone (its "tasks" file, pid
// 0) skips that lock (Linux 5.19 and later: cgroup_procs_write_start), and
// a fork inherits the thread's cgroups. Measured: 0.1-0.2 ms in, 20-40 µs
// back, against 5-20 ms for the child's move.
//
// The child keeps being moved by its pid:
//   - with v2: its domain cgroups take whole processes (its equivalent is
//     clone3's CLONE_INTO_CGROUP);
//   - from the main thread (run never is: offMainThread), which must not
//     move;
//   - under a pids limit of less than minInsidePids: born inside, the
//     child's own Go runtime starts its threads against the limit (a
//     moved child has them already), and so did this thread while in.
func (cg *cgroup) startInside(start func() error) (inside bool, err error) {
	if cg == nil || cg.v2 || (cg.pids > 0 && cg.pids < minInsidePids) || unix.Gettid() == unix.Getpid() {
		return false, start()
	}
	entered := 0
	for _, d := range cg.dirs {
		if writeCgroupFile(d, "tasks", "0") != nil {
			break
		}
		entered++
	}
	inside = entered == len(cg.dirs)
	if inside {
		err = start()
	}
	if lerr := cg.leave(entered); lerr != nil {
		return inside, errors.Join(err, lerr)
	}
	if !inside {
		return false, start()
	}
	return true, err
}

// leave moves the calling thread back to this process's own cgroup of the
// first n controllers.
func (cg *cgroup) leave(n int) error {
	var errs []error
	for _, home := range cg.homes[:n] {
		if err := writeCgroupFile(home, "tasks", "0"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errThreadInCgroup, errors.Join(errs...))
	}
	return nil
}

// offMainThread runs f on a goroutine locked to a thread other than the
// main one, and waits for it. The main thread never enters a run's cgroup:
// /proc/self/cgroup, which detectCgroups and the Go runtime (GOMAXPROCS
// from the CPU limit) read, shows the main thread's. A goroutine that
// finds itself on the main thread holds it while another runs f: that one
// cannot run there. A lock f leaves (errThreadInCgroup) ends its thread
// with the goroutine.
func offMainThread(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if unix.Gettid() != unix.Getpid() {
			f()
			return
		}
		elsewhere := make(chan struct{})
		go func() {
			defer close(elsewhere)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f()
		}()
		<-elsewhere
	}()
	<-done
}

// minInsidePids is the least pids limit a child is born under: room for
// the cloning thread and the threads the child's Go runtime starts before
// it execs the command (measured: limits of 2-5 failed such runs).
const minInsidePids = 64

// errThreadInCgroup: the calling thread could not move back out of the
// run's cgroup.
var errThreadInCgroup = errors.New("sandbox: a thread of builder is left in the run's cgroup")
