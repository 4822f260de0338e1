package executor

import (
	"context"
	"fmt"
	"io/fs"
	"path"
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
	wd := c.Path
	if !path.IsAbs(wd) {
		cur := st.img.Config.WorkingDir
		if cur == "" {
			cur = "/"
		}
		wd = path.Join(cur, wd)
	}
	wd = path.Clean(wd)
	st.img.Config.WorkingDir = wd
	if wd == "/" {
		st.addHistory("WORKDIR /")
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
			target, err := fileset.ResolveDest(root, wd)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", wd, err)
			}
			if fi, err := root.Lstat(target); err == nil {
				if !fi.IsDir() {
					return nil, fmt.Errorf("%s exists and is not a directory", wd)
				}
				return bd.writeLayer(ctx, nil)
			}
			u, err := fileset.ResolveUser(root, user)
			if err != nil {
				return nil, err
			}
			var ents []layer.Entry
			for _, a := range fileset.Ancestors(target) {
				if fi, err := root.Lstat(a); err == nil {
					if !fi.IsDir() {
						return nil, fmt.Errorf("%s is not a directory", a)
					}
					continue
				}
				ents = append(ents, layer.Entry{Name: strings.TrimPrefix(a, "/"), Mode: fs.ModeDir | 0o755,
					UID: u.UID, GID: u.GID, ModTime: bd.clock.fileTime()})
			}
			return bd.writeLayer(ctx, ents)
		},
	})
}
