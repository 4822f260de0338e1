package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/builderdev/builder/snapshot"
)

// File descriptors of the child: the spec comes in on specFD, followed by
// the byte goAhead once the child is in its cgroup; reports go out on
// reportFD, which is close-on-exec in the child, so EOF with no failure
// report means the command was exec'd.
const (
	specFD   = 3
	reportFD = 4
	goAhead  = 'g'
)

// spec is what the parent sends the child on specFD.
type spec struct {
	Root     string           `json:"root"`
	Mounts   []snapshot.Mount `json:"mounts"`
	Extra    []snapshot.Mount `json:"extra,omitempty"` // RUN --mount, absolute image targets
	Upper    string           `json:"upper,omitempty"` // where placeholders land; "" = not tracked
	Args     []string         `json:"args"`
	Env      []string         `json:"env"`
	Cwd      string           `json:"cwd"`
	UID      uint32           `json:"uid"`
	GID      uint32           `json:"gid"`
	Groups   []uint32         `json:"groups,omitempty"`
	Hostname string           `json:"hostname"`
	Network  string           `json:"network"`
	Hosts    []byte           `json:"hosts"`
	Resolv   []byte           `json:"resolv"` // null = leave the rootfs's file alone
	Insecure bool             `json:"insecure,omitempty"`
	ReadOnly bool             `json:"readonly,omitempty"`
	MakeCwd  bool             `json:"makecwd,omitempty"`
	MkdirCwd bool             `json:"mkdircwd,omitempty"`
	TTY      bool             `json:"tty,omitempty"`
	TTYSize  [2]uint16        `json:"ttysize,omitzero"`
}

// report is one message of the child on reportFD: the placeholders it made,
// or the setup step that failed.
type report struct {
	Created []placeholder `json:"created,omitempty"`
	Step    string        `json:"step,omitempty"`
	Error   string        `json:"error,omitempty"`
	Errno   int           `json:"errno,omitempty"`
}

// setupError is a failed setup step of the child.
type setupError struct {
	step, msg string
	errno     syscall.Errno
}

func (e *setupError) Error() string { return "sandbox: " + e.step + ": " + e.msg }

func (e *setupError) Unwrap() []error {
	var errs []error
	if e.errno != 0 {
		errs = append(errs, e.errno)
	}
	if e.step == "exec" {
		errs = append(errs, ErrExec)
	}
	return errs
}

// run runs cfg on a goroutine of its own, locked to a thread other than
// the main one until the child is reaped: Pdeathsig fires when the forking
// thread exits, not the process; that thread may enter the run's cgroups
// (startInside), and one that could not leave them must die with that
// goroutine, not carry on running the caller's.
func run(ctx context.Context, cfg Config) error {
	var err error
	offMainThread(func() { err = runLocked(ctx, cfg) })
	return err
}

// runLocked is run, on its locked thread.
func runLocked(ctx context.Context, cfg Config) (retErr error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := newSpec(cfg)
	if err != nil {
		return err
	}
	cg, err := newCgroup(cfg.Limits)
	if err != nil {
		return err
	}
	if cg != nil {
		defer func() {
			if rerr := cg.remove(); rerr != nil && retErr == nil {
				retErr = rerr
			}
		}()
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create spec pipe: %w", err)
	}
	defer specW.Close()
	defer specR.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create report pipe: %w", err)
	}
	defer reportR.Close()
	defer reportW.Close()

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initArg0}
	cmd.ExtraFiles = []*os.File{specR, reportW}     // fds 3 and 4
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr // nil: /dev/null
	cmd.Stdin = cfg.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: cloneFlags(s.Network),
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	term, err := attachTTY(cmd, cfg)
	if err != nil {
		return err
	}
	defer term.close()
	inside, err := cg.startInside(cmd.Start)
	if errors.Is(err, errThreadInCgroup) {
		// Never back in the pool from the run's cgroup: a lock that
		// offMainThread does not undo ends the thread with run's
		// goroutine; the child, if any, goes now.
		runtime.LockOSThread()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return err
	}
	if err != nil {
		if errors.Is(err, syscall.EPERM) && os.Geteuid() != 0 {
			return fmt.Errorf("start sandbox: %w (RUN needs root: it creates namespaces and mounts overlayfs)", err)
		}
		return fmt.Errorf("start sandbox: %w", err)
	}
	specR.Close()
	reportW.Close()
	term.started(cfg)
	stopSignals := forwardSignals(cmd.Process, cfg.Signals)
	// The child, unless born in its cgroup (startInside), sets up while the
	// parent moves it in (a move waits for an RCU grace period:
	// milliseconds), and execs only once it has read the go-ahead byte
	// that follows the spec.
	sendErr := json.NewEncoder(specW).Encode(s)
	var joinErr error
	if sendErr == nil && cg != nil && !inside {
		if joinErr = cg.add(cmd.Process.Pid); joinErr != nil {
			_ = cmd.Process.Kill()
		}
	}
	if sendErr == nil && joinErr == nil {
		_, sendErr = specW.Write([]byte{goAhead})
	}
	specW.Close()
	created, setupErr := readReports(reportR)
	waitErr := cmd.Wait()
	stopSignals()
	term.wait()
	cleanErr := removePlaceholders(s.Upper, created)

	switch {
	case waitErr != nil && ctx.Err() != nil:
		return ctx.Err()
	case setupErr != nil:
		return setupErr
	case joinErr != nil:
		return joinErr
	case sendErr != nil && waitErr != nil:
		return fmt.Errorf("send sandbox spec: %w", sendErr)
	case waitErr != nil:
		err := exitError(waitErr)
		var ee *ExitError
		if cg != nil && errors.As(err, &ee) {
			ee.Limit = cg.reached()
		}
		return err
	}
	return cleanErr
}

