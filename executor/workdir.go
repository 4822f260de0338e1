package executor

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// workdir sets WorkingDir and, as BuildKit's dispatchWorkdir does, makes
// the directory with a mkdir -p step (mode 0755, owned by the current
// USER) for any path but "/": that step is always a layer, an empty one
// when the directory already exists (BuildKit exports every file op as a
// layer, even with no changes). WORKDIR / is an empty_layer entry.
func (bd *build) workdir(ctx context.Context, s *stage, st *imageState, c *instructions.WorkdirCommand, step *int) error {
	// As BuildKit's NormalizeWorkdir: an absolute path as written (a
	// trailing slash, "..", "." kept), a relative one joined to the
	// current (and so cleaned).
	wd := c.Path
	if !path.IsAbs(wd) {
		cur := st.img.Config.WorkingDir
		if cur == "" {
			cur = "/"
		}
		wd = path.Join("/", cur, wd)
	}
	st.img.Config.WorkingDir = wd
	if path.Clean(wd) == "/" {
		st.addHistory("WORKDIR " + wd)
		return nil
	}
	user := st.img.Config.User
	return bd.runStep(ctx, s, st, step, fsStep{
		text:      "WORKDIR " + wd,
		createdBy: "WORKDIR " + wd,
		key:       workdirKey{Op: "WORKDIR", Path: wd, User: user},
		produce: func(ctx context.Context) (*produced, error) {
			root, err := bd.rootfs(ctx, st)
			if err != nil {
				return nil, err
			}
			return bd.mkdirLayer(ctx, root, wd, user)
		},
	})
}

// mkdirLayer is the layer of WORKDIR's mkdir -p of wd (cleaned: a RUN
// makes the rest of a path as written, "/a/../b" its /a, as runc), through
// symlinks of the rootfs, new dirs 0755 owned by user. As BuildKit's
// differ writes it, the existing parents of what it makes are in the
// layer too.
func (bd *build) mkdirLayer(ctx context.Context, root fileset.ViewFS, wd, user string) (*produced, error) {
	var u *fileset.User
	ents := map[string]layer.Entry{}
	for _, d := range fileset.Ancestors(path.Clean(wd)) {
		target, err := fileset.ResolveDest(root, d)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", d, err)
		}
		if _, made := ents[strings.TrimPrefix(target, "/")]; made {
			continue
		}
		if fi, err := root.Lstat(target); err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s exists and is not a directory", d)
			}
			continue
		}
		if u == nil {
			got, err := fileset.ResolveUser(root, user)
			if err != nil {
				return nil, err
			}
			u = &got
		}
		for _, a := range fileset.Ancestors(target) {
			name := strings.TrimPrefix(a, "/")
			if _, ok := ents[name]; ok {
				continue
			}
			if fi, err := root.Lstat(a); err == nil {
				if !fi.IsDir() {
					return nil, fmt.Errorf("%s is not a directory", a)
				}
				ents[name] = entryFromInfo(name, fi, true)
				continue
			}
			ents[name] = layer.Entry{Name: name, Mode: fs.ModeDir | 0o755, UID: u.UID, GID: u.GID, ModTime: bd.clock.fileTime()}
		}
	}
	return bd.writeLayer(ctx, slices.Collect(maps.Values(ents)))
}
