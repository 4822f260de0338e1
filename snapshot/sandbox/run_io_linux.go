package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// What builder run adds to a RUN: a pseudo-terminal, signals passed on to
// the command and a read-only rootfs.

// terminal is the pseudo-terminal of one run: the child gets the slave as
// stdin, stdout, stderr and controlling terminal; the parent copies
// Config.Stdin to the master and the master to Config.Stdout.
type terminal struct {
	master, slave *os.File
	out           sync.WaitGroup
}

// attachTTY opens a pseudo-terminal for cmd when cfg asks for one (nil
// otherwise), making the child a session leader that owns it.
func attachTTY(cmd *exec.Cmd, cfg Config) (*terminal, error) {
	if !cfg.TTY {
		return nil, nil
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("sandbox: open pseudo-terminal: %w", err)
	}
	rows, cols := cfg.TTYSize[0], cfg.TTYSize[1]
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("sandbox: set terminal size: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	attr := cmd.SysProcAttr
	attr.Setpgid = false // a new session instead: setpgid would fail in it
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	return &terminal{master: master, slave: slave}, nil
}

// openPTY opens a new pseudo-terminal pair of /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock: %w", err)
	}
	// TIOCGPTPEER opens the slave without a path lookup (Linux 4.13+).
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno == 0 {
		return master, os.NewFile(sfd, "pty"), nil
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("get pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	sfdi, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, os.NewFile(uintptr(sfdi), name), nil
}

// started runs once the child is started: the parent's slave is closed (so
// the master reads EIO once the command's tree is gone) and the copying
// begins.
func (t *terminal) started(cfg Config) {
	if t == nil {
		return
	}
	t.slave.Close()
	t.slave = nil
	if cfg.Stdin != nil {
		// Not waited for: a read of the caller's stdin may block forever.
		go func() { _, _ = io.Copy(t.master, cfg.Stdin) }()
	}
	out := cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	t.out.Add(1)
	go func() {
		defer t.out.Done()
		_, err := io.Copy(out, t.master)
		_ = err // EIO: every slave is closed, the command's tree is gone
	}()
}

// wait waits until the command's output is all copied.
func (t *terminal) wait() {
	if t != nil {
		t.out.Wait()
	}
}

func (t *terminal) close() {
	if t == nil {
		return
	}
	if t.slave != nil {
		t.slave.Close()
	}
	t.master.Close()
}

// forwardSignals sends what comes on sigs to p until the returned stop is
// called.
func forwardSignals(p *os.Process, sigs <-chan os.Signal) (stop func()) {
	if sigs == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case s, ok := <-sigs:
				if !ok {
					return
				}
				if err := p.Signal(s); errors.Is(err, os.ErrProcessDone) {
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// readOnlyRoot makes the rootfs mount read-only once every mount point in
// it exists, keeping its other flags (a bind remount replaces them all).
func (c *child) readOnlyRoot() error {
	if !c.spec.ReadOnly {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(c.spec.Root, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", c.spec.Root, err)
	}
	// ST_NOSUID, ST_NODEV, ST_NOEXEC, ... have the values of the MS_ flags.
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", c.spec.Root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|keep, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", c.spec.Root, err)
	}
	return nil
}

// makeCwd creates the missing Cwd in the new root (parents as root,
// through the overlay, which copies up what it changes), owned by the user,
// and enters it.
func (c *child) makeCwd() error {
	// Past pivot_root "/" is the rootfs: resolveIn follows the symlinks
	// of Cwd inside it, so MkdirAll meets none.
	cwd, err := resolveIn("/", c.spec.Cwd)
	if err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	if err := os.Lchown(cwd, int(c.spec.UID), int(c.spec.GID)); err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	c.cwdErr = unix.Chdir(cwd)
	return nil
}
