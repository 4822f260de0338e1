package executor

import (
	"io/fs"
	"syscall"

	"github.com/builderdev/builder/layer"
	"golang.org/x/sys/unix"
)

// entryFromInfo makes an entry from a FileInfo (owner kept or reset to 0).
func entryFromInfo(name string, fi fs.FileInfo, keepOwner bool) layer.Entry {
	e := layer.Entry{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		e.Size = fi.Size()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if keepOwner {
			e.UID, e.GID = int(st.Uid), int(st.Gid)
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			e.Dev, e.Ino = uint64(st.Dev), uint64(st.Ino)
		}
		if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
			e.Devmajor, e.Devminor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
		}
	}
	return e
}
