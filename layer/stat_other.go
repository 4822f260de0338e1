//go:build !unix

package layer

import (
	"io"
	"io/fs"
	"os"
)

func statEntry(e *Entry, info fs.FileInfo) {}

func openNoFollow(path string) (io.ReadCloser, error) { return os.Open(path) }
