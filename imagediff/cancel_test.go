package imagediff

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

func TestCompareCancel(t *testing.T) {
	blobs := memBlobs{}
	a := spec{layers: [][]byte{gzipOf(t, tarOf(t, reg("a", "1"), reg("b", "2")))}}.build(t, blobs, "a")
	b := spec{layers: [][]byte{gzipOf(t, tarOf(t, reg("a", "2"), reg("b", "2")))}}.build(t, blobs, "b")

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Compare(ctx, a, b, Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("while reading a layer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cb := b
		cb.Blobs = cancelOnRead{blobs, digestOfLayer(t, blobs, b, 0), cancel}
		_, err := Compare(ctx, a, cb, Options{})
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "read layer 0 of ") {
			t.Fatalf("err = %v, want context.Canceled from layer 0", err)
		}
	})
}

// TestCompareCancelInsideAFile checks that hashing a big file stops on cancel,
// not at the next entry.
func TestCompareCancelInsideAFile(t *testing.T) {
	blobs := memBlobs{}
	big := tarOf(t, reg("big", strings.Repeat("x", 8<<20)))
	a := spec{layers: [][]byte{gzipOf(t, tarOf(t, reg("a", "1")))}}.build(t, blobs, "a")
	b := spec{layers: [][]byte{big}}.build(t, blobs, "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counter := &countingBlobs{memBlobs: blobs, target: digestOfLayer(t, blobs, b, 0), cancel: cancel}
	b.Blobs = counter
	if _, err := Compare(ctx, a, b, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := counter.n.Load(); n > 1<<20 {
		t.Errorf("read %d bytes of the layer, want to stop soon after the cancel at 256 KiB", n)
	}
}

// countingBlobs counts the bytes read from the blob target and cancels
// once 256 KiB were read (inside the first file's content).
type countingBlobs struct {
	memBlobs
	target digest.Digest
	cancel context.CancelFunc
	n      atomic.Int64
}

func (c *countingBlobs) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	rc, err := c.memBlobs.OpenBlob(ctx, d)
	if err != nil || d != c.target {
		return rc, err
	}
	return readCloser{readFunc(func(p []byte) (int, error) {
		n, err := rc.Read(p)
		if c.n.Add(int64(n)) > 256<<10 {
			c.cancel()
		}
		return n, err
	}), rc}, nil
}

type readFunc func(p []byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// cancelOnRead cancels a context once the blob target has started to be read.
type cancelOnRead struct {
	memBlobs
	target digest.Digest
	cancel context.CancelFunc
}

func (c cancelOnRead) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	rc, err := c.memBlobs.OpenBlob(ctx, d)
	if err != nil || d != c.target {
		return rc, err
	}
	return readCloser{iotest.OneByteReader(cancelAfter{rc, c.cancel}), rc}, nil
}

type cancelAfter struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}
