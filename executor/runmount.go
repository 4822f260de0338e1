package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runMount is one RUN --mount: its share of the step's cache key, and how
// to make the sandbox mount when the step runs.
type runMount struct {
	secret bool // a temp file to remove right after the run
	// env, when set, is "NAME=value" for RUN's environment only (a secret
	// with env=); with no target there is no mount at all (mount is nil).
	env    string
	locked bool // sharing=locked|private: one RUN at a time uses the dir
	target string
	key    mountKey
	mount  func(tmp string) (snapshot.Mount, error)
	// release, when set, ends what mount started (an ssh socket); it is
	// called once the run ends, and may be called more than once.
	release func()
}

// runMounts reads the RUN --mount flags. Cache, tmpfs and secret mounts
// are not part of the cache key (as in BuildKit: their content is not an
// input); a bind mount is, through the digest of what it shows.
func (bd *build) runMounts(ctx context.Context, s *stage, st *imageState, c *instructions.RunCommand) ([]runMount, error) {
	var out []runMount
	workdir := st.img.Config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	nssh := 0
	for i, m := range instructions.GetMounts(c) {
		target := m.Target
		if m.Type == instructions.MountTypeSSH {
			if target == "" {
				target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", nssh) // as BuildKit
			}
			nssh++
		}
		if m.Type == instructions.MountTypeSecret && target == "" && m.Env == nil {
			target = "/run/secrets/" + path.Base(secretID(m))
		}
		envOnly := m.Type == instructions.MountTypeSecret && target == ""
		if target == "" && !envOnly {
			return nil, fmt.Errorf("--mount #%d (type=%s): target is required", i+1, m.Type)
		}
		if !envOnly && !path.IsAbs(target) {
			target = path.Join(workdir, target)
		}
		if !envOnly {
			target = path.Clean(target)
		}
		var rm runMount
		var err error
		switch m.Type {
		case instructions.MountTypeCache:
			rm, err = bd.cacheMount(ctx, s, m, target)
		case instructions.MountTypeTmpfs:
			rm = tmpfsMount(m, target)
		case instructions.MountTypeBind:
			rm, err = bd.bindMount(ctx, s, m, target)
		case instructions.MountTypeSecret:
			rm, err = bd.secretMount(m, target)
			if errors.Is(err, errSkipMount) {
				continue
			}
		case instructions.MountTypeSSH:
			rm, err = bd.sshMount(m, target, nssh == 1 && !hasEnv(bd.runEnv(st), "SSH_AUTH_SOCK"))
		default:
			err = fmt.Errorf("--mount type=%s is not supported yet", m.Type)
		}
		if err != nil {
			return nil, err
		}
		rm.target = target
		out = append(out, rm)
	}
	// Parents before children: /a is mounted before /a/b.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].target, "/") < strings.Count(out[j].target, "/")
	})
	return out, nil
}

// secretID is the id a secret mount names, as BuildKit derives it: the
// source if set, else id=, else the target's base name.
func secretID(m *instructions.Mount) string {
	switch {
	case m.Source != "":
		return m.Source
	case m.CacheID != "":
		return m.CacheID
	}
	return path.Base(m.Target)
}

var errSkipMount = errors.New("optional mount skipped")

