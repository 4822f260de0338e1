package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unsafe"

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
	// noStatx is set once statx is found missing or filtered: lstat falls
	// back to fstatat.
	noStatx atomic.Bool
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
			return &dirHandle{fd: fd, path: filepath.Join(r.path, rel), noStatx: &r.noStatx}, nil
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
	return &dirHandle{fd: fd, path: filepath.Join(r.path, rel), noStatx: &r.noStatx}, nil
}

// dirHandle is an open directory inside the context; names looked up in it
// are single components and never followed.
type dirHandle struct {
	fd      int
	path    string
	noStatx *atomic.Bool // the root's
}

func (d *dirHandle) Close() error { return unix.Close(d.fd) }

// lstat returns the metadata of name and, for a symlink, its target.
// scratch is the caller's buffer for the NUL-terminated name: a warm build
// stats every context file, and unix.Fstatat allocates for each.
func (d *dirHandle) lstat(name string, scratch *[]byte) (fileStat, string, error) {
	st, err := d.statx(name, scratch)
	if err != nil {
		return fileStat{}, "", &os.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
	}
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

// statxMask is what the cache compares and digests: type, mode, owner,
// links, size, times, inode (the device comes with every statx). No atime,
// btime or block count.
const statxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_NLINK | unix.STATX_UID | unix.STATX_GID |
	unix.STATX_MTIME | unix.STATX_CTIME | unix.STATX_INO | unix.STATX_SIZE

// statx stats name in d without following a final symlink: statx(2) with
// statxMask, the name made NUL-terminated in *scratch (no allocation), or
// fstatat where statx is missing or leaves out a field asked for.
func (d *dirHandle) statx(name string, scratch *[]byte) (fileStat, error) {
	if !d.noStatx.Load() {
		b := append(append((*scratch)[:0], name...), 0)
		*scratch = b
		var x unix.Statx_t
		_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(d.fd), uintptr(unsafe.Pointer(&b[0])),
			uintptr(unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT), statxMask, uintptr(unsafe.Pointer(&x)), 0)
		switch {
		case errno == 0 && x.Mask&statxMask == statxMask:
			return fromStatx(&x), nil
		case errno == unix.ENOSYS || errno == unix.EPERM:
			d.noStatx.Store(true)
		case errno != 0:
			return fileStat{}, errno
		}
	}
	var s unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileStat{}, err
	}
	return toFileStat(&s), nil
}

func fromStatx(x *unix.Statx_t) fileStat {
	return fileStat{
		mode:  uint32(x.Mode),
		uid:   x.Uid,
		gid:   x.Gid,
		nlink: uint64(x.Nlink),
		size:  int64(x.Size),
		mtime: x.Mtime.Sec*1e9 + int64(x.Mtime.Nsec),
		ctime: x.Ctime.Sec*1e9 + int64(x.Ctime.Nsec),
		ino:   x.Ino,
		// As st_dev and st_rdev encode them (fstat below): the cache
		// compares both kinds.
		dev:   unix.Mkdev(x.Dev_major, x.Dev_minor),
		major: x.Rdev_major,
		minor: x.Rdev_minor,
	}
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
