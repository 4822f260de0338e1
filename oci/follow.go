package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// errIngestAborted is what a follower reads once its writer was closed
// without a commit (or its commit failed): the blob will never exist.
var errIngestAborted = errors.New("follow blob: ingest aborted")

// follow is what a BlobWriter's followers share with it: how many bytes
// the ingest file holds (a blob's bytes past directFrom reach it a
// chunk at a time), and how the ingest ended. The writer signals
// every change on cond; a follower that caught up waits on it.
type follow struct {
	mu   sync.Mutex
	cond sync.Cond
	n    int64 // bytes written to the ingest file
	end  error // nil while writing; io.EOF once committed; errIngestAborted
}

// wrote says the ingest file holds n bytes, and wakes the followers that
// wait for them.
func (fw *follow) wrote(n int64) {
	if fw == nil {
		return
	}
	fw.mu.Lock()
	more := n > fw.n
	if more {
		fw.n = n
	}
	fw.mu.Unlock()
	if more {
		fw.cond.Broadcast()
	}
}

// finish ends the ingest for the followers: committed (they read to EOF)
// or not (they fail at once).
func (fw *follow) finish(committed bool) {
	if fw == nil {
		return
	}
	fw.mu.Lock()
	fw.end = errIngestAborted
	if committed {
		fw.end = io.EOF
	}
	fw.mu.Unlock()
	fw.cond.Broadcast()
}

// Follow returns a reader of the blob as it is written, through its own
// file descriptor on the ingest file (the file is the buffer: a follower
// may lag behind the writer by the whole blob at no memory cost). Read
// returns the bytes written so far, in order; it blocks while it has
// caught up with the writer; it returns io.EOF once the writer committed
// and every byte was read (the descriptor keeps reading the renamed file),
// and an error as soon as the writer was closed without commit or its
// commit failed. The bytes it reads past directFrom leave the page cache,
// as the writer's do. Close it when done: an open follower keeps the ingest
// file's disk space. The writer never waits for its followers.
//
// Follow is called like Write (never concurrently with the writer's other
// methods), before Commit or Close; each follower is read by one
// goroutine, and may be Closed from any, which ends a blocked Read.
func (w *BlobWriter) Follow() (io.ReadCloser, error) {
	if w.done {
		return nil, errors.New("follow blob: ingest already finished")
	}
	f, err := os.Open(w.f.Name())
	if err != nil {
		return nil, fmt.Errorf("follow blob: %w", err)
	}
	if w.fol == nil {
		w.fol = &follow{n: w.inFile()}
		w.fol.cond.L = &w.fol.mu
	}
	return &follower{fw: w.fol, rd: *newDropBehind(f)}, nil
}

// follower is one reader of a BlobWriter's ingest file.
type follower struct {
	fw *follow
	// rd reads the ingest file at rd.off (only the reading goroutine
	// touches it), and drops what it read past directFrom behind it, as
	// the writer keeps those bytes out of the page cache.
	rd     dropBehind
	closed bool // guarded by fw.mu
}

func (r *follower) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	fw := r.fw
	fw.mu.Lock()
	for !r.closed && fw.end == nil && r.rd.off == fw.n {
		fw.cond.Wait()
	}
	n, end, closed := fw.n, fw.end, r.closed
	fw.mu.Unlock()
	switch {
	case closed:
		return 0, fmt.Errorf("follow blob: %w", os.ErrClosed)
	case end != nil && end != io.EOF:
		return 0, end
	case r.rd.off == n:
		// The last bytes may have been read before the commit said they
		// were the last: drop what is left of them here.
		r.rd.finish()
		return 0, io.EOF
	}
	if avail := n - r.rd.off; int64(len(p)) > avail {
		p = p[:avail]
	}
	m, err := r.rd.f.ReadAt(p, r.rd.off)
	r.rd.off += int64(m)
	r.rd.drop(r.rd.off == n && end == io.EOF)
	if err == io.EOF {
		if m == len(p) {
			err = nil
		} else { // the writer counted bytes the file does not hold
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return m, fmt.Errorf("follow blob: %w", err)
	}
	return m, nil
}

// Close releases the follower's descriptor and ends a Read blocked on it.
// The writer is not affected.
func (r *follower) Close() error {
	r.fw.mu.Lock()
	if r.closed {
		r.fw.mu.Unlock()
		return nil
	}
	r.closed = true
	r.fw.mu.Unlock()
	r.fw.cond.Broadcast()
	return r.rd.f.Close()
}
