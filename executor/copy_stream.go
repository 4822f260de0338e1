package executor

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/layer"
)

// streams reports whether the layer of a COPY/ADD of items can be packed
// as its entries are made, without holding them all (layer.PackStream):
// one tree source (a context or stage dir or file) gives its entries in
// tar order, after the destination's ancestors, which sort before them.
// Several sources may overlap and interleave, an archive is unpacked
// first: those are collected and sorted (layer.Pack).
func streams(items []copyItem) bool {
	if len(items) != 1 {
		return false
	}
	_, ok := items[0].src.(*treeSource)
	return ok
}

// streamLayer packs the entries fill emits, in tar order, into a new layer
// blob (an empty one when fill emits nothing, as writeLayer).
func (bd *build) streamLayer(ctx context.Context, fill func(emit func(layer.Entry) error) error) (*produced, error) {
	w, err := bd.st.Images.Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	up, out := bd.teeUpload(ctx, w) // also to a --cache-to registry, as it is packed
	defer up.abort()
	// The newest mtime of the entries packed: an entry the next one
	// replaces (the same name) does not count, as in writeLayer.
	var newest, held int64
	var heldName string
	packed, n, err := layer.PackStream(ctx, out, func(add func(layer.Entry) error) error {
		return fill(func(e layer.Entry) error {
			if e.Name != heldName {
				newest, heldName = max(newest, held), e.Name
			}
			held = 0
			if !e.Whiteout && !e.ModTime.IsZero() {
				held = e.ModTime.Unix()
			}
			return add(e)
		})
	}, layer.PackOptions{Compression: bd.opts.Compression, SourceDateEpoch: bd.clock.packClamp()})
	newest = max(newest, held)
	if err != nil {
		return nil, err
	}
	_ = n // no entries: an empty layer, as BuildKit's
	if _, _, err := w.Commit(packed.Digest); err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	up.commit(packed.Digest)
	return &produced{packed: packed, newest: bd.clock.clampNewest(newest)}, nil
}
