package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/source/git"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
)

// copySpec is what COPY and ADD have in common.
type copySpec struct {
	name     string // "COPY" or "ADD"
	text     string // the instruction as written (expanded)
	srcs     []string
	contents []instructions.SourceContent
	dest     string
	from     string
	chown    string
	chmod    string
	excludes []string
	add      bool
	checksum string
	unpack   *bool
	// keepGitDir is ADD --keep-git-dir (git sources only).
	keepGitDir *bool
	parents    bool // COPY --parents: keep the source's path below dest
	// link: COPY/ADD --link without --chmod (BuildKit falls back to a plain
	// copy with --chmod): the layer is made as if onto an empty tree, so
	// it and its cache record do not depend on the parent.
	link bool
}

// copyItem is one source of a COPY/ADD and where it lands.
type copyItem struct {
	destRel string // under the destination dir; "" = the destination itself
	src     source
}

// source is one kind of COPY/ADD source: *treeSource, *archiveSource,
// *heredocSource or *downloadSource. What each contributes to the key is
// in keyItems, what it adds to the layer in copier.add.
type source interface {
	// single reports whether the source is one file, which may be copied
	// to a destination path not ending in "/".
	single() bool
	// base is the name a single file lands under inside an existing dir.
	base() string
}

// treeSource is a file, dir or symlink selected from a tree (the context,
// a stage, a download's dir), with everything below it.
type treeSource struct {
	sel *fileset.Selection
	m   fileset.Match
	// walked is the tree as the cache key saw it (context sources), reused
	// on a miss so the context is walked once per step.
	walked []fileset.Walked
	mode   fs.FileMode // when set, every entry's permission bits (downloads)
}

func (t *treeSource) single() bool { return !t.m.Info.IsDir() }
func (t *treeSource) base() string { return path.Base(t.m.Path) }

// archiveSource is a local archive ADD extracts.
type archiveSource struct {
	fsys fileset.FS
	path string // resolved path in fsys
}

func (a *archiveSource) single() bool { return false }
func (a *archiveSource) base() string { return path.Base(a.path) }

// heredocSource is COPY <<EOF content.
type heredocSource struct {
	name string
	data string
}

func (h *heredocSource) single() bool { return true }
func (h *heredocSource) base() string { return h.name }

// downloadSource is an ADD URL, fetched to a temp dir: a file, or an
// archive with --unpack=true.
type downloadSource struct {
	url     string
	content digest.Digest
	mtime   time.Time
	file    source // *treeSource or *archiveSource
}

func (d *downloadSource) single() bool { return d.file.single() }
func (d *downloadSource) base() string { return d.file.base() }

func (bd *build) copy(ctx context.Context, s *stage, st *imageState, c *instructions.CopyCommand, step *int) error {
	return bd.doCopy(ctx, s, st, copySpec{name: "COPY", text: c.String(), srcs: c.SourcePaths, contents: c.SourceContents,
		dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents,
		link: c.Link && c.Chmod == ""}, step)
}

func (bd *build) add(ctx context.Context, s *stage, st *imageState, c *instructions.AddCommand, step *int) error {
	return bd.doCopy(ctx, s, st, copySpec{name: "ADD", text: c.String(), srcs: c.SourcePaths, contents: c.SourceContents,
		dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, add: true,
		checksum: c.Checksum, unpack: c.Unpack, keepGitDir: c.KeepGitDir, link: c.Link && c.Chmod == ""}, step)
}

