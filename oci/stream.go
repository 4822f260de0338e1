package oci

import "os"

// A big blob read or written once, whole (an export, `builder save`), goes
// through the page cache without staying there past its first directFrom
// bytes, as the blob writer's O_DIRECT part does not: the reader drops
// what it read behind it, the writer starts the writeback of each chunk
// and drops the chunk before it once written. Their pages are then free
// for the next chunks, instead of each chunk taking pages the kernel has
// not handed out for a while (on a virtual machine backing its memory
// lazily, a copy into such a page costs 2.3 s a GiB: saving a 5 GB image
// spent 20 s of its 23 in the kernel), and the build's own cache is not
// pushed out. What stays cached is the first directFrom bytes of each.

// dropBehind reads f, dropping from the page cache what it read past its
// first directFrom bytes, writebackChunk at a time.
type dropBehind struct {
	f       *os.File
	off     int64 // bytes read
	dropped int64 // from directFrom: up to here, dropped
}

func newDropBehind(f *os.File) *dropBehind { return &dropBehind{f: f, dropped: directFrom} }

func (d *dropBehind) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	d.off += int64(n)
	if d.off-d.dropped >= writebackChunk || err != nil && d.off > d.dropped {
		dropCache(d.f, d.dropped, d.off-d.dropped)
		d.dropped = d.off
	}
	return n, err
}

// writeBehind writes f from its start, sending each writebackChunk to the
// disk as it is filled, and, past the first directFrom bytes, waiting for
// the chunk before it and dropping it from the page cache: the writer
// goes at the disk's pace with one chunk in flight, and the fsync at the
// end finds at most two chunks to write.
type writeBehind struct {
	f       *os.File
	n       int64 // bytes written
	started int64 // writeback started up to here
	dropped int64 // waited for and dropped up to here
}

func newWriteBehind(f *os.File) *writeBehind { return &writeBehind{f: f} }

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	if w.n-w.started >= writebackChunk {
		if w.started > directFrom {
			from := max(w.dropped, directFrom)
			waitWriteback(w.f, from, w.started-from)
			dropCache(w.f, from, w.started-from)
			w.dropped = w.started
		}
		startWriteback(w.f, w.started, w.n-w.started)
		w.started = w.n
	}
	return n, err
}
