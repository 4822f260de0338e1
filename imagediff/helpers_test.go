package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/layer"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// memBlobs is an in-memory BlobReader. It ignores ctx: Compare's own
// checks are what the cancel tests look at.
type memBlobs map[digest.Digest][]byte

func (m memBlobs) OpenBlob(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	b, ok := m[d]
	if !ok {
		return nil, fmt.Errorf("open blob %s: not found", d)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m memBlobs) put(b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	m[d] = b
	return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
}

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// file is one tar entry of a test layer.
type file struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: t0, Size: int64(len(body))}, body: body}
}

func dir(name string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: t0}}
}

func symlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: t0}}
}

func hardlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: t0}}
}

func char(name string, major, minor int64) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, ModTime: t0, Devmajor: major, Devminor: minor}}
}

// with returns f changed by fn.
func (f file) with(fn func(h *tar.Header)) file {
	fn(&f.hdr)
	return f
}

// tarOf writes a plain tar of files.
func tarOf(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if h.Size == 0 {
			continue // the body of an entry changed into a dir or link
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatalf("write %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// spec describes a test image; build stores its blobs and returns it.
type spec struct {
	layers    [][]byte // layer blobs, compressed or not
	createdBy []string // history created_by per layer; default "RUN step <i>"
	noDiffIDs bool     // leave rootfs.diff_ids out of the config
	// editConfig and editManifest change the documents before encoding.
	editConfig   func(cfg map[string]any)
	editManifest func(m map[string]any)
	// encodeConfig and encodeManifest replace json.Marshal.
	encodeConfig   func(t testing.TB, v any) []byte
	encodeManifest func(t testing.TB, v any) []byte
	mediaType      string // of the manifest descriptor
}

func (s spec) build(t testing.TB, blobs memBlobs, name string) Image {
	t.Helper()
	diffIDs := []any{}
	history := []any{map[string]any{"created": "2026-11-26T08:00:00Z", "created_by": "ENV A=1", "empty_layer": true}}
	layers := []any{}
	for i, l := range s.layers {
		diffIDs = append(diffIDs, uncompressedDigest(t, l).String())
		cb := fmt.Sprintf("RUN step %d", i)
		if i < len(s.createdBy) {
			cb = s.createdBy[i]
		}
		history = append(history, map[string]any{"created": "2026-11-26T08:00:00Z", "created_by": cb})
		d := blobs.put(l)
		layers = append(layers, map[string]any{"mediaType": layerMediaType(l), "digest": d.Digest, "size": d.Size})
	}
	cfg := map[string]any{
		"created":      "2026-11-26T09:00:00Z",
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []any{"PATH=/usr/bin", "HOME=/root"}, "Cmd": []any{"sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	}
	if s.noDiffIDs {
		delete(cfg["rootfs"].(map[string]any), "diff_ids")
	}
	if s.editConfig != nil {
		s.editConfig(cfg)
	}
	encode := func(t testing.TB, v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	encCfg, encMan := encode, encode
	if s.encodeConfig != nil {
		encCfg = s.encodeConfig
	}
	if s.encodeManifest != nil {
		encMan = s.encodeManifest
	}
	cd := blobs.put(encCfg(t, cfg))
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispec.MediaTypeImageManifest,
		"config":        map[string]any{"mediaType": ocispec.MediaTypeImageConfig, "digest": cd.Digest, "size": cd.Size},
		"layers":        layers,
	}
	if s.editManifest != nil {
		s.editManifest(m)
	}
	md := blobs.put(encMan(t, m))
	md.MediaType = s.mediaType
	return Image{Name: name, Manifest: md, Blobs: blobs}
}

func layerMediaType(blob []byte) string {
	switch {
	case bytes.HasPrefix(blob, []byte{0x1f, 0x8b}):
		return ocispec.MediaTypeImageLayerGzip
	case bytes.HasPrefix(blob, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

func uncompressedDigest(t testing.TB, blob []byte) digest.Digest {
	t.Helper()
	rc, err := layer.Decompress(bytes.NewReader(blob))
	if err != nil {
		return digest.FromBytes(blob) // garbage: any digest will do
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return digest.FromBytes(blob) // garbage: any digest will do
	}
	return digest.NewDigest(digest.SHA256, h)
}

// marshalReversed encodes v like json.Marshal but with object keys in
// reverse order: the same fields, other bytes.
func marshalReversed(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	var enc func(v any)
	enc = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			slices.Reverse(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				kb, _ := json.Marshal(k)
				b.Write(kb)
				b.WriteByte(':')
				enc(x[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					b.WriteByte(',')
				}
				enc(e)
			}
			b.WriteByte(']')
		default:
			vb, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(vb)
		}
	}
	enc(v)
	return b.Bytes()
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// summary renders a report as short lines for table tests; digests in JSON
// values and layer headers read "sha256:…", file attributes are kept exact.
func summary(r *Report) []string {
	var out []string
	if r.Identical {
		out = append(out, "identical")
	}
	field := func(section string, f FieldDiff) string {
		return digestRE.ReplaceAllString(fmt.Sprintf("%s %s: %s != %s", section, f.Path, rawOrNone(f.A), rawOrNone(f.B)), "sha256:…")
	}
	for _, f := range r.Manifest {
		out = append(out, field("manifest", f))
	}
	for _, f := range r.Config {
		out = append(out, field("config", f))
	}
	for _, l := range r.Layers {
		s := fmt.Sprintf("layer %d", l.Index)
		switch {
		case l.A == nil:
			s += " only-in-b"
		case l.B == nil:
			s += " only-in-a"
		}
		if l.SameContent {
			s += " same-content"
		}
		if l.Order {
			s += " order"
		}
		if l.Encoding {
			s += " encoding"
		}
		out = append(out, s)
		for _, f := range l.Files {
			fs := fmt.Sprintf("  %s %s", f.Change, f.Path)
			for _, a := range f.Attrs {
				fs += fmt.Sprintf("; %s %s != %s", a.Name, a.A, a.B)
			}
			out = append(out, fs)
		}
	}
	return out
}

// contentOf is the content attribute of a regular file holding body.
func contentOf(body string) string {
	return fmt.Sprintf("sha256:%x %d bytes", sha256.Sum256([]byte(body)), len(body))
}

func diffLines(got, want []string) string {
	return "got:\n  " + strings.Join(got, "\n  ") + "\nwant:\n  " + strings.Join(want, "\n  ")
}
