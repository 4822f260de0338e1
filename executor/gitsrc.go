package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/source/git"
)

// gitSource is an ADD of a git URL. The commit, resolved with one
// ls-remote before the cache lookup, identifies it; the tree is fetched
// (or found in the git store) only when the step runs.
type gitSource struct {
	src    string // as written
	ref    git.Ref
	commit string
	// excludes are the ADD's --exclude patterns.
	excludes []string
}

func (g *gitSource) single() bool { return false }
func (g *gitSource) base() string { return path.Base(g.ref.Remote) }

// gitAuth is what git fetches present: the GIT_AUTH_* secrets.
func (bd *build) gitAuth() git.Auth { return git.Auth{Secrets: bd.opts.Secrets} }

// gitItems resolves an ADD git source to its commit (ADD --checksum and
// --keep-git-dir apply, as in BuildKit).
func (bd *build) gitItems(ctx context.Context, spec copySpec, src string, r git.Ref) ([]copyItem, error) {
	if !spec.add {
		return nil, errors.New("source can't be a git ref for COPY")
	}
	if spec.keepGitDir != nil {
		r.KeepGitDir = *spec.keepGitDir
	}
	if spec.checksum != "" {
		if r.Checksum != "" && r.Checksum != spec.checksum {
			return nil, fmt.Errorf("checksum mismatch %q != %q", spec.checksum, r.Checksum)
		}
		r.Checksum = spec.checksum
		if !git.IsHex(r.Checksum) {
			return nil, fmt.Errorf("invalid --checksum %q for a git source: expected a hex commit hash", spec.checksum)
		}
	}
	if bd.st.Git == nil {
		return nil, fmt.Errorf("%s: git sources need a git store", git.Redact(src))
	}
	commit, err := bd.st.Git.Resolve(ctx, r, bd.gitAuth())
	if err != nil {
		return nil, err
	}
	return []copyItem{{src: &gitSource{src: src, ref: r, commit: commit, excludes: spec.excludes}}}, nil
}

// gitTree fetches (or finds) the checkout of a resolved git source and
// returns the tree of its subdir.
func (bd *build) gitTree(ctx context.Context, g *gitSource) (*treeSource, error) {
	dir, err := bd.st.Git.Tree(ctx, g.ref, g.commit, bd.gitAuth())
	if err != nil {
		return nil, err
	}
	t, err := subdirTree(fileset.Dir(dir), g.ref.Subdir, g.ref.String())
	if err == nil {
		t.sel.Excludes = g.excludes
	}
	return t, err
}

// subdirTree is the tree of sub (resolved inside fsys) as one source.
func subdirTree(fsys fileset.DirFS, sub, name string) (*treeSource, error) {
	p, err := fsys.Resolve("/" + sub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	fi, err := fsys.Lstat(p)
	if errors.Is(err, os.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s: subdir %q is not a directory of the repository", name, sub)
	}
	if err != nil {
		return nil, err
	}
	return &treeSource{sel: &fileset.Selection{FS: fsys}, m: fileset.Match{Path: p, Info: fi}}, nil
}
