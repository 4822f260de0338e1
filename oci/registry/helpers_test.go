package registry

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openStore(t *testing.T) *oci.Store {
	t.Helper()
	s, err := oci.Open(context.Background(), filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putBlob stores data and returns its descriptor.
func putBlob(t *testing.T, s *oci.Store, mt string, data []byte) ocispec.Descriptor {
	t.Helper()
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	d, n, err := w.Commit("")
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: n}
}

// makeImage stores an image for arch with layers of the given sizes
// (random content seeded by seed) and tags it name.
func makeImage(t *testing.T, s *oci.Store, name, arch string, seed uint64, sizes ...int) *oci.Image {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, n := range sizes {
		data := testutil.RandomBytes(rng, n)
		d := putBlob(t, s, ocispec.MediaTypeImageLayerGzip, data)
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cfgDesc, err := s.PutJSON(t.Context(), ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers}
	desc, err := s.PutJSON(t.Context(), ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(t.Context(), name, desc); err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// events collects progress events.
type events struct {
	mu  sync.Mutex
	all []BlobEvent
}

func (e *events) add(ev BlobEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) statuses() map[BlobStatus]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[BlobStatus]int{}
	for _, ev := range e.all {
		out[ev.Status]++
	}
	e.all = nil
	return out
}
