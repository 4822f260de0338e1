//go:build unix

package layer

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// statEntry fills owner, inode and device numbers from the raw stat.
func statEntry(e *Entry, info fs.FileInfo) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	e.UID, e.GID = int(st.Uid), int(st.Gid)
	e.Dev, e.Ino = uint64(st.Dev), uint64(st.Ino)
	if info.Mode()&fs.ModeDevice != 0 {
		e.Devmajor, e.Devminor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	}
}

func openNoFollow(path string) (io.ReadCloser, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
