package oci

import (
	"fmt"
	"os"
)

// A big blob read or written once, whole (an export, `builder save`, the
// archive or layout `builder load` reads, a follower of an ingest), goes
// through the page cache without staying there past its first directFrom
// bytes, as the blob writer's O_DIRECT part does not: the reader drops
// what it read behind it, the writer starts the writeback of each chunk
// and drops the chunk before it once written. Their pages are then free
// for the next chunks, instead of each chunk taking pages the kernel has
// not handed out for a while (on a virtual machine backing its memory
// lazily, a copy into such a page costs 2.3 s a GiB: saving a 5 GB image
// spent 9-11 s of its 12-15 in the kernel, now 1.3 of 3.9), and the
// build's own cache is not pushed out. What stays cached is the first
// directFrom bytes of each. Both drop whole dropAlign blocks.

// dropChunk is how many bytes a reader reads before it drops them from
// the page cache.
const dropChunk = 8 << 20

// dropAlign: the page cache keeps a file in folios of up to 2 MiB, and
// drops only those wholly inside the range it is told: readers drop whole
// 2 MiB blocks (the last one at the end).
const dropAlign = 2 << 20

// dropBehind reads f, dropping from the page cache what it read past its
// first directFrom bytes, dropChunk at a time, and the rest at the end
// (EOF or an error, or finish). A follower of an ingest keeps one too,
// reading at off itself.
type dropBehind struct {
	f       *os.File
	off     int64 // bytes read
	dropped int64 // from directFrom: up to here, dropped
}

func newDropBehind(f *os.File) *dropBehind { return &dropBehind{f: f, dropped: directFrom} }

func (d *dropBehind) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	d.off += int64(n)
	d.drop(err != nil)
	return n, err
}

// drop drops what was read up to off, in whole dropAlign blocks, once a
// dropChunk of them gathered; all of it (the last block whole) when last.
func (d *dropBehind) drop(last bool) {
	upTo := d.off &^ (dropAlign - 1)
	if last {
		upTo = (d.off + dropAlign - 1) &^ (dropAlign - 1)
	}
	if upTo > d.dropped && (last || upTo-d.dropped >= dropChunk) {
		dropCache(d.f, d.dropped, upTo-d.dropped)
		d.dropped = upTo
	}
}

// finish drops what is left of what was read: at the end, or when the
// reader stops before it (a load has what it wants of an archive).
func (d *dropBehind) finish() { d.drop(true) }

// Seek moves the reader (a tar reader skips entries so): what it skips
// was not read, and dropping it too, on the way, is harmless.
func (d *dropBehind) Seek(offset int64, whence int) (int64, error) {
	pos, err := d.f.Seek(offset, whence)
	if err == nil {
		d.off = pos
	}
	return pos, err
}

// writeBehind writes f from its start, sending each writebackChunk to the
// disk as it is filled, and, past the first directFrom bytes, waiting for
// what it sent before and dropping it from the page cache: the writer
// goes at the disk's pace with a chunk in flight, and the fsync at the end
// finds little to write. A write error the wait meets is returned: the
// wait tells it to this file descriptor, whose fsync would not tell it
// again.
type writeBehind struct {
	f       *os.File
	n       int64 // bytes written
	started int64 // writeback started up to here
	dropped int64 // waited for and dropped up to here
	off     bool  // sync_file_range does not work on f: plain writes
}

func newWriteBehind(f *os.File) *writeBehind { return &writeBehind{f: f, off: !canWaitRanges(f)} }

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil || w.off || w.n-w.started < writebackChunk {
		return n, err
	}
	if upTo := w.started &^ (dropAlign - 1); upTo > directFrom && upTo > w.dropped {
		from := max(w.dropped, directFrom)
		if err := waitWriteback(w.f, from, upTo-from); err != nil {
			return n, fmt.Errorf("write %s: %w", w.f.Name(), err)
		}
		dropCache(w.f, from, upTo-from)
		w.dropped = upTo
	}
	startWriteback(w.f, w.started, w.n-w.started)
	w.started = w.n
	return n, nil
}
