package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
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
	key    string
	mount  func(tmp string) (snapshot.Mount, error)
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
	for i, m := range instructions.GetMounts(c) {
		target := m.Target
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
			rm, err = bd.cacheMount(m, target)
		case instructions.MountTypeTmpfs:
			rm = tmpfsMount(m, target)
		case instructions.MountTypeBind:
			rm, err = bd.bindMount(ctx, s, m, target)
		case instructions.MountTypeSecret:
			rm, err = bd.secretMount(m, target)
			if errors.Is(err, errSkipMount) {
				continue
			}
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
		perm = fromOctal(uint32(*m.Mode))
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	return perm, uid, gid
}

func (bd *build) cacheMount(m *instructions.Mount, target string) (runMount, error) {
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
	dirID := fmt.Sprintf("%s\x00%d:%d:%o", id, uid, gid, perm)
	key := fmt.Sprintf("cache:%s:id=%q:%d:%d:%o:ro=%t", target, id, uid, gid, perm, m.ReadOnly)
	locked := m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate
	return runMount{locked: locked, key: key, mount: func(string) (snapshot.Mount, error) {
		dir, err := bd.b.Cache.MountDir(dirID, perm, uid, gid)
		return snapshot.Mount{Type: "bind", Source: dir, Target: target, Options: opts}, err
	}}, nil
}

func tmpfsMount(m *instructions.Mount, target string) runMount {
	opts := []string{"nosuid", "nodev", "mode=1777"}
	if m.SizeLimit > 0 {
		opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
	}
	return runMount{key: "tmpfs:" + target + ":" + strings.Join(opts, ","), mount: func(string) (snapshot.Mount, error) {
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
	mk := func(key string, layers func(tmp string) ([]string, error)) runMount {
		return runMount{key: fmt.Sprintf("bind:%s:%s:rw=%t", target, key, rw), mount: func(tmp string) (snapshot.Mount, error) {
			ls, err := layers(tmp)
			if err != nil {
				return snapshot.Mount{}, fmt.Errorf("--mount source %s: %w", m.Source, err)
			}
			return layersMount(ls, target, rw, tmp)
		}}
	}
	if m.From != "" {
		from, err := bd.fromState(ctx, s, m.From)
		if err != nil {
			return runMount{}, err
		}
		return mk(from.key.String()+":"+src, func(string) ([]string, error) { return bd.stageLayers(ctx, from, src) }), nil
	}
	fsys, _, err := bd.contextFS()
	if err != nil {
		return runMount{}, err
	}
	if c := path.Clean(m.Source); c == ".." || strings.HasPrefix(c, "../") {
		return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, errOutside)
	}
	sel := &selection{bd: bd, fsys: fsys, ig: bd.ctxIgnore, isContext: true}
	r, err := fsys.Resolve(src)
	var fi fs.FileInfo
	if err == nil {
		fi, err = fsys.Lstat(r)
	}
	if err != nil || sel.skip(r) {
		return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, errNoSource)
	}
	ws, err := sel.walk(copyItem{fsys: fsys, src: r, fi: fi})
	if err != nil {
		return runMount{}, err
	}
	srcs := make([]cache.Source, 0, len(ws))
	for _, w := range ws {
		srcs = append(srcs, cache.Source{Path: strings.TrimPrefix(w.src, "/"), Dest: w.rel})
	}
	d, err := bd.b.Cache.HashSources(ctx, bd.opts.ContextDir, srcs)
	if err != nil {
		return runMount{}, err
	}
	if fi.IsDir() && !bd.ctxIgnore.empty() {
		// The context as BuildKit sends it: without ignored files.
		return mk(d.String(), func(tmp string) ([]string, error) {
			dir, err := filteredCopy(ws, fsys, tmp)
			return []string{dir}, err
		}), nil
	}
	host, err := fsys.HostPath(r)
	if err != nil {
		return runMount{}, err
	}
	return mk(d.String(), func(string) ([]string, error) { return []string{host}, nil }), nil
}

