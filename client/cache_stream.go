package client

import (
	"context"
	"errors"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/oci/registry"
	"github.com/opencontainers/go-digest"
)

// cacheStream streams each layer the engine packs to the repositories of
// the registry --cache-to specs while it is compressed (one upload session
// per layer), so the export after the build finds them there and writes
// only the records and the manifest: every layer for mode=max, those of
// the target image's stages for mode=min (what each exports). Streaming
// is best effort: a layer whose upload failed is uploaded by the export.
type cacheStream struct {
	ctx  context.Context
	ro   registry.Options
	dsts []*streamDest
}

// streamDest is one --cache-to registry repository.
type streamDest struct {
	spec CacheSpec
	once sync.Once
	up   *registry.Uploader // nil when the registry could not be reached

	mu   sync.Mutex
	done map[digest.Digest]int64 // blobs streamed and committed: size
	dead bool                    // an upload failed: no more for this build
}

func (d *streamDest) alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.up != nil && !d.dead
}

// fail stops streaming to d: a registry that failed once would only slow
// the build down (the export uploads what is missing).
func (d *streamDest) fail() {
	d.mu.Lock()
	d.dead = true
	d.mu.Unlock()
}

// streamCaches returns the stream of opts' --cache-to registries (nil
// when there is none to stream to).
func streamCaches(ctx context.Context, opts BuildOptions) *cacheStream {
	s := &cacheStream{ctx: ctx, ro: opts.Registry}
	s.ro.Progress = nil
	for _, sp := range opts.CacheTo {
		if sp.Type == "registry" {
			s.dsts = append(s.dsts, &streamDest{spec: sp, done: map[digest.Digest]int64{}})
		}
	}
	if len(s.dsts) == 0 {
		return nil
	}
	return s
}

// sink is the engine's Options.LayerSink.
func (s *cacheStream) sink(ctx context.Context, inImage bool) executor.LayerUpload {
	var m multiUpload
	for _, d := range s.dsts {
		if !d.spec.Max && !inImage {
			continue
		}
		d.once.Do(func() {
			d.up, _ = registry.NewUploader(s.ctx, d.spec.Ref, s.ro) // the export reports what fails
		})
		if !d.alive() {
			continue
		}
		bu, err := d.up.Start(ctx)
		if err != nil {
			d.fail()
			continue
		}
		m.ups = append(m.ups, &destUpload{BlobUpload: bu, dest: d})
	}
	if len(m.ups) == 0 {
		return nil
	}
	return &m
}

// close releases the registries' connections.
func (s *cacheStream) close() {
	if s == nil {
		return
	}
	for _, d := range s.dsts {
		if d.up != nil {
			d.up.Close()
		}
	}
}

// streamed counts the layers of recs that were streamed to spec's
// repository, and their bytes.
func (s *cacheStream) streamed(spec CacheSpec, recs []cache.Record) (int, int64) {
	if s == nil {
		return 0, 0
	}
	for _, d := range s.dsts {
		if d.spec != spec {
			continue
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		n, size, seen := 0, int64(0), map[digest.Digest]bool{}
		for _, r := range recs {
			if sz, ok := d.done[r.Layer]; ok && r.Layer != "" && !seen[r.Layer] {
				seen[r.Layer] = true
				n++
				size += sz
			}
		}
		return n, size
	}
	return 0, 0
}

// destUpload is one layer's upload to one repository.
type destUpload struct {
	*registry.BlobUpload
	dest   *streamDest
	failed bool
}

// multiUpload fans one layer out to every repository streamed to; one
// that fails is dropped, the others go on.
type multiUpload struct{ ups []*destUpload }

func (m *multiUpload) Write(p []byte) (int, error) {
	live := 0
	for _, u := range m.ups {
		if u.failed {
			continue
		}
		if _, err := u.Write(p); err != nil {
			u.failed = true
			u.dest.fail()
			continue
		}
		live++
	}
	if live == 0 {
		return 0, errors.New("every layer upload failed")
	}
	return len(p), nil
}

func (m *multiUpload) Commit(d digest.Digest) error {
	var errs []error
	for _, u := range m.ups {
		if u.failed {
			u.Abort()
			continue
		}
		size := u.Size()
		if err := u.BlobUpload.Commit(d); err != nil {
			u.dest.fail()
			errs = append(errs, err)
			continue
		}
		u.dest.mu.Lock()
		u.dest.done[d] = size
		u.dest.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (m *multiUpload) Abort() {
	for _, u := range m.ups {
		u.Abort()
	}
}
