package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// loadFixture exports one image as an OCI tar and as a docker tar with
// only manifest.json (no OCI layout), and returns their entries.
type loadFixture struct {
	img       *Image
	oci       []testutil.TarEntry
	dockerOld []testutil.TarEntry // docker-archive without index.json/oci-layout
}

func newLoadFixture(t *testing.T) loadFixture {
	t.Helper()
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"hello.txt": "hello\n"})
	dir := t.TempDir()
	ctx := context.Background()
	if err := s.Export(ctx, filepath.Join(dir, "oci.tar"), FormatOCI, []*Image{img}); err != nil {
		t.Fatal(err)
	}
	if err := s.Export(ctx, filepath.Join(dir, "docker.tar"), FormatDocker, []*Image{img}); err != nil {
		t.Fatal(err)
	}
	docker := slices.DeleteFunc(testutil.ReadTar(t, filepath.Join(dir, "docker.tar")), func(f testutil.TarEntry) bool {
		return f.Header.Name == "index.json" || f.Header.Name == "oci-layout"
	})
	return loadFixture{img: img, oci: testutil.ReadTar(t, filepath.Join(dir, "oci.tar")), dockerOld: docker}
}

func blobName(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

// edit returns a copy of files with fn applied to the entry called name.
func edit(files []testutil.TarEntry, name string, fn func(f *testutil.TarEntry)) []testutil.TarEntry {
	out := make([]testutil.TarEntry, 0, len(files))
	for _, f := range files {
		f.Data = slices.Clone(f.Data)
		if f.Header.Name == name {
			fn(&f)
		}
		out = append(out, f)
	}
	return out
}

func drop(files []testutil.TarEntry, name string) []testutil.TarEntry {
	return slices.DeleteFunc(slices.Clone(files), func(f testutil.TarEntry) bool { return f.Header.Name == name })
}

func TestLoadDockerArchive(t *testing.T) {
	fx := newLoadFixture(t)
	p := filepath.Join(t.TempDir(), "old.tar")
	testutil.WriteTar(t, p, fx.dockerOld...)
	s := openStore(t)
	names, err := s.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"app:v1"}) {
		t.Errorf("names = %v", names)
	}
	got, err := s.Resolve(t.Context(), "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest.Config.Digest != fx.img.Manifest.Config.Digest || !reflect.DeepEqual(got.Manifest.Layers, fx.img.Manifest.Layers) {
		t.Errorf("loaded manifest %+v, want config %s layer %+v", got.Manifest, fx.img.Manifest.Config.Digest, fx.img.Manifest.Layers[0])
	}
}

