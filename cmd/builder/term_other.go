//go:build !linux

package main

import (
	"errors"
	"os"
)

// isTerminal reports whether f is a character device (a terminal, most
// likely) where termios cannot be asked.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// termSize is the size of the terminal on fd; not known here.
func termSize(fd uintptr) (cols, rows int, err error) { return 0, 0, errors.ErrUnsupported }
