// Package fileset reads the trees that COPY and ADD take files from, and
// selects files in them the way Docker and BuildKit do. It knows trees and
// patterns, not layers, snapshots or builds.
//
// A tree is a read-only file system seen as a chroot (FS). Two kinds exist:
//
//	Dir(root)     a host directory: the build context, or an extracted archive
//	View(layers)  the merged rootfs of a stage or image (a snapshot.View);
//	              View(nil) is the empty tree of FROM scratch
//
// Paths in a tree are absolute slash paths ("/src/main.go"), cleaned, and
// they never reach outside it: ".." stops at "/", and a symlink is followed
// inside the tree (an absolute target restarts at the tree's "/", never at the
// host's). Resolve follows every symlink of a path; the other methods take a
// resolved path (no symlink before the last component: a Dir tree would hand
// such a link to the host) and do not follow a final one.
//
// A Selection picks the sources of one COPY/ADD argument from one tree:
//
//	sel := &fileset.Selection{FS: fileset.Dir(abs), Ignore: ig, Context: true, Excludes: excl}
//	ms, err := sel.Match("src/*.go")      // roots: resolved path, where each lands
//	fileset.KeepParents("src/*.go", ms)   // COPY --parents only
//	for _, m := range ms {
//		ws, err := sel.Walk(m)          // m and everything below it, in name order
//		err = fileset.StatAll(ws)       // stat only when the files will be read
//	}
//
// Match expands wildcards component by component, follows a final symlink,
// and refuses sources that are missing or excluded by .dockerignore (an
// Ignore, rooted at the context) with a *NoSourceError. Walk lists a match
// recursively, leaving out --exclude matches, .dockerignore matches (but
// descending into an excluded directory when a "!" pattern may re-include
// something below it) and sockets. The package also reads --chmod specs
// (ParseChmod) and resolves users and groups through a tree's /etc/passwd and
// /etc/group (ResolveUser, ChownIDs).
package fileset

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

var (
	// ErrNotDir is returned (wrapped) when a path goes through a non-directory.
	ErrNotDir = errors.New("not a directory")
	// ErrNoSource is returned (wrapped, often as a *NoSourceError) when a
	// COPY/ADD source does not exist or is excluded.
	ErrNoSource = errors.New("no such file in context")
	// ErrOutside is returned (wrapped) for a context source starting with "..".
	ErrOutside = errors.New("source is outside the build context")
)

// FS is a read-only tree that COPY/ADD select files from: the build
// context or the rootfs of a stage or image. Paths are absolute slash paths
// inside the tree; implementations never let a path reach outside it.
type FS interface {
	Lstat(p string) (fs.FileInfo, error)
	// ReadDir lists a directory sorted by name. An entry's type is known
	// without a stat; Info may stat.
	ReadDir(p string) ([]fs.DirEntry, error)
	Open(p string) (io.ReadCloser, error)
	Readlink(p string) (string, error)
	// Resolve follows symlinks as if chrooted at the tree's root; a missing
	// final component is allowed.
	Resolve(p string) (string, error)
	// HostPath is the file on the host holding p (p must be resolved).
	HostPath(p string) (string, error)
}

// DirFS is a host directory seen as a chroot.
type DirFS struct{ root string }

var (
	_ FS = DirFS{}
	_ FS = ViewFS{}
	// OpenNoFollow has one signature on every GOOS.
	_ func(string) (io.ReadCloser, error) = OpenNoFollow
)

// Dir returns the tree rooted at the host directory root (used as given:
// make it absolute first if the working directory may change).
func Dir(root string) DirFS { return DirFS{root: root} }

// Root returns the host directory of the tree.
func (d DirFS) Root() string { return d.root }

func (d DirFS) host(p string) string {
	return filepath.Join(d.root, filepath.FromSlash(path.Clean("/"+p)))
}

// Lstat returns the info of p without following a final symlink.
func (d DirFS) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(d.host(p)) }

// ReadDir takes the types from getdents: listing a context dir costs no
// stat per file.
func (d DirFS) ReadDir(p string) ([]fs.DirEntry, error) { return readDir(d.host(p)) }

// Open opens the file p for reading, failing if p is a symlink.
func (d DirFS) Open(p string) (io.ReadCloser, error) { return OpenNoFollow(d.host(p)) }

// Readlink returns the target of the symlink p as written.
func (d DirFS) Readlink(p string) (string, error) { return os.Readlink(d.host(p)) }

// HostPath returns the host path of p (p must be resolved).
func (d DirFS) HostPath(p string) (string, error) { return d.host(p), nil }

// Resolve follows the symlinks of p inside the tree.
func (d DirFS) Resolve(p string) (string, error) {
	return resolveIn(p, func(q string) (fs.FileInfo, error) { return d.Lstat(q) }, d.Readlink)
}

// resolveIn follows symlinks of p component by component inside a root.
func resolveIn(p string, lstat func(string) (fs.FileInfo, error), readlink func(string) (string, error)) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return p, nil
	}
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := lstat(next)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && len(todo) == 0 {
				return next, nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", fmt.Errorf("%s: %w", next, ErrNotDir)
			}
			cur = next
			continue
		}
		links++
		if links > 255 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(strings.Trim(target, "/"), "/"), todo...)
	}
	return cur, nil
}

// ResolveDest resolves a destination path inside root: symlinks of the
// existing part are followed, missing trailing components are kept.
func ResolveDest(root FS, p string) (string, error) {
	r, err := root.Resolve(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || p == "/" {
		return "", err
	}
	parent, err := ResolveDest(root, path.Dir(p))
	if err != nil {
		return "", err
	}
	return path.Join(parent, path.Base(p)), nil
}

// Ancestors returns "/a", "/a/b", ... "/a/b/c" for "/a/b/c" ("/" excluded).
func Ancestors(p string) []string {
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
