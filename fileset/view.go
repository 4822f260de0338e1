package fileset

import (
	"io"
	"io/fs"
	"os"
)

// Layers is what a merged rootfs view offers: lookups that resolve every
// path inside the view's root. snapshot.View satisfies it.
type Layers interface {
	// Lstat returns the merged info of p (no final symlink followed).
	Lstat(p string) (fs.FileInfo, error)
	// ReadDir lists the merged directory p sorted by name.
	ReadDir(p string) ([]fs.FileInfo, error)
	// HostPath returns the host file that provides p (no final symlink followed).
	HostPath(p string) (string, error)
	// LstatHost is Lstat and HostPath of p in one lookup.
	LstatHost(p string) (fs.FileInfo, string, error)
	// Resolve follows the symlinks of p inside the root; a missing final
	// component is allowed.
	Resolve(p string) (string, error)
	// ReadFile reads the file p (symlinks followed inside the root).
	ReadFile(p string) ([]byte, error)
}

// ViewFS is a read-only merged rootfs, the FS of a stage or an image.
//
// Its zero value, also View(nil), is the empty tree of FROM scratch: Lstat,
// ReadDir, Open, Readlink, HostPath and ReadFile fail with fs.ErrNotExist
// for every path ("/" included), and Resolve resolves as in a chroot over
// an empty directory ("/a/../b" is "/b", "/a/b" does not exist). Make an
// empty stack of lowers View(nil), not a snapshot.View with no lowers:
// only the former is Empty, and it never touches the disk.
type ViewFS struct{ l Layers }

// View returns the tree of l (nil: the empty tree).
func View(l Layers) ViewFS { return ViewFS{l: l} }

// Empty reports whether v is the empty tree.
func (v ViewFS) Empty() bool { return v.l == nil }

// Lstat returns the info of p without following a final symlink.
func (v ViewFS) Lstat(p string) (fs.FileInfo, error) {
	if v.l == nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return v.l.Lstat(p)
}

// ReadDir lists the directory p sorted by name.
func (v ViewFS) ReadDir(p string) ([]fs.DirEntry, error) {
	if v.l == nil {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: fs.ErrNotExist}
	}
	infos, err := v.l.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fi)
	}
	return out, nil
}

// HostPath returns the host file that provides p (p must be resolved).
func (v ViewFS) HostPath(p string) (string, error) {
	if v.l == nil {
		return "", &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return v.l.HostPath(p)
}

// LstatHost returns the info of p (no final symlink followed) and the host
// file that provides it, with one lookup: what a differ asks of every
// entry it compares with the layers below.
func (v ViewFS) LstatHost(p string) (fs.FileInfo, string, error) {
	if v.l == nil {
		return nil, "", &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return v.l.LstatHost(p)
}

// Open opens the file p for reading, failing if p is a symlink.
func (v ViewFS) Open(p string) (io.ReadCloser, error) {
	h, err := v.HostPath(p)
	if err != nil {
		return nil, err
	}
	return OpenNoFollow(h)
}

// Readlink returns the target of the symlink p as written.
func (v ViewFS) Readlink(p string) (string, error) {
	h, err := v.HostPath(p)
	if err != nil {
		return "", err
	}
	return os.Readlink(h)
}

// Resolve follows the symlinks of p inside the tree.
func (v ViewFS) Resolve(p string) (string, error) {
	if v.l == nil {
		return resolveIn(p, v.Lstat, v.Readlink)
	}
	return v.l.Resolve(p)
}

// ReadFile reads the file p (symlinks followed inside the tree), as
// ResolveUser and ChownIDs need.
func (v ViewFS) ReadFile(p string) ([]byte, error) {
	if v.l == nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return v.l.ReadFile(p)
}
