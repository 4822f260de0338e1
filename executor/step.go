package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fsStep is a step that may add a layer: COPY, ADD, RUN, WORKDIR.
type fsStep struct {
	text      string // progress name
	createdBy string // history
	inputs    cache.Inputs
	// produce makes the layer on a cache miss; a nil *produced means the
	// step changed nothing (no layer, empty_layer history).
	produce func(ctx context.Context) (*produced, error)
}

// produced is the outcome of a step on a miss.
type produced struct {
	packed layer.Packed
	// commit, when set, keeps the step's rootfs as the snapshot of chain.
	commit func(ctx context.Context, chain digest.Digest) error
	// abort drops whatever produce prepared when the step fails later.
	abort func()
}

// runStep looks the step up in the cache, produces it on a miss, and
// appends its layer (or empty history) to st.
func (bd *build) runStep(ctx context.Context, s *stage, st *imageState, step *int, fs fsStep) error {
	*step++
	id := bd.nextStepID()
	name := s.stepName(*step, fs.text)
	start := time.Now()
	bd.curStep = id
	bd.rep.Report(Event{Kind: StepStart, ID: id, Name: name})
	cached, err := bd.doStep(ctx, st, fs, id)
	bd.rep.Report(Event{Kind: StepDone, ID: id, Name: name, Cached: cached, Duration: time.Since(start), Err: err})
	return err
}

func (bd *build) doStep(ctx context.Context, st *imageState, fs fsStep, id int) (bool, error) {
	in := fs.inputs
	in.Version = cache.Version
	in.Parent = st.key
	key := cache.Key(in)
	if !bd.opts.NoCache {
		rec, err := bd.b.Cache.Get(ctx, key)
		if err == nil && (rec.Layer == "" || bd.b.Store.Has(rec.Layer)) {
			bd.applyRecord(st, rec, fs.createdBy)
			st.key = key
			return true, nil
		}
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return false, err
		}
	}
	p, err := fs.produce(ctx)
	if err != nil {
		return false, err
	}
	rec := cache.Record{Key: key, Created: bd.timeNow().Format(time.RFC3339Nano)}
	if p != nil {
		rec.Layer, rec.LayerSize, rec.MediaType, rec.DiffID = p.packed.Digest, p.packed.Size, p.packed.MediaType, p.packed.DiffID
		if p.commit != nil {
			if err := p.commit(ctx, chainID(st.chain, p.packed.DiffID)); err != nil {
				return false, err
			}
		}
	}
	if err := bd.b.Cache.Put(ctx, rec); err != nil {
		return false, fmt.Errorf("record cache: %w", err)
	}
	bd.applyRecord(st, rec, fs.createdBy)
	st.key = key
	return false, nil
}

// applyRecord appends the step's layer (or an empty history entry).
func (bd *build) applyRecord(st *imageState, rec cache.Record, createdBy string) {
	if rec.Layer == "" {
		st.addHistory(createdBy)
		return
	}
	created, err := time.Parse(time.RFC3339Nano, rec.Created)
	if err != nil {
		created = bd.timeNow()
	}
	if bd.opts.SourceDateEpoch != nil {
		created = *bd.opts.SourceDateEpoch
	}
	st.addLayer(ocispec.Descriptor{MediaType: rec.MediaType, Digest: rec.Layer, Size: rec.LayerSize}, rec.DiffID, createdBy, created)
}

// writeLayer packs entries into a new blob of the store.
func (bd *build) writeLayer(ctx context.Context, ents []layer.Entry) (*produced, error) {
	if len(ents) == 0 {
		return nil, nil
	}
	w, err := bd.b.Store.Writer()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	packed, err := layer.Pack(ctx, w, ents, layer.PackOptions{Compression: bd.opts.Compression, SourceDateEpoch: bd.opts.SourceDateEpoch})
	if err != nil {
		return nil, err
	}
	if _, _, err := w.Commit(packed.Digest); err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	return &produced{packed: packed}, nil
}
