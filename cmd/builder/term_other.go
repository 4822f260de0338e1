//go:build !linux

package main

import "errors"

// termSize is the size of the terminal on fd; not known here.
func termSize(fd uintptr) (cols, rows int, err error) { return 0, 0, errors.ErrUnsupported }
