package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// contextRoot resolves source paths beneath a build-context directory:
// symlinks in parent directories are followed only while they stay inside
// the context (openat2 RESOLVE_BENEATH); the last component is looked up in
// its parent's handle and never followed.
type contextRoot struct {
	fd       int
	path     string // absolute
	resolved string // path with symlinks evaluated, for the fallback
	// noOpenat2 is set once openat2 is found missing (Linux < 5.6) or
	// filtered by seccomp; the fallback checks parents with EvalSymlinks.
	noOpenat2 atomic.Bool
}

func openContextRoot(dir string) (*contextRoot, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open context %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("open context %s: %w", dir, err)
	}
	return &contextRoot{fd: fd, path: dir, resolved: resolved}, nil
}

func (r *contextRoot) Close() error { return unix.Close(r.fd) }

// openDir opens the directory rel (clean, relative; "." for the root) as
// an O_PATH handle, resolving symlinks only inside the root.
func (r *contextRoot) openDir(rel string) (*dirHandle, error) {
	if !r.noOpenat2.Load() {
		fd, err := r.openat2(rel)
		if err == nil {
			return &dirHandle{fd: fd, path: filepath.Join(r.path, rel)}, nil
		}
		if !errors.Is(err, errNoOpenat2) {
			return nil, err
		}
		r.noOpenat2.Store(true)
	}
	return r.openDirFallback(rel)
}

var errNoOpenat2 = errors.New("openat2 unavailable")

func (r *contextRoot) openat2(rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	var err error
	for range 8 {
		var fd int
		fd, err = unix.Openat2(r.fd, rel, how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue // a concurrent rename raced the lookup: retry
		case errors.Is(err, unix.EXDEV):
			return -1, fmt.Errorf("resolve %s: %w", rel, errEscapes)
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			return -1, errNoOpenat2 // old kernel or seccomp filter
		}
		break
	}
	return -1, &os.PathError{Op: "openat2", Path: filepath.Join(r.path, rel), Err: err}
}

// openDirFallback resolves rel with EvalSymlinks and checks it stays inside
// the root. Unlike openat2 it is racy against concurrent symlink swaps.
func (r *contextRoot) openDirFallback(rel string) (*dirHandle, error) {
	resolved, err := filepath.EvalSymlinks(filepath.Join(r.path, rel))
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(r.resolved, string(filepath.Separator)) + string(filepath.Separator)
	if resolved != r.resolved && !strings.HasPrefix(resolved, prefix) {
		return nil, fmt.Errorf("resolve %s: %w", rel, errEscapes)
	}
	fd, err := unix.Open(resolved, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: resolved, Err: err}
	}
	return &dirHandle{fd: fd, path: filepath.Join(r.path, rel)}, nil
}

// dirHandle is an open directory inside the context; names looked up in it
// are single components and never followed.
type dirHandle struct {
	fd   int
	path string
}

func (d *dirHandle) Close() error { return unix.Close(d.fd) }

// lstat returns the metadata of name and, for a symlink, its target.
func (d *dirHandle) lstat(name string) (fileStat, string, error) {
	var s unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileStat{}, "", &os.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
	}
	st := toFileStat(&s)
	if st.mode&sIFMT != sIFLNK {
		return st, "", nil
	}
	target, err := readlinkAt(d.fd, name)
	if err != nil {
		return fileStat{}, "", &os.PathError{Op: "readlink", Path: filepath.Join(d.path, name), Err: err}
	}
	return st, target, nil
}

// open opens the regular file name for reading. O_NONBLOCK keeps a FIFO
// swapped in since the lstat from blocking the open.
func (d *dirHandle) open(name string) (*os.File, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(d.path, name)), nil
}

// fstatFile returns the metadata of an open file.
func fstatFile(f *os.File) (fileStat, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return fileStat{}, err
	}
	var s unix.Stat_t
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &s) }); err != nil {
		return fileStat{}, err
	}
	if serr != nil {
		return fileStat{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: serr}
	}
	return toFileStat(&s), nil
}

func toFileStat(s *unix.Stat_t) fileStat {
	return fileStat{
		mode:  uint32(s.Mode),
		uid:   s.Uid,
		gid:   s.Gid,
		nlink: uint64(s.Nlink),
		size:  s.Size,
		mtime: s.Mtim.Nano(),
		ctime: s.Ctim.Nano(),
		ino:   uint64(s.Ino),
		dev:   uint64(s.Dev),
		major: unix.Major(uint64(s.Rdev)),
		minor: unix.Minor(uint64(s.Rdev)),
	}
}

// readlinkAt reads the target of the symlink name in dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
