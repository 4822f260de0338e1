package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// opaqueXattr marks an overlay dir that hides the lower layers' content.
const opaqueXattr = "trusted.overlay.opaque"

// isWhiteout reports whether fi is an overlay whiteout: a 0/0 char device.
func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaque reports whether the dir p carries trusted.overlay.opaque=y
// (user.overlay.opaque=y in a user namespace, where overlayfs writes that).
func isOpaque(p string) (bool, error) {
	key := opaqueXattr
	if InUserNS() {
		key = "user.overlay.opaque" // overlayfs' userxattr form
	}
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(p, key, buf)
	switch {
	case err == nil:
		return string(buf[:n]) == "y", nil
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ERANGE):
		return false, nil
	default:
		return false, &fs.PathError{Op: "getxattr", Path: p, Err: err}
	}
}

// openBeneath opens dir/rel read-only without following any symlink and
// without leaving dir, with openat2 (Linux 5.6+) or, failing that, one
// O_NOFOLLOW openat per component. O_NONBLOCK keeps a FIFO from blocking.
func openBeneath(dir, rel string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{
		Flags:   flags,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOSYS) {
		fd, err = openEach(dfd, rel, flags)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, rel)), nil
}

// openEach opens rel under dfd one component at a time, refusing symlinks.
func openEach(dfd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	cur := dfd
	for i, name := range parts {
		if name == ".." {
			return -1, unix.EXDEV
		}
		f := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags
		}
		fd, err := unix.Openat(cur, name, f, 0)
		if cur != dfd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}
