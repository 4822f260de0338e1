// Package sandbox runs one process in fresh namespaces over given mounts. It
// owns the re-exec child: main() must call IsInit/Main first.
//
// Run re-executes /proc/self/exe with the argv[0] "builder-sandbox" in new
// mount, PID, UTS and IPC namespaces (and a new network namespace holding
// only a loopback device when Network is "none"). The child mounts the rootfs
// and the usual /proc, read-only /sys, a tmpfs /dev, /etc/hosts,
// /etc/resolv.conf and /etc/hostname, pivots into the rootfs, drops to
// Docker's default capabilities and the configured user, installs Docker's
// default seccomp profile (seccomp_linux.go: built in Go, no libseccomp) and
// execs Args: the command is PID 1 of its namespace, with no init. Every
// mount lives only in the child's mount namespace, so the kernel removes them
// all when the command's namespace dies; nothing is ever mounted on the host.
//
// Limits. Before the command runs, the child is in a cgroup (v1 or v2) of
// its own that Run makes under this process's cgroup and removes after the
// command (cgroup_linux.go); a command that dies of a limit, or fails after
// a fork was refused, returns an ExitError that names the limit.
//
// Mount points and the rootfs. When the rootfs lacks a mount point (/proc,
// /sys, /dev, one of the /etc files, or a parent dir such as /etc) the child
// creates it, and mounting over an existing dir of a lower layer may copy it
// up. Such placeholders would show up in the layer made from the upper dir,
// so the child reports every path it made appear in the upper dir together
// with its device, inode and ctime, and Run removes them after the command
// has exited unless the command changed them (a dir it added files to stays).
// The upper dir is the upperdir= option of the overlay mounted at the root,
// or the source of a bind mounted there. A path hidden by a whiteout in the
// upper dir before the run is not cleaned up: it is left as an empty
// placeholder rather than resurrecting the lower file.
//
// builder run adds (run_io_linux.go): a pseudo-terminal of the container's
// own /dev/pts as the command's stdio and controlling terminal, its master
// passed back over a console socket (fd 5); signals passed on to the
// command; a read-only rootfs, remounted once every mount point exists; a
// working dir made when missing.
//
// /etc/hosts, /etc/resolv.conf and /etc/hostname are bind mounts of files on
// a tmpfs private to the sandbox: the command may write them, as in Docker,
// but what it writes never reaches the layer and nothing is left on the host.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/builderdev/builder/snapshot"
)

// Config is one process to run.
type Config struct {
	Rootfs []snapshot.Mount // mounted at the new root, in order
	// RootDir is the dir the rootfs is mounted on, made by the caller; it
	// defaults to the Target of Rootfs[0]. A Rootfs mount with an empty
	// Target goes on RootDir, one with a relative Target below it. With no
	// Rootfs mounts, RootDir itself is bound as the rootfs.
	RootDir string
	// Mounts are extra mounts (RUN --mount) at absolute paths of the
	// rootfs, made after /proc, /sys, /dev and /etc. Missing mount points
	// are created (a dir, or a file when a bind's source is a file) and
	// removed again after the run, like the other placeholders.
	Mounts   []snapshot.Mount
	Args     []string
	Env      []string // PATH (default the usual one) is used to find Args[0]
	Cwd      string   // must exist in the rootfs; default "/"
	UID, GID uint32
	Groups   []uint32
	Hostname string // default "builder"
	Network  string // "host" (default) or "none"
	Hosts    []byte // /etc/hosts content; nil: localhost and the hostname
	Resolv   []byte // /etc/resolv.conf content; nil: the rootfs's own file, unbound
	Stdout   io.Writer
	Stderr   io.Writer
	// Insecure runs the command with every capability, no seccomp filter,
	// nothing of /proc masked and /sys writable (RUN --security=insecure).
	// By default it gets Docker's default capabilities and seccomp profile.
	Insecure bool
	// Limits bound what the command's process tree may use.
	Limits Limits
	// MkdirCwd creates Cwd as written, as root, once in the new root (as
	// runc's os.MkdirAll(cwd, 0755) for a RUN: "/a/../b" makes /a too).
	MkdirCwd bool

	// What builder run adds to a RUN (run_io_linux.go).
	//
	// Stdin is the command's stdin (nil: /dev/null). TTY gives the command
	// a new pseudo-terminal as stdin, stdout, stderr and controlling
	// terminal, of TTYSize (rows, columns; zero: 24x80): Stdin is copied to
	// it and its output to Stdout. ReadOnly mounts the rootfs read-only
	// (Mounts, /dev, /proc and the /etc files stay writable, as docker run
	// --read-only). Signals are sent to the command, PID 1 of its
	// namespace, as they come (docker run's signal proxy); the end of ctx
	// still kills the whole tree. MakeCwd creates Cwd when missing, owned
	// by UID:GID (docker run -w).
	Stdin    io.Reader
	MakeCwd  bool
	TTY      bool
	TTYSize  [2]uint16
	ReadOnly bool
	Signals  <-chan os.Signal
}

// Limits are docker run's --memory, --cpus and --pids-limit, enforced by a
// cgroup (v1 or v2) that Run makes for the command and removes after it.
// Run fails when a limit is set and no cgroup can be made; with the zero
// value it enforces the default pids limit if it can, and runs without a
// cgroup if not.
type Limits struct {
	Memory int64   // bytes (and as much swap again, as Docker); 0: no limit
	CPUs   float64 // CPU time, in CPUs (1.5: one and a half); 0: no limit
	// Pids bounds processes and threads; negative: no limit; 0: 64 per CPU
	// and at least 1024. That is more than a parallel build uses (make -j16
	// with compilers, a JVM or cargo: a few hundred), and stops a fork bomb
	// at about 200 MB of memory (measured: 200 KB per busybox sh).
	Pids int64
}

// ExitError is returned when the process exits non-zero. Limit says which
// limit of Config.Limits the process tree reached, if any: "memory limit
// 64MiB reached (OOM)" when the kernel killed a process for memory, "pids
// limit 64 reached" when a fork failed.
type ExitError struct {
	Code  int
	Limit string
}

func (e *ExitError) Error() string {
	switch {
	case e.Limit == "":
		return fmt.Sprintf("exit code %d", e.Code)
	case e.Code == 128+9: // SIGKILL
		return "killed: " + e.Limit
	}
	return fmt.Sprintf("exit code %d: %s", e.Code, e.Limit)
}

// ErrExec marks (wrapped, with the errno: fs.ErrNotExist, fs.ErrPermission,
// ...) a command the child could not execute.
var ErrExec = errors.New("cannot execute the command")

// initArg0 is the argv[0] that marks the re-executed sandbox child.
const initArg0 = "builder-sandbox"

// IsInit reports whether this process is the sandbox child.
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == initArg0 }

// Main runs the sandbox child and never returns.
func Main() { runChild() }

// Run runs cfg and waits; the process tree dies with ctx.
func Run(ctx context.Context, cfg Config) error { return run(ctx, cfg) }

// CheckLimits reports whether Run can enforce l on this machine, by making
// and removing a cgroup for it: when it cannot (not root, and no cgroup
// delegated), a caller that prefers to run without limits says so once and
// passes Limits{Pids: -1}, which makes no cgroup.
func CheckLimits(l Limits) error { return checkLimits(l) }
