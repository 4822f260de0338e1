package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/source/git"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Named contexts (--build-context NAME=VALUE, as docker buildx): FROM NAME,
// COPY --from=NAME and RUN --mount=from=NAME see them before stages and
// images, and a stage of that name is replaced by the context. A context
// is an image (docker-image://REF, resolved and pulled like FROM;
// oci-layout://DIR[:TAG|@DIGEST], imported untagged) or a tree of files:
// a local directory (its own .dockerignore and stat cache, hashed as
// content like the main context), a git URL (identified by its commit, one
// ls-remote; fetched only when a step runs) or an https tarball
// (identified by its bytes). Nothing is resolved before a step uses it.

// namedContext is one --build-context value, resolved once when first used.
type namedContext struct {
	name, value string
	kind        string // "image", "oci-layout", "git", "url", "dir"
	ref         string // image reference, layout dir, URL or directory
	tag         string // oci-layout
	dgst        digest.Digest
	gitRef      git.Ref

	once sync.Once
	err  error
	tree *treeContext // tree kinds
	lay  digest.Digest

	stOnce sync.Once // FROM of a tree: scratch + one layer of it
	st     *imageState
	stErr  error
}

// treeContext is a named context that is a tree of files.
type treeContext struct {
	// key identifies an immutable tree (git, tarball): steps are keyed by
	// it and open runs only on a miss; "" for a directory, whose files are
	// hashed like the main context's.
	key  digest.Digest
	ig   *fileset.Ignore // a directory's own .dockerignore
	open func(ctx context.Context) (fileset.DirFS, error)
	// git is a git context's commit by source (copyKey.Git): a COPY
	// --from it that misses after the branch moved names the new commit.
	git map[string]string
}

// hostPath is the host file or dir of src in the tree (for a bind mount).
func (tc *treeContext) hostPath(ctx context.Context, src string) ([]string, error) {
	t, err := tc.open(ctx)
	if err != nil {
		return nil, err
	}
	r, err := t.Resolve(src)
	if err == nil {
		_, err = t.Lstat(r)
	}
	if err != nil {
		return nil, fileset.ErrNoSource
	}
	h, err := t.HostPath(r)
	return []string{h}, err
}

// parseContexts checks the --build-context values (a usage error names the
// bad one); nothing is fetched yet.
func parseContexts(in map[string]string) (map[string]*namedContext, error) {
	out := map[string]*namedContext{}
	for name, v := range in {
		nc := &namedContext{name: name, value: v}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: --build-context %s=%s: %s", ErrUsage, name, v, fmt.Sprintf(format, a...))
		}
		if name == "" {
			return nil, bad("the name is empty")
		}
		r, isGit, gerr := git.Parse(v)
		switch {
		case strings.HasPrefix(v, "docker-image://"):
			nc.kind, nc.ref = "image", strings.TrimPrefix(v, "docker-image://")
		case strings.HasPrefix(v, "oci-layout://"):
			nc.kind, nc.ref = "oci-layout", strings.TrimPrefix(v, "oci-layout://")
			if dir, d, ok := strings.Cut(nc.ref, "@"); ok {
				dg, err := digest.Parse(d)
				if err != nil {
					return nil, bad("%v", err)
				}
				nc.ref, nc.dgst = dir, dg
			} else if i := strings.LastIndex(nc.ref, ":"); i > strings.LastIndex(nc.ref, "/") {
				nc.ref, nc.tag = nc.ref[:i], nc.ref[i+1:]
			}
		case isGit && gerr != nil:
			return nil, bad("%v", gerr)
		case isGit:
			nc.kind, nc.gitRef = "git", r
		case strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://"):
			nc.kind, nc.ref = "url", v
		case strings.HasPrefix(v, "target:") || strings.Contains(v, "://"):
			return nil, bad("this kind of context is not supported")
		default:
			abs, err := filepath.Abs(v)
			if err != nil {
				return nil, bad("%v", err)
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return nil, bad("not a directory")
			}
			nc.kind, nc.ref = "dir", abs
		}
		out[name] = nc
	}
	return out, nil
}

// namedContext is the context called name ("" for none), matched as
// written, else case-folded as stage names are.
func (bd *build) namedContext(name string) *namedContext {
	if name == "" || len(bd.contexts) == 0 {
		return nil
	}
	if nc := bd.contexts[name]; nc != nil {
		return nc
	}
	for n, nc := range bd.contexts {
		if strings.EqualFold(n, name) {
			return nc
		}
	}
	return nil
}

