package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fsStep is a step that may add a layer: COPY, ADD, RUN, WORKDIR.
type fsStep struct {
	text      string // progress name
	createdBy string // history
	key       any    // runKey, copyKey or workdirKey: what identifies the step
	// produce makes the layer on a cache miss; a nil *produced means the
	// step changed nothing (no layer, empty_layer history).
	produce func(ctx context.Context) (*produced, error)
	// start, when set, is when the step's work began (COPY hashes its
	// sources before runStep): the reported duration counts from there.
	start time.Time
	// sources is what hashing the context files a COPY/ADD selected found
	// (for explaining a miss file by file).
	sources *cache.Hashed
	// linked: the layer does not depend on the parent (COPY --link), so
	// its record is keyed without it and a new base only rebases it.
	linked bool
	// follows, when set, is called when another step of the build with
	// the same key runs it and this one waits for it (it drops a layer
	// made ahead: speculate.go).
	follows func()
}

// stepRun is one run of a step: its progress ID and name, and where it
// stands in the Dockerfile (for the history).
type stepRun struct {
	id    int
	name  string
	pos   string // "stage index/step number"
	first bool   // the stage's first filesystem step
}

// produced is the outcome of a step on a miss.
type produced struct {
	packed layer.Packed
	// commit, when set, keeps the step's rootfs as the snapshot of chain.
	commit func(ctx context.Context, chain digest.Digest) error
	// abort drops whatever produce prepared when the step fails later.
	abort func()
	// newest is the newest mtime in the layer, Unix seconds (cache.Record).
	newest int64
}

// runStep looks the step up in the cache, produces it on a miss, and
// appends its layer (or empty history) to st.
func (bd *build) runStep(ctx context.Context, s *stage, st *imageState, step *int, fs fsStep) error {
	*step++
	key := bd.key(st.key, fs.key)
	f, leader := bd.sh.join(key)
	if !leader {
		if fs.follows != nil {
			fs.follows()
		}
		return bd.follow(ctx, s, st, *step, fs, f, key)
	}
	id := bd.nextStepID()
	name := s.stepName(bd.platformPrefix(st), *step, fs.text)
	start := time.Now()
	if !fs.start.IsZero() {
		start = fs.start
	}
	ctx = context.WithValue(ctx, stepIDKey{}, id)
	bd.rep.Report(Event{Kind: StepStart, ID: id, Name: name, Line: st.line})
	sr := stepRun{id: id, name: name, pos: fmt.Sprintf("%d/%d", s.idx, *step), first: *step == 2}
	cached, from, err := bd.doStep(ctx, st, fs, sr, bd.noCache(s))
	st.lastHit = cached
	f.finish(st, err)
	var layerDigest digest.Digest
	if err == nil && len(st.records) > 0 {
		layerDigest = st.records[len(st.records)-1].Layer
	}
	bd.rep.Report(Event{Kind: StepDone, ID: id, Name: name, Line: st.line, Cached: cached, From: from, Layer: layerDigest,
		Duration: time.Since(start), Err: err})
	return err
}

// stepIDKey carries the running step's ID to produce (RUN output events).
type stepIDKey struct{}

func stepID(ctx context.Context) int {
	id, _ := ctx.Value(stepIDKey{}).(int)
	return id
}

// noCache reports whether the steps of s skip the cache lookup (--no-cache,
// or s named by --no-cache-filter, matched as BuildKit does).
func (bd *build) noCache(s *stage) bool {
	if bd.opts.NoCache {
		return true
	}
	for _, n := range bd.opts.NoCacheFilter {
		if s.name != "" && strings.EqualFold(n, s.name) {
			return true
		}
	}
	return false
}

// doStep looks the step's key up (the local cache, then each imported
// one) and produces it on a miss. It reports whether it hit, and where
// when the hit came from an imported cache.
func (bd *build) doStep(ctx context.Context, st *imageState, fs fsStep, sr stepRun, noCache bool) (bool, string, error) {
	sk := bd.stepKey(fs.key)
	key := cache.Key(cache.Inputs{Parent: st.key, Step: sk})
	hist := &cache.StepRecord{Text: fs.text, Parent: st.key, Key: key, Step: sk}
	// The state after the step always depends on the parent; a linked
	// step's record does not (its layer is the same on any parent).
	next := key
	if fs.linked {
		key = cache.Key(cache.Inputs{Step: sk})
	}
	if !noCache {
		rec, err := bd.st.Cache.Get(ctx, key)
		if err == nil && (rec.Layer == "" || bd.blobIntact(ctx, rec)) {
			bd.explain(ctx, sr, st, hist, fs, true)
			bd.applyRecord(st, rec, fs.createdBy)
			st.key = next
			return true, "", nil
		}
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return false, "", err
		}
		for _, src := range bd.opts.CacheFrom {
			rec, ok := src.Lookup(key)
			if !ok {
				continue
			}
			if err := bd.remoteHit(ctx, src, rec); err != nil {
				return false, "", err
			}
			bd.explain(ctx, sr, st, hist, fs, true)
			bd.applyRecord(st, rec, fs.createdBy)
			st.key = next
			return true, src.String(), nil
		}
	}
	if bd.opts.HitsOnly {
		return false, "", ErrNotCached
	}
	if err := bd.reportMiss(ctx, sr, st, hist, fs, noCache); err != nil {
		return false, "", err
	}
	p, err := fs.produce(ctx)
	if err != nil {
		return false, "", err
	}
	rec := cache.Record{Key: key, Created: bd.clock.recordTime()}
	if p != nil {
		rec.Layer, rec.LayerSize, rec.MediaType, rec.DiffID = p.packed.Digest, p.packed.Size, p.packed.MediaType, p.packed.DiffID
		rec.Newest = p.newest
		if p.commit != nil {
			if err := p.commit(ctx, snapshot.ChainID(st.chain, p.packed.DiffID)); err != nil {
				if p.abort != nil {
					p.abort()
				}
				return false, "", err
			}
		}
	}
	if err := bd.st.Cache.Put(ctx, rec); err != nil {
		return false, "", fmt.Errorf("record cache: %w", err)
	}
	bd.applyRecord(st, rec, fs.createdBy)
	st.key = next
	return false, "", nil
}

