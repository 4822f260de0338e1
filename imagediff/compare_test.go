package imagediff

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type diffCase struct {
	name  string
	a, b  spec
	want  []string
	check func(t *testing.T, r *Report)
}

func runCases(t *testing.T, cases []diffCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blobs := memBlobs{}
			a := tc.a.build(t, blobs, "a")
			b := tc.b.build(t, blobs, "b")
			r, err := Compare(context.Background(), a, b, Options{})
			if err != nil {
				t.Fatalf("Compare: %v", err)
			}
			if got := summary(r); !slices.Equal(got, tc.want) {
				t.Errorf("report differs\n%s", diffLines(got, tc.want))
			}
			if r.Identical != slices.Equal(tc.want, []string{"identical"}) {
				t.Errorf("Identical = %v", r.Identical)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestCompareJSON(t *testing.T) {
	base := gzipOf(t, tarOf(t, dir("./"), reg("etc/passwd", "root:x:0:0\n")))
	img := func(edit func(cfg map[string]any)) spec {
		return spec{layers: [][]byte{base}, editConfig: edit}
	}
	setConfig := func(key string, v any) func(cfg map[string]any) {
		return func(cfg map[string]any) { cfg["config"].(map[string]any)[key] = v }
	}
	runCases(t, []diffCase{
		{
			name: "identical",
			a:    img(nil), b: img(nil),
			want: []string{"identical"},
		},
		{
			name: "config field changed",
			a:    img(nil),
			b:    img(func(cfg map[string]any) { cfg["created"] = "2026-11-26T09:05:00Z" }),
			want: []string{`config created: "2026-11-26T09:00:00Z" != "2026-11-26T09:05:00Z"`},
			check: func(t *testing.T, r *Report) {
				if r.A.Config == r.B.Config || r.A.Config == "" {
					t.Errorf("sides: %+v %+v", r.A, r.B)
				}
			},
		},
		{
			name: "config array element added",
			a:    img(nil),
			b:    img(setConfig("Env", []any{"PATH=/usr/bin", "HOME=/root", "A=1"})),
			want: []string{`config config.Env[2]: (none) != "A=1"`},
		},
		{
			name: "config array shorter",
			a:    img(nil),
			b:    img(setConfig("Env", []any{"PATH=/usr/bin"})),
			want: []string{`config config.Env[1]: "HOME=/root" != (none)`},
		},
		{
			name: "config field removed",
			a:    img(nil),
			b:    img(func(cfg map[string]any) { delete(cfg, "os") }),
			want: []string{`config os: "linux" != (none)`},
		},
		{
			name: "label names are quoted",
			a:    img(setConfig("Labels", map[string]any{"org.opencontainers.image.source": "y", "a_b": "1"})),
			b:    img(setConfig("Labels", map[string]any{"org.opencontainers.image.source": "x && z", "a_b": "2"})),
			want: []string{
				`config config.Labels.a_b: "1" != "2"`,
				`config config.Labels["org.opencontainers.image.source"]: "y" != "x && z"`,
			},
		},
		{
			name: "type change, null and whole objects",
			a: img(func(cfg map[string]any) {
				cfg["config"].(map[string]any)["Cmd"] = nil
				cfg["config"].(map[string]any)["Volumes"] = map[string]any{"/data": map[string]any{}}
			}),
			b:    img(setConfig("Cmd", "sh")),
			want: []string{`config config.Cmd: null != "sh"`, `config config.Volumes: {"/data":{}} != (none)`},
		},
		{
			name: "fields other builders write",
			a:    img(func(cfg map[string]any) { cfg["container_config"] = map[string]any{"Hostname": "abc"} }),
			b:    img(func(cfg map[string]any) { cfg["container_config"] = map[string]any{"Hostname": "def"} }),
			want: []string{`config container_config.Hostname: "abc" != "def"`},
		},
		{
			name: "numbers as written",
			a:    img(func(cfg map[string]any) { cfg["x"] = json.Number("1") }),
			b:    img(func(cfg map[string]any) { cfg["x"] = json.Number("1.0") }),
			want: []string{`config x: 1 != 1.0`},
		},
		{
			name: "config key order only",
			a:    img(nil),
			b:    spec{layers: [][]byte{base}, encodeConfig: marshalReversed},
			want: []string{`config (encoding): "sha256:…" != "sha256:…"`},
		},
		{
			name: "manifest key order only",
			a:    img(nil),
			b:    spec{layers: [][]byte{base}, encodeManifest: marshalReversed},
			want: []string{`manifest (encoding): "sha256:…" != "sha256:…"`},
		},
		{
			name: "manifest annotation added",
			a:    img(nil),
			b: spec{layers: [][]byte{base}, editManifest: func(m map[string]any) {
				m["annotations"] = map[string]any{"org.opencontainers.image.created": "2026"}
			}},
			want: []string{`manifest annotations: (none) != {"org.opencontainers.image.created":"2026"}`},
		},
		{
			name: "config descriptor media type",
			a:    img(nil),
			b: spec{layers: [][]byte{base}, editManifest: func(m map[string]any) {
				m["config"].(map[string]any)["mediaType"] = "application/vnd.docker.container.image.v1+json"
			}},
			want: []string{`manifest config.mediaType: "application/vnd.oci.image.config.v1+json" != "application/vnd.docker.container.image.v1+json"`},
		},
	})
}

func TestCompareLayerPairing(t *testing.T) {
	base := tarOf(t, dir("./"), dir("etc/"), reg("etc/passwd", "root:x:0:0\n"), reg("stamp", "one"))
	other := tarOf(t, reg("new", "x"))
	runCases(t, []diffCase{
		{
			name: "layer only in b",
			a:    spec{layers: [][]byte{gzipOf(t, base)}},
			b:    spec{layers: [][]byte{gzipOf(t, base), gzipOf(t, other)}},
			want: []string{
				`config history[2]: (none) != {"created":"2026-11-26T08:00:00Z","created_by":"RUN step 1"}`,
				"layer 1 only-in-b",
			},
			check: func(t *testing.T, r *Report) {
				l := r.Layers[0]
				if l.A != nil || l.B == nil || l.B.CreatedBy != "RUN step 1" || l.B.DiffID == "" || len(l.Files) > 0 {
					t.Errorf("layer: %+v", l)
				}
			},
		},
		{
			name: "layer only in a",
			a:    spec{layers: [][]byte{gzipOf(t, base), gzipOf(t, other)}, createdBy: []string{"COPY . /", "RUN make"}},
			b:    spec{layers: [][]byte{gzipOf(t, base)}, createdBy: []string{"COPY . /"}},
			want: []string{
				`config history[2]: {"created":"2026-11-26T08:00:00Z","created_by":"RUN make"} != (none)`,
				"layer 1 only-in-a",
			},
			check: func(t *testing.T, r *Report) {
				if l := r.Layers[0]; l.B != nil || l.A.CreatedBy != "RUN make" {
					t.Errorf("layer: %+v", l)
				}
			},
		},
		{
			name: "same content, gzip vs zstd",
			a:    spec{layers: [][]byte{gzipOf(t, base)}},
			b:    spec{layers: [][]byte{zstdOf(t, base)}},
			want: []string{
				`manifest layers[0].mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" != "application/vnd.oci.image.layer.v1.tar+zstd"`,
				"layer 0 same-content",
			},
		},
		{
			name: "same content, diff_ids unknown: read and hashed",
			a:    spec{layers: [][]byte{gzipOf(t, base)}, noDiffIDs: true},
			b:    spec{layers: [][]byte{base}, noDiffIDs: true},
			want: []string{
				`manifest layers[0].mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" != "application/vnd.oci.image.layer.v1.tar"`,
				"layer 0 same-content",
			},
			check: func(t *testing.T, r *Report) {
				l := r.Layers[0]
				if want := uncompressedDigest(t, base); l.A.DiffID != want || l.B.DiffID != want {
					t.Errorf("diff_ids %s %s, want computed %s", l.A.DiffID, l.B.DiffID, want)
				}
			},
		},
		{
			name: "created_by skips empty layers and tolerates short history",
			a: spec{layers: [][]byte{gzipOf(t, base), gzipOf(t, other)}, editConfig: func(cfg map[string]any) {
				cfg["history"] = cfg["history"].([]any)[:2]
			}},
			b: spec{layers: [][]byte{gzipOf(t, base), zstdOf(t, other)}, editConfig: func(cfg map[string]any) {
				cfg["history"] = cfg["history"].([]any)[:2]
			}},
			want: []string{
				`manifest layers[1].mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" != "application/vnd.oci.image.layer.v1.tar+zstd"`,
				"layer 1 same-content",
			},
			check: func(t *testing.T, r *Report) {
				if l := r.Layers[0]; l.A.CreatedBy != "" || l.A.Digest == l.B.Digest {
					t.Errorf("layer: %+v", l)
				}
			},
		},
	})
}

func TestCompareFastPathReadsNothing(t *testing.T) {
	blobs := memBlobs{}
	img := spec{layers: [][]byte{gzipOf(t, tarOf(t, reg("a", "1")))}}.build(t, blobs, "x")
	empty := Image{Name: "y", Manifest: img.Manifest, Blobs: memBlobs{}}
	r, err := Compare(context.Background(), empty, empty, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Identical || r.A.Manifest != img.Manifest.Digest || r.A.Config != "" || len(r.Layers) > 0 {
		t.Errorf("report: %+v", r)
	}
}

func TestCompareEqualDiffIDsReadsNoTar(t *testing.T) {
	blobs := memBlobs{}
	tr := tarOf(t, reg("a", "1"))
	a := spec{layers: [][]byte{gzipOf(t, tr)}}.build(t, blobs, "a")
	b := spec{layers: [][]byte{zstdOf(t, tr)}}.build(t, blobs, "b")
	for _, img := range []Image{a, b} {
		delete(blobs, digestOfLayer(t, blobs, img, 0))
	}
	r, err := Compare(context.Background(), a, b, Options{})
	if err != nil {
		t.Fatalf("Compare read a layer blob: %v", err)
	}
	if len(r.Layers) != 1 || !r.Layers[0].SameContent || r.Layers[0].A.DiffID != uncompressedDigest(t, tr) {
		t.Errorf("layers: %+v", r.Layers)
	}
}

func TestCompareErrors(t *testing.T) {
	good := gzipOf(t, tarOf(t, reg("a", "1")))
	full := gzipOf(t, tarOf(t, reg("a", strings.Repeat("x", 10000))))
	cases := []struct {
		name string
		b    func(t *testing.T, blobs memBlobs) Image
		want string
	}{
		{"index media type on descriptor", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{good}, mediaType: ocispec.MediaTypeImageIndex}.build(t, blobs, "b")
		}, "compare b: application/vnd.oci.image.index.v1+json is an image index"},
		{"index blob", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "decode manifest of b: this is an image index"},
		{"docker manifest list", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","config":{}}`))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "is an image index"},
		{"schema 1", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put([]byte(`{"schemaVersion":1,"fsLayers":[]}`))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "decode manifest of b: unsupported schemaVersion 1"},
		{"manifest with trailing data", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put([]byte(`{"schemaVersion":2} {}`))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "decode manifest of b: trailing data"},
		{"manifest not JSON", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put([]byte("\x00garbage"))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "decode manifest of b: invalid character"},
		{"manifest too large", func(t *testing.T, blobs memBlobs) Image {
			d := blobs.put(make([]byte, maxJSONSize+1))
			return Image{Name: "b", Manifest: d, Blobs: blobs}
		}, "read manifest of b: read blob"},
		{"bad config JSON", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{good}, encodeConfig: func(testing.TB, any) []byte { return []byte(`{"os":`) }}.build(t, blobs, "b")
		}, "decode config of b: unexpected EOF"},
		{"missing config blob", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{good}, editManifest: func(m map[string]any) {
				m["config"].(map[string]any)["digest"] = "sha256:" + strings.Repeat("0", 64)
			}}.build(t, blobs, "b")
		}, "read config of b: open blob"},
		{"invalid layer digest", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{good}, editManifest: func(m map[string]any) {
				m["layers"].([]any)[0].(map[string]any)["digest"] = "sha256:../../etc/passwd"
			}}.build(t, blobs, "b")
		}, "decode manifest of b: check digest"},
		{"garbage layer", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{[]byte(strings.Repeat("garbage!", 100))}}.build(t, blobs, "b")
		}, "read layer 0 of b: read tar entry 0: archive/tar: invalid tar header"},
		{"truncated gzip layer", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{full[:len(full)/2]}}.build(t, blobs, "b")
		}, "read layer 0 of b: "},
		{"gzip magic then garbage", func(t *testing.T, blobs memBlobs) Image {
			return spec{layers: [][]byte{append([]byte{0x1f, 0x8b, 0x08}, strings.Repeat("z", 50)...)}}.build(t, blobs, "b")
		}, "read layer 0 of b: "},
		{"layer blob does not match its digest", func(t *testing.T, blobs memBlobs) Image {
			img := spec{layers: [][]byte{good}}.build(t, blobs, "b")
			blobs[digestOfLayer(t, blobs, img, 0)] = gzipOf(t, tarOf(t, reg("a", "2")))
			return img
		}, "read layer 0 of b: verify blob"},
		{"no blob reader", func(t *testing.T, blobs memBlobs) Image {
			img := spec{layers: [][]byte{good}}.build(t, blobs, "b")
			img.Blobs = nil
			return img
		}, "compare b: no BlobReader"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blobs := memBlobs{}
			a := spec{layers: [][]byte{gzipOf(t, tarOf(t, reg("a", "0")))}}.build(t, blobs, "a")
			b := tc.b(t, blobs)
			_, err := Compare(context.Background(), a, b, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// digestOfLayer returns the digest of layer i as the manifest of img names it.
func digestOfLayer(t *testing.T, blobs memBlobs, img Image, i int) digest.Digest {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(blobs[img.Manifest.Digest], &m); err != nil {
		t.Fatal(err)
	}
	return m.Layers[i].Digest
}

// TestCompareLayerInserted: a layer inserted in the middle of b is the one
// difference; the layers after it pair with their equals, not by index.
func TestCompareLayerInserted(t *testing.T) {
	l0 := gzipOf(t, tarOf(t, reg("a", "0")))
	l1 := gzipOf(t, tarOf(t, reg("b", "1")))
	l2 := gzipOf(t, tarOf(t, reg("c", "2")))
	x := gzipOf(t, tarOf(t, reg("x", "new")))
	blobs := memBlobs{}
	a := spec{layers: [][]byte{l0, l1, l2}}.build(t, blobs, "a")
	b := spec{layers: [][]byte{l0, x, l1, l2}}.build(t, blobs, "b")
	r, err := Compare(context.Background(), a, b, Options{Steps: []string{"", "Dockerfile:2", "Dockerfile:3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 1 {
		t.Fatalf("%d layer differences, want 1: %+v", len(r.Layers), r.Layers)
	}
	if l := r.Layers[0]; l.A != nil || l.B == nil || l.Index != 1 || l.IndexB != 1 || l.Step != "" {
		t.Errorf("inserted layer: %+v", l)
	}
	// Removing it again is the mirror image.
	r, err = Compare(context.Background(), b, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 1 || r.Layers[0].B != nil || r.Layers[0].Index != 1 || r.Layers[0].IndexB != -1 {
		t.Errorf("removed layer: %+v", r.Layers)
	}
}

func TestAlignLayers(t *testing.T) {
	tests := []struct {
		a, b string // one key per letter
		want string // pairs "ai:bi", "-" for a missing side
	}{
		{"abc", "abc", "0:0 1:1 2:2"},
		{"abc", "axbc", "0:0 -:1 1:2 2:3"},
		{"abc", "ac", "0:0 1:- 2:1"},
		{"abc", "xyz", "0:0 1:1 2:2"},
		{"abcd", "axyd", "0:0 1:1 2:2 3:3"},
		{"ab", "", "0:- 1:-"},
		{"", "", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range alignLayers(strings.Split(tt.a, ""), strings.Split(tt.b, "")) {
			sa, sb := "-", "-"
			if p.a >= 0 {
				sa = strconv.Itoa(p.a)
			}
			if p.b >= 0 {
				sb = strconv.Itoa(p.b)
			}
			got = append(got, sa+":"+sb)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("align %q %q = %q, want %q", tt.a, tt.b, g, tt.want)
		}
	}
}

func TestAlignLayersHuge(t *testing.T) {
	ka, kb := make([]string, 1001), make([]string, 1002)
	for i := range kb {
		kb[i] = strconv.Itoa(i)
		if i < len(ka) {
			ka[i] = "a" + strconv.Itoa(i)
		}
	}
	got := alignLayers(ka, kb)
	if len(got) != 1002 || got[5] != (layerPair{5, 5}) || got[1001] != (layerPair{-1, 1001}) {
		t.Errorf("huge alignment is not by index: %d pairs, %v %v", len(got), got[5], got[1001])
	}
}
