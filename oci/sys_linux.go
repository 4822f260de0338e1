package oci

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryFlock takes a shared or exclusive flock on f without blocking; it
// reports false when another open file holds a conflicting lock.
func tryFlock(f *os.File, exclusive bool) (bool, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return false, err
		}
	}
}

// flockWait blocks until it holds an exclusive flock on f.
func flockWait(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// funlock releases the flock on f.
func funlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// pidAlive reports whether a process with this pid exists (EPERM means it
// exists but belongs to another user).
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// startWriteback asks the kernel to start writing f's bytes [off, off+n)
// to disk without waiting, so that the fsync of a big blob at Commit finds
// little left to write (the disk works while the blob is still produced).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// canWaitRanges reports whether sync_file_range works on f at all: a call
// without flags checks only the call and the file's type, and leaves the
// file's write error for the next wait or fsync to report.
func canWaitRanges(f *os.File) bool {
	return unix.SyncFileRange(int(f.Fd()), 0, 0, 0) == nil
}

// waitWriteback writes f's bytes [off, off+n) to disk and waits for them
// (not for the file's metadata: the fsync at the end does that). An error
// is a write error (or worse): this file descriptor's fsync will not
// report it again.
func waitWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}

// dropCache tells the kernel f's bytes [off, off+n) will not be read
// again: a follower of a blob's direct part reads it through the page
// cache, and leaves nothing there for the build to reclaim.
// It is a no-op on a closed file (a follower may be closed meanwhile).
func dropCache(f *os.File, off, n int64) {
	if c, err := f.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { _ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED) })
	}
}
