package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
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
	parents  bool // COPY --parents: keep the source's path below dest
}

// copyItem is one selected source tree root (file, dir or link) and where it goes.
type copyItem struct {
	fsys    srcFS
	src     string      // resolved path in fsys
	fi      fs.FileInfo // of src
	destRel string      // path under the destination dir; "" = the destination itself
	archive bool        // ADD: extract this local archive
	data    *string     // heredoc content
	mode    fs.FileMode // heredoc / download mode
	// matched is the path the source argument matched in the tree (before
	// a final symlink is followed), for COPY --parents.
	matched string
	// download identifies a downloaded ADD URL: url, content digest, mtime.
	download string
	// walked is the item's tree as the cache key saw it (context items),
	// reused on a miss so the context is walked once per step.
	walked []walked
}

func (bd *build) copy(ctx context.Context, s *stage, st *imageState, c *instructions.CopyCommand, step *int) error {
	return bd.doCopy(ctx, s, st, copySpec{name: "COPY", text: c.String(), srcs: c.SourcePaths, contents: c.SourceContents,
		dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents}, step)
}

func (bd *build) add(ctx context.Context, s *stage, st *imageState, c *instructions.AddCommand, step *int) error {
	return bd.doCopy(ctx, s, st, copySpec{name: "ADD", text: c.String(), srcs: c.SourcePaths, contents: c.SourceContents,
		dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, add: true,
		checksum: c.Checksum, unpack: c.Unpack}, step)
}

