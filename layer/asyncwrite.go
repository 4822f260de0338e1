package layer

import (
	"io"
	"sync"
)

// asyncWriter hands what it is given to a goroutine that writes it to w in
// big chunks: Pack reads files, frames the tar and computes the diffID on
// one core while the compressor, the blob digest and the blob write run on
// another. Close flushes and returns the first
// write error; the bytes are written to w in order.
type asyncWriter struct {
	w    io.Writer
	buf  []byte
	full chan []byte // filled buffers, to the writer goroutine
	free chan []byte // written buffers, back to Write
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

const (
	asyncChunk   = 256 << 10
	asyncBuffers = 4
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, full: make(chan []byte, asyncBuffers), free: make(chan []byte, asyncBuffers)}
	for range asyncBuffers - 1 {
		a.free <- make([]byte, 0, asyncChunk)
	}
	a.buf = make([]byte, 0, asyncChunk)
	a.wg.Go(func() {
		for b := range a.full {
			if a.failed() == nil {
				if _, err := a.w.Write(b); err != nil {
					a.mu.Lock()
					a.err = err
					a.mu.Unlock()
				}
			}
			a.free <- b[:0]
		}
	})
	return a
}

func (a *asyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf = a.buf[:len(a.buf)+k]
		p = p[k:]
		if len(a.buf) == cap(a.buf) {
			a.full <- a.buf
			a.buf = <-a.free
		}
	}
	return n, nil
}

// Close writes what is left, waits for the goroutine and returns the first
// error. It must be called exactly once.
func (a *asyncWriter) Close() error {
	if len(a.buf) > 0 {
		a.full <- a.buf
		a.buf = nil
	}
	close(a.full)
	a.wg.Wait()
	return a.failed()
}
