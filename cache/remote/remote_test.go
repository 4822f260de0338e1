package remote

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/opencontainers/go-digest"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in     string
		export bool
		want   Spec
		err    string
	}{
		{"reg.example:5000/cache:main", false, Spec{Type: "registry", Ref: "reg.example:5000/cache:main"}, ""},
		{"type=registry,ref=r/c:1,mode=max,compression=zstd", true, Spec{Type: "registry", Ref: "r/c:1", Max: true, Compression: "zstd"}, ""},
		{"type=registry,ref=r/c:1,mode=min,ignore-error=true", true, Spec{Type: "registry", Ref: "r/c:1", IgnoreError: true}, ""},
		{"type=local,dest=/ci/cache", true, Spec{Type: "local", Dir: "/ci/cache"}, ""},
		{"type=local,src=/ci/cache", false, Spec{Type: "local", Dir: "/ci/cache"}, ""},
		{"type=inline", true, Spec{Type: "inline"}, ""},
		{"type=registry,ref=r/c:1,oci-mediatypes=true,image-manifest=true", true, Spec{Type: "registry", Ref: "r/c:1"}, ""},
		{"type=local,src=/x", true, Spec{}, "src= is for --cache-from"},
		{"type=local,dest=/x", false, Spec{}, "dest= is for --cache-to"},
		{"type=registry,ref=r/c:1,mode=max", false, Spec{}, "mode= is for --cache-to"},
		{"type=registry,ref=r/c:1,mode=all", true, Spec{}, "mode must be min or max"},
		{"type=registry", true, Spec{}, "needs ref="},
		{"type=local", true, Spec{}, "needs dest="},
		{"type=local", false, Spec{}, "needs src="},
		{"type=inline,mode=max", true, Spec{}, "mode=min"},
		{"type=gha", true, Spec{}, "type must be registry, local or inline"},
		{"ref=r/c:1", true, Spec{}, "type= is required"},
		{"type=registry,ref", true, Spec{}, "want key=value"},
		{"type=registry,ref=r/c:1,compression=lz4", true, Spec{}, "gzip or zstd"},
		{"type=registry,ref=r/c:1,ignore-error=maybe", true, Spec{}, "true or false"},
		{"type=registry,ref=r/c:1,color=red", true, Spec{}, `unknown key "color"`},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in, tt.export)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseSpec(%q, %t) = %v, want an error with %q", tt.in, tt.export, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSpec(%q, %t) = %+v, %v; want %+v", tt.in, tt.export, got, err, tt.want)
		}
	}
}

func record(name string, layer bool) cache.Record {
	r := cache.Record{Key: digest.FromString("key " + name), Created: "2026-01-01T00:00:00Z"}
	if layer {
		r.Layer, r.LayerSize, r.MediaType, r.DiffID = digest.FromString("blob "+name), 10, "application/vnd.oci.image.layer.v1.tar+gzip", digest.FromString("diff "+name)
	}
	return r
}

func TestConfigRoundTripAndRefusals(t *testing.T) {
	recs := []cache.Record{record("a", true), record("b", false), record("c", true)}
	data, err := encodeConfig(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeConfig(data)
	if err != nil || len(got) != 3 || got[0] != recs[0] || got[1] != recs[1] {
		t.Fatalf("round trip: %v, %+v", err, got)
	}
	if l := layers(append(recs, record("a", true))); len(l) != 2 || l[0].Layer != recs[0].Layer || l[1].Layer != recs[2].Layer {
		t.Errorf("layers = %+v, want a and c once each, in order", l)
	}
	edit := func(f func(c *config)) []byte {
		var c config
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		out, _ := json.Marshal(c)
		return out
	}
	bad := map[string][]byte{
		"older key version": edit(func(c *config) { c.KeyVersion = "builder.step.v3" }),
		"other format":      edit(func(c *config) { c.Version = "builder.cache.v0" }),
		"invalid key":       edit(func(c *config) { c.Records[0].Key = "sha256:nothex" }),
		"layer no diffID":   edit(func(c *config) { c.Records[0].DiffID = "" }),
		"negative size":     edit(func(c *config) { c.Records[0].LayerSize = -1 }),
		"not JSON":          []byte("{"),
	}
	for name, b := range bad {
		if _, err := decodeConfig(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestLocalRoundTrip exports records and their blobs to a directory and
// imports them into another store, lazily: nothing but the records is
// read until Fetch, which verifies the diffID and records locally.
func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, err := oci.Open(ctx, filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// A real gzip layer, so that its diffID can be checked.
	blob, diffID := gzipLayer(t, "hello\n")
	d := digest.FromBytes(blob)
	if err := src.Put(ctx, d, blob); err != nil {
		t.Fatal(err)
	}
	good := cache.Record{Key: digest.FromString("k1"), Layer: d, LayerSize: int64(len(blob)), MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", DiffID: diffID, Created: "2026-01-01T00:00:00Z"}
	lie := good
	lie.Key, lie.DiffID = digest.FromString("k2"), digest.FromString("not the diffID")
	empty := cache.Record{Key: digest.FromString("k3")}
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := Export(ctx, Spec{Type: "local", Dir: dir}, src, []cache.Record{good, empty}, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	dst, err := oci.Open(ctx, filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	c, err := cache.Open(ctx, filepath.Join(t.TempDir(), "b-cache"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Import(ctx, Spec{Type: "local", Dir: dir}, Stores{Images: dst, Cache: c}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := s.Lookup(good.Key); !ok || r != good || s.Len() != 2 {
		t.Fatalf("Lookup = %+v, %t (%d records)", r, ok, s.Len())
	}
	if dst.Has(ctx, d) {
		t.Fatal("the import fetched a layer nobody asked for")
	}
	if _, err := c.Get(ctx, good.Key); !errors.Is(err, cache.ErrNotFound) {
		t.Fatal("a record was written before its layer was fetched")
	}
	if err := s.Fetch(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !dst.Has(ctx, d) || s.Stats().Blobs != 1 {
		t.Fatalf("after Fetch: has=%t stats=%+v", dst.Has(ctx, d), s.Stats())
	}
	if r, err := c.Get(ctx, good.Key); err != nil || r.DiffID != diffID {
		t.Fatalf("the fetched layer's record is not local: %+v, %v", r, err)
	}

	// A record whose diffID lies: the fetch fails as a BlobError and the
	// layer is poisoned (Lookup misses it from then on).
	dir2 := filepath.Join(t.TempDir(), "lying")
	if _, err := Export(ctx, Spec{Type: "local", Dir: dir2}, src, []cache.Record{lie}, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	dst2, _ := oci.Open(ctx, filepath.Join(t.TempDir(), "c"))
	defer dst2.Close()
	s2, err := Import(ctx, Spec{Type: "local", Dir: dir2}, Stores{Images: dst2, Cache: c}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var be *BlobError
	if err := s2.Fetch(ctx, d); !errors.As(err, &be) || !strings.Contains(err.Error(), "diffID mismatch") {
		t.Fatalf("Fetch of a lying record = %v, want a diffID mismatch BlobError", err)
	}
	if _, ok := s2.Lookup(lie.Key); ok {
		t.Error("a poisoned layer's record is still looked up")
	}

	// A blob missing from the dir: Export says so with oci.ErrNotFound.
	missing := good
	missing.Layer = digest.FromString("nowhere")
	if _, err := Export(ctx, Spec{Type: "local", Dir: dir}, src, []cache.Record{missing}, registry.Options{}); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("export of a missing layer = %v, want oci.ErrNotFound", err)
	}
}
