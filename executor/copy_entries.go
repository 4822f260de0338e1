package executor

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
)

// copyLayer packs the selected items, at their resolved destinations in
// the parent rootfs, into a new layer.
func (bd *build) copyLayer(ctx context.Context, st *imageState, spec copySpec, items []copyItem, destAbs string, destIsDir bool) (*produced, error) {
	if streams(items) {
		return bd.streamLayer(ctx, func(emit func(layer.Entry) error) error {
			_, err := bd.copyEntries(ctx, st, spec, items, destAbs, destIsDir, emit)
			return err
		})
	}
	ents, err := bd.copyEntries(ctx, st, spec, items, destAbs, destIsDir, nil)
	if err != nil {
		return nil, err
	}
	return bd.writeLayer(ctx, ents)
}

// copier collects the entries of one COPY/ADD layer, each path once.
type copier struct {
	bd    *build
	root  fileset.ViewFS // the parent rootfs
	own   *[2]int        // --chown uid, gid
	chmod fileset.Chmod  // --chmod, nil: modes kept
	// dirPerm is the mode of the directories the copy creates: see newDir.
	dirPerm fs.FileMode
	ents    []layer.Entry  // in the order first put
	byName  map[string]int // index in ents
	// emit, when set, takes each entry instead of ents (in tar order, see
	// copy_stream.go); byName then only has the names put before the
	// sources (record), for has. err is emit's first error.
	emit   func(layer.Entry) error
	record bool
	err    error
	// Hardlinks are kept within one source only: BuildKit copies each
	// source with its own inode map. (item, dev, ino) -> id in this layer.
	inodes map[[3]uint64]uint64
}

func (c *copier) put(e layer.Entry) {
	if c.emit != nil {
		if c.record {
			c.byName[e.Name] = -1
		}
		if c.err == nil && e.Name != "" {
			c.err = c.emit(e)
		}
		return
	}
	if i, ok := c.byName[e.Name]; ok {
		c.ents[i] = e
		return
	}
	c.byName[e.Name] = len(c.ents)
	c.ents = append(c.ents, e)
}

func (c *copier) has(name string) bool {
	_, ok := c.byName[name]
	return ok
}

// newDir is a directory the copy creates (a parent, a new destination
// dir) with the --chown owner and c.dirPerm, as fsutil's MkdirAll in
// BuildKit's copy makes them (fsutil copy.Copy and prepareTargetDir since
// BuildKit v0.21): the rwx bits of an octal --chmod, else 0755.
func (c *copier) newDir(name string) layer.Entry {
	e := layer.Entry{Name: strings.TrimPrefix(name, "/"), Mode: fs.ModeDir | c.dirPerm, ModTime: c.bd.clock.fileTime()}
	c.chown(&e)
	return e
}

func (c *copier) chown(e *layer.Entry) {
	if c.own != nil {
		e.UID, e.GID = c.own[0], c.own[1]
	}
}

// copyEntries maps the selected items to layer entries at their resolved
// destinations in the parent rootfs.
func (bd *build) copyEntries(ctx context.Context, st *imageState, spec copySpec, items []copyItem, destAbs string, destIsDir bool, emit func(layer.Entry) error) ([]layer.Entry, error) {
	if len(items) == 0 {
		return nil, nil // only wildcards that matched nothing
	}
	root := fileset.View(nil) // --link: as if onto an empty tree
	if !spec.link {
		var err error
		if root, err = bd.rootfs(ctx, st); err != nil {
			return nil, err
		}
	}
	var same *sameFilter
	if emit != nil && !spec.link {
		// Streamed (tar order): what the parent already has is held back.
		same = &sameFilter{root: root, clamp: bd.clock.packClamp(), next: emit}
		emit = same.put
	}
	c := &copier{bd: bd, root: root, byName: map[string]int{}, inodes: map[[3]uint64]uint64{}, emit: emit, record: true}
	if spec.chown != "" {
		uid, gid, err := fileset.ChownIDs(root, spec.chown)
		if err != nil {
			return nil, err
		}
		c.own = &[2]int{uid, gid}
	}
	c.chmod, _ = fileset.ParseChmod(spec.chmod)
	c.dirPerm = createdDirPerm(spec.chmod, items)

	dest, err := fileset.ResolveDest(root, destAbs)
	if err != nil {
		return nil, fmt.Errorf("resolve destination %s: %w", destAbs, err)
	}
	if fi, err := root.Lstat(dest); err == nil {
		switch {
		case fi.IsDir() && !destIsDir:
			// COPY file /existing-dir: the files go inside.
			destIsDir = true
			for i := range items {
				items[i].destRel = items[i].src.base()
			}
		case !fi.IsDir() && destIsDir:
			return nil, fmt.Errorf("destination %s exists and is not a directory", destAbs)
		}
	}
	dirOf := dest
	if !destIsDir {
		dirOf = path.Dir(dest)
	}
	// Ancestors: existing ones keep their metadata, new ones are made.
	for _, a := range fileset.Ancestors(dirOf) {
		if fi, err := root.Lstat(a); err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("cannot copy to %s: %s is not a directory", destAbs, a)
			}
			c.put(entryFromInfo(strings.TrimPrefix(a, "/"), fi, true))
			continue
		}
		c.put(c.newDir(a))
	}
	keepOwner := spec.from != ""
	c.record = false
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		target := dest
		if destIsDir && it.destRel != "" {
			target = path.Join(dest, it.destRel)
			// Dirs between dest and target (COPY --parents) are made
			// like dest's own missing parents.
			for _, a := range fileset.Ancestors(path.Dir(target)) {
				if len(a) <= len(dest) || c.has(strings.TrimPrefix(a, "/")) {
					continue
				}
				if _, err := root.Lstat(a); err == nil {
					continue
				}
				c.put(c.newDir(a))
			}
		}
		if err := c.add(ctx, i, it.src, target, keepOwner); err != nil {
			return nil, err
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	out := c.ents[:0]
	for _, e := range c.ents {
		if e.Name != "" {
			out = append(out, e)
		}
	}
	if emit != nil || spec.link {
		return out, nil
	}
	// Collected: the same filter, over the entries in tar order.
	slices.SortFunc(out, func(a, b layer.Entry) int { return comparePaths(a.Name, b.Name) })
	kept := make([]layer.Entry, 0, len(out))
	f := &sameFilter{root: root, clamp: bd.clock.packClamp(), next: func(e layer.Entry) error {
		kept = append(kept, e)
		return nil
	}}
	for _, e := range out {
		if err := f.put(e); err != nil {
			return nil, err
		}
	}
	return kept, nil
}

