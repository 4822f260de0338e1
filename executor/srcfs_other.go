//go:build !linux

package executor

import (
	"io"
	"os"
)

func openNoFollow(p string) (io.ReadCloser, error) { return os.Open(p) }