// fileOpts reads the mode=, uid= and gid= of a cache or secret mount
// (defaults: perm, root).
func fileOpts(m *instructions.Mount, perm fs.FileMode) (fs.FileMode, int, int) {
	uid, gid := 0, 0
	if m.Mode != nil {
		perm = fileset.FromOctal(uint32(*m.Mode))
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	return perm, uid, gid
}

func (bd *build) cacheMount(ctx context.Context, s *stage, m *instructions.Mount, target string) (runMount, error) {
	id := m.CacheID
	if id == "" {
		id = target
	}
	perm, uid, gid := fileOpts(m, 0o755)
	opts := []string{"rbind"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	// The dir is per id and per base owner and mode (as BuildKit keys it).
	// sharing=locked (and private, which BuildKit serves with a second dir
	// when the first is busy) holds an exclusive lock on it while the RUN
	// runs; shared lets concurrent RUNs use it at once.
	key := mountKey{Type: "cache", Target: target, ID: id, UID: uid, GID: gid, Mode: uint32(perm), ReadOnly: m.ReadOnly}
	base, err := bd.cacheBase(ctx, s, m, &key)
	if err != nil {
		return runMount{}, err
	}
	locked := m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate
	return runMount{locked: locked, key: key, mount: func(string) (snapshot.Mount, error) {
		dir, err := bd.st.Cache.MountDir(id, perm, uid, gid, base(ctx))
		return snapshot.Mount{Type: "bind", Source: dir, Target: target, Options: opts}, err
	}}, nil
}

// cacheBase is what a cache mount with from= starts from, as BuildKit
// has it: the content of source= in that stage or image (its key is part
// of the step's key and of the dir's name, so another base is another
// dir); with no source, the whole rootfs, unless uid, gid or mode ask for
// a fresh dir. Without from=, a cache mount starts empty (nil base).
func (bd *build) cacheBase(ctx context.Context, s *stage, m *instructions.Mount, key *mountKey) (func(context.Context) *cache.MountBase, error) {
	none := func(context.Context) *cache.MountBase { return nil }
	if m.From == "" {
		return none, nil
	}
	from, err := bd.fromState(ctx, s, m.From)
	if err != nil {
		return nil, err
	}
	src := path.Clean("/" + m.Source)
	key.From, key.Source = from.key, src
	if src == "/" && (m.UID != nil || m.GID != nil || m.Mode != nil) {
		return none, nil
	}
	return func(ctx context.Context) *cache.MountBase {
		return &cache.MountBase{Key: from.key.String() + src, Fill: func(dir string) error {
			view, err := bd.rootfs(ctx, from)
			if err != nil {
				return err
			}
			r, err := view.Resolve(src)
			var fi fs.FileInfo
			if err == nil {
				fi, err = view.Lstat(r)
			}
			if err != nil {
				return fmt.Errorf("--mount source %s: %w", m.Source, fileset.ErrNoSource)
			}
			if !fi.IsDir() {
				return fmt.Errorf("--mount source %s: not a directory", m.Source)
			}
			ws, err := (&fileset.Selection{FS: view}).Walk(fileset.Match{Path: r, Info: fi})
			if err != nil {
				return err
			}
			return fileset.CopyTree(ws, view, dir)
		}}
	}, nil
}

func tmpfsMount(m *instructions.Mount, target string) runMount {
	opts := []string{"nosuid", "nodev", "mode=1777"}
	if m.SizeLimit > 0 {
		opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
	}
	return runMount{key: mountKey{Type: "tmpfs", Target: target, Options: opts}, mount: func(string) (snapshot.Mount, error) {
		return snapshot.Mount{Type: "tmpfs", Source: "tmpfs", Target: target, Options: opts}, nil
	}}
}

// bindMount shows a path of the context (default) or of a stage or image
// at target, read-only unless rw: then writes land in a throwaway overlay
// upper dir, as BuildKit discards them.
func (bd *build) bindMount(ctx context.Context, s *stage, m *instructions.Mount, target string) (runMount, error) {
	src := path.Clean("/" + m.Source)
	rw := !m.ReadOnly
	// mk keys the mount by what it shows; layers runs only when the step
	// runs (a cache hit neither unpacks nor copies anything).
	mk := func(key mountKey, layers func(tmp string) ([]string, error)) runMount {
		key.Type, key.Target, key.ReadOnly = "bind", target, !rw
		return runMount{key: key, mount: func(tmp string) (snapshot.Mount, error) {
			ls, err := layers(tmp)
			if err != nil {
				return snapshot.Mount{}, fmt.Errorf("--mount source %s: %w", m.Source, err)
			}
			return snapshot.LayersMount(ls, target, rw, tmp)
		}}
	}
	fsys, ig, err := bd.contextFS()
	if err != nil {
		return runMount{}, err
	}
	if m.From != "" {
		tc, err := bd.contextTree(ctx, m.From)
		if err != nil {
			return runMount{}, err
		}
		switch {
		case tc == nil:
			from, err := bd.fromState(ctx, s, m.From)
			if err != nil {
				return runMount{}, err
			}
			return mk(mountKey{From: from.key, Source: src}, func(string) ([]string, error) { return bd.stageLayers(ctx, from, src) }), nil
		case tc.key != "":
			// An immutable tree context: keyed by what identifies it,
			// opened only when the step runs.
			return mk(mountKey{From: tc.key, Source: src}, func(string) ([]string, error) { return tc.hostPath(ctx, src) }), nil
		}
		// A directory context: hashed like the main context.
		if fsys, err = tc.open(ctx); err != nil {
			return runMount{}, err
		}
		ig = tc.ig
	}
	if c := path.Clean(m.Source); c == ".." || strings.HasPrefix(c, "../") {
		return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, fileset.ErrOutside)
	}
	sel := &fileset.Selection{FS: fsys, Ignore: ig, Context: true}
	r, err := fsys.Resolve(src)
	var fi fs.FileInfo
	if err == nil {
		fi, err = fsys.Lstat(r)
	}
	if err != nil || sel.Skip(r) {
		return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, fileset.ErrNoSource)
	}
	ws, err := sel.Walk(fileset.Match{Path: r, Info: fi})
	if err != nil {
		return runMount{}, err
	}
	srcs := make([]cache.Source, 0, len(ws))
	for _, w := range ws {
		srcs = append(srcs, cache.Source{Path: strings.TrimPrefix(w.Src, "/"), Dest: w.Rel})
	}
	d, err := bd.st.Cache.HashSources(ctx, fsys.Root(), srcs)
	if err != nil {
		return runMount{}, err
	}
	if fi.IsDir() && !ig.Empty() {
		// The context as BuildKit sends it: without ignored files.
		return mk(mountKey{Content: d}, func(tmp string) ([]string, error) {
			dir, err := os.MkdirTemp(tmp, "bind-")
			if err == nil {
				err = fileset.Materialize(ws, fsys, dir)
			}
			return []string{dir}, err
		}), nil
	}
	host, err := fsys.HostPath(r)
	if err != nil {
		return runMount{}, err
	}
	return mk(mountKey{Content: d}, func(string) ([]string, error) { return []string{host}, nil }), nil
}

