package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// child is the state of the sandbox child between its setup steps.
type child struct {
	spec   spec
	report *os.File
	// specIn is what follows the spec on specFD (the go-ahead), of specFile
	specIn   io.Reader
	specFile *os.File
	// mount points in the host view of the new root, filled by placeholders
	proc, sys, dev string
	etc            []etcFile
	cwdErr         error // chdir before switching user failed; retry after
}

// etcFile is one generated /etc file and where it is bound.
type etcFile struct {
	name    string // path in the rootfs, e.g. /etc/hosts
	content []byte
	target  string // host view of its mount point
}

// runChild is the sandbox child: one straight line of setup steps, then
// exec. It never returns; a failed step is reported on reportFD.
func runChild() {
	// Capabilities, no_new_privs and the parent-death signal are per thread:
	// set them on the thread that will exec.
	runtime.LockOSThread()
	unix.Umask(0)
	c := &child{report: os.NewFile(reportFD, "report")}
	step, err := c.setup()
	c.fail(step, err)
}

// setup runs the steps in order and returns the failed one; on success
// the last step, exec, does not return.
func (c *child) setup() (string, error) {
	steps := []struct {
		name string
		run  func() error
	}{
		{"read spec", c.readSpec},
		{"make mounts private", makePrivate},
		{"mount rootfs", c.mountRootfs},
		{"create mount points", c.placeholders},
		{"mount proc", c.mountProc},
		{"mount sys", c.mountSys},
		{"bind etc files", c.bindEtc},
		{"mount dev", c.mountDev},
		{"open terminal", c.openTerminal},
		{"mount extra", c.mountExtra},
		{"create working directory", c.makeCwd},
		{"make rootfs read-only", c.readOnlyRoot},
		{"pivot root", c.pivotRoot},
		{"create working directory", c.mkdirCwd},
		{"set hostname", c.setHostname},
		{"mask paths", c.maskPaths},
		{"set up loopback", c.loopback},
		{"drop capabilities", c.dropCapabilities},
		{"chdir", c.chdirEarly},
		{"set user", c.setUser},
		{"chdir", c.chdirLate},
		{"set no_new_privs", noNewPrivs},
		{"join cgroup", c.waitGoAhead},
		{"apply seccomp filter", c.applySeccomp},
		{"exec", c.exec},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return st.name, err
		}
	}
	return "exec", errors.New("exec returned")
}

// fail reports the failed step to the parent and exits.
func (c *child) fail(step string, err error) {
	m := report{Step: step, Error: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		m.Errno = int(errno)
	}
	_ = json.NewEncoder(c.report).Encode(m)
	os.Exit(125)
}

func (c *child) readSpec() error {
	if _, err := unix.FcntlInt(reportFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("set close-on-exec on report fd: %w", err)
	}
	if _, err := unix.FcntlInt(specFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("set close-on-exec on spec fd: %w", err)
	}
	c.specFile = os.NewFile(specFD, "spec")
	dec := json.NewDecoder(c.specFile)
	if err := dec.Decode(&c.spec); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	c.specIn = io.MultiReader(dec.Buffered(), c.specFile)
	return nil
}

// waitGoAhead waits until the parent has moved this process into its
// cgroup (the setup before it ran meanwhile): nothing of the command runs
// outside the limits.
func (c *child) waitGoAhead() error {
	var b [1]byte
	var err error
	for b[0] == 0 || b[0] == '\n' { // the newline ending the spec
		if _, err = io.ReadFull(c.specIn, b[:]); err != nil {
			break
		}
	}
	c.specFile.Close()
	if err != nil || b[0] != goAhead {
		return fmt.Errorf("no go-ahead from the parent (%v)", err)
	}
	return nil
}

func (c *child) setHostname() error {
	if err := unix.Sethostname([]byte(c.spec.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: %w", c.spec.Hostname, err)
	}
	return nil
}

// loopback brings lo up in the new network namespace of Network "none".
func (c *child) loopback() error {
	if c.spec.Network != "none" {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("name lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// mkdirCwd makes Cwd as written, in the new root (MkdirCwd): the walk of
// its components follows what they are in the rootfs, as runc's MkdirAll.
func (c *child) mkdirCwd() error {
	if !c.spec.MkdirCwd || c.spec.Cwd == "" {
		return nil
	}
	return os.MkdirAll(c.spec.Cwd, 0o755)
}

// chdirEarly enters Cwd as root, which can enter dirs the user cannot; when
// that fails, chdirLate tries again as the user (as runc does).
func (c *child) chdirEarly() error {
	c.cwdErr = unix.Chdir(c.spec.Cwd)
	return nil
}

func (c *child) chdirLate() error {
	if c.cwdErr == nil {
		return nil
	}
	if err := unix.Chdir(c.spec.Cwd); err != nil {
		return fmt.Errorf("chdir %s: %w", c.spec.Cwd, err)
	}
	return nil
}

// setUser switches groups, gid and uid. The syscall package applies them to
// every thread. Leaving uid 0 clears the permitted and effective
// capabilities (no PR_SET_KEEPCAPS), as for a non-root user in Docker; it
// also clears the parent-death signal, which is set again.
func (c *child) setUser() error {
	groups := make([]int, len(c.spec.Groups))
	for i, g := range c.spec.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil && !(errors.Is(err, syscall.EPERM) && setgroupsDenied()) {
		return fmt.Errorf("set groups %v: %w", c.spec.Groups, err)
	}
	if err := syscall.Setgid(int(c.spec.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", c.spec.GID, err)
	}
	if err := syscall.Setuid(int(c.spec.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", c.spec.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	return nil
}

func noNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// setgroupsDenied reports a user namespace whose maker denied setgroups
// (a namespace of one id): the process keeps the groups it has.
func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}