func (bd *build) doCopy(ctx context.Context, s *stage, st *imageState, spec copySpec, step *int) error {
	start := time.Now() // selecting and hashing the sources is part of the step
	if _, err := parseChmod(spec.chmod); err != nil {
		return err
	}
	if spec.checksum != "" && !spec.add {
		return errors.New("--checksum is only valid for ADD")
	}
	nsrc := len(spec.srcs) + len(spec.contents)
	if nsrc > 1 && !strings.HasSuffix(spec.dest, "/") {
		return fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", spec.name)
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

	sel := &selection{bd: bd, excludes: spec.excludes}
	var fromSt *imageState
	switch {
	case spec.from != "":
		var err error
		if fromSt, err = bd.fromState(ctx, s, spec.from); err != nil {
			return err
		}
	case len(spec.srcs) > 0:
		fsys, ig, err := bd.contextFS()
		if err != nil {
			return err
		}
		sel.fsys, sel.ig, sel.isContext = fsys, ig, true
	}
	fstep := fsStep{text: spec.text, createdBy: spec.history(), start: start}
	if fromSt != nil && len(spec.contents) == 0 {
		// The source stage's key and the source arguments identify what
		// COPY --from copies: the sources are only selected (and the
		// source rootfs unpacked) on a miss.
		fstep.inputs = copyFromInputs(st, spec, destAbs, destIsDir, fromSt.key)
		fstep.produce = func(ctx context.Context) (*produced, error) {
			root, err := bd.rootfs(ctx, fromSt)
			if err != nil {
				return nil, err
			}
			sel.fsys = root
			items, dirDest, err := bd.selectSources(ctx, spec, sel, destIsDir)
			if err != nil {
				return nil, err
			}
			ents, err := bd.copyEntries(ctx, st, spec, items, destAbs, dirDest)
			if err != nil {
				return nil, err
			}
			return bd.writeLayer(ctx, ents)
		}
		return bd.runStep(ctx, s, st, step, fstep)
	}
	var fromKey digest.Digest
	if fromSt != nil {
		root, err := bd.rootfs(ctx, fromSt)
		if err != nil {
			return err
		}
		sel.fsys, fromKey = root, fromSt.key
	}
	items, destIsDir, err := bd.selectSources(ctx, spec, sel, destIsDir)
	if err != nil {
		return err
	}
	if fstep.inputs, err = bd.copyInputs(ctx, st, spec, sel, items, destAbs, destIsDir, fromKey); err != nil {
		return err
	}
	fstep.produce = func(ctx context.Context) (*produced, error) {
		ents, err := bd.copyEntries(ctx, st, spec, items, destAbs, destIsDir)
		if err != nil {
			return nil, err
		}
		return bd.writeLayer(ctx, ents)
	}
	return bd.runStep(ctx, s, st, step, fstep)
}

// selectSources picks the items of spec's sources from sel (and downloads
// ADD URLs, adds heredocs). destIsDir is what the destination's spelling
// says; the result also says whether the items land inside it.
func (bd *build) selectSources(ctx context.Context, spec copySpec, sel *selection, destIsDir bool) ([]copyItem, bool, error) {
	nsrc := len(spec.srcs) + len(spec.contents)
	var items []copyItem
	for _, src := range spec.srcs {
		var got []copyItem
		var err error
		if isGitURL(src) {
			return nil, false, fmt.Errorf("%s: git sources are not supported yet", src)
		}
		if spec.add && isURL(src) {
			got, err = bd.download(ctx, src, spec.checksum)
			// Remote archives are extracted only with --unpack=true.
			if err == nil && spec.unpack != nil && *spec.unpack {
				err = markArchives(got)
			}
		} else {
			if isURL(src) || strings.HasPrefix(src, "git@") {
				return nil, false, fmt.Errorf("%s: remote sources are only supported by ADD over http(s)", src)
			}
			got, err = sel.match(src, spec.add && spec.from == "" && (spec.unpack == nil || *spec.unpack))
		}
		if err == nil && spec.parents {
			keepParents(src, got)
		}
		if err != nil {
			var ns *noSourceError
			if nsrc == 1 && errors.As(err, &ns) {
				bare := *ns
				bare.src = "" // the instruction, printed first, names it
				return nil, false, &bare
			}
			return nil, false, err
		}
		items = append(items, got...)
	}
	for i := range spec.contents {
		data := spec.contents[i].Data
		items = append(items, copyItem{destRel: path.Base(spec.contents[i].Path), data: &data, mode: 0o644})
	}
	// A single file to a path not ending in "/" is that path; everything
	// else lands inside the destination directory.
	single := len(items) == 1 && !items[0].archive && (items[0].data != nil || !items[0].fi.IsDir())
	if len(items) > 1 || !single || spec.parents {
		destIsDir = true
	}
	if !destIsDir {
		items[0].destRel = ""
	}
	return items, destIsDir, nil
}

// copyFromInputs is the cache identity of a COPY --from: the source
// stage's (or image's) key stands for its files, so the source arguments
// and --exclude patterns identify the selection.
func copyFromInputs(st *imageState, spec copySpec, destAbs string, destIsDir bool, fromKey digest.Digest) cache.Inputs {
	srcs, _ := json.Marshal(spec.srcs)
	excl, _ := json.Marshal(spec.excludes)
	return cache.Inputs{
		Instruction: fmt.Sprintf("%s chown=%s chmod=%s dest=%s dir=%t", spec.name, spec.chown, spec.chmod, destAbs, destIsDir),
		User:        st.img.Config.User,
		Extra:       map[string]string{"from": fromKey.String(), "from.srcs": string(srcs), "from.excludes": string(excl)},
	}
}

// history is BuildKit's created_by for COPY/ADD: the expanded sources and
// destination with --chown/--chmod only ("COPY --chown=1:1 a b /d/ # buildkit").
func (spec copySpec) history() string {
	parts := []string{spec.name}
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

// copyInputs is the cache identity of a COPY/ADD.
func (bd *build) copyInputs(ctx context.Context, st *imageState, spec copySpec, sel *selection, items []copyItem,
	destAbs string, destIsDir bool, fromKey digest.Digest) (cache.Inputs, error) {
	in := cache.Inputs{
		Instruction: fmt.Sprintf("%s chown=%s chmod=%s dest=%s dir=%t", spec.name, spec.chown, spec.chmod, destAbs, destIsDir),
		User:        st.img.Config.User,
		Extra:       map[string]string{},
	}
	if spec.chown != "" {
		// Names resolve through the image's /etc/passwd, part of the parent.
		in.Extra["chown"] = spec.chown
	}
	var srcs []cache.Source
	for i, it := range items {
		switch {
		case it.data != nil:
			in.Extra["heredoc."+strconv.Itoa(i)] = it.destRel + ":" + digest.FromString(*it.data).String()
		case it.download != "":
			in.Extra["url."+strconv.Itoa(i)] = it.destRel + ":" + it.download
		case sel.isContext:
			walked, err := sel.walk(it)
			if err != nil {
				return in, err
			}
			items[i].walked = walked
			for _, w := range walked {
				srcs = append(srcs, cache.Source{Path: strings.TrimPrefix(w.src, "/"), Dest: path.Join(it.destRel, w.rel)})
			}
			if it.archive {
				in.Extra["archive."+strconv.Itoa(i)] = it.src
			}
		default:
			in.Extra["from."+strconv.Itoa(i)] = it.src + "->" + it.destRel
		}
	}
	if fromKey != "" {
		in.Extra["from"] = fromKey.String()
	}
	if len(srcs) > 0 {
		d, err := bd.b.Cache.HashSources(ctx, bd.opts.ContextDir, srcs)
		if err != nil {
			return in, err
		}
		in.Sources = d
	}
	return in, nil
}

// keepParents makes each item of a COPY --parents source land at its path
// relative to the tree root, or to the "/./" pivot when src has one.
func keepParents(src string, items []copyItem) {
	pivot := "/"
	full := "/" + strings.TrimPrefix(src, "./")
	if i := strings.Index(full, "/./"); i > 0 {
		pivot = path.Clean(full[:i])
	}
	for i := range items {
		rel := strings.TrimPrefix(items[i].matched, pivot)
		items[i].destRel = strings.TrimPrefix(rel, "/")
	}
}

// isGitURL tells git sources (which BuildKit clones) from plain URLs.
func isGitURL(src string) bool {
	if strings.HasPrefix(src, "git@") || strings.HasPrefix(src, "git://") {
		return true
	}
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return false
	}
	u, err := url.Parse(src)
	return err == nil && strings.HasSuffix(u.Path, ".git")
}

// markArchives marks downloaded items that are archives for extraction.
func markArchives(items []copyItem) error {
	for i := range items {
		host, err := items[i].fsys.HostPath(items[i].src)
		if err != nil {
			return err
		}
		if ok, _ := layer.IsArchive(host); ok {
			items[i].archive, items[i].destRel = true, ""
		}
	}
	return nil
}
