package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/layer"
	"golang.org/x/sys/unix"
)

// fixedTime is the mtime of files a build synthesizes (created dirs,
// heredocs): SOURCE_DATE_EPOCH when set, else the Unix epoch, so that
// output stays reproducible.
func (bd *build) fixedTime() time.Time {
	if bd.opts.SourceDateEpoch != nil {
		return bd.opts.SourceDateEpoch.UTC()
	}
	return time.Unix(0, 0).UTC()
}

// copyEntries maps the selected items to layer entries at their resolved
// destinations in the parent rootfs.
func (bd *build) copyEntries(ctx context.Context, st *imageState, spec copySpec, items []copyItem, destAbs string, destIsDir bool) ([]layer.Entry, error) {
	if len(items) == 0 {
		return nil, nil // only wildcards that matched nothing
	}
	root, err := bd.rootfs(ctx, st)
	if err != nil {
		return nil, err
	}
	var own *[2]int
	if spec.chown != "" {
		uid, gid, err := chownIDs(root, spec.chown)
		if err != nil {
			return nil, err
		}
		own = &[2]int{uid, gid}
	}
	chmod, _ := parseChmod(spec.chmod)
	// Directories the copy creates (parents, a new destination dir) get
	// 0755 and the --chown owner, as fsutil's MkdirAll in BuildKit's copy
	// makes them; --chmod applies to the copied entries only.
	newDirMode := fs.ModeDir | 0o755

	dest, err := resolveDest(root, destAbs)
	if err != nil {
		return nil, fmt.Errorf("resolve destination %s: %w", destAbs, err)
	}
	if fi, err := root.Lstat(dest); err == nil {
		switch {
		case fi.IsDir() && !destIsDir:
			// COPY file /existing-dir: the file goes inside.
			destIsDir = true
			items[0].destRel = path.Base(items[0].srcName())
		case !fi.IsDir() && destIsDir:
			return nil, fmt.Errorf("destination %s exists and is not a directory", destAbs)
		}
	}
	byName := map[string]layer.Entry{}
	var order []string
	put := func(e layer.Entry) {
		if _, ok := byName[e.Name]; !ok {
			order = append(order, e.Name)
		}
		byName[e.Name] = e
	}
	dirOf := dest
	if !destIsDir {
		dirOf = path.Dir(dest)
	}
	// Ancestors: existing ones keep their metadata, new ones are made.
	for _, a := range ancestors(dirOf) {
		if fi, err := root.Lstat(a); err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("cannot copy to %s: %s is not a directory", destAbs, a)
			}
			e := entryFromInfo(strings.TrimPrefix(a, "/"), fi, true)
			put(e)
			continue
		}
		e := layer.Entry{Name: strings.TrimPrefix(a, "/"), Mode: newDirMode, ModTime: bd.fixedTime()}
		if own != nil {
			e.UID, e.GID = own[0], own[1]
		}
		put(e)
	}
	// Hardlinks are kept within one source only: BuildKit copies each
	// source with its own inode map. (item, dev, ino) -> id in this layer.
	inodes := map[[3]uint64]uint64{}
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		target := dest
		if destIsDir && it.destRel != "" {
			target = path.Join(dest, it.destRel)
			// Dirs between dest and target (COPY --parents) are made
			// like dest's own missing parents.
			for _, a := range ancestors(path.Dir(target)) {
				if len(a) <= len(dest) || byName[strings.TrimPrefix(a, "/")].Name != "" {
					continue
				}
				if _, err := root.Lstat(a); err == nil {
					continue
				}
				e := layer.Entry{Name: strings.TrimPrefix(a, "/"), Mode: fs.ModeDir | 0o755, ModTime: bd.fixedTime()}
				if own != nil {
					e.UID, e.GID = own[0], own[1]
				}
				put(e)
			}
		}
		name := strings.TrimPrefix(target, "/")
		if it.data != nil {
			data := *it.data
			m := it.mode
			if chmod != nil {
				m = chmod(m)
			}
			e := layer.Entry{Name: name, Mode: m, Size: int64(len(data)), ModTime: bd.fixedTime(),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }}
			if own != nil {
				e.UID, e.GID = own[0], own[1]
			}
			put(e)
			continue
		}
		sel := &selection{bd: bd, fsys: it.fsys, excludes: spec.excludes}
		if it.fsys == bd.ctxFS {
			sel.ig, sel.isContext = bd.ctxIgnore, true
		}
		src := it
		if it.archive {
			dir, err := bd.extractArchive(ctx, it)
			if err != nil {
				return nil, err
			}
			fi, err := os.Lstat(dir)
			if err != nil {
				return nil, err
			}
			src = copyItem{fsys: dirFS{root: dir}, src: "/", fi: fi}
			sel = &selection{bd: bd, fsys: src.fsys}
		}
		ws := it.walked
		if ws == nil || it.archive {
			var err error
			if ws, err = sel.walk(src); err != nil {
				return nil, err
			}
		}
		if err := statWalked(ws); err != nil {
			return nil, err
		}
		keepOwner := spec.from != "" || it.archive
		for _, w := range ws {
			e := entryFromInfo(strings.TrimPrefix(path.Join(target, w.rel), "/"), w.fi, keepOwner)
			if w.rel == "" && it.archive {
				continue // the extraction dir itself
			}
			if w.rel == "" && w.fi.IsDir() {
				// The destination dir of a directory's contents: an existing
				// one keeps its metadata, a new one is made like a parent.
				if fi, err := root.Lstat(target); err == nil && fi.IsDir() {
					if _, seen := byName[e.Name]; !seen {
						ex := entryFromInfo(e.Name, fi, true)
						put(ex)
					}
					continue
				}
				e.Mode, e.UID, e.GID = newDirMode, 0, 0
				if own != nil {
					e.UID, e.GID = own[0], own[1]
				}
				put(e)
				continue
			}
			if e.Ino != 0 {
				k := [3]uint64{uint64(i), e.Dev, e.Ino}
				id, ok := inodes[k]
				if !ok {
					id = uint64(len(inodes)) + 1
					inodes[k] = id
				}
				e.Dev, e.Ino = 0, id
			}
			if it.mode != 0 {
				e.Mode = e.Mode.Type() | it.mode
			}
			if own != nil {
				e.UID, e.GID = own[0], own[1]
			}
			if chmod != nil && e.Mode&fs.ModeSymlink == 0 {
				e.Mode = chmod(e.Mode)
			}
			if err := fillSource(&e, src.fsys, w); err != nil {
				return nil, err
			}
			put(e)
		}
	}
	out := make([]layer.Entry, 0, len(order))
	for _, n := range order {
		if n != "" {
			out = append(out, byName[n])
		}
	}
	return out, nil
}

