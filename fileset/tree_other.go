//go:build !linux

package fileset

import (
	"io"
	"io/fs"
	"os"
)

// OpenNoFollow opens the host file p for reading. Off Linux it is os.Open: a
// final symlink is followed.
func OpenNoFollow(p string) (io.ReadCloser, error) { return os.Open(p) }

// readDir is os.ReadDir (readdir_linux.go has a leaner one).
func readDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
