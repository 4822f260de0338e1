//go:build !linux

package oci

import (
	"errors"
	"os"
)

func tryFlock(f *os.File, exclusive bool) (bool, error) { return false, errors.ErrUnsupported }

func flockWait(f *os.File) error { return errors.ErrUnsupported }

func funlock(f *os.File) error { return errors.ErrUnsupported }

// pidAlive says yes: without a way to check, never delete another
// process's temp dir.
func pidAlive(pid int) bool { return true }

func startWriteback(f *os.File, off, n int64) {}

func canWaitRanges(f *os.File) bool { return false }

func waitWriteback(f *os.File, off, n int64) error { return nil }

func dropCache(f *os.File, off, n int64) {}
