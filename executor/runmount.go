package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runMount is one RUN --mount: its share of the step's cache key, and how
// to make the sandbox mount when the step runs.
type runMount struct {
	key   string
	mount func(tmp string) (snapshot.Mount, error)
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
		if target == "" && m.Type == instructions.MountTypeSecret {
			id := m.CacheID
			if id == "" {
				id = path.Base(m.Source)
			}
			target = "/run/secrets/" + id
		}
		if target == "" {
			return nil, fmt.Errorf("--mount #%d (type=%s): target is required", i+1, m.Type)
		}
		if !path.IsAbs(target) {
			target = path.Join(workdir, target)
		}
		target = path.Clean(target)
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
		out = append(out, rm)
	}
	return out, nil
}

var errSkipMount = errors.New("optional mount skipped")

func (bd *build) cacheMount(m *instructions.Mount, target string) (runMount, error) {
	id := m.CacheID
	if id == "" {
		id = target
	}
	perm, uid, gid := fs.FileMode(0o755), 0, 0
	if m.Mode != nil {
		perm = fromOctal(uint32(*m.Mode))
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	opts := []string{"rbind"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	// Every sharing mode is "shared" here: concurrent builds see one dir.
	return runMount{key: "cache:" + target, mount: func(string) (snapshot.Mount, error) {
		dir, err := bd.b.Cache.MountDir(id, perm, uid, gid)
		return snapshot.Mount{Type: "bind", Source: dir, Target: target, Options: opts}, err
	}}, nil
}

func tmpfsMount(m *instructions.Mount, target string) runMount {
	opts := []string{"nosuid", "nodev", "mode=1777"}
	if m.SizeLimit > 0 {
		opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
	}
	return runMount{key: "tmpfs:" + target, mount: func(string) (snapshot.Mount, error) {
		return snapshot.Mount{Type: "tmpfs", Source: "tmpfs", Target: target, Options: opts}, nil
	}}
}

// bindMount shows a path of the context (default) or of a stage or image
// at target, read-only unless rw: then writes land in a throwaway overlay
// upper dir, as BuildKit discards them.
func (bd *build) bindMount(ctx context.Context, s *stage, m *instructions.Mount, target string) (runMount, error) {
	src := path.Clean("/" + m.Source)
	var layers []string // host dirs, top first, that make up the source
	var key string
	if m.From == "" {
		fsys, _, err := bd.contextFS()
		if err != nil {
			return runMount{}, err
		}
		if c := path.Clean(m.Source); c == ".." || strings.HasPrefix(c, "../") {
			return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, errOutside)
		}
		r, err := fsys.Resolve(src)
		if err != nil {
			return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, errNoSource)
		}
		fi, err := fsys.Lstat(r)
		if err != nil {
			return runMount{}, fmt.Errorf("--mount source %s: %w", m.Source, errNoSource)
		}
		sel := &selection{bd: bd, fsys: fsys, ig: bd.ctxIgnore, isContext: true}
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
		host, _ := fsys.HostPath(r)
		layers, key = []string{host}, d.String()
	} else {
		from, err := bd.fromState(ctx, s, m.From)
		if err != nil {
			return runMount{}, err
		}
		root, err := bd.rootfs(ctx, from)
		if err != nil {
			return runMount{}, err
		}
		key = from.key.String() + ":" + src
		if len(root.v.Lowers) == 0 {
			return runMount{}, fmt.Errorf("--mount from=%s: %s: %w", m.From, src, errNoSource)
		}
		r, err := root.Resolve(src)
		if err == nil {
			layers, err = root.v.DirLayers(r)
		}
		if errors.Is(err, syscall.ENOTDIR) {
			var h string
			if h, err = root.HostPath(r); err == nil {
				layers = []string{h} // a single file
			}
		}
		if err != nil {
			return runMount{}, fmt.Errorf("--mount from=%s source %s: %w", m.From, m.Source, err)
		}
	}
	rw := !m.ReadOnly
	return runMount{key: "bind:" + target + ":" + key + ":rw=" + strconv.FormatBool(rw), mount: func(tmp string) (snapshot.Mount, error) {
		return layersMount(layers, target, rw, tmp)
	}}, nil
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
			if err := os.Mkdir(d, 0o755); err != nil {
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
	if m.Env != nil {
		return runMount{}, errors.New("--mount type=secret,env= is not supported yet")
	}
	id := m.CacheID
	if id == "" {
		id = path.Base(m.Source)
	}
	srcPath, ok := bd.opts.Secrets[id]
	if !ok {
		if m.Required {
			return runMount{}, fmt.Errorf("secret %q is required: pass it with --secret id=%s,src=FILE", id, id)
		}
		return runMount{}, errSkipMount
	}
	perm, uid, gid := fs.FileMode(0o400), 0, 0
	if m.Mode != nil {
		perm = fromOctal(uint32(*m.Mode))
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	return runMount{key: "secret:" + target, mount: func(tmp string) (snapshot.Mount, error) {
		data, err := os.ReadFile(srcPath)
		if err != nil {
			return snapshot.Mount{}, fmt.Errorf("read secret %q: %w", id, err)
		}
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
