//go:build !linux

package snapshot

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Overlay does not exist here: there are no whiteouts or opaque dirs.
func isWhiteout(fs.FileInfo) bool { return false }

func isOpaque(string) (bool, error) { return false, nil }

// openBeneath opens dir/rel. The lookup checked every parent to be a real
// dir and the final file to be a regular one, and ReadFile checks that the
// opened file is the one looked up.
func openBeneath(dir, rel string) (*os.File, error) {
	return os.Open(filepath.Join(dir, rel))
}
