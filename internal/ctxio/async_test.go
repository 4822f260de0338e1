package ctxio

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestAsyncWriterKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 5*asyncChunk+123)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	for _, size := range []int{1, 7, 4096, asyncChunk - 1, asyncChunk, 3 * asyncChunk} {
		var got bytes.Buffer
		a := NewAsyncWriter(&got)
		for p := want; len(p) > 0; {
			n := min(size, len(p))
			if k, err := a.Write(p[:n]); err != nil || k != n {
				t.Fatalf("size %d: Write = %d, %v", size, k, err)
			}
			p = p[n:]
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("size %d: wrote %d bytes, not the %d given in order", size, got.Len(), len(want))
		}
	}
}

type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestAsyncWriterReportsError(t *testing.T) {
	a := NewAsyncWriter(&failWriter{n: 1})
	chunk := make([]byte, asyncChunk)
	var err error
	for range 20 {
		if _, err = a.Write(chunk); err != nil {
			break
		}
	}
	if cerr := a.Close(); !errors.Is(cerr, errDiskFull) {
		t.Fatalf("Close = %v, want %v", cerr, errDiskFull)
	}
	if err != nil && !errors.Is(err, errDiskFull) {
		t.Fatalf("Write = %v", err)
	}
}