// newSpec checks cfg and fills in its defaults.
func newSpec(cfg Config) (*spec, error) {
	if len(cfg.Args) == 0 {
		return nil, errors.New("sandbox: no command")
	}
	if err := checkLimitValues(cfg.Limits); err != nil {
		return nil, err
	}
	root := cfg.RootDir
	if root == "" && len(cfg.Rootfs) > 0 {
		root = cfg.Rootfs[0].Target
	}
	if root == "" || !filepath.IsAbs(root) {
		return nil, fmt.Errorf("sandbox: root dir %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	network := cfg.Network
	switch network {
	case "":
		network = "host"
	case "host", "none":
	default:
		return nil, fmt.Errorf("sandbox: unknown network mode %q", network)
	}
	s := &spec{
		Root:     root,
		Mounts:   cfg.Rootfs,
		Extra:    cfg.Mounts,
		Upper:    upperDir(root, cfg.Rootfs),
		Args:     cfg.Args,
		Env:      cfg.Env,
		Cwd:      cfg.Cwd,
		UID:      cfg.UID,
		GID:      cfg.GID,
		Groups:   cfg.Groups,
		Hostname: cfg.Hostname,
		Network:  network,
		Hosts:    cfg.Hosts,
		Resolv:   cfg.Resolv,
		Insecure: cfg.Insecure,
		ReadOnly: cfg.ReadOnly,
		MakeCwd:  cfg.MakeCwd,
		MkdirCwd: cfg.MkdirCwd,
		TTY:      cfg.TTY,
		TTYSize:  cfg.TTYSize,
	}
	if s.Cwd == "" {
		s.Cwd = "/"
	}
	if s.Hostname == "" {
		s.Hostname = "builder"
	}
	if s.Hosts == nil {
		s.Hosts = []byte("127.0.0.1\tlocalhost " + s.Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	return s, nil
}

func cloneFlags(network string) uintptr {
	f := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if network == "none" {
		f |= syscall.CLONE_NEWNET
	}
	return f
}

// mountTarget is where m goes: RootDir, or below it for a relative Target.
func mountTarget(root string, m snapshot.Mount) string {
	switch {
	case m.Target == "":
		return root
	case filepath.IsAbs(m.Target):
		return filepath.Clean(m.Target)
	}
	return filepath.Join(root, m.Target)
}

// upperDir returns the dir that receives writes to the root of the rootfs:
// the upperdir of the last overlay mounted on root, or the source of the
// last bind there; "" when neither.
func upperDir(root string, mounts []snapshot.Mount) string {
	if len(mounts) == 0 {
		return root // the child binds root onto itself
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		m := mounts[i]
		if mountTarget(root, m) != root {
			continue
		}
		if isBind(m) {
			return m.Source
		}
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return v
			}
		}
		return ""
	}
	return ""
}

// isBind reports whether m is a bind mount.
func isBind(m snapshot.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// readReports reads the child's reports until EOF (exec or death).
func readReports(r io.Reader) ([]placeholder, error) {
	var created []placeholder
	dec := json.NewDecoder(r)
	for {
		var m report
		if err := dec.Decode(&m); err != nil {
			// EOF: exec'd or died; garbage: a dying child, judged by Wait.
			return created, nil
		}
		created = append(created, m.Created...)
		if m.Step != "" {
			return created, &setupError{step: m.Step, msg: m.Error, errno: syscall.Errno(m.Errno)}
		}
	}
}

// exitError turns the error of Wait into an *ExitError (128+signal when killed).
func exitError(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("wait for sandbox: %w", err)
	}
	return &ExitError{Code: exitCode(ee.Sys().(syscall.WaitStatus))}
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