// srcName is the base name a single source file lands under.
func (it copyItem) srcName() string {
	if it.destRel != "" {
		return it.destRel
	}
	return path.Base(it.src)
}

// ancestors returns "/a", "/a/b", ... "/a/b/c" for "/a/b/c" ("/" excluded).
func ancestors(p string) []string {
	p = path.Clean(p)
	if p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	out := make([]string, 0, len(parts))
	cur := ""
	for _, x := range parts {
		cur += "/" + x
		out = append(out, cur)
	}
	return out
}

// entryFromInfo makes an entry from a FileInfo (owner kept or reset to 0).
func entryFromInfo(name string, fi fs.FileInfo, keepOwner bool) layer.Entry {
	e := layer.Entry{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		e.Size = fi.Size()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if keepOwner {
			e.UID, e.GID = int(st.Uid), int(st.Gid)
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			e.Dev, e.Ino = uint64(st.Dev), uint64(st.Ino)
		}
		if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
			e.Devmajor, e.Devminor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
		}
	}
	return e
}

// fillSource sets the link target or the content opener of e.
func fillSource(e *layer.Entry, fsys srcFS, w walked) error {
	switch {
	case w.fi.Mode()&fs.ModeSymlink != 0:
		t, err := fsys.Readlink(w.src)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", w.src, err)
		}
		e.Linkname = t
	case w.fi.Mode().IsRegular():
		src := w.src
		e.Open = func() (io.ReadCloser, error) { return fsys.Open(src) }
	}
	return nil
}

// extractArchive unpacks an ADD archive into a temp dir (safe apply).
func (bd *build) extractArchive(ctx context.Context, it copyItem) (string, error) {
	dir, err := os.MkdirTemp(bd.tmp, "add-")
	if err != nil {
		return "", err
	}
	host, err := it.fsys.HostPath(it.src)
	if err != nil {
		return "", err
	}
	f, err := os.Open(host)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := layer.Apply(ctx, dir, f, layer.ApplyOptions{Whiteouts: layer.WhiteoutReject}); err != nil {
		return "", fmt.Errorf("extract %s: %w", strings.TrimPrefix(it.src, "/"), err)
	}
	return dir, nil
}

// resolveDest resolves a destination path inside root: symlinks of the
// existing part are followed, missing trailing components are kept.
func resolveDest(root srcFS, p string) (string, error) {
	r, err := root.Resolve(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || p == "/" {
		return "", err
	}
	parent, err := resolveDest(root, path.Dir(p))
	if err != nil {
		return "", err
	}
	return path.Join(parent, path.Base(p)), nil
}
