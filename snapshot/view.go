package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// View reads the merged rootfs of a stack of lower dirs (top first) with
// overlay semantics (0/0 char devices hide, opaque dirs stop the merge),
// without mounting anything.
//
// Lookups go one path component at a time, with Lstat on the component
// joined to each layer dir that holds the parent as a real directory, so the
// OS never follows a symlink inside a layer: image symlinks are resolved by
// View itself, inside the image root. Reading trusted.overlay.opaque needs
// root (CAP_SYS_ADMIN); without it opaque dirs are merged like plain ones.
type View struct{ Lowers []string }

// maxSymlinks is how many symlinks one lookup follows before failing with ELOOP.
const maxSymlinks = 255

// node is one path of the merged tree.
type node struct {
	layer int         // index in Lowers of the winning (topmost) layer; -1: absent
	rel   string      // path inside a layer dir, "." for the root
	fi    fs.FileInfo // Lstat of the winning layer's file
	dirs  []int       // for a directory: the layers merged into it, top first
}

func (n node) exists() bool { return n.layer >= 0 }

func (n node) isSymlink() bool { return n.exists() && n.fi.Mode()&fs.ModeSymlink != 0 }

func (n node) isDir() bool { return n.exists() && n.fi.IsDir() }

// root returns the merged "/". Layer dirs are host paths given by the
// caller, so they are followed (os.Stat).
func (v View) root() (node, error) {
	n := node{layer: -1, rel: "."}
	for i, l := range v.Lowers {
		fi, err := os.Stat(l)
		if err != nil {
			return node{}, err
		}
		if !fi.IsDir() {
			return node{}, fmt.Errorf("lower %s: %w", l, syscall.ENOTDIR)
		}
		if n.layer < 0 {
			n.layer, n.fi = i, fi
		}
		n.dirs = append(n.dirs, i)
		if opaque, err := isOpaque(l); err != nil {
			return node{}, err
		} else if opaque {
			break
		}
	}
	return n, nil
}

// child looks name up in the directory parent, merging layers top down: a
// whiteout ends the search, a non-directory wins only when nothing above
// it matched and hides everything below, and directories merge until an
// opaque one.
func (v View) child(parent node, name string) (node, error) {
	n := node{layer: -1, rel: path.Join(parent.rel, name)}
	for k, i := range parent.dirs {
		p := filepath.Join(v.Lowers[i], n.rel)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return node{}, err
		}
		if isWhiteout(fi) {
			break
		}
		if n.layer < 0 {
			n.layer, n.fi = i, fi
		}
		if !fi.IsDir() {
			break
		}
		n.dirs = append(n.dirs, i)
		if k == len(parent.dirs)-1 {
			break
		}
		if opaque, err := isOpaque(p); err != nil {
			return node{}, err
		} else if opaque {
			break
		}
	}
	return n, nil
}

// walk looks p up as a chroot into the view would: symlinks are followed
// inside the root (absolute targets restart at "/", ".." stops at "/"), the
// final one only when followFinal. A missing final component is not an
// error: walk returns its path and a node that does not exist.
func (v View) walk(op, p string, followFinal bool) (string, node, error) {
	fail := func(err error) (string, node, error) {
		return "", node{}, &fs.PathError{Op: op, Path: p, Err: err}
	}
	root, err := v.root()
	if err != nil {
		return fail(err)
	}
	type frame struct {
		name string
		n    node
	}
	stack := []frame{{"", root}}
	pending := splitPath(p)
	links := 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		switch name {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		n, err := v.child(stack[len(stack)-1].n, name)
		if err != nil {
			return fail(err)
		}
		last := len(pending) == 0
		switch {
		case !n.exists() && !last:
			return fail(syscall.ENOENT)
		case n.isSymlink() && (followFinal || !last):
			if links++; links > maxSymlinks {
				return fail(syscall.ELOOP)
			}
			target, err := os.Readlink(filepath.Join(v.Lowers[n.layer], n.rel))
			if err != nil {
				return fail(err)
			}
			if target == "" {
				return fail(syscall.ENOENT)
			}
			if path.IsAbs(target) {
				stack = stack[:1]
			}
			pending = append(splitPath(target), pending...)
			continue
		case n.exists() && !n.isDir() && !last:
			return fail(syscall.ENOTDIR)
		}
		stack = append(stack, frame{name, n})
	}
	names := make([]string, 0, len(stack)-1)
	for _, f := range stack[1:] {
		names = append(names, f.name)
	}
	return "/" + strings.Join(names, "/"), stack[len(stack)-1].n, nil
}

// splitPath returns the non-empty components of p.
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// Resolve follows symlinks of p (absolute path in the image) inside the view's
// root, as a chroot would, and returns the resolved absolute image path. A
// missing final component is allowed (for destinations).
func (v View) Resolve(p string) (string, error) {
	resolved, _, err := v.walk("resolve", p, true)
	return resolved, err
}

// Lstat returns the merged file info of the image path p (no final symlink followed).
// Its Sys() is the *syscall.Stat_t of the winning layer's file; the name
// is the final component of the resolved path ("/" for the root).
func (v View) Lstat(p string) (fs.FileInfo, error) {
	resolved, n, err := v.walk("lstat", p, false)
	if err != nil {
		return nil, err
	}
	if !n.exists() {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOENT}
	}
	return fileInfo{FileInfo: n.fi, name: path.Base(resolved)}, nil
}

// ReadFile reads the image file p (symlinks resolved inside the root).
func (v View) ReadFile(p string) ([]byte, error) {
	_, n, err := v.walk("read", p, true)
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]byte, error) {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	switch {
	case !n.exists():
		return fail(syscall.ENOENT)
	case n.fi.IsDir():
		return fail(syscall.EISDIR)
	case !n.fi.Mode().IsRegular():
		return fail(errors.New("not a regular file"))
	}
	f, err := openBeneath(v.Lowers[n.layer], n.rel)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	// The file opened must be the one looked up, not whatever a concurrent
	// change put there since.
	if fi, err := f.Stat(); err != nil || !os.SameFile(fi, n.fi) {
		return fail(errors.New("file changed during lookup"))
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fail(err)
	}
	return b, nil
}

// fileInfo renames a layer file's info to its image name.
type fileInfo struct {
	fs.FileInfo
	name string
}

func (fi fileInfo) Name() string { return fi.name }
