package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot"
	"github.com/opencontainers/go-digest"
)

// contextFS returns the build context as a tree and its .dockerignore.
// Build calls it once before any stage runs; later calls only read.
func (bd *build) contextFS() (fileset.DirFS, *fileset.Ignore, error) {
	if bd.ctxIgnore != nil {
		return bd.ctxFS, bd.ctxIgnore, nil
	}
	abs, err := filepath.Abs(bd.opts.ContextDir)
	if err != nil {
		return fileset.DirFS{}, nil, err
	}
	ignPath := bd.opts.DockerignorePath
	if ignPath == "" {
		ignPath = filepath.Join(abs, ".dockerignore")
	}
	ig, err := fileset.ReadIgnore(ignPath)
	if err != nil {
		return fileset.DirFS{}, nil, err
	}
	bd.ctxFS, bd.ctxIgnore = fileset.Dir(abs), ig
	return bd.ctxFS, bd.ctxIgnore, nil
}

// fromState resolves COPY --from: a stage name or index, else an image.
// Nothing is unpacked: rootfs does that when the files are needed.
func (bd *build) fromState(ctx context.Context, s *stage, from string) (*imageState, error) {
	if nc := bd.namedContext(from); nc != nil {
		return bd.contextState(ctx, nc, bd.targetPlatform())
	}
	if dep := bd.stageRef(from, s.idx); dep != nil {
		// Usually built already (a planned dependency); an ONBUILD trigger
		// may name a stage the plan did not see: build it now (once).
		if err := bd.runStage(ctx, dep); err != nil {
			return nil, err
		}
		return dep.state, nil
	}
	if later := bd.stageByName(strings.ToLower(from), len(bd.stages)); later != nil && later.idx > s.idx {
		return nil, fmt.Errorf("--from=%s: stage %q needs to be defined before the current stage", from, later.name)
	}
	if strings.EqualFold(from, s.name) && from != "" {
		return nil, fmt.Errorf("--from=%s: a stage cannot copy from itself", from)
	}
	img, err := bd.resolveImage(ctx, from, bd.targetPlatform())
	if err != nil {
		var names []string
		for _, e := range bd.stages[:s.idx] {
			names = append(names, e.name)
		}
		if near := parser.Suggest(from, names); near != "" {
			return nil, fmt.Errorf("--from=%s is neither an earlier stage (did you mean %q?) nor an image: %w", from, near, err)
		}
		return nil, fmt.Errorf("--from=%s is neither an earlier stage nor an image: %w", from, err)
	}
	return img, nil
}

// rootfs makes sure every layer of st is unpacked as a snapshot and returns
// the merged read view.
func (bd *build) rootfs(ctx context.Context, st *imageState) (fileset.ViewFS, error) {
	lowers, err := bd.lowers(ctx, st)
	return viewOf(lowers), err
}

// belowIn answers layer.Changes from the merged tree below an upper dir.
func belowIn(v fileset.ViewFS) layer.Below {
	return func(name string) (fs.FileInfo, string, error) {
		fi, host, err := v.LstatHost("/" + name)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, "", nil
		}
		return fi, host, err
	}
}

// changeOptions diff an upper dir over the merged tree v as BuildKit's
// differ does (an opaque dir as whiteouts of what it lost).
func changeOptions(v fileset.ViewFS) layer.ChangeOptions {
	return layer.ChangeOptions{UserXattr: snapshot.InUserNS(), BelowDir: func(name string) ([]string, error) {
		ents, err := v.ReadDir("/" + name)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(ents))
		for i, e := range ents {
			names[i] = e.Name()
		}
		return names, nil
	}}
}

// viewOf is the merged tree of lowers (top first); none: the empty tree.
func viewOf(lowers []string) fileset.ViewFS {
	if len(lowers) == 0 {
		return fileset.View(nil)
	}
	return fileset.View(snapshot.View{Lowers: lowers})
}

// lowers makes sure every layer of st is unpacked as a snapshot and returns
// their dirs, top first (none for an image without layers).
func (bd *build) lowers(ctx context.Context, st *imageState) ([]string, error) {
	if bd.opts.HitsOnly {
		return nil, ErrNotCached
	}
	if err := bd.unpack(ctx, st); err != nil {
		return nil, err
	}
	if st.chain == "" {
		return nil, nil
	}
	lowers, err := bd.st.Snapshots.Lowers(ctx, st.chain)
	if errors.Is(err, snapshot.ErrNotFound) {
		// An ancestor is gone (a prune that crashed): unpack it again.
		if err = bd.unpackAll(ctx, st); err == nil {
			lowers, err = bd.st.Snapshots.Lowers(ctx, st.chain)
		}
	}
	return lowers, err
}

// unpack makes sure the layers of st have snapshots. A committed snapshot
// implies its ancestors (they are committed first) unless a prune died
// halfway, so one stat of the top chain settles the usual case of a step
// on top of a RUN at any depth; whoever then finds an ancestor missing
// calls unpackAll.
func (bd *build) unpack(ctx context.Context, st *imageState) error {
	if st.chain != "" {
		if _, err := bd.st.Snapshots.Stat(ctx, st.chain); err == nil {
			return nil
		}
	}
	return bd.unpackAll(ctx, st)
}

// unpackAll applies the layers of st that have no snapshot yet, bottom up.
func (bd *build) unpackAll(ctx context.Context, st *imageState) error {
	var parent digest.Digest
	for i, desc := range st.layers {
		diffID := st.img.RootFS.DiffIDs[i]
		chain := snapshot.ChainID(parent, diffID)
		if _, err := bd.st.Snapshots.Stat(ctx, chain); err == nil {
			parent = chain
			continue
		} else if !errors.Is(err, snapshot.ErrNotFound) {
			return err
		}
		a, err := bd.st.Snapshots.Prepare(ctx, parent)
		if err != nil {
			return fmt.Errorf("prepare snapshot: %w", err)
		}
		if err := bd.applyBlob(ctx, a.Upper, a.Lowers, desc.Digest, diffID); err != nil {
			_ = bd.st.Snapshots.Remove(a)
			return err
		}
		if _, err := bd.st.Snapshots.Commit(ctx, a, chain); err != nil {
			_ = bd.st.Snapshots.Remove(a)
			return fmt.Errorf("commit snapshot: %w", err)
		}
		parent = chain
	}
	return nil
}

// applyBlob unpacks a layer into dir, the upper dir of a snapshot over
// lowers: the parent dirs the tar does not list take their metadata from
// lowers, as the layer leaves them unchanged.
func (bd *build) applyBlob(ctx context.Context, dir string, lowers []string, blob, diffID digest.Digest) error {
	if err := bd.ensureBlob(ctx, blob); err != nil {
		return err
	}
	r, err := bd.st.Images.OpenBlob(ctx, blob)
	if err != nil {
		return fmt.Errorf("open layer %s: %w", blob, err)
	}
	defer r.Close()
	below := viewOf(lowers)
	opts := layer.ApplyOptions{Whiteouts: layer.WhiteoutOverlay, DiffID: diffID, UserXattr: snapshot.InUserNS(), UnmappedOwners: snapshot.SingleID(),
		Below: func(name string) (fs.FileInfo, error) { return below.Lstat("/" + name) }}
	if _, err := layer.Apply(ctx, dir, r, opts); err != nil {
		return fmt.Errorf("unpack layer %s: %w", blob, err)
	}
	return nil
}
