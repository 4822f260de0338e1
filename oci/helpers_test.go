package oci

import (
	"bytes"
	"compress/gzip"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// tarBytes builds a tar of regular files (sorted by name, mtime 0).
func tarBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var ents []testutil.TarEntry
	for _, n := range slices.Sorted(maps.Keys(files)) {
		e := testutil.TarFile(n, files[n])
		e.Header.ModTime = time.Unix(0, 0)
		ents = append(ents, e)
	}
	return testutil.TarBytes(t, ents...)
}

func putBlob(t *testing.T, s *Store, data []byte) digest.Digest {
	t.Helper()
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	d, _, err := w.Commit(digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// makeImage stores a one-layer image (a gzip layer holding files) for
// linux/GOARCH and tags it as name when name is set.
func makeImage(t *testing.T, s *Store, name string, files map[string]string) *Image {
	t.Helper()
	layer := tarBytes(t, files)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: putBlob(t, s, gz.Bytes()), Size: int64(gz.Len())}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"NAME=" + name}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}},
	}
	cfgDesc, err := s.PutJSON(t.Context(), ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	desc, err := s.PutJSON(t.Context(), ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	if name != "" {
		if err := s.Tag(t.Context(), name, desc); err != nil {
			t.Fatal(err)
		}
	}
	return &Image{Name: name, Descriptor: desc, Manifest: m, Config: cfg}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
