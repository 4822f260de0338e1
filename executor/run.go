package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci/registry"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	bkparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run executes a RUN in the sandbox over an overlay of the parent chain;
// the overlay's upper dir becomes the layer and the next snapshot.
func (bd *build) run(ctx context.Context, s *stage, st *imageState, c *instructions.RunCommand, step *int) error {
	for _, f := range c.FlagsUsed {
		if f != "network" && f != "mount" && f != "security" {
			return fmt.Errorf("RUN --%s is not supported yet", f)
		}
	}
	insecure := instructions.GetSecurity(c) == instructions.SecurityInsecure
	if insecure && !bd.opts.AllowInsecure {
		return errors.New("RUN --security=insecure needs --allow security.insecure")
	}
	mounts, err := bd.runMounts(ctx, s, st, c)
	if err != nil {
		return err
	}
	cmd, err := runArgs(st, c)
	if err != nil {
		return err
	}
	network := instructions.GetNetwork(c)
	if network == instructions.NetworkDefault || network == "" {
		network = bd.opts.Network
	}
	env := bd.runEnv(st)
	plat := execPlatform(st)
	key := runKey{Op: "RUN", Args: cmd.args, Script: cmd.script, Env: env, User: st.img.Config.User,
		Workdir: st.img.Config.WorkingDir, Shell: st.img.Config.Shell, BuildArgs: st.args.Map(), Network: network, Insecure: insecure,
		Platform: registry.FormatPlatform(plat)}
	for _, m := range mounts {
		key.Mounts = append(key.Mounts, m.key)
	}
	hist := cmd.args
	if cmd.script != "" {
		// BuildKit runs a shebang heredoc as a file at /dev/pipes/<name>
		// through the shell, and records that.
		hist = withShell(st, []string{"/dev/pipes/" + c.Files[0].Name})
	}
	return bd.runStep(ctx, s, st, step, fsStep{
		text:      c.String(),
		createdBy: "RUN " + runHistory(hist, st) + " # buildkit",
		key:       key,
		produce: func(ctx context.Context) (*produced, error) {
			if err := checkExec(plat); err != nil {
				return nil, err
			}
			return bd.execRun(ctx, st, cmd, bd.withProxies(env), network, insecure, mounts)
		},
	})
}

// runCmd is what a RUN executes: argv, or a script.
type runCmd struct {
	args []string
	// script is a heredoc with a shebang, run as a file (args is then
	// unused) at /dev/pipes/<name>, as BuildKit mounts it.
	script, scriptName string
}

// runArgs turns the RUN line (shell form, exec form, heredocs) into argv.
func runArgs(st *imageState, c *instructions.RunCommand) (runCmd, error) {
	args := c.CmdLine
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return runCmd{}, fmt.Errorf("invalid heredoc RUN: %v", args)
		}
		if hd := bkparser.MustParseHeredoc(args[0]); hd != nil && len(c.Files) == 1 {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = bkparser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				// A script with a shebang is run as a file (see execRun).
				return runCmd{script: data, scriptName: c.Files[0].Name}, nil
			}
			args = []string{data}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteByte('\n')
				b.WriteString(f.Data)
				b.WriteString(f.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell {
		args = withShell(st, args)
	}
	return runCmd{args: args}, nil
}

// runEnv is RUN's environment as the cache key sees it: the image ENV and
// the ARGs in parser.Vars (an ARG declared after an ENV of the same name wins, as
// in BuildKit, where both set the build state's env in order), and a
// default PATH. Proxy build args are added by withProxies, outside the key.
func (bd *build) runEnv(st *imageState) []string {
	env := make([]string, 0, len(st.img.Config.Env)+len(st.args)+1)
	have := map[string]bool{}
	for _, e := range st.img.Config.Env {
		k, _, _ := strings.Cut(e, "=")
		if st.argWins[k] {
			v, _ := st.args.Get(k)
			e = k + "=" + v
		}
		env = append(env, e)
		have[k] = true
	}
	for _, a := range st.args {
		if !have[a.K] {
			env = append(env, a.K+"="+a.V)
			have[a.K] = true
		}
	}
	if !have["PATH"] {
		env = append(env, "PATH="+defaultPath)
	}
	return env
}

// withProxies adds the predefined proxy build args (HTTP_PROXY, ...) that
// the Dockerfile did not declare: RUN sees them, but like BuildKit they are
// not part of the cache key or the history.
func (bd *build) withProxies(env []string) []string {
	out := slices.Clone(env)
	for _, k := range parser.ProxyArgs {
		if v, ok := bd.opts.BuildArgs[k]; ok && !hasEnv(out, k) {
			out = append(out, k+"="+v)
			bd.markUsed(k)
		}
	}
	return out
}

// runHistory is BuildKit's created_by for RUN: "|N K=V ... cmd".
func runHistory(args []string, st *imageState) string {
	var pre []string
	seen := map[string]int{}
	env := st.expandEnv() // as BuildKit: the value RUN sees (ENV wins)
	for _, a := range st.argDefs {
		v, ok := env.Get(a.K)
		if !ok {
			v = a.V
		}
		if i, ok := seen[a.K]; ok {
			pre[i] = a.K + "=" + v
			continue
		}
		seen[a.K] = len(pre)
		pre = append(pre, a.K+"="+v)
	}
	if len(pre) > 0 {
		pre = append([]string{fmt.Sprintf("|%d", len(pre))}, pre...)
	}
	return strings.Join(append(pre, args...), " ")
}