// resolveContext does the one-time work of a context: imports an oci-layout
// image, resolves a git ref (one ls-remote), downloads a tarball, reads a
// directory's .dockerignore.
func (bd *build) resolveContext(ctx context.Context, nc *namedContext) error {
	nc.once.Do(func() {
		switch nc.kind {
		case "oci-layout":
			nc.lay, nc.err = bd.st.Images.ImportLayoutImage(ctx, nc.ref, nc.tag, nc.dgst)
		case "dir":
			ig, err := fileset.ReadIgnore(filepath.Join(nc.ref, ".dockerignore"))
			dir := fileset.Dir(nc.ref)
			nc.tree, nc.err = &treeContext{ig: ig, open: func(context.Context) (fileset.DirFS, error) { return dir, nil }}, err
		case "git":
			nc.tree, nc.err = bd.gitContext(ctx, nc.gitRef)
		case "url":
			nc.tree, nc.err = bd.urlContext(ctx, nc.ref)
		}
		if nc.err != nil {
			nc.err = fmt.Errorf("--build-context %s: %w", nc.name, nc.err)
		}
	})
	return nc.err
}

// contextKey identifies an immutable tree context.
type contextKey struct {
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Commit string `json:"commit,omitempty"`
	Subdir string `json:"subdir,omitempty"`
	// KeepGitDir: the tree has its .git dir.
	KeepGitDir   bool          `json:"keepGitDir,omitempty"`
	NoSubmodules bool          `json:"noSubmodules,omitempty"`
	Content      digest.Digest `json:"content,omitempty"`
}

func (k contextKey) digest() digest.Digest {
	return cache.Key(cache.Inputs{Version: "builder.context.v1", Step: k})
}

func (bd *build) gitContext(ctx context.Context, r git.Ref) (*treeContext, error) {
	commit, err := bd.st.Git.Resolve(ctx, r, bd.gitAuth())
	if err != nil {
		return nil, err
	}
	var once sync.Once
	var fsys fileset.DirFS
	var oerr error
	return &treeContext{
		key: contextKey{Kind: "git", Source: r.Remote, Commit: commit, Subdir: r.Subdir, KeepGitDir: r.KeepGitDir,
			NoSubmodules: !r.Submodules}.digest(),
		git: map[string]string{r.String(): commit},
		open: func(ctx context.Context) (fileset.DirFS, error) {
			once.Do(func() {
				var t *treeSource
				if t, oerr = bd.gitTree(ctx, &gitSource{ref: r, commit: commit}); oerr == nil {
					var host string
					host, oerr = t.sel.FS.HostPath(t.m.Path)
					fsys = fileset.Dir(host)
				}
			})
			return fsys, oerr
		},
	}, nil
}

// urlContext downloads a tarball (any archive ADD extracts) and extracts
// it; another file is a tree of that one file.
func (bd *build) urlContext(ctx context.Context, url string) (*treeContext, error) {
	items, err := bd.download(ctx, url, "", true)
	if err != nil {
		return nil, err
	}
	d := items[0].src.(*downloadSource)
	var dir string
	switch f := d.file.(type) {
	case *archiveSource:
		if dir, err = bd.extractArchive(ctx, f); err != nil {
			return nil, err
		}
	case *treeSource:
		dir = f.sel.FS.(fileset.DirFS).Root()
	}
	fsys := fileset.Dir(dir)
	return &treeContext{key: contextKey{Kind: "url", Source: url, Content: d.content}.digest(),
		open: func(context.Context) (fileset.DirFS, error) { return fsys, nil }}, nil
}

// contextTree is the tree context called name, nil when name is no
// context or an image one.
func (bd *build) contextTree(ctx context.Context, name string) (*treeContext, error) {
	nc := bd.namedContext(name)
	if nc == nil || nc.kind == "image" || nc.kind == "oci-layout" {
		return nil, nil
	}
	if err := bd.resolveContext(ctx, nc); err != nil {
		return nil, err
	}
	return nc.tree, nil
}

// contextState is the image a context gives FROM (and COPY --from, RUN
// --mount=from= for image contexts): a new state each call.
func (bd *build) contextState(ctx context.Context, nc *namedContext, plat ocispec.Platform) (*imageState, error) {
	if err := bd.resolveContext(ctx, nc); err != nil {
		return nil, err
	}
	switch nc.kind {
	case "image":
		return bd.resolveImage(ctx, nc.ref, plat)
	case "oci-layout":
		return bd.resolveImage(ctx, nc.lay.String(), plat)
	}
	nc.stOnce.Do(func() { nc.st, nc.stErr = bd.treeState(ctx, nc) })
	if nc.stErr != nil {
		return nil, nc.stErr
	}
	return nc.st.clone(), nil
}

