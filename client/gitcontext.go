package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/source/git"
)

// IsGitContext reports a build context that is a git URL, as docker build
// takes one: https://host/repo.git#ref:subdir, git://..., git@host:repo.git.
func IsGitContext(s string) bool {
	_, ok, _ := git.Parse(s)
	return ok
}

// gitContext points a build whose ContextDir is a git URL at the checkout
// of the commit its ref names now (fetched once per commit, kept in the
// git store; the caller holds the store lock, so no prune removes it
// meanwhile), and reads the Dockerfile (opts.DockerfileName, default
// "Dockerfile") from it when opts has none. Any other ContextDir is left
// as it is.
func (c *Client) gitContext(ctx context.Context, opts *executor.Options) error {
	r, ok, err := git.Parse(opts.ContextDir)
	if !ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: context: %v", ErrUsage, err)
	}
	auth := git.Auth{Secrets: opts.Secrets}
	commit, err := c.git.Resolve(ctx, r, auth)
	if err != nil {
		return fmt.Errorf("context: %w", err)
	}
	tree, err := c.git.Tree(ctx, r, commit, auth)
	if err != nil {
		return fmt.Errorf("context: %w", err)
	}
	dir, err := inside(tree, r.Subdir)
	if err != nil {
		return fmt.Errorf("context %s: %w", r, err)
	}
	if opts.Dockerfile == nil {
		name := opts.DockerfileName
		if name == "" {
			name = "Dockerfile"
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return err
		}
		defer root.Close()
		// The repository is untrusted: os.Root keeps symlinks inside it.
		data, err := root.ReadFile(path.Clean("/" + filepath.ToSlash(name))[1:])
		if err != nil {
			return fmt.Errorf("%w: read %s of context %s: %v", ErrUsage, name, r, err)
		}
		opts.Dockerfile, opts.DockerfileName = data, path.Base(filepath.ToSlash(name))
	}
	opts.ContextSource, opts.ContextDir = opts.ContextDir, dir
	return nil
}

// inside is the host dir of sub in tree, refusing a symlink on the way
// (a hostile repository's way out).
func inside(tree, sub string) (string, error) {
	dir := tree
	for _, part := range strings.Split(sub, "/") {
		if part == "" || part == "." {
			continue
		}
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
			return "", fmt.Errorf("subdir %q is not a directory of the repository", sub)
		}
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}
