package imagediff

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzCompare loads an image whose manifest, config and layer are
// arbitrary bytes and compares it with a valid one: no panic, and a report
// that prints. In the manifest, the strings CONFIG and LAYER stand for the
// digests of the config and layer given, so that the fuzzer gets past the
// digest checks.
func FuzzCompare(f *testing.F) {
	f.Fuzz(func(t *testing.T, manifest, config, layer []byte) {
		blobs := memBlobs{}
		cd, ld := blobs.put(config).Digest, blobs.put(layer).Digest
		manifest = bytes.ReplaceAll(manifest, []byte("CONFIG"), []byte(cd))
		manifest = bytes.ReplaceAll(manifest, []byte("LAYER"), []byte(ld))
		a := Image{Name: "fuzzed", Manifest: blobs.put(manifest), Blobs: blobs}
		a.Manifest.MediaType = ocispec.MediaTypeImageManifest
		b := validImage(t, blobs)
		r, err := Compare(context.Background(), a, b, Options{Steps: []string{"Dockerfile:1"}})
		if err != nil {
			return
		}
		if err := r.WriteText(io.Discard); err != nil {
			t.Errorf("WriteText: %v", err)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Errorf("marshal report: %v", err)
		}
	})
}

// validImage puts a one-layer image into blobs.
func validImage(t *testing.T, blobs memBlobs) Image {
	layer := blobs.put(gzipOf(t, tarOf(t, dir("etc/"), reg("etc/hostname", "valid\n"))))
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("x")}},
		History:  []ocispec.History{{CreatedBy: "COPY . /"}},
	})
	config := blobs.put(cfg)
	config.MediaType = ocispec.MediaTypeImageConfig
	m, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}})
	desc := blobs.put(m)
	desc.MediaType = ocispec.MediaTypeImageManifest
	return Image{Name: "valid", Manifest: desc, Blobs: blobs}
}
