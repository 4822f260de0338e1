//go:build !linux

package bench

import (
	"errors"
	"os"
)

// openPTY is not supported.
func openPTY(cols, rows int) (master, term *os.File, err error) {
	return nil, nil, errors.ErrUnsupported
}

// maxRSSKB is not known here.
func maxRSSKB(ps *os.ProcessState) int64 { return 0 }