func (bd *build) doCopy(ctx context.Context, s *stage, st *imageState, spec copySpec, step *int) error {
	start := time.Now() // selecting and hashing the sources is part of the step
	if _, err := fileset.ParseChmod(spec.chmod); err != nil {
		return err
	}
	if spec.checksum != "" && !spec.add {
		return errors.New("--checksum is only valid for ADD")
	}
	if spec.checksum != "" {
		// As BuildKit: a checksum is of one remote source.
		if len(spec.srcs) != 1 || len(spec.contents) > 0 {
			return errors.New("checksum can't be specified for multiple sources")
		}
		if _, isGit, _ := git.Parse(spec.srcs[0]); !isGit && !parser.IsURL(spec.srcs[0]) {
			return errors.New("checksum requires HTTP(S) or Git sources")
		}
	}
	workdir := st.img.Config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	destAbs := spec.dest
	if !path.IsAbs(destAbs) {
		destAbs = path.Join(workdir, destAbs)
	}
	destIsDir := strings.HasSuffix(spec.dest, "/") || spec.dest == "." || strings.HasSuffix(spec.dest, "/.") || spec.dest == ".."
	destAbs = path.Clean(destAbs)

	key := copyKey{Op: spec.name, Chown: spec.chown, Chmod: spec.chmod, Dest: destAbs, Parents: spec.parents, User: st.img.Config.User}
	sel := &fileset.Selection{Excludes: spec.excludes}
	var fromSt *imageState
	switch {
	case spec.from != "":
		tc, err := bd.contextTree(ctx, spec.from)
		if err != nil {
			return err
		}
		if tc != nil {
			return bd.copyFromTree(ctx, s, st, spec, tc, key, destAbs, destIsDir, step, start)
		}
		if fromSt, err = bd.fromState(ctx, s, spec.from); err != nil {
			return err
		}
	case len(spec.srcs) > 0:
		fsys, ig, err := bd.contextFS()
		if err != nil {
			return err
		}
		sel.FS, sel.Ignore, sel.Context = fsys, ig, true
	}
	fstep := fsStep{text: spec.text, createdBy: spec.history(), start: start, linked: spec.link}
	if fromSt != nil && len(spec.contents) == 0 {
		// The source stage's key and the source arguments identify what
		// COPY --from copies: the sources are only selected (and the
		// source rootfs unpacked) on a miss.
		key.DestIsDir, key.From, key.Srcs, key.Excludes = destIsDir, fromSt.key, spec.srcs, spec.excludes
		fstep.key = key
		fstep.produce = func(ctx context.Context) (*produced, error) {
			root, err := bd.rootfs(ctx, fromSt)
			if err != nil {
				return nil, err
			}
			sel.FS = root
			items, dirDest, err := bd.selectSources(ctx, spec, sel, destIsDir)
			if err != nil {
				return nil, err
			}
			return bd.copyLayer(ctx, st, spec, items, destAbs, dirDest)
		}
		return bd.runStep(ctx, s, st, step, fstep)
	}
	if fromSt != nil {
		root, err := bd.rootfs(ctx, fromSt)
		if err != nil {
			return err
		}
		sel.FS, key.From = root, fromSt.key
	}
	items, destIsDir, err := bd.selectSources(ctx, spec, sel, destIsDir)
	if err != nil {
		return err
	}
	key.DestIsDir = destIsDir
	produce := func(parent *imageState) func(context.Context) (*produced, error) {
		return func(ctx context.Context) (*produced, error) {
			return bd.copyLayer(ctx, parent, spec, items, destAbs, destIsDir)
		}
	}
	var ahead *speculation // the layer, made while the key is computed
	walked := func(entries int) {
		if bd.speculates(s, entries) {
			// On its own copy of the parent's state: a hit applies the
			// record to st while the layer made ahead is being stopped.
			ahead = bd.speculate(ctx, produce(st.clone()))
		}
	}
	if fstep.sources, err = bd.keyItems(ctx, &key, items, walked); err != nil {
		ahead.drop()
		return err
	}
	fstep.key = key
	fstep.produce = produce(st)
	if ahead != nil {
		// Never produce as well: the layer made ahead owns items now.
		fstep.produce = func(context.Context) (*produced, error) { return ahead.result() }
		fstep.follows = ahead.drop
	}
	err = bd.runStep(ctx, s, st, step, fstep)
	ahead.drop() // a hit, or a failure before the layer was needed
	return err
}

// selectSources picks the items of spec's sources from sel (and downloads
// ADD URLs, adds heredocs). destIsDir is what the destination's spelling
// says; the result also says whether the items land inside it.
func (bd *build) selectSources(ctx context.Context, spec copySpec, sel *fileset.Selection, destIsDir bool) ([]copyItem, bool, error) {
	nsrc := len(spec.srcs) + len(spec.contents)
	var items []copyItem
	several := false // one source gave several items, or a tree
	for _, src := range spec.srcs {
		var got []copyItem
		gref, isGit, err := git.Parse(src)
		switch {
		case isGit && err == nil:
			got, err = bd.gitItems(ctx, spec, src, gref)
		case isGit:
		case spec.add && parser.IsURL(src):
			// Remote archives are extracted only with --unpack=true.
			got, err = bd.download(ctx, src, spec.checksum, spec.unpack != nil && *spec.unpack)
		case parser.IsURL(src) || strings.HasPrefix(src, "git@"):
			return nil, false, fmt.Errorf("%s: remote sources are only supported by ADD over http(s)", src)
		default:
			got, err = bd.match(sel, src, spec)
		}
		if err != nil {
			var ns *fileset.NoSourceError
			if nsrc == 1 && errors.As(err, &ns) {
				bare := *ns
				bare.Src = "" // the instruction, printed first, names it
				return nil, false, &bare
			}
			return nil, false, err
		}
		several = several || len(got) > 1 || len(got) == 1 && !got[0].src.single()
		items = append(items, got...)
	}
	for _, c := range spec.contents {
		name := path.Base(c.Path)
		items = append(items, copyItem{destRel: name, src: &heredocSource{name: name, data: c.Data}})
	}
	// A file to a path not ending in "/" is that path (several such
	// sources: each in turn, the last one wins, as BuildKit copies them);
	// what a wildcard or a directory gives lands inside the destination.
	if several || spec.parents {
		destIsDir = true
	}
	if !destIsDir {
		for i := range items {
			items[i].destRel = ""
		}
	}
	return items, destIsDir, nil
}

