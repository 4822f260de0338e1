package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/sandbox"
)

// Run (builder run) runs one container of a stored image in the sandbox
// of RUN, in the foreground: the image's rootfs is an overlay of its
// snapshots (unpacked first when missing) with a throwaway upper dir,
// removed when the command's process tree is gone, whatever happened (as
// docker run --rm), after --commit made it an image if asked. No
// container outlives the call.
//
// Locks. Run holds the store lock shared for the whole run, so no prune
// removes the image's snapshots or blobs under it (a prune waits for the
// run to end). Named volumes have their own locks (volume.go): a run holds
// each volume it mounts shared, and volume rm and prune skip a volume that
// is held. A --name is held exclusive for the run: two runs of one name
// cannot overlap.

// ExitError is a command that exited non-zero (or was killed: 128+signal),
// with the limit it reached if any.
type ExitError = sandbox.ExitError

// ErrExec marks (wrapped, with its errno) a command that could not be
// executed: not found (fs.ErrNotExist), not executable.
var ErrExec = sandbox.ErrExec

// Limits are docker run's --memory, --cpus and --pids-limit.
type Limits = sandbox.Limits

// RunOptions are docker run's options for one container. Image is
// required; every zero value is docker run's default.
type RunOptions struct {
	Image string
	// Entrypoint replaces the image's (--entrypoint), and then the image's
	// Cmd is not used either; non-nil and empty: no entrypoint, the
	// image's Cmd (--entrypoint ""). Args replace the image's Cmd.
	Entrypoint []string
	Args       []string
	Env        []string // KEY=VALUE, after the image's
	Workdir    string   // default the image's, else /; created when missing
	User       string   // user[:group], names or ids; default the image's
	Hostname   string   // default a random 12-hex id, as docker
	Name       string   // held for the run: another run of this name fails
	Network    string   // "host" (default) or "none"
	ReadOnly   bool
	Mounts     []RunMount
	Limits     Limits
	// Commit, when set, tags the container's rootfs as a new image once
	// the command has exited 0 (docker commit): the image plus one layer.
	Commit string

	Stdin          io.Reader // nil: /dev/null
	Stdout, Stderr io.Writer
	TTY            bool
	TTYSize        [2]uint16 // rows, columns
	// Signals go to the command (PID 1 of the container) as they come.
	// The end of ctx kills the container's whole process tree.
	Signals <-chan os.Signal
}

// RunMount is one -v, --mount or --tmpfs.
type RunMount struct {
	Type     string // "bind", "volume" or "tmpfs"
	Source   string // bind: an existing host path; volume: a name ("" anonymous)
	Target   string // absolute path in the container
	ReadOnly bool
	// Options of a tmpfs: mount(8) data such as size=64m, mode=1777
	Options []string
}

// nameRE is docker's rule for container and volume names.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