// sameFilter passes on the entries (in tar order) that change the parent
// rootfs, as BuildKit's differ writes its copy: an entry the layers below
// already have as it is (a file copied again unchanged, an existing parent
// dir) is left out, but for a dir that holds something written, which
// comes back first. Only entries whose dir exists below are looked up.
type sameFilter struct {
	root  fileset.ViewFS
	clamp *time.Time
	next  func(layer.Entry) error
	held  []layer.Entry   // dirs left out so far: each an ancestor of the next
	dirs  map[string]bool // dir (layer name) -> it is a dir below
}

func (f *sameFilter) put(e layer.Entry) error {
	for len(f.held) > 0 && !strings.HasPrefix(e.Name, f.held[len(f.held)-1].Name+"/") {
		f.held = f.held[:len(f.held)-1] // nothing under it was written
	}
	same, err := f.same(e)
	if err != nil {
		return err
	}
	if same {
		if e.Mode.IsDir() {
			f.held = append(f.held, e)
		}
		return nil
	}
	for _, h := range f.held {
		if err := f.next(h); err != nil {
			return err
		}
	}
	f.held = f.held[:0]
	return f.next(e)
}

func (f *sameFilter) same(e layer.Entry) (bool, error) {
	if f.dirs == nil {
		f.dirs = map[string]bool{}
	}
	if e.Whiteout || !f.isDir(path.Dir(e.Name)) {
		return false, nil
	}
	fi, host, err := f.root.LstatHost("/" + e.Name)
	if err != nil {
		return false, nil
	}
	if fi.IsDir() {
		f.dirs[e.Name] = true
	}
	return layer.SameAsBelow(e, fi, host, f.clamp)
}

// isDir reports whether dir (a layer name, "." the root) is a dir below.
func (f *sameFilter) isDir(dir string) bool {
	if dir == "." {
		return true
	}
	ok, seen := f.dirs[dir]
	if !seen {
		fi, err := f.root.Lstat("/" + dir)
		ok = err == nil && fi.IsDir()
		f.dirs[dir] = ok
	}
	return ok
}

// comparePaths orders layer names as a tar of them is written: by path
// components, so that a dir comes right before what it holds.
func comparePaths(a, b string) int {
	for a != "" || b != "" {
		ha, ta, _ := strings.Cut(a, "/")
		hb, tb, _ := strings.Cut(b, "/")
		if c := strings.Compare(ha, hb); c != 0 {
			return c
		}
		a, b = ta, tb
	}
	return 0
}

// createdDirPerm is the mode BuildKit gives the directories a COPY/ADD
// creates. The Dockerfile frontend passes an octal --chmod as a numeric
// mode (a symbolic one as a mode string), and fsutil's copy makes the
// missing parents and a new destination dir with MkdirAll(numeric mode or
// 0755); os.Mkdir/Chmod keep only its rwx bits. An ADD archive is
// unpacked instead, under MkdirAll(dest, 0755); the first source is the
// one that makes the dirs.
func createdDirPerm(chmod string, items []copyItem) fs.FileMode {
	if len(items) > 0 {
		if _, ok := items[0].src.(*archiveSource); ok {
			return 0o755
		}
	}
	n, err := strconv.ParseUint(chmod, 8, 32)
	if chmod == "" || err != nil {
		return 0o755
	}
	return fs.FileMode(n) & fs.ModePerm
}

