package executor

import (
	"context"
	"io"

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
	// The newest mtime of the entries packed: an entry the next one
	// replaces (the same name) does not count, as in writeLayer.
	var newest, held int64
	var heldName string
	packed, err := bd.storeLayer(ctx, func(w io.Writer, opts layer.PackOptions) (layer.Packed, error) {
		// No entries make an empty layer, as BuildKit's.
		p, _, err := layer.PackStream(ctx, w, func(add func(layer.Entry) error) error {
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
		}, opts)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	return &produced{packed: packed, newest: bd.clock.clampNewest(max(newest, held))}, nil
}
