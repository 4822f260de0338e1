package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// srcFS is a read-only tree that COPY/ADD select files from: the build
// context or the rootfs of a stage or image. Paths are absolute slash paths
// inside the tree; implementations never let a path reach outside it.
type srcFS interface {
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

// dirFS is a host directory seen as a chroot.
type dirFS struct{ root string }

func (d dirFS) host(p string) string {
	return filepath.Join(d.root, filepath.FromSlash(path.Clean("/"+p)))
}

func (d dirFS) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(d.host(p)) }

// ReadDir takes the types from getdents: listing a context dir costs no
// stat per file.
func (d dirFS) ReadDir(p string) ([]fs.DirEntry, error) { return os.ReadDir(d.host(p)) }

func (d dirFS) Open(p string) (io.ReadCloser, error) { return openNoFollow(d.host(p)) }

func (d dirFS) Readlink(p string) (string, error) { return os.Readlink(d.host(p)) }

func (d dirFS) HostPath(p string) (string, error) { return d.host(p), nil }

func (d dirFS) Resolve(p string) (string, error) {
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
				return "", fmt.Errorf("%s: %w", next, errNotDir)
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

var errNotDir = errors.New("not a directory")

// ignorer filters context paths by .dockerignore patterns.
type ignorer struct {
	// mu serializes matching: patternmatcher compiles each pattern on its
	// first use, and stages run concurrently.
	mu sync.Mutex
	pm *patternmatcher.PatternMatcher
}

func newIgnorer(patterns []string) (*ignorer, error) {
	if len(patterns) == 0 {
		return &ignorer{}, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("parse .dockerignore: %w", err)
	}
	return &ignorer{pm: pm}, nil
}

// excluded reports whether the context path rel ("a/b") is ignored.
func (ig *ignorer) excluded(rel string) bool {
	if ig == nil || ig.pm == nil || rel == "" || rel == "." {
		return false
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	ok, err := ig.pm.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// empty reports whether no .dockerignore pattern applies.
func (ig *ignorer) empty() bool { return ig == nil || ig.pm == nil }

// mayContainIncluded reports whether an excluded dir may hold re-included files.
func (ig *ignorer) mayContainIncluded() bool {
	return ig != nil && ig.pm != nil && ig.pm.Exclusions()
}

// readIgnoreFile reads .dockerignore patterns (missing file: none).
func readIgnoreFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}