// add puts the entries of source i at target.
func (c *copier) add(ctx context.Context, i int, src source, target string, keepOwner bool) error {
	switch src := src.(type) {
	case *heredocSource:
		data := src.data
		m := fs.FileMode(0o644)
		if c.chmod != nil {
			m = c.chmod(m)
		}
		e := layer.Entry{Name: strings.TrimPrefix(target, "/"), Mode: m, Size: int64(len(data)), ModTime: c.bd.clock.fileTime(),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }}
		c.chown(&e)
		c.put(e)
		return nil
	case *downloadSource:
		return c.add(ctx, i, src.file, target, keepOwner)
	case *gitSource:
		tree, err := c.bd.gitTree(ctx, src)
		if err != nil {
			return err
		}
		return c.tree(i, tree, target, false, false)
	case *archiveSource:
		dir, err := c.bd.extractArchive(ctx, src)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		tree := &treeSource{sel: &fileset.Selection{FS: fileset.Dir(dir)}, m: fileset.Match{Path: "/", Info: fi}}
		return c.tree(i, tree, target, true, true)
	case *treeSource:
		return c.tree(i, src, target, keepOwner, false)
	}
	return fmt.Errorf("unknown source %T", src)
}

// tree puts a walked tree at target; extracted skips the extraction dir
// itself (an archive's contents land in target).
func (c *copier) tree(i int, src *treeSource, target string, keepOwner, extracted bool) error {
	ws := src.walked
	if ws == nil {
		var err error
		if ws, err = src.sel.Walk(src.m); err != nil {
			return err
		}
	}
	// Each entry is made from a stat that is not kept, and each walked
	// file is dropped once its entry is made.
	src.walked = nil
	if c.emit == nil {
		c.ents = slices.Grow(c.ents, len(ws))
	}
	for j, w := range ws {
		ws[j] = fileset.Walked{}
		if w.Rel == "" && extracted {
			continue
		}
		fi, err := src.sel.Stat(w)
		if err != nil {
			return err
		}
		w.Info = fi
		e := entryFromInfo(strings.TrimPrefix(path.Join(target, w.Rel), "/"), fi, keepOwner)
		if w.Rel == "" && fi.IsDir() {
			// The destination dir of a directory's contents: an existing
			// one keeps its metadata, a new one is made like a parent.
			if fi, err := c.root.Lstat(target); err == nil && fi.IsDir() {
				if !c.has(e.Name) {
					c.put(entryFromInfo(e.Name, fi, true))
				}
				continue
			}
			nd := c.newDir(e.Name)
			nd.ModTime = e.ModTime // the source dir's
			c.put(nd)
			continue
		}
		if w.Info.IsDir() && !extracted {
			// As BuildKit's copy: only the destination itself is resolved
			// through symlinks; a dir of the tree never lands on a file or
			// a symlink of the rootfs (an unpacked archive replaces them).
			if fi, err := c.root.Lstat("/" + e.Name); err == nil && !fi.IsDir() {
				return fmt.Errorf("cannot copy to non-directory: /%s", e.Name)
			}
		}
		if e.Ino != 0 {
			k := [3]uint64{uint64(i), e.Dev, e.Ino}
			id, ok := c.inodes[k]
			if !ok {
				id = uint64(len(c.inodes)) + 1
				c.inodes[k] = id
			}
			e.Dev, e.Ino = 0, id
		}
		if src.mode != 0 {
			e.Mode = e.Mode.Type() | src.mode
		}
		c.chown(&e)
		// BuildKit's unpack (ADD of a local archive) applies --chown
		// but not --chmod to the extracted entries.
		if c.chmod != nil && e.Mode&fs.ModeSymlink == 0 && !extracted {
			e.Mode = c.chmod(e.Mode)
		}
		if err := fillSource(&e, src.sel.FS, w); err != nil {
			return err
		}
		c.put(e)
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

// fillSource sets the link target or the content opener of e.
func fillSource(e *layer.Entry, fsys fileset.FS, w fileset.Walked) error {
	switch {
	case w.Info.Mode()&fs.ModeSymlink != 0:
		t, err := fsys.Readlink(w.Src)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", w.Src, err)
		}
		e.Linkname = t
	case w.Info.Mode().IsRegular():
		src := w.Src
		e.Open = func() (io.ReadCloser, error) { return fsys.Open(src) }
	}
	return nil
}

// extractArchive unpacks an ADD archive into a temp dir (safe apply).
func (bd *build) extractArchive(ctx context.Context, a *archiveSource) (string, error) {
	dir, err := bd.tmp.mkdirTemp("add-")
	if err != nil {
		return "", err
	}
	host, err := a.fsys.HostPath(a.path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(host)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := layer.Apply(ctx, dir, f, layer.ApplyOptions{Whiteouts: layer.WhiteoutReject}); err != nil {
		return "", fmt.Errorf("extract %s: %w", strings.TrimPrefix(a.path, "/"), err)
	}
	return dir, nil
}
