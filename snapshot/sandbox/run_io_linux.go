package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// What builder run adds to a RUN: a pseudo-terminal, signals passed on to
// the command and a read-only rootfs.

// The terminal of Config.TTY is a pseudo-terminal of the container's own
// /dev/pts (as runc's console socket gives it): the child opens it once
// /dev is mounted, makes it its controlling terminal and its stdin, stdout
// and stderr, and passes the master back over a socket on consoleFD; the
// parent copies Config.Stdin to the master and the master to Config.Stdout.
// So the command's tty is /dev/pts/0 of its own devpts, which ttyname(3)
// finds.

// consoleFD is the child's end of the console socket (TTY only).
const consoleFD = 5

// terminal is the parent's side of the pseudo-terminal of one run.
type terminal struct {
	child, sock *os.File // the two ends of the console socket
	out         sync.WaitGroup
}

// attachTTY makes the console socket when cfg asks for a terminal (nil
// otherwise): the child is not made a process group leader, so that it can
// start a session of its own.
func attachTTY(cmd *exec.Cmd, cfg Config) (*terminal, error) {
	if !cfg.TTY {
		return nil, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: console socket: %w", err)
	}
	t := &terminal{sock: os.NewFile(uintptr(fds[0]), "console"), child: os.NewFile(uintptr(fds[1]), "console")}
	cmd.ExtraFiles = append(cmd.ExtraFiles, t.child) // consoleFD
	cmd.Stdin = nil                                  // the terminal's
	cmd.SysProcAttr.Setpgid = false
	return t, nil
}

// started runs once the child is started: it waits for the master and
// copies until the command's tree is gone (EIO once every slave is closed).
func (t *terminal) started(cfg Config) {
	if t == nil {
		return
	}
	t.child.Close()
	t.child = nil
	out := cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	t.out.Add(1)
	go func() {
		defer t.out.Done()
		master, err := recvFD(t.sock)
		if err != nil {
			return // the child failed before: its report says why
		}
		defer master.Close()
		if cfg.Stdin != nil {
			// Not waited for: a read of the caller's stdin may block forever.
			go func() { _, _ = io.Copy(master, cfg.Stdin) }()
		}
		_, _ = io.Copy(out, master)
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
	if t.child != nil {
		t.child.Close()
	}
	t.sock.Close()
}

// recvFD receives one file descriptor over the unix socket s.
func recvFD(s *os.File) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(s.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no console fd (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("no console fd (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), "ptmx"), nil
}

// openTerminal (child) opens a pseudo-terminal of the container's devpts,
// sized as asked, makes it the controlling terminal of a new session and
// fds 0, 1 and 2, and sends the master to the parent.
func (c *child) openTerminal() error {
	if !c.spec.TTY {
		return nil
	}
	sock := os.NewFile(consoleFD, "console")
	defer sock.Close()
	mfd, err := unix.Open(c.dev+"/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open ptmx: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY))
	if errno != 0 {
		return fmt.Errorf("open pty slave: %w", errno)
	}
	slave := int(sfd)
	size := unix.Winsize{Row: c.spec.TTYSize[0], Col: c.spec.TTYSize[1]}
	if size.Row == 0 || size.Col == 0 {
		size.Row, size.Col = 24, 80
	}
	if err := unix.IoctlSetWinsize(slave, unix.TIOCSWINSZ, &size); err != nil {
		return fmt.Errorf("set terminal size: %w", err)
	}
	if err := unix.Fchown(slave, int(c.spec.UID), -1); err != nil {
		return fmt.Errorf("chown terminal: %w", err) // the user's, as runc's
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup terminal: %w", err)
		}
	}
	unix.Close(slave)
	if err := unix.Sendmsg(consoleFD, []byte{0}, unix.UnixRights(mfd), nil, 0); err != nil {
		return fmt.Errorf("send console: %w", err)
	}
	return nil
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

// makeCwd creates the missing Cwd (MakeCwd) in the rootfs before it may
// be made read-only, as docker does when it creates the container: its
// symlinks resolved inside the rootfs, parents as root (through the
// overlay, which copies up what it changes), the dir itself the user's.
func (c *child) makeCwd() error {
	if !c.spec.MakeCwd {
		return nil
	}
	rel, err := resolveIn(c.spec.Root, c.spec.Cwd)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.spec.Root, rel)
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or chdir says why not
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err = os.Lchown(dir, int(c.spec.UID), int(c.spec.GID))
	if errors.Is(err, unix.EINVAL) {
		return nil // a user namespace without that id: root's, then
	}
	return err
}