func TestLoadCompressedArchive(t *testing.T) {
	fx := newLoadFixture(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "app.tar")
	testutil.WriteTar(t, plain, fx.oci...)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(readFile(t, plain))
	zw.Close()
	p := filepath.Join(dir, "app.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	s := openStore(t)
	if names, err := s.Load(context.Background(), p); err != nil || !slices.Equal(names, []string{"app:v1"}) {
		t.Fatalf("Load(tar.gz) = %v, %v", names, err)
	}
}

func TestLoadUntagged(t *testing.T) {
	fx := newLoadFixture(t)
	files := edit(fx.oci, "index.json", func(f *testutil.TarEntry) {
		var idx ocispec.Index
		json.Unmarshal(f.Data, &idx)
		idx.Manifests[0].Annotations = nil
		f.Data, _ = json.Marshal(idx)
	})
	p := filepath.Join(t.TempDir(), "untagged.tar")
	testutil.WriteTar(t, p, files...)
	s := openStore(t)
	names, err := s.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	md := fx.img.Descriptor.Digest
	if !slices.Equal(names, []string{string(md)}) {
		t.Errorf("names = %v", names)
	}
	if img, err := s.Resolve(t.Context(), md.Encoded()[:12]); err != nil || img.Descriptor.Digest != md {
		t.Errorf("Resolve untagged = %v", err)
	}
	if imgs, _ := s.Images(t.Context()); len(imgs) != 0 {
		t.Errorf("Images lists untagged: %v", imgs)
	}
	// Tagging it replaces the untagged entry.
	if err := s.Tag(t.Context(), "named", img(t, s, md).Descriptor); err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	json.Unmarshal(readFile(t, filepath.Join(s.Root(), "index.json")), &idx)
	if len(idx.Manifests) != 1 || refName(idx.Manifests[0]) != "named:latest" {
		t.Errorf("index = %+v", idx)
	}
}

func img(t *testing.T, s *Store, d digest.Digest) *Image {
	t.Helper()
	i, err := s.Resolve(t.Context(), string(d))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestLoadHostile(t *testing.T) {
	fx := newLoadFixture(t)
	md, cd, ld := fx.img.Descriptor.Digest, fx.img.Manifest.Config.Digest, fx.img.Manifest.Layers[0].Digest
	garbage := []byte("not the layer")
	// A manifest whose layer size is wrong, and the index pointing at it.
	var m ocispec.Manifest
	for _, f := range fx.oci {
		if f.Header.Name == blobName(md) {
			json.Unmarshal(f.Data, &m)
		}
	}
	m.Layers[0].Size++
	badManifest, _ := json.Marshal(m)
	badMD := digest.FromBytes(badManifest)
	sizeMismatch := append(edit(fx.oci, "index.json", func(f *testutil.TarEntry) {
		f.Data = bytes.ReplaceAll(f.Data, []byte(md.Encoded()), []byte(badMD.Encoded()))
	}), testutil.TarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: blobName(badMD), Mode: 0o644}, Data: badManifest})
	sizeMismatch = edit(sizeMismatch, "index.json", func(f *testutil.TarEntry) {
		var idx ocispec.Index
		json.Unmarshal(f.Data, &idx)
		idx.Manifests[0].Size = int64(len(badManifest))
		f.Data, _ = json.Marshal(idx)
	})
	setLayers := func(layers ...string) func(f *testutil.TarEntry) {
		return func(f *testutil.TarEntry) {
			var dm []dockerManifest
			json.Unmarshal(f.Data, &dm)
			dm[0].Layers = layers
			f.Data, _ = json.Marshal(dm)
		}
	}
	good := filepath.Join(t.TempDir(), "good.tar")
	testutil.WriteTar(t, good, fx.oci...)
	goodBytes := readFile(t, good)

	tests := []struct {
		name  string
		files []testutil.TarEntry
		raw   []byte // instead of files
		want  []string
	}{
		{"dotdot entry", append(slices.Clone(fx.oci), testutil.TarFile("../../x", "x")),
			nil, []string{`unsafe archive entry name "../../x"`}},
		{"absolute entry", append(slices.Clone(fx.oci), testutil.TarFile("/x", "x")),
			nil, []string{"unsafe archive entry name"}},
		{"dotdot in blobs", append(slices.Clone(fx.oci), testutil.TarFile("blobs/sha256/../../../x", "")),
			nil, []string{"unsafe archive entry name"}},
		{"digest with dotdot", edit(fx.oci, "index.json", func(f *testutil.TarEntry) {
			f.Data = bytes.ReplaceAll(f.Data, []byte(string(md)), []byte("sha256:../../x"))
		}), nil, []string{`invalid digest "sha256:../../x"`}},
		{"bad blob name", append(slices.Clone(fx.oci), testutil.TarFile("blobs/sha256/x", "")),
			nil, []string{"blobs/sha256/x", "invalid digest"}},
		{"symlink blob absolute", append(drop(fx.oci, blobName(ld)), testutil.TarLink(blobName(ld), "/etc/passwd", tar.TypeSymlink)),
			nil, []string{blobName(ld), "unsafe link"}},
		{"symlink blob escaping", append(drop(fx.oci, blobName(ld)), testutil.TarLink(blobName(ld), "../../../etc/passwd", tar.TypeSymlink)),
			nil, []string{blobName(ld), "unsafe link"}},
		{"hardlink escaping", append(drop(fx.oci, blobName(ld)), testutil.TarLink(blobName(ld), "../x", tar.TypeLink)),
			nil, []string{"unsafe link"}},
		{"symlink to other blob", append(drop(fx.oci, blobName(ld)), testutil.TarLink(blobName(ld), cd.Encoded(), tar.TypeSymlink)),
			nil, []string{string(ld), "digest mismatch"}},
		{"device blob", append(drop(fx.oci, blobName(ld)), testutil.TarEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: blobName(ld)}}),
			nil, []string{blobName(ld), "not a regular file"}},
		{"digest mismatch", edit(fx.oci, blobName(ld), func(f *testutil.TarEntry) { f.Data = garbage }),
			nil, []string{string(ld), "digest mismatch"}},
		{"missing blob", drop(fx.oci, blobName(ld)), nil, []string{string(ld), "no blob"}},
		{"size mismatch", sizeMismatch, nil, []string{string(ld), "size mismatch"}},
		{"duplicate entry", append(slices.Clone(fx.oci), testutil.TarFile("./index.json", "{}")),
			nil, []string{"duplicate"}},
		{"truncated", nil, goodBytes[:len(goodBytes)/2], []string{"unexpected EOF", "blobs/sha256/"}},
		{"not a tar", nil, []byte("hello, this is not a tar archive at all"), []string{"load"}},
		{"docker dotdot layer", edit(fx.dockerOld, "manifest.json", setLayers("../../x")), nil, []string{`unsafe path "../../x"`}},
		{"docker absolute layer", edit(fx.dockerOld, "manifest.json", setLayers("/etc/passwd")), nil, []string{`unsafe path "/etc/passwd"`}},
		{"docker symlink layer", append(edit(fx.dockerOld, "manifest.json", setLayers("layer.tar")), testutil.TarLink("layer.tar", "/etc/passwd", tar.TypeSymlink)),
			nil, []string{"layer.tar", "unsafe link"}},
		{"docker symlink loop", append(edit(fx.dockerOld, "manifest.json", setLayers("a")), testutil.TarLink("a", "b", tar.TypeSymlink), testutil.TarLink("b", "a", tar.TypeSymlink)),
			nil, []string{"too many levels of links"}},
		{"docker missing layer", edit(fx.dockerOld, "manifest.json", setLayers("nope.tar")), nil, []string{"nope.tar"}},
		{"docker layer mismatch", edit(fx.dockerOld, blobName(ld), func(f *testutil.TarEntry) { f.Data = garbage }), nil, []string{string(ld), "digest mismatch"}},
		{"docker diff_id mismatch", append(edit(fx.dockerOld, "manifest.json", setLayers("other.tar")),
			testutil.TarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "other.tar", Mode: 0o644}, Data: tarBytes(t, map[string]string{"evil": "x"})}),
			nil, []string{"other.tar", "diff_id mismatch"}},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh store each time: blobs a case ingests would let
			// later cases skip their broken copies.
			s := openStore(t)
			makeImage(t, s, "keep:v1", map[string]string{"k": "v"})
			indexPath := filepath.Join(s.Root(), "index.json")
			before := readFile(t, indexPath)
			p := filepath.Join(dir, "sub", strings.ReplaceAll(tt.name, " ", "-")+".tar")
			os.MkdirAll(filepath.Dir(p), 0o755)
			if tt.raw != nil {
				os.WriteFile(p, tt.raw, 0o644)
			} else {
				testutil.WriteTar(t, p, tt.files...)
			}
			_, err := s.Load(context.Background(), p)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			for _, w := range append(tt.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if after := readFile(t, indexPath); !bytes.Equal(before, after) {
				t.Errorf("index.json changed:\n%s", after)
			}
			if _, err := os.Lstat(filepath.Join(dir, "x")); err == nil {
				t.Error("file written outside the store")
			}
			if s.Has(t.Context(), digest.FromBytes(garbage)) {
				t.Error("mismatched blob stored")
			}
			if left := tmpEntries(t, s); len(left) != 0 {
				t.Errorf("tmp leftovers: %v", left)
			}
			// The good archive still loads afterwards.
			if _, err := s.Load(context.Background(), good); err != nil {
				t.Fatal(err)
			}
		})
	}
}