// blobIntact reports whether the layer blob of rec is present with the
// recorded size (a stat, no read: a hit must stay cheap). A blob of the
// wrong size is corrupt; it is removed so that the step, now a miss,
// stores a good copy (a blob that exists is never rewritten).
func (bd *build) blobIntact(ctx context.Context, rec cache.Record) bool {
	size, err := bd.st.Images.BlobSize(ctx, rec.Layer)
	if err != nil {
		return false
	}
	if rec.LayerSize > 0 && size != rec.LayerSize {
		_ = bd.st.Images.DeleteBlob(ctx, rec.Layer)
		return false
	}
	return true
}

// remoteHit takes a record of an imported cache: a step that made no layer
// is recorded locally at once; a layer already in the store is fetched
// (that verifies it and records it); any other is remembered, and fetched
// when a rootfs needs it (ensureBlob) or the caller keeps the image.
func (bd *build) remoteHit(ctx context.Context, src CacheSource, rec cache.Record) error {
	switch {
	case rec.Layer == "":
		return bd.st.Cache.Put(ctx, rec)
	case bd.st.Images.Has(ctx, rec.Layer):
		return src.Fetch(ctx, rec.Layer)
	}
	bd.sh.mu.Lock()
	bd.sh.remote[rec.Layer] = src
	bd.sh.mu.Unlock()
	return nil
}

// ensureBlob brings a layer blob that only an imported cache has into the
// store (a no-op for any other).
func (bd *build) ensureBlob(ctx context.Context, layer digest.Digest) error {
	if bd.st.Images.Has(ctx, layer) {
		return nil
	}
	bd.sh.mu.Lock()
	src := bd.sh.remote[layer]
	bd.sh.mu.Unlock()
	if src == nil {
		return nil // OpenBlob says what is missing
	}
	return src.Fetch(ctx, layer)
}

// applyRecord appends the step's layer (or an empty history entry).
func (bd *build) applyRecord(st *imageState, rec cache.Record, createdBy string) {
	st.records = append(st.records, rec)
	bd.mu.Lock()
	bd.records = append(bd.records, rec)
	bd.mu.Unlock()
	if rec.Layer == "" {
		st.addHistory(createdBy)
		return
	}
	st.addLayer(ocispec.Descriptor{MediaType: rec.MediaType, Digest: rec.Layer, Size: rec.LayerSize}, rec.DiffID, createdBy, bd.clock.layerTime(rec.Created))
	st.newest = max(st.newest, rec.Newest)
}

// writeLayer packs entries into a new blob of the store.
// It writes one even for no entries (a tar of only its end marker): BuildKit
// exports every RUN, COPY, ADD and WORKDIR as a layer, an empty one when
// the step changed nothing.
func (bd *build) writeLayer(ctx context.Context, ents []layer.Entry) (*produced, error) {
	packed, err := bd.storeLayer(ctx, func(w io.Writer, opts layer.PackOptions) (layer.Packed, error) {
		return layer.Pack(ctx, w, ents, opts)
	})
	if err != nil {
		return nil, err
	}
	return &produced{packed: packed, newest: bd.clock.newest(ents)}, nil
}

// storeLayer packs a layer blob into the store with pack (layer.Pack or
// PackStream, with the build's options). With a LayerSink, an upload
// follows the blob as it is stored (startUpload); the step hands it the
// digest and does not wait for it.
func (bd *build) storeLayer(ctx context.Context, pack func(io.Writer, layer.PackOptions) (layer.Packed, error)) (layer.Packed, error) {
	w, err := bd.st.Images.Writer(ctx)
	if err != nil {
		return layer.Packed{}, err
	}
	defer w.Close()
	up := bd.startUpload(ctx, w)
	defer up.abort()
	packed, err := pack(w, layer.PackOptions{Compression: bd.opts.Compression, SourceDateEpoch: bd.clock.packClamp()})
	if err != nil {
		return layer.Packed{}, err
	}
	if _, _, err := w.Commit(packed.Digest); err != nil {
		return layer.Packed{}, fmt.Errorf("store layer: %w", err)
	}
	up.commit(packed.Digest)
	return packed, nil
}

// reportMiss says why the step runs (a CacheMiss event, when it is known)
// and, with ExpectCached, fails it instead.
func (bd *build) reportMiss(ctx context.Context, sr stepRun, st *imageState, hist *cache.StepRecord, fs fsStep, noCache bool) error {
	reasons := bd.explain(ctx, sr, st, hist, fs, false)
	if noCache {
		reasons = []string{"--no-cache"}
	}
	if len(reasons) > 0 {
		text := reasons[0]
		if bd.opts.Explain {
			text = strings.Join(reasons, "; ")
		}
		bd.rep.Report(Event{Kind: CacheMiss, ID: sr.id, Name: sr.name, Text: text})
	}
	if !bd.opts.ExpectCached {
		return nil
	}
	why := "no earlier build of this step in this store"
	if len(reasons) > 0 {
		why = strings.Join(reasons, "; ")
	}
	return fmt.Errorf("not cached (--expect-cached): %s", why)
}
