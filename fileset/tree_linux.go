package fileset

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// OpenNoFollow opens the host file p for reading without following a final
// symlink (opening a symlink fails with ELOOP).
func OpenNoFollow(p string) (io.ReadCloser, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}
