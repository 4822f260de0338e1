package ctxio

import (
	"io"
	"sync"
)

// AsyncWriter hands what it is given to a goroutine that writes it to w in
// big chunks, so that the two sides of a pipeline run on two cores: a
// layer's packer frames the tar and computes the diffID while the
// compressor, the blob digest and the blob write run on another; a
// download goes on while the layer it fetched is inflated. It holds at
// most asyncBuffers chunks. Close flushes and returns the first write
// error; the bytes are written to w in order.
type AsyncWriter struct {
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

// NewAsyncWriter starts the goroutine that writes to w; Close ends it.
func NewAsyncWriter(w io.Writer) *AsyncWriter {
	a := &AsyncWriter{w: w, full: make(chan []byte, asyncBuffers), free: make(chan []byte, asyncBuffers)}
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

func (a *AsyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *AsyncWriter) Write(p []byte) (int, error) {
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
func (a *AsyncWriter) Close() error {
	if len(a.buf) > 0 {
		a.full <- a.buf
		a.buf = nil
	}
	close(a.full)
	a.wg.Wait()
	return a.failed()
}