// stageLayers returns the host dirs (top first) that make up src in the
// rootfs of st, or the one host file when src is a file.
func (bd *build) stageLayers(ctx context.Context, st *imageState, src string) ([]string, error) {
	root, err := bd.rootfs(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(root.v.Lowers) == 0 {
		return nil, errNoSource
	}
	r, err := root.Resolve(src)
	if err != nil {
		return nil, err
	}
	layers, err := root.v.DirLayers(r)
	if errors.Is(err, syscall.ENOTDIR) {
		h, err := root.HostPath(r)
		return []string{h}, err
	}
	return layers, err
}

// layersMount shows layers (top first) at target: a bind of a single one,
// else an overlay; rw gives it a throwaway upper dir under tmp.
func layersMount(layers []string, target string, rw bool, tmp string) (snapshot.Mount, error) {
	if !rw && len(layers) == 1 {
		return snapshot.Mount{Type: "bind", Source: layers[0], Target: target, Options: []string{"rbind", "ro"}}, nil
	}
	if fi, err := os.Stat(layers[0]); err == nil && !fi.IsDir() {
		// A file cannot be an overlay: bind it, read-only.
		return snapshot.Mount{Type: "bind", Source: layers[0], Target: target, Options: []string{"rbind", "ro"}}, nil
	}
	opts := []string{"lowerdir=" + strings.Join(layers, ":")}
	if !rw {
		opts = append(opts, "ro")
	} else {
		dir, err := os.MkdirTemp(tmp, "mount-")
		if err != nil {
			return snapshot.Mount{}, err
		}
		up, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		for _, d := range []string{up, work} {
			err := os.Mkdir(d, 0o755)
			if err == nil {
				err = os.Chmod(d, 0o755) // the mount's root: not narrowed by the umask
			}
			if err != nil {
				return snapshot.Mount{}, err
			}
		}
		opts = append(opts, "upperdir="+up, "workdir="+work)
	}
	opts = append(opts, "index=off", "redirect_dir=off", "metacopy=off")
	return snapshot.Mount{Type: "overlay", Source: "overlay", Target: target, Options: opts}, nil
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
	key := fmt.Sprintf("secret:%s:id=%q:%d:%d:%o", target, id, uid, gid, perm)
	var env string
	if m.Env != nil {
		name := *m.Env
		if name == "" {
			name = strings.ToUpper(id) // BuildKit's default: the id
		}
		env = name + "=" + string(data)
		key += ":env=" + name
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

// mountKeys is the cache identity of a RUN's mounts.
func mountKeys(ms []runMount) map[string]string {
	if len(ms) == 0 {
		return nil
	}
	out := make(map[string]string, len(ms))
	for i, m := range ms {
		out["mount."+strconv.Itoa(i)] = m.key
	}
	return out
}

// filteredCopy lays the walked context files out under a new dir of tmp:
// hardlinks where the filesystem allows (no data is copied), else copies.
func filteredCopy(ws []walked, fsys srcFS, tmp string) (string, error) {
	if err := statWalked(ws); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(tmp, "bind-")
	if err != nil {
		return "", fmt.Errorf("create bind dir: %w", err)
	}
	// What this makes (dirs, symlinks, copies; not hardlinks) gets the
	// context's times afterwards, deepest first, as a plain bind shows them.
	var stamp []walked
	for _, w := range ws {
		dst := filepath.Join(dir, filepath.FromSlash(w.rel))
		if w.rel == "" {
			// The root keeps the context's mode, not MkdirTemp's 0700.
			if err := os.Chmod(dst, w.fi.Mode().Perm()); err != nil {
				return "", fmt.Errorf("prepare bind mount: %w", err)
			}
			stamp = append(stamp, w)
			continue
		}
		host, err := fsys.HostPath(w.src)
		if err != nil {
			return "", err
		}
		switch {
		case w.fi.IsDir():
			if err = os.Mkdir(dst, 0o700); err == nil {
				err = os.Chmod(dst, w.fi.Mode().Perm()) // not narrowed by the umask
			}
		case w.fi.Mode()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(host); err == nil {
				err = os.Symlink(target, dst)
			}
		case w.fi.Mode().IsRegular():
			if err = os.Link(host, dst); err == nil {
				continue
			}
			err = copyFile(host, dst, w.fi.Mode().Perm())
		}
		if err != nil {
			return "", fmt.Errorf("prepare bind mount: %w", err)
		}
		stamp = append(stamp, w)
	}
	for i := len(stamp) - 1; i >= 0; i-- {
		t := unix.NsecToTimespec(stamp[i].fi.ModTime().UnixNano())
		dst := filepath.Join(dir, filepath.FromSlash(stamp[i].rel))
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return "", fmt.Errorf("prepare bind mount: %w", err)
		}
	}
	return dir, nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := openNoFollow(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if err = out.Chmod(perm); err == nil { // not narrowed by the umask
		_, err = io.Copy(out, in)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