// stageLayers returns the host dirs (top first) that make up src in the
// rootfs of st, or the one host file when src is a file.
func (bd *build) stageLayers(ctx context.Context, st *imageState, src string) ([]string, error) {
	lowers, err := bd.lowers(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(lowers) == 0 {
		return nil, fileset.ErrNoSource
	}
	v := snapshot.View{Lowers: lowers}
	r, err := v.Resolve(src)
	if err != nil {
		return nil, err
	}
	layers, err := v.DirLayers(r)
	if errors.Is(err, syscall.ENOTDIR) {
		h, err := v.HostPath(r)
		return []string{h}, err
	}
	return layers, err
}

// secretMount binds a --secret file at target (default /run/secrets/<id>),
// read-only, with the requested mode and owner (default 0400 root).
func (bd *build) secretMount(m *instructions.Mount, target string) (runMount, error) {
	id := secretID(m)
	data, ok := bd.opts.Secrets[id]
	if !ok {
		if m.Required {
			return runMount{}, fmt.Errorf("secret %q is required: pass it with --secret id=%s,src=FILE", id, id)
		}
		return runMount{}, errSkipMount
	}
	perm, uid, gid := fileOpts(m, 0o400)
	key := mountKey{Type: "secret", Target: target, ID: id, UID: uid, GID: gid, Mode: uint32(perm)}
	var env string
	if m.Env != nil {
		name := *m.Env
		if name == "" {
			name = strings.ToUpper(id) // BuildKit's default: the id
		}
		env = name + "=" + string(data)
		key.Env = name
	}
	if target == "" {
		return runMount{env: env, key: key}, nil
	}
	return runMount{secret: true, env: env, key: key, mount: func(tmp string) (snapshot.Mount, error) {
		f, err := os.CreateTemp(tmp, "secret-")
		if err != nil {
			return snapshot.Mount{}, err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Lchown(f.Name(), uid, gid)
		}
		if err == nil {
			err = os.Chmod(f.Name(), perm)
		}
		return snapshot.Mount{Type: "bind", Source: f.Name(), Target: target, Options: []string{"bind", "ro"}}, err
	}}, nil
}
