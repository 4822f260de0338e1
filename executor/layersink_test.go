package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
)

// fakeUpload records what the engine does with a LayerUpload. Its Writes
// wait for gate (when set) and fail with failAfter bytes written.
type fakeUpload struct {
	gate      chan struct{}
	failAfter int
	inImage   bool

	mu        sync.Mutex
	data      bytes.Buffer
	committed digest.Digest
	ends      int
	ended     chan struct{} // closed at the first Commit or Abort
}

func newFakeUpload(inImage bool) *fakeUpload {
	return &fakeUpload{inImage: inImage, failAfter: -1, ended: make(chan struct{})}
}

func (u *fakeUpload) Write(p []byte) (int, error) {
	if u.gate != nil {
		<-u.gate
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failAfter >= 0 && u.data.Len()+len(p) > u.failAfter {
		return 0, errors.New("registry gone")
	}
	return u.data.Write(p)
}

func (u *fakeUpload) end(d digest.Digest) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.committed = d
	if u.ends++; u.ends == 1 {
		close(u.ended)
	}
}

func (u *fakeUpload) Commit(d digest.Digest) error { u.end(d); return nil }
func (u *fakeUpload) Abort()                       { u.end("") }

// wait waits for the upload to end and returns what it got.
func (u *fakeUpload) wait(t *testing.T) (data []byte, committed digest.Digest) {
	t.Helper()
	select {
	case <-u.ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the upload never ended")
	}
	time.Sleep(5 * time.Millisecond) // a second end would show now
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ends != 1 {
		t.Errorf("upload ended %d times, want once", u.ends)
	}
	return bytes.Clone(u.data.Bytes()), u.committed
}

// TestLayerSink: with a LayerSink, storeLayer starts an upload that
// follows the blob into the store, hands it the digest, and returns
// without waiting for it.
func TestLayerSink(t *testing.T) {
	st, err := oci.Open(t.Context(), filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	blob := func() []byte { return testutil.RandomBytes(rng, 1+rng.IntN(4<<20)) }
	// pack writes data in chunks, as layer.Pack does, then fails with
	// fail (nil: it succeeds).
	pack := func(data []byte, fail error) func(io.Writer, layer.PackOptions) (layer.Packed, error) {
		return func(w io.Writer, _ layer.PackOptions) (layer.Packed, error) {
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(256<<10))
				if _, err := w.Write(rest[:n]); err != nil {
					return layer.Packed{}, err
				}
				rest = rest[n:]
			}
			if fail != nil {
				return layer.Packed{}, fail
			}
			return layer.Packed{Digest: digest.FromBytes(data), Size: int64(len(data))}, nil
		}
	}
	newBuild := func(up *fakeUpload) *build {
		return &build{st: Stores{Images: st}, clock: newClock(nil), opts: Options{
			LayerSink: func(inImage bool) LayerUpload {
				if up == nil {
					return nil
				}
				up.inImage = inImage
				return up
			},
		}}
	}

	t.Run("streamed, not waited for", func(t *testing.T) {
		data := blob()
		up := newFakeUpload(false)
		up.gate = make(chan struct{}) // the registry takes nothing yet
		ctx := withStage(t.Context(), &stage{inImage: true})
		packed, err := newBuild(up).storeLayer(ctx, pack(data, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Has(t.Context(), packed.Digest) {
			t.Fatal("the blob is not stored")
		}
		close(up.gate) // the step is done: now the registry reads
		got, committed := up.wait(t)
		if !bytes.Equal(got, data) || committed != packed.Digest {
			t.Errorf("upload got %d bytes (want %d), committed %q (want %s)", len(got), len(data), committed, packed.Digest)
		}
		if !up.inImage {
			t.Error("the sink was not told the stage is in the image")
		}
	})

	t.Run("step fails", func(t *testing.T) {
		up := newFakeUpload(false)
		if _, err := newBuild(up).storeLayer(t.Context(), pack(blob(), errors.New("pack failed"))); err == nil {
			t.Fatal("storeLayer succeeded")
		}
		if _, committed := up.wait(t); committed != "" {
			t.Errorf("the upload of a failed step was committed as %s", committed)
		}
	})

	t.Run("upload fails", func(t *testing.T) {
		data := blob()
		up := newFakeUpload(false)
		up.failAfter = len(data) / 2
		packed, err := newBuild(up).storeLayer(t.Context(), pack(data, nil))
		if err != nil || !st.Has(t.Context(), packed.Digest) {
			t.Fatalf("a failed upload failed the step: %v", err)
		}
		if _, committed := up.wait(t); committed != "" {
			t.Errorf("a failed upload was committed as %s", committed)
		}
	})

	t.Run("no upload", func(t *testing.T) {
		data := blob()
		packed, err := newBuild(nil).storeLayer(context.Background(), pack(data, nil))
		if err != nil || packed.Digest != digest.FromBytes(data) {
			t.Fatalf("storeLayer: %v", err)
		}
	})
}
