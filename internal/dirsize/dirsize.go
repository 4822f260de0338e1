// Package dirsize sums what a directory tree holds.
package dirsize

import (
	"io/fs"
	"path/filepath"
)

// Of is the total size of the regular files below dir (what cannot be
// read is left out: a size for a report, not a check).
func Of(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
