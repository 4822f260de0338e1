package ctxio

import (
	"io"
	"sync"
	"sync/atomic"
)

// AsyncWriter hands what it is given to one goroutine per writer that
// writes it there in big chunks, so that the sides of a pipeline run on
// different cores: a layer's packer frames the tar while the diffID hash
// and the compressor each take every chunk on their own goroutine; a
// download goes on while the layer it fetched is inflated. The writers
// share each chunk (no copy per writer), and it holds at most
// asyncBuffers chunks. Close flushes and returns the first write error;
// each writer gets the bytes in order.
type AsyncWriter struct {
	ws   []io.Writer
	cur  *asyncChunk
	outs []chan *asyncChunk // filled chunks, one channel per writer
	free chan *asyncChunk   // chunks every writer is done with
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

// asyncChunk is a buffer on its way to the writers; left counts those
// that still have to write it.
type asyncChunk struct {
	b    []byte
	left atomic.Int32
}

const (
	asyncChunkSize = 256 << 10
	asyncBuffers   = 4
)

// NewAsyncWriter starts a goroutine for each of ws; Close ends them.
func NewAsyncWriter(ws ...io.Writer) *AsyncWriter {
	a := &AsyncWriter{ws: ws, free: make(chan *asyncChunk, asyncBuffers)}
	for range asyncBuffers - 1 {
		a.free <- &asyncChunk{b: make([]byte, 0, asyncChunkSize)}
	}
	a.cur = &asyncChunk{b: make([]byte, 0, asyncChunkSize)}
	for _, w := range ws {
		out := make(chan *asyncChunk, asyncBuffers)
		a.outs = append(a.outs, out)
		a.wg.Go(func() {
			for c := range out {
				if a.failed() == nil {
					if _, err := w.Write(c.b); err != nil {
						a.mu.Lock()
						if a.err == nil {
							a.err = err
						}
						a.mu.Unlock()
					}
				}
				if c.left.Add(-1) == 0 {
					c.b = c.b[:0]
					a.free <- c
				}
			}
		})
	}
	return a
}

func (a *AsyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// send hands the current chunk to every writer.
func (a *AsyncWriter) send() {
	a.cur.left.Store(int32(len(a.outs)))
	for _, out := range a.outs {
		out <- a.cur
	}
	a.cur = nil
}

func (a *AsyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		b := a.cur.b
		k := copy(b[len(b):cap(b)], p)
		a.cur.b = b[:len(b)+k]
		p = p[k:]
		if len(a.cur.b) == cap(a.cur.b) {
			a.send()
			a.cur = <-a.free
		}
	}
	return n, nil
}

// Close writes what is left, waits for the goroutines and returns the
// first error. It must be called exactly once.
func (a *AsyncWriter) Close() error {
	if a.cur != nil && len(a.cur.b) > 0 {
		a.send()
	}
	for _, out := range a.outs {
		close(out)
	}
	a.wg.Wait()
	return a.failed()
}