// treeState is FROM of a tree context: the empty image with one layer
// holding the tree (owned by root, as COPY of the context makes it),
// cached like a COPY step.
func (bd *build) treeState(ctx context.Context, nc *namedContext) (*imageState, error) {
	st := &imageState{img: scratchImage(bd.targetPlatform()), key: digest.FromString("scratch")}
	spec := copySpec{name: "COPY", srcs: []string{"."}, dest: "/"}
	key := copyKey{Op: "CONTEXT", Dest: "/", DestIsDir: true, From: nc.tree.key}
	var items []copyItem
	sel := func(ctx context.Context) error {
		fsys, err := nc.tree.open(ctx)
		if err != nil {
			return err
		}
		items, _, err = bd.selectSources(ctx, spec, &fileset.Selection{FS: fsys, Ignore: nc.tree.ig, Context: true}, true)
		return err
	}
	if nc.tree.key == "" {
		if err := sel(ctx); err != nil {
			return nil, err
		}
		if _, err := bd.keyItems(ctx, &key, items, nil); err != nil {
			return nil, err
		}
	}
	k := bd.key(st.key, key)
	rec, err := bd.st.Cache.Get(ctx, k)
	if err != nil || rec.Layer != "" && !bd.blobIntact(ctx, rec) || bd.opts.NoCache {
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return nil, err
		}
		if bd.opts.HitsOnly {
			return nil, ErrNotCached
		}
		if items == nil {
			if err := sel(ctx); err != nil {
				return nil, err
			}
		}
		p, err := bd.copyLayer(ctx, st, spec, items, "/", true)
		if err != nil {
			return nil, err
		}
		rec = cache.Record{Key: k, Created: bd.clock.recordTime()}
		if p != nil {
			rec.Layer, rec.LayerSize, rec.MediaType, rec.DiffID, rec.Newest = p.packed.Digest, p.packed.Size, p.packed.MediaType, p.packed.DiffID, p.newest
		}
		if err := bd.st.Cache.Put(ctx, rec); err != nil {
			return nil, fmt.Errorf("record cache: %w", err)
		}
	}
	bd.applyRecord(st, rec, "COPY --from="+nc.name+" . / # buildkit")
	st.key = k
	return st, nil
}

// overrideStage builds a stage that a context of its name replaces: its
// state is the context's, its instructions do not run.
func (bd *build) overrideStage(ctx context.Context, s *stage) (bool, error) {
	nc := bd.namedContext(s.name)
	if nc == nil || s.name == "" {
		return false, nil
	}
	plat, err := bd.stagePlatform(s)
	if err == nil {
		s.state, err = bd.contextState(ctx, nc, plat)
	}
	if err != nil {
		return true, bd.errAt(s.def, err)
	}
	return true, nil
}

// copyFromTree is COPY --from=NAME of a tree context. Its files are owned
// by root (unless --chown), as the main context's: an immutable tree is
// keyed by what identifies it and opened only on a miss; a directory is
// hashed file by file (its own stat cache, its own .dockerignore).
func (bd *build) copyFromTree(ctx context.Context, s *stage, st *imageState, spec copySpec, tc *treeContext,
	key copyKey, destAbs string, destIsDir bool, step *int, start time.Time) error {
	spec.from = ""
	fstep := fsStep{text: spec.text, createdBy: spec.history(), start: start}
	if tc.key != "" {
		key.DestIsDir, key.From, key.Srcs, key.Excludes, key.Git = destIsDir, tc.key, spec.srcs, spec.excludes, tc.git
		fstep.key = key
		fstep.produce = func(ctx context.Context) (*produced, error) {
			fsys, err := tc.open(ctx)
			if err != nil {
				return nil, err
			}
			items, dirDest, err := bd.selectSources(ctx, spec, &fileset.Selection{FS: fsys, Excludes: spec.excludes, Context: true}, destIsDir)
			if err != nil {
				return nil, err
			}
			return bd.copyLayer(ctx, st, spec, items, destAbs, dirDest)
		}
		return bd.runStep(ctx, s, st, step, fstep)
	}
	fsys, err := tc.open(ctx)
	if err != nil {
		return err
	}
	sel := &fileset.Selection{FS: fsys, Ignore: tc.ig, Context: true, Excludes: spec.excludes}
	items, destIsDir, err := bd.selectSources(ctx, spec, sel, destIsDir)
	if err != nil {
		return err
	}
	key.DestIsDir = destIsDir
	if _, err := bd.keyItems(ctx, &key, items, nil); err != nil {
		return err
	}
	fstep.key = key
	fstep.produce = func(ctx context.Context) (*produced, error) {
		return bd.copyLayer(ctx, st, spec, items, destAbs, destIsDir)
	}
	return bd.runStep(ctx, s, st, step, fstep)
}