// Run runs the container and returns when its process tree is gone: nil
// when the command exited 0, an *ExitError for another exit status.
func (c *Client) Run(ctx context.Context, opts RunOptions) error {
	if err := checkRunOptions(&opts); err != nil {
		return err
	}
	unlock, err := c.shared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if opts.Name != "" {
		release, err := c.holdName(opts.Name)
		if err != nil {
			return err
		}
		defer release()
	}
	img, err := c.images.Resolve(ctx, opts.Image)
	if err != nil {
		return fmt.Errorf("run %s: %w (builder run uses images of the store: build, load or pull it first)", opts.Image, err)
	}
	chain, err := executor.Unpack(ctx, c.stores(), img)
	if err != nil {
		return fmt.Errorf("run %s: %w", opts.Image, err)
	}
	a, err := c.snaps.Prepare(ctx, chain)
	if err != nil {
		return fmt.Errorf("prepare container rootfs: %w", err)
	}
	defer c.snaps.Remove(a) // the container's changes: never kept
	cfg := img.Config.Config
	argv, err := runArgv(opts, cfg.Entrypoint, cfg.Cmd)
	if err != nil {
		return err
	}
	view := fileset.View(nil)
	if len(a.Lowers) > 0 {
		view = fileset.View(snapshot.View{Lowers: a.Lowers})
	}
	userSpec := cfg.User
	if opts.User != "" {
		userSpec = opts.User
	}
	u, err := fileset.ResolveUser(view, userSpec)
	if err != nil {
		return fmt.Errorf("%w: --user %s: %v", ErrUsage, userSpec, err)
	}
	hostname := opts.Hostname
	if hostname == "" {
		hostname = randomHex(6)
	}
	cwd := opts.Workdir
	if cwd == "" {
		cwd = cfg.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	mounts, release, err := c.runMounts(opts.Mounts)
	if err != nil {
		return err
	}
	defer release()
	rootDir, err := c.images.TempDir("run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(rootDir)
	groups := make([]uint32, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, uint32(g))
	}
	err = sandbox.Run(ctx, sandbox.Config{
		Rootfs:   a.Mounts(rootDir),
		RootDir:  rootDir,
		Mounts:   mounts,
		Args:     argv,
		Env:      runEnv(cfg.Env, opts, hostname, u.Home),
		Cwd:      cwd,
		MakeCwd:  true,
		UID:      uint32(u.UID),
		GID:      uint32(u.GID),
		Groups:   groups,
		Hostname: hostname,
		Network:  opts.Network,
		Resolv:   hostResolvConf(),
		Stdin:    opts.Stdin,
		Stdout:   opts.Stdout,
		Stderr:   opts.Stderr,
		TTY:      opts.TTY,
		TTYSize:  opts.TTYSize,
		ReadOnly: opts.ReadOnly,
		Signals:  opts.Signals,
		Limits:   opts.Limits,
	})
	if err != nil || opts.Commit == "" {
		return err
	}
	desc, err := executor.Commit(ctx, c.stores(), img, a.Upper, a.Lowers, strings.Join(argv, " "))
	if err != nil {
		return fmt.Errorf("commit container: %w", err)
	}
	if err := c.images.Tag(ctx, opts.Commit, desc); err != nil {
		return fmt.Errorf("tag %s: %w", opts.Commit, err)
	}
	return nil
}

// checkRunOptions rejects what no run can do, before any lock is taken.
func checkRunOptions(o *RunOptions) error {
	if o.Image == "" {
		return fmt.Errorf("%w: no image", ErrUsage)
	}
	switch o.Network {
	case "":
		o.Network = "host"
	case "host", "none":
	default:
		return fmt.Errorf("%w: --network %q: want host or none (builder run has no container networks and publishes no ports)", ErrUsage, o.Network)
	}
	if o.Name != "" && !nameRE().MatchString(o.Name) {
		return fmt.Errorf("%w: invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", ErrUsage, o.Name)
	}
	if o.Commit != "" {
		name, err := oci.NormalizeRef(o.Commit)
		if err != nil {
			return fmt.Errorf("%w: --commit %q: %v", ErrUsage, o.Commit, err)
		}
		o.Commit = name
	}
	if o.Workdir != "" && !path.IsAbs(o.Workdir) {
		return fmt.Errorf("%w: the working directory %q is not an absolute path", ErrUsage, o.Workdir)
	}
	for _, e := range o.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return fmt.Errorf("%w: invalid environment variable %q", ErrUsage, e)
		}
	}
	for i, m := range o.Mounts {
		if err := checkMount(&o.Mounts[i]); err != nil {
			return fmt.Errorf("%w: mount %s: %v", ErrUsage, m.Target, err)
		}
	}
	return nil
}

// runArgv resolves the command as docker run does: the entrypoint (the
// image's, or --entrypoint, which also drops the image's Cmd), then the
// arguments given, else the image's Cmd.
func runArgv(o RunOptions, entrypoint, cmd []string) ([]string, error) {
	args := o.Args
	if o.Entrypoint != nil {
		entrypoint = o.Entrypoint
		if len(o.Entrypoint) > 0 {
			cmd = nil
		}
	}
	if len(args) == 0 {
		args = cmd
	}
	argv := append(append([]string(nil), entrypoint...), args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: no command specified: the image has no Entrypoint or Cmd; give one after the image", ErrUsage)
	}
	return argv, nil
}

// runEnv is the container's environment as docker run makes it: a default
// PATH and HOSTNAME, the image's Env, the -e values, then HOME (the user's)
// and TERM (with a terminal) when still unset. Later values of a key win.
func runEnv(image []string, o RunOptions, hostname, home string) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname}
	env = append(env, image...)
	env = append(env, o.Env...)
	if o.TTY {
		env = appendUnset(env, "TERM", "xterm")
	}
	env = appendUnset(env, "HOME", home)
	// One entry per key, the last value, in first-seen order.
	idx := map[string]int{}
	out := env[:0:0]
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := idx[k]; ok {
			out[i] = e
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	return out
}

func appendUnset(env []string, k, v string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return env
		}
	}
	return append(env, k+"="+v)
}

// hostResolvConf is the host's resolver config, given to the container.
func hostResolvConf() []byte {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return []byte("nameserver 127.0.0.1\n")
	}
	return data
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
