package sandbox

import (
	"errors"
	"fmt"
)

// startInside runs start, the clone of the child, with the calling thread
// (locked to its goroutine by the caller) in the run's v1 cgroups, so that
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
// v2 keeps moving the child: its domain cgroups take whole processes (its
// equivalent is clone3's CLONE_INTO_CGROUP). A pids limit under 2 too: the
// thread would count against it while the child forks.
func (cg *cgroup) startInside(start func() error) (inside bool, err error) {
	if cg == nil || cg.v2 || (cg.pids > 0 && cg.pids < 2) {
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

// errThreadInCgroup: the calling thread could not move back out of the
// run's cgroup.
var errThreadInCgroup = errors.New("sandbox: a thread of builder is left in the run's cgroup")
