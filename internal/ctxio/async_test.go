package ctxio

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

func TestAsyncWriterKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want := testutil.RandomBytes(rng, 5*asyncChunkSize+123)
	for _, size := range []int{1, 7, 4096, asyncChunkSize - 1, asyncChunkSize, 3 * asyncChunkSize} {
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
	chunk := make([]byte, asyncChunkSize)
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

// slowWriter sleeps now and then, so that the writers fall out of step.
type slowWriter struct {
	bytes.Buffer
	n int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.n++; s.n%3 == 0 {
		time.Sleep(time.Millisecond)
	}
	return s.Buffer.Write(p)
}

// TestAsyncWriterFansOut: every writer gets every byte in order, however
// their speeds differ; one that fails fails the whole.
func TestAsyncWriterFansOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	want := testutil.RandomBytes(rng, 9*asyncChunkSize+77)
	var fast bytes.Buffer
	slow := &slowWriter{}
	a := NewAsyncWriter(&fast, slow)
	for p := want; len(p) > 0; {
		n := min(1+rng.IntN(asyncChunkSize), len(p))
		if _, err := a.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fast.Bytes(), want) || !bytes.Equal(slow.Bytes(), want) {
		t.Fatalf("writers got %d and %d bytes, not the %d given in order", fast.Len(), slow.Len(), len(want))
	}

	b := NewAsyncWriter(&bytes.Buffer{}, &failWriter{n: 2})
	for range 20 {
		if _, err := b.Write(make([]byte, asyncChunkSize)); err != nil {
			break
		}
	}
	if err := b.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close = %v, want %v", err, errDiskFull)
	}
}
