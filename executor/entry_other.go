//go:build !linux

package executor

import (
	"io/fs"

	"github.com/builderdev/builder/layer"
)

// entryFromInfo makes an entry from a FileInfo (no owners or inodes here).
func entryFromInfo(name string, fi fs.FileInfo, keepOwner bool) layer.Entry {
	e := layer.Entry{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		e.Size = fi.Size()
	}
	return e
}
