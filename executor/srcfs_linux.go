package executor

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow opens a regular file without following a final symlink.
func openNoFollow(p string) (io.ReadCloser, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}
