package oci

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directChunk is the bytes of one O_DIRECT write.
const directChunk = 4 << 20

// directWriter writes the rest of a big blob with O_DIRECT, in aligned
// chunks: past its first directFrom bytes a blob goes to the disk without
// filling the page cache, where its pages would push out the build
// context the build reads again (a 10 GB COPY writes a 5 GB blob), and
// would cost a reclaim for each one.
type directWriter struct {
	f   *os.File
	buf []byte // aligned, cap directChunk
	off bool   // O_DIRECT failed: plain writes from here on
}

// startDirect switches f, of which off bytes were written, to O_DIRECT;
// nil when off is not aligned or the file system refuses O_DIRECT.
func startDirect(f *os.File, off int64) *directWriter {
	if off%directAlign != 0 || setDirect(f, true) != nil {
		return nil
	}
	raw := make([]byte, directChunk+directAlign)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (directAlign - 1))
	return &directWriter{f: f, buf: raw[skip : skip : skip+directChunk]}
}

func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
	return err
}

// write takes p whole: what does not fill a chunk waits for the next write
// or finish.
func (d *directWriter) write(p []byte) error {
	if d.off {
		_, err := d.f.Write(p)
		return err
	}
	for len(p) > 0 {
		k := copy(d.buf[len(d.buf):cap(d.buf)], p)
		d.buf, p = d.buf[:len(d.buf)+k], p[k:]
		if len(d.buf) == cap(d.buf) {
			if err := d.flush(len(d.buf)); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the first n bytes of the buffer (n aligned) and keeps the
// rest at its start. Should the file system refuse a direct write (some
// accept O_DIRECT at fcntl and not at write), it writes the whole buffer
// as everyone else does, and so on from then.
func (d *directWriter) flush(n int) error {
	_, err := d.f.Write(d.buf[:n])
	if errors.Is(err, unix.EINVAL) {
		d.off = true
		if err = setDirect(d.f, false); err == nil {
			_, err = d.f.Write(d.buf)
		}
		d.buf = d.buf[:0]
		return err
	}
	if err != nil {
		return err
	}
	rest := copy(d.buf, d.buf[n:])
	d.buf = d.buf[:rest]
	return nil
}

// finish writes what is buffered: the aligned part direct, the tail as a
// plain write (a direct write must be whole blocks).
func (d *directWriter) finish() error {
	if d.off {
		return nil
	}
	if n := len(d.buf) &^ (directAlign - 1); n > 0 {
		if err := d.flush(n); err != nil {
			return err
		}
	}
	if d.off || len(d.buf) == 0 {
		return nil
	}
	if err := setDirect(d.f, false); err != nil {
		return err
	}
	d.off = true
	_, err := d.f.Write(d.buf)
	d.buf = d.buf[:0]
	return err
}