// match selects the items one source argument names in sel's tree. ADD
// (not --from, not --unpack=false) extracts local archives.
func (bd *build) match(sel *fileset.Selection, src string, spec copySpec) ([]copyItem, error) {
	ms, err := sel.Match(src)
	if err != nil {
		return nil, err
	}
	if spec.parents {
		fileset.KeepParents(src, ms)
	}
	unpack := spec.add && spec.from == "" && (spec.unpack == nil || *spec.unpack)
	items := make([]copyItem, 0, len(ms))
	for _, m := range ms {
		if unpack && m.Info.Mode().IsRegular() {
			host, err := sel.FS.HostPath(m.Path)
			if err != nil {
				return nil, err
			}
			if ok, _ := layer.IsArchive(host); ok {
				items = append(items, copyItem{src: &archiveSource{fsys: sel.FS, path: m.Path}})
				continue
			}
		}
		items = append(items, copyItem{destRel: m.DestRel, src: &treeSource{sel: sel, m: m}})
	}
	return items, nil
}

// keyItems completes the key of a COPY/ADD whose sources were selected:
// the content digest of the context files, and an itemKey for each other
// source. walked, when set, is called once the trees are walked (with the
// number of context entries they gave), before their files are hashed.
func (bd *build) keyItems(ctx context.Context, key *copyKey, items []copyItem, walked func(entries int)) (*cache.Hashed, error) {
	var srcs []cache.Source
	dir := bd.opts.ContextDir // or a named context's (copyFromTree)
	if dir != "" && slices.ContainsFunc(items, func(it copyItem) bool {
		ts, ok := it.src.(*treeSource)
		return ok && ts.sel.Context
	}) {
		// The stat cache is read while the walk lists the context.
		defer bd.st.Cache.PreloadStatCache(dir)()
	}
	for _, it := range items {
		switch src := it.src.(type) {
		case *heredocSource:
			key.Items = append(key.Items, itemKey{Kind: "heredoc", Dest: it.destRel, Content: digest.FromString(src.data)})
		case *gitSource:
			key.Items = append(key.Items, itemKey{Kind: "git", Dest: it.destRel, URL: src.ref.String(), KeepGitDir: src.ref.KeepGitDir,
				NoSubmodules: !src.ref.Submodules})
			key.Excludes = src.excludes // they select in the tree
			if key.Git == nil {
				key.Git = map[string]string{}
			}
			key.Git[src.ref.String()] = src.commit
		case *downloadSource:
			key.Items = append(key.Items, itemKey{Kind: "url", Dest: it.destRel, URL: src.url, Content: src.content,
				Mtime: src.mtime.UTC().Format(time.RFC3339)})
		case *archiveSource: // always of the context
			srcs = append(srcs, cache.Source{Path: strings.TrimPrefix(src.path, "/")})
			key.Items = append(key.Items, itemKey{Kind: "archive", Src: src.path})
		case *treeSource:
			if !src.sel.Context {
				key.Items = append(key.Items, itemKey{Kind: "stage", Src: src.m.Path, Dest: it.destRel})
				continue
			}
			ws, err := src.sel.Walk(src.m)
			if err != nil {
				return nil, err
			}
			if d, ok := src.sel.FS.(fileset.DirFS); ok {
				dir = d.Root()
			}
			src.walked = ws
			srcs = slices.Grow(srcs, len(ws))
			for i, w := range ws {
				// The key needs the paths only: a miss stats each file
				// through the tree when it packs it (Selection.Stat).
				ws[i].Entry = nil
				dest := w.Rel // clean already
				if it.destRel != "" {
					dest = path.Join(it.destRel, w.Rel)
				}
				srcs = append(srcs, cache.Source{Path: strings.TrimPrefix(w.Src, "/"), Dest: dest})
			}
		}
	}
	if walked != nil {
		walked(len(srcs))
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	h, err := bd.st.Cache.Hash(ctx, dir, srcs)
	if err != nil {
		return nil, err
	}
	key.Sources = h.Digest
	return h, nil
}

// history is BuildKit's created_by for COPY/ADD: the expanded sources and
// destination with --chown/--chmod only ("COPY --chown=1:1 a b /d/ # buildkit").
func (spec copySpec) history() string {
	parts := []string{spec.name}
	if spec.parents {
		parts = append(parts, "--parents")
	}
	if spec.chown != "" {
		parts = append(parts, "--chown="+spec.chown)
	}
	if spec.chmod != "" {
		parts = append(parts, "--chmod="+spec.chmod)
	}
	parts = append(parts, spec.srcs...)
	for _, c := range spec.contents {
		parts = append(parts, "<<"+c.Path)
	}
	return strings.Join(append(parts, spec.dest, "# buildkit"), " ")
}
