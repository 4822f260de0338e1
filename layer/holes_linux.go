//go:build linux

package layer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// sparseRuns returns the data of the regular file f (size bytes) as runs
// of sparseBlock-aligned blocks holding a non-zero byte, when the file has
// holes; ok is false for a file without holes, which Pack writes whole.
//
// Whether a file is sparse is the filesystem's word (SEEK_HOLE), but the
// runs depend only on the content: the holes it reports are zeros, the data
// it reports is read and its zero blocks are holes too. Two sparse files
// with the same content pack to the same bytes whatever wrote them.
func sparseRuns(f *os.File, size int64, buf []byte) (runs []fragment, ok bool, err error) {
	fd := int(f.Fd())
	hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE)
	if err != nil || hole >= size {
		// No hole, or no SEEK_HOLE: dense, read from the start.
		if _, err := unix.Seek(fd, 0, unix.SEEK_SET); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	buf = buf[:len(buf)/sparseBlock*sparseBlock]
	var scanned int64 // everything below was read
	for pos := int64(0); pos < size; {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, false, err
		}
		end, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, false, err
		}
		end = min(end, size)
		for off := max(data/sparseBlock*sparseBlock, scanned); off < end; {
			n, err := unix.Pread(fd, buf[:min(int64(len(buf)), roundUp(end)-off)], off)
			if err != nil {
				return nil, false, err
			}
			if n == 0 {
				break // shrank: the copy pass reports it
			}
			for i := 0; i < n; i += sparseBlock {
				if !allZero(buf[i:min(i+sparseBlock, n)]) {
					runs = addRun(runs, fragment{off + int64(i), min(int64(sparseBlock), size-off-int64(i))})
				}
			}
			off += int64(n)
			scanned = off
		}
		pos = max(end, scanned)
	}
	return runs, true, nil
}

func roundUp(n int64) int64 { return (n + sparseBlock - 1) / sparseBlock * sparseBlock }

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
