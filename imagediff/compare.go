// Package imagediff compares two OCI images and says exactly how they differ:
// the manifest and the config field by field, and each pair of layers entry
// by entry (which paths were added, removed or changed, and which attribute
// differs).
//
// Images may come from any builder, so every blob is untrusted: JSON is read
// with a size limit and digest check, tars may be in any order and encoding,
// and memory depends on the number of tar entries, never on file sizes.
package imagediff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobReader opens blobs by digest; *oci.Store satisfies it. Compare
// passes its ctx to OpenBlob and stops reading the blob once ctx is done.
type BlobReader interface {
	OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
}

// Image is one side of a comparison.
type Image struct {
	Name     string             // shown in the report (what the user typed)
	Manifest ocispec.Descriptor // an image manifest (not an index): Digest, Size
	Blobs    BlobReader
}

// Options of Compare. The zero value is useful.
type Options struct {
	// Steps[i], when set, names what made layer i (e.g. "Dockerfile:3"); shown with the layer.
	Steps []string
}

// Report is the result of Compare. Identical is true only when both
// manifests have the same digest; then nothing else was read and
// Side.Config is empty.
type Report struct {
	Identical bool        `json:"identical"`
	A         Side        `json:"a"`
	B         Side        `json:"b"`
	Manifest  []FieldDiff `json:"manifest,omitempty"`
	Config    []FieldDiff `json:"config,omitempty"`
	Layers    []LayerDiff `json:"layers,omitempty"`
}

// Side identifies one compared image.
type Side struct {
	Name     string        `json:"name"`
	Manifest digest.Digest `json:"manifest"`
	Config   digest.Digest `json:"config,omitempty"` // not read when the manifests are the same
}

// FieldDiff is one JSON field that differs. Path reads like
// "config.Env[2]", "history[3].created_by" or `config.Labels["a.b"]`; it is
// "(encoding)" when the bytes differ but no field does (then A and B are the
// two blob digests).
type FieldDiff struct {
	Path string          `json:"path"`
	A    json.RawMessage `json:"a,omitempty"` // absent when the field exists only in b
	B    json.RawMessage `json:"b,omitempty"`
}

// LayerDiff describes one pair of layers with different digests, or a layer
// present on one side only (the other side is nil and Files is empty).
type LayerDiff struct {
	Index       int        `json:"index"`   // in a; in b for a layer only in b
	IndexB      int        `json:"index_b"` // in b; -1 for a layer only in a
	Step        string     `json:"step,omitempty"`
	A           *LayerInfo `json:"a,omitempty"` // nil: the layer exists only in b
	B           *LayerInfo `json:"b,omitempty"`
	SameContent bool       `json:"same_content,omitempty"` // same uncompressed tar, blobs differ: compression only
	Order       bool       `json:"order,omitempty"`        // same entries in a different order
	Encoding    bool       `json:"encoding,omitempty"`     // tars differ but no entry attribute or order does (padding, header encoding)
	Files       []FileDiff `json:"files,omitempty"`
}

// LayerInfo describes one layer blob. DiffID comes from the config, or is
// computed when the config lacks it and the tar was read.
type LayerInfo struct {
	Digest    digest.Digest `json:"digest"`
	DiffID    digest.Digest `json:"diff_id,omitempty"`
	MediaType string        `json:"media_type"`
	Size      int64         `json:"size"`
	CreatedBy string        `json:"created_by,omitempty"`
}

// FileDiff is one path that differs between two layers.
type FileDiff struct {
	Path   string     `json:"path"`            // absolute ("/etc/passwd"); whiteouts keep their .wh. name
	Change string     `json:"change"`          // "added", "removed" or "changed"
	Attrs  []AttrDiff `json:"attrs,omitempty"` // for "changed"
}

// AttrDiff is one attribute of a tar entry that differs; "" means absent.
type AttrDiff struct {
	Name string `json:"name"`
	A    string `json:"a"`
	B    string `json:"b"`
}