// execRun runs args over a new active snapshot and packs its upper dir.
func (bd *build) execRun(ctx context.Context, st *imageState, cmd runCmd, env []string, network string, insecure bool, mounts []runMount) (*produced, error) {
	if err := bd.unpack(ctx, st); err != nil {
		return nil, err
	}
	a, err := bd.st.Snapshots.Prepare(ctx, st.chain)
	if errors.Is(err, snapshot.ErrNotFound) {
		// An ancestor is gone (a prune that crashed): unpack it again.
		if err = bd.unpackAll(ctx, st); err == nil {
			a, err = bd.st.Snapshots.Prepare(ctx, st.chain)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = bd.st.Snapshots.Remove(a)
		}
	}()
	// The parent rootfs, read through the lowers Prepare already listed
	// (each listing stats every layer of the chain).
	root := viewOf(a.Lowers)
	u, err := fileset.ResolveUser(root, st.img.Config.User)
	if err != nil {
		return nil, err
	}
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+u.Home)
	}
	rootDir, err := bd.tmp.mkdirTemp("rootfs-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(rootDir)
	args := cmd.args
	extra := make([]snapshot.Mount, 0, len(mounts)+1)
	if cmd.script != "" {
		// A file of the work dir, bound read-only where BuildKit puts it
		// (in the RUN's own /dev: never in the layer).
		dir, err := bd.tmp.get()
		if err != nil {
			return nil, err
		}
		m, err := writeScript(dir, cmd.scriptName, cmd.script)
		if err != nil {
			return nil, err
		}
		defer os.Remove(m.Source)
		extra = append(extra, m)
		args = []string{m.Target}
	}
	cwd := st.img.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	groups := make([]uint32, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, uint32(g))
	}
	out := &logWriter{bd: bd, id: stepID(ctx)}
	var secretFiles []string
	release := func() {
		for _, f := range secretFiles {
			_ = os.Remove(f)
		}
		secretFiles = nil
		for _, m := range mounts {
			if m.release != nil {
				m.release() // ssh sockets
			}
		}
	}
	defer release()
	for _, m := range mounts {
		if m.env != "" {
			env = append(env, m.env) // RUN's environment only: not key, not history
		}
		if m.mount == nil {
			continue
		}
		tmp, err := bd.tmp.get()
		if err != nil {
			return nil, err
		}
		em, err := m.mount(tmp)
		if err != nil {
			return nil, err
		}
		if m.secret {
			secretFiles = append(secretFiles, em.Source)
		}
		if m.locked {
			unlock, err := lockDir(ctx, em.Source)
			if err != nil {
				return nil, fmt.Errorf("lock cache mount %s: %w", m.target, err)
			}
			defer unlock()
		}
		extra = append(extra, em)
	}
	started := time.Now()
	err = sandbox.Run(ctx, sandbox.Config{
		Rootfs:   a.Mounts(rootDir),
		RootDir:  rootDir,
		Mounts:   extra,
		Args:     args,
		Env:      env,
		Cwd:      cwd,
		UID:      uint32(u.UID),
		GID:      uint32(u.GID),
		Groups:   groups,
		Network:  network,
		Resolv:   hostResolvConf(),
		Stdout:   out,
		Stderr:   out,
		Insecure: insecure,
		Limits:   bd.runLimits(),
		// BuildKit's RUN hostname: a build that records it is the same.
		Hostname: "buildkitsandbox",
		MkdirCwd: true, // as runc: a WORKDIR a RUN removed comes back
	})
	release() // now, not after packing the layer
	if err != nil {
		var ee *sandbox.ExitError
		if errors.As(err, &ee) && snapshot.SingleID() {
			// The likely cause: an id this namespace cannot hold.
			return nil, fmt.Errorf("%w (this user namespace maps one id only: chown to another id fails; map subordinate ids, e.g. unshare --map-auto, or run builder as a user listed in /etc/subuid)", err)
		}
		return nil, err // *sandbox.ExitError reads "exit code N"
	}
	changeOpts := changeOptions(root)
	if bd.clock.stampsRun() {
		// A dir left out of the layer keeps the time below, on disk too.
		changeOpts.SameDir = func(name string, below fs.FileInfo) error { return setTime(a.Upper, name, below.ModTime()) }
	}
	ents, err := layer.Changes(a.Upper, belowIn(root), changeOpts)
	if err != nil {
		return nil, fmt.Errorf("diff upper dir: %w", err)
	}
	if bd.clock.stampsRun() {
		if err := stampRunTimes(a.Upper, ents, started, st.newest, root.Lstat); err != nil {
			return nil, err
		}
	}
	p, err := bd.writeLayer(ctx, ents)
	if err != nil || p == nil {
		return p, err
	}
	ok = true
	p.commit = func(ctx context.Context, chain digest.Digest) error {
		_, err := bd.st.Snapshots.Commit(ctx, a, chain)
		return err
	}
	p.abort = func() { _ = bd.st.Snapshots.Remove(a) }
	return p, nil
}

// writeScript writes a heredoc script with a shebang to a file of dir and
// returns its mount at /dev/pipes/<name> (the name BuildKit gives it: the
// script sees its own path as $0, the same on every run).
func writeScript(dir, name, data string) (snapshot.Mount, error) {
	f, err := os.CreateTemp(dir, "heredoc-")
	if err != nil {
		return snapshot.Mount{}, err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o755)
	}
	if err != nil {
		os.Remove(f.Name())
		return snapshot.Mount{}, err
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		name = "EOF"
	}
	return snapshot.Mount{Type: "bind", Source: f.Name(), Target: "/dev/pipes/" + name, Options: []string{"bind", "ro"}}, nil
}

// logWriter streams RUN output to the reporter.
type logWriter struct {
	bd *build
	id int
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.bd.rep.Report(Event{Kind: StepLog, ID: w.id, Data: append([]byte(nil), p...)})
	return len(p), nil
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// hostResolvConf is the host's resolver config, given to RUN.
func hostResolvConf() []byte {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return []byte("nameserver 127.0.0.1\n")
	}
	return data
}
