package client

import (
	"context"
	"errors"
	"fmt"
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
//
// The engine feeds each upload from its own goroutine, behind the packer
// (executor.LayerUpload): a step never waits for the registry, not even
// to connect. The uploads still running when the build ends are waited
// for by the export (wait), or cancelled and waited for by close.
type cacheStream struct {
	ctx     context.Context // the build's: bounds every upload; close cancels it
	cancel  context.CancelFunc
	ro      registry.Options
	dsts    []*streamDest
	uploads sync.WaitGroup // uploads handed to the engine and not ended yet
}

// streamSessions bounds the upload sessions open at once to one
// repository: a fast build of many layers, far ahead of a slow registry,
// queues its uploads (their bytes wait in the store) instead of opening a
// connection per layer.
const streamSessions = 4

// streamDest is one --cache-to registry repository.
type streamDest struct {
	spec  CacheSpec
	slots chan struct{} // one per open session (streamSessions)
	once  sync.Once
	up    *registry.Uploader // set by the first connect; nil when the registry could not be reached

	mu   sync.Mutex
	done map[digest.Digest]int64 // blobs streamed and committed: size
	dead bool                    // an upload failed: no more for this build
}

// connect connects to d's repository once (the first upload that needs
// it waits, the others wait for that); nil when it failed.
func (d *streamDest) connect(s *cacheStream) *registry.Uploader {
	d.once.Do(func() {
		var err error
		if d.up, err = registry.NewUploader(s.ctx, d.spec.Ref, s.ro); err != nil {
			d.fail() // the export reports what fails
		}
	})
	return d.up
}

func (d *streamDest) alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.dead
}

// fail stops streaming to d: a registry that failed once would only slow
// the build down (the export uploads what is missing). Uploads to it that
// are under way stop at their next write.
func (d *streamDest) fail() {
	d.mu.Lock()
	d.dead = true
	d.mu.Unlock()
}

// streamCaches returns the stream of opts' --cache-to registries (nil
// when there is none to stream to). Close it when the build is done.
func streamCaches(ctx context.Context, opts BuildOptions) *cacheStream {
	s := &cacheStream{ro: opts.Registry}
	s.ro.Progress = nil
	for _, sp := range opts.CacheTo {
		if sp.Type == "registry" {
			s.dsts = append(s.dsts, &streamDest{spec: sp, slots: make(chan struct{}, streamSessions), done: map[digest.Digest]int64{}})
		}
	}
	if len(s.dsts) == 0 {
		return nil
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s
}

// sink is the engine's Options.LayerSink: it only picks the repositories
// (the upload connects when the engine first writes to it).
func (s *cacheStream) sink(inImage bool) executor.LayerUpload {
	m := &multiUpload{s: s}
	for _, d := range s.dsts {
		if (d.spec.Max || inImage) && d.alive() {
			m.ups = append(m.ups, &destUpload{dest: d})
		}
	}
	if len(m.ups) == 0 {
		return nil
	}
	s.uploads.Add(1)
	return m
}

// wait waits for the uploads under way to end (committed or aborted), or
// for ctx to be done. The export calls it before it looks at what the
// registry holds.
func (s *cacheStream) wait(ctx context.Context) error {
	if s == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.uploads.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// The uploads end soon: their context is a child of ctx.
		return fmt.Errorf("wait for the layer uploads: %w", ctx.Err())
	}
}

// close cancels the uploads still under way (none after a successful
// export), waits for them to end, and releases the registries'
// connections.
func (s *cacheStream) close() {
	if s == nil {
		return
	}
	s.cancel()
	s.uploads.Wait()
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

// errDestDead ends an upload to a repository that failed another upload.
var errDestDead = errors.New("an upload to this repository failed")

// destUpload is one layer's upload to one repository.
type destUpload struct {
	dest   *streamDest
	slot   bool                 // holds one of dest.slots
	bu     *registry.BlobUpload // nil until the first write
	failed bool
}

// start opens the upload session at the first write (or commit: a blob
// of no bytes), once a session slot of the repository is free.
func (u *destUpload) start(s *cacheStream) error {
	if u.bu != nil {
		return nil
	}
	up := u.dest.connect(s)
	if up == nil {
		return errDestDead
	}
	if !u.slot {
		select {
		case u.dest.slots <- struct{}{}:
			u.slot = true
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	if !u.dest.alive() {
		return errDestDead
	}
	bu, err := up.Start(s.ctx)
	if err != nil {
		return err
	}
	u.bu = bu
	return nil
}

// drop aborts u after a failure (its own, err, or another upload's to the
// same repository: err is errDestDead) and stops streaming there.
func (u *destUpload) drop(err error) {
	u.failed = true
	if err != errDestDead {
		u.dest.fail()
	}
	u.abort()
}

// abort ends u's session, if it has one, and frees its slot.
func (u *destUpload) abort() {
	if u.bu != nil {
		u.bu.Abort()
	}
	u.release()
}

func (u *destUpload) release() {
	if u.slot {
		u.slot = false
		<-u.dest.slots
	}
}

// multiUpload fans one layer out to every repository streamed to; one
// that fails is dropped, the others go on. The engine calls it from one
// goroutine: Writes, then Commit or Abort.
type multiUpload struct {
	s    *cacheStream
	ups  []*destUpload
	once sync.Once
}

func (m *multiUpload) Write(p []byte) (int, error) {
	live := 0
	for _, u := range m.ups {
		if u.failed {
			continue
		}
		err := errDestDead
		if u.dest.alive() {
			if err = u.start(m.s); err == nil {
				_, err = u.bu.Write(p)
			}
		}
		if err != nil {
			u.drop(err)
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
	defer m.end()
	var errs []error
	for _, u := range m.ups {
		if u.failed {
			continue
		}
		err := errDestDead
		if u.dest.alive() {
			err = u.start(m.s)
		}
		if err != nil {
			u.drop(err)
			continue
		}
		size := u.bu.Size()
		err = u.bu.Commit(d)
		u.release()
		if err != nil {
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
	defer m.end()
	for _, u := range m.ups {
		u.abort()
	}
}

// end marks the upload ended for wait and close (once).
func (m *multiUpload) end() { m.once.Do(m.s.uploads.Done) }