// Compare compares image a with image b. Blobs whose content does not match
// their digest, manifests that are not image manifests, bad JSON and
// unreadable layers are errors.
func Compare(ctx context.Context, a, b Image, opts Options) (*Report, error) {
	r := &Report{
		A: Side{Name: a.Name, Manifest: a.Manifest.Digest},
		B: Side{Name: b.Name, Manifest: b.Manifest.Digest},
	}
	for i, img := range []Image{a, b} {
		if err := checkImage(img); err != nil {
			return nil, fmt.Errorf("compare %s: %w", label(img, i), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("compare images: %w", err)
	}
	if a.Manifest.Digest == b.Manifest.Digest {
		r.Identical = true
		return r, nil
	}
	sa, err := loadSide(ctx, a, label(a, 0))
	if err != nil {
		return nil, err
	}
	sb, err := loadSide(ctx, b, label(b, 1))
	if err != nil {
		return nil, err
	}
	r.A.Config, r.B.Config = sa.manifest.Config.Digest, sb.manifest.Config.Digest

	if r.Manifest, err = diffDocs(sa.manifestDoc, sb.manifestDoc, skipManifestField, manifestLayer, a.Manifest.Digest, b.Manifest.Digest); err != nil {
		return nil, fmt.Errorf("compare manifests: %w", err)
	}
	if r.A.Config != r.B.Config {
		if r.Config, err = diffDocs(sa.configDoc, sb.configDoc, skipConfigField, nil, r.A.Config, r.B.Config); err != nil {
			return nil, fmt.Errorf("compare configs: %w", err)
		}
	}
	if r.Layers, err = compareLayers(ctx, sa, sb, opts); err != nil {
		return nil, err
	}
	return r, nil
}

// label names an image in errors: its Name, or "a" / "b".
func label(img Image, i int) string {
	if img.Name != "" {
		return img.Name
	}
	return string(rune('a' + i))
}

// compareLayers pairs the layers: identical ones (same diff_id, or digest
// when a config lacks diff_ids) are matched in order (a longest common
// subsequence), so a layer inserted or removed on one side does not shift
// every layer after it; between two matches, the remaining layers pair up
// by position and the rest are on one side only.
func compareLayers(ctx context.Context, sa, sb *side, opts Options) ([]LayerDiff, error) {
	var out []LayerDiff
	for _, p := range alignLayers(layerKeys(sa), layerKeys(sb)) {
		var ia, ib *LayerInfo
		if p.a >= 0 {
			ia = sa.layerInfo(p.a)
		}
		if p.b >= 0 {
			ib = sb.layerInfo(p.b)
		}
		if ia != nil && ib != nil && ia.Digest == ib.Digest {
			continue
		}
		ld := LayerDiff{Index: p.a, IndexB: p.b, A: ia, B: ib}
		if p.a < 0 {
			ld.Index = p.b
		}
		if p.a >= 0 && p.a < len(opts.Steps) {
			ld.Step = opts.Steps[p.a]
		}
		switch {
		case ia == nil || ib == nil:
		case ia.DiffID != "" && ia.DiffID == ib.DiffID:
			ld.SameContent = true
		default:
			if err := diffLayerPair(ctx, sa, sb, p.a, p.b, &ld); err != nil {
				return nil, err
			}
		}
		out = append(out, ld)
	}
	return out, nil
}

// layerKeys identifies each layer's content: its diff_id, else its digest.
func layerKeys(s *side) []string {
	keys := make([]string, len(s.manifest.Layers))
	for i, l := range s.manifest.Layers {
		keys[i] = l.Digest.String()
		if i < len(s.diffIDs) && s.diffIDs[i] != "" {
			keys[i] = s.diffIDs[i].String()
		}
	}
	return keys
}

// maxAlign bounds the alignment table (ints): 1,000 layers a side.
const maxAlign = 1000 * 1000

// layerPair is one row of the alignment; -1 marks a missing side.
type layerPair struct{ a, b int }

// alignLayers matches equal keys in order (longest common subsequence) and
// pairs the rest by position between matches.
func alignLayers(ka, kb []string) []layerPair {
	n, m := len(ka), len(kb)
	if n*m > maxAlign {
		// A table this big is a hostile manifest, not an image: by index.
		out := make([]layerPair, max(n, m))
		for i := range out {
			out[i] = layerPair{-1, -1}
			if i < n {
				out[i].a = i
			}
			if i < m {
				out[i].b = i
			}
		}
		return out
	}
	// lcs[i][j]: length of the LCS of ka[i:] and kb[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if ka[i] == kb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []layerPair
	var ga, gb []int // the current gap
	flush := func() {
		for k := range max(len(ga), len(gb)) {
			p := layerPair{-1, -1}
			if k < len(ga) {
				p.a = ga[k]
			}
			if k < len(gb) {
				p.b = gb[k]
			}
			out = append(out, p)
		}
		ga, gb = ga[:0], gb[:0]
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && ka[i] == kb[j] && lcs[i][j] == lcs[i+1][j+1]+1:
			flush()
			out = append(out, layerPair{i, j})
			i, j = i+1, j+1
		case j >= m || i < n && lcs[i+1][j] >= lcs[i][j+1]:
			ga = append(ga, i)
			i++
		default:
			gb = append(gb, j)
			j++
		}
	}
	flush()
	return out
}

// diffLayerPair reads layer ia of a and ib of b at once and fills ld.
func diffLayerPair(ctx context.Context, sa, sb *side, ia, ib int, ld *LayerDiff) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		scans [2]*layerScan
	)
	for j, s := range []*side{sa, sb} {
		i := []int{ia, ib}[j]
		wg.Go(func() {
			sc, err := scanLayer(ctx, s.img.Blobs, s.manifest.Layers[i])
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("read layer %d of %s: %w", i, s.label, err)
					cancel()
				}
				mu.Unlock()
				return
			}
			scans[j] = sc
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	a, b := scans[0], scans[1]
	if ld.A.DiffID == "" {
		ld.A.DiffID = a.diffID
	}
	if ld.B.DiffID == "" {
		ld.B.DiffID = b.diffID
	}
	ld.Files = diffScans(a, b)
	switch {
	case len(ld.Files) > 0:
	case !slices.Equal(a.order, b.order):
		ld.Order = true
	case a.diffID != b.diffID:
		ld.Encoding = true
	default:
		// The uncompressed tars are byte for byte equal: the configs lack
		// (or misstate) the diff_ids, and only the compression differs.
		ld.SameContent = true
	}
	return nil
}
