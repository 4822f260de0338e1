//go:build !linux

package layer

import "os"

// sparseRuns reports every file dense: hole detection needs Linux.
func sparseRuns(f *os.File, size int64, buf []byte) (runs []fragment, ok bool, err error) {
	return nil, false, nil
}
