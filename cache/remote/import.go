package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/ctxio"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxConfigSize bounds the records of one cache (about 10,000 steps per MB).
const maxConfigSize = 16 << 20

// maxBad is how many unusable layers disable a whole cache.
const maxBad = 2

// Stores are the local stores an import fills: blobs go to Images, and
// the records of a fetched blob to Cache.
type Stores struct {
	Images *oci.Store
	Cache  *cache.Store
}

// Stats count what an import or export moved.
type Stats struct {
	Blobs int   // layer blobs transferred (not skipped, not mounted)
	Bytes int64 // all bytes transferred: those layers, the records, an import's manifest
}

// BlobError is a layer of an imported cache that could not be used: not
// there, not what its digest or diffID says. Its records are poisoned.
type BlobError struct {
	Source string
	Layer  digest.Digest
	Err    error
}

func (e *BlobError) Error() string {
	return fmt.Sprintf("cache %s: layer %s: %v", e.Source, e.Layer, e.Err)
}

func (e *BlobError) Unwrap() error { return e.Err }

// Source is an imported cache: its records, read up front, and its layer
// blobs, fetched one by one when something needs their bytes. It is safe
// for concurrent use.
type Source struct {
	spec    Spec
	st      Stores
	blobs   blobSource
	records map[digest.Digest]cache.Record   // by key
	byLayer map[digest.Digest][]cache.Record // by layer blob

	mu       sync.Mutex
	poisoned map[digest.Digest]error
	// disabled: after maxBad unusable layers the whole cache is taken as
	// untrustworthy (a proxy corrupting every blob costs two rebuilds, not
	// one per layer).
	disabled bool
	inflight map[digest.Digest]*fetchCall
	blobsN   atomic.Int64
	bytesN   atomic.Int64
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// blobSource is where a cache's blobs are: a registry repository or a
// layout directory.
type blobSource interface {
	// fetch copies desc into store, writing every byte to tap as well.
	fetch(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, tap io.Writer) error
	close()
}

// Import reads the cache spec names: its manifest and records, nothing
// more. A cache that cannot be read (no such ref or dir, another format or
// key version) is an error the caller reports as a warning: a cold build.
func Import(ctx context.Context, spec Spec, st Stores, ro registry.Options) (*Source, error) {
	s := &Source{spec: spec, st: st, records: map[digest.Digest]cache.Record{}, byLayer: map[digest.Digest][]cache.Record{},
		poisoned: map[digest.Digest]error{}, inflight: map[digest.Digest]*fetchCall{}}
	var recs []cache.Record
	var err error
	switch spec.Type {
	case "registry":
		recs, err = s.importRegistry(ctx, ro)
	case "local":
		recs, err = s.importLocal()
	default:
		err = fmt.Errorf("type=%s is not a cache to import from (use type=registry,ref=IMAGE for an inline cache)", spec.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("import cache %s: %w", spec, err)
	}
	for _, r := range recs {
		s.records[r.Key] = r
		if r.Layer != "" {
			s.byLayer[r.Layer] = append(s.byLayer[r.Layer], r)
		}
	}
	return s, nil
}

func (s *Source) importRegistry(ctx context.Context, ro registry.Options) ([]cache.Record, error) {
	repo, err := registry.OpenRepo(ctx, s.spec.Ref, ro)
	if err != nil {
		return nil, err
	}
	desc, raw, err := repo.Manifest(ctx)
	if err != nil {
		repo.Close()
		return nil, err
	}
	s.bytesN.Add(int64(len(raw)))
	if desc.MediaType == ocispec.MediaTypeImageIndex {
		// An image pushed with its attestations (--provenance): the
		// inline cache is in the image's manifest.
		if desc, raw, err = imageOfIndex(ctx, repo, raw); err != nil {
			repo.Close()
			return nil, fmt.Errorf("%s: %w", s.spec.Ref, err)
		}
		s.bytesN.Add(int64(len(raw)))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || (m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest &&
		m.MediaType != "application/vnd.docker.distribution.manifest.v2+json") {
		repo.Close()
		return nil, fmt.Errorf("%s is a %s, not a cache or an image with an inline cache", s.spec.Ref, desc.MediaType)
	}
	var data []byte
	switch {
	case m.Config.MediaType == ConfigMediaType:
		if m.Config.Size > maxConfigSize {
			repo.Close()
			return nil, fmt.Errorf("cache records of %d bytes: more than %d", m.Config.Size, maxConfigSize)
		}
		if data, err = repo.ReadBlob(ctx, m.Config); err != nil {
			repo.Close()
			return nil, err
		}
		s.bytesN.Add(int64(len(data)))
	case m.Annotations[InlineAnnotation] != "":
		data = []byte(m.Annotations[InlineAnnotation])
	default:
		repo.Close()
		return nil, fmt.Errorf("%s holds no builder cache (neither a cache manifest nor an image built with --cache-to type=inline)", s.spec.Ref)
	}
	recs, err := decodeConfig(data)
	if err != nil {
		repo.Close()
		return nil, err
	}
	// A push to this registry can mount these blobs from the cache's
	// repository instead of downloading and uploading them.
	var descs []ocispec.Descriptor
	for _, r := range layers(recs) {
		descs = append(descs, ocispec.Descriptor{MediaType: r.MediaType, Digest: r.Layer, Size: r.LayerSize})
	}
	registry.RecordSources(s.st.Images, repo.Name(), descs)
	s.blobs = registryBlobs{repo}
	return recs, nil
}

// imageOfIndex fetches the one image manifest of an index that holds an
// image and its attestation manifests (vnd.docker.reference.type).
func imageOfIndex(ctx context.Context, repo *registry.Repo, raw []byte) (ocispec.Descriptor, []byte, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("decode index: %w", err)
	}
	var images []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Annotations["vnd.docker.reference.type"] == "" {
			images = append(images, m)
		}
	}
	if len(images) != 1 {
		return ocispec.Descriptor{}, nil, fmt.Errorf("an index of %d images, not a cache or an image with an inline cache", len(images))
	}
	return repo.ManifestByDigest(ctx, images[0].Digest)
}

func (s *Source) importLocal() ([]cache.Record, error) {
	l := layoutDir(s.spec.Dir)
	idxData, err := l.readFile("index.json", maxConfigSize)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(idxData, &idx); err != nil {
		return nil, fmt.Errorf("decode index.json: %w", err)
	}
	want, _ := oci.NormalizeRef(localName)
	var man *ocispec.Descriptor
	for i, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == want {
			man = &idx.Manifests[i]
		}
	}
	if man == nil {
		return nil, fmt.Errorf("%s holds no builder cache (no %s in index.json)", s.spec.Dir, localName)
	}
	raw, err := l.readBlob(man.Digest, maxConfigSize)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode cache manifest: %w", err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("%s: the manifest is not a builder cache", s.spec.Dir)
	}
	data, err := l.readBlob(m.Config.Digest, maxConfigSize)
	if err != nil {
		return nil, err
	}
	s.bytesN.Add(int64(len(raw) + len(data)))
	s.blobs = l
	return decodeConfig(data)
}

// String names the cache as progress shows it ("registry REF").
func (s *Source) String() string { return s.spec.String() }

// Len is how many records the cache holds.
func (s *Source) Len() int { return len(s.records) }

// Stats is what the import moved so far.
func (s *Source) Stats() Stats { return Stats{Blobs: int(s.blobsN.Load()), Bytes: s.bytesN.Load()} }

// Close drops the connection to the cache.
func (s *Source) Close() {
	if s.blobs != nil {
		s.blobs.close()
	}
}

// Lookup returns the record of key, unless its layer was found unusable.
func (s *Source) Lookup(key digest.Digest) (cache.Record, bool) {
	r, ok := s.records[key]
	if !ok {
		return cache.Record{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return r, !s.disabled && s.poisoned[r.Layer] == nil
}

// Has reports whether the cache names layer (and it is not poisoned).
func (s *Source) Has(layer digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.disabled && len(s.byLayer[layer]) > 0 && s.poisoned[layer] == nil
}

// Fetch puts layer into the image store, verified against its digest and
// the diffID its records give, and then writes those records to the local
// cache. Concurrent calls for one layer share one download. A failure
// other than a cancellation poisons the layer and is a *BlobError.
func (s *Source) Fetch(ctx context.Context, layer digest.Digest) error {
	s.mu.Lock()
	if err := s.poisoned[layer]; err != nil {
		s.mu.Unlock()
		return err
	}
	if len(s.byLayer[layer]) == 0 {
		s.mu.Unlock()
		return &BlobError{Source: s.String(), Layer: layer, Err: errors.New("not in this cache")}
	}
	if c := s.inflight[layer]; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := &fetchCall{done: make(chan struct{})}
	s.inflight[layer] = c
	s.mu.Unlock()

	c.err = s.fetch(ctx, s.byLayer[layer][0])
	s.mu.Lock()
	if c.err != nil && ctx.Err() == nil {
		c.err = &BlobError{Source: s.String(), Layer: layer, Err: c.err}
		s.poisoned[layer] = c.err
		s.disabled = len(s.poisoned) >= maxBad
	}
	delete(s.inflight, layer)
	s.mu.Unlock()
	close(c.done)
	return c.err
}

func (s *Source) fetch(ctx context.Context, rec cache.Record) error {
	desc := ocispec.Descriptor{MediaType: rec.MediaType, Digest: rec.Layer, Size: rec.LayerSize}
	var diffID digest.Digest
	var err error
	if s.st.Images.Has(ctx, rec.Layer) {
		diffID, err = s.localDiffID(ctx, rec.Layer)
	} else {
		// Twice: a dropped connection should not cost a rebuild.
		for try := 0; try < 2 && (try == 0 || err != nil && ctx.Err() == nil); try++ {
			diffID, err = s.download(ctx, desc)
		}
	}
	if err != nil {
		return err
	}
	if diffID != rec.DiffID {
		return fmt.Errorf("diffID mismatch: the cache says %s, the layer is %s", rec.DiffID, diffID)
	}
	for _, r := range s.byLayer[rec.Layer] {
		if r.DiffID != diffID {
			continue
		}
		if err := s.st.Cache.Put(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// download copies desc into the image store and returns the diffID of its
// content, computed in the same pass: the download hands its bytes on
// through a few buffered chunks (it never waits for the inflater unless it
// is a megabyte ahead), the layer is inflated on one goroutine and hashed
// on another.
func (s *Source) download(ctx context.Context, desc ocispec.Descriptor) (digest.Digest, error) {
	pr, pw := io.Pipe()
	type result struct {
		d   digest.Digest
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := layer.DiffID(pr)
		_, _ = io.Copy(io.Discard, pr) // never block the download
		done <- result{d, err}
	}()
	tap := ctxio.NewAsyncWriter(pw)
	err := s.blobs.fetch(ctx, s.st.Images, desc, tap)
	_ = tap.Close() // the pipe fails only once the reader is gone
	pw.CloseWithError(err)
	res := <-done
	if err != nil {
		return "", err
	}
	if res.err != nil {
		return "", fmt.Errorf("decompress: %w", res.err)
	}
	s.blobsN.Add(1)
	s.bytesN.Add(desc.Size)
	return res.d, nil
}

func (s *Source) localDiffID(ctx context.Context, d digest.Digest) (digest.Digest, error) {
	rc, err := s.st.Images.OpenBlob(ctx, d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return layer.DiffID(rc)
}

// registryBlobs are the blobs of a cache in a registry repository.
type registryBlobs struct{ repo *registry.Repo }

func (r registryBlobs) fetch(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, tap io.Writer) error {
	return r.repo.FetchBlob(ctx, store, desc, tap)
}

func (r registryBlobs) close() { r.repo.Close() }

// layoutDir is an OCI layout directory, read without writing to it.
type layoutDir string

func (l layoutDir) readFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(l), name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}

func (l layoutDir) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("invalid digest %q", d)
	}
	return filepath.Join(string(l), "blobs", "sha256", d.Encoded()), nil
}

// readBlob reads a small blob and checks its digest.
func (l layoutDir) readBlob(d digest.Digest, limit int64) ([]byte, error) {
	p, err := l.blobPath(d)
	if err != nil {
		return nil, err
	}
	data, err := l.readFile(p[len(l)+1:], limit)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("blob %s: content has digest %s", d, got)
	}
	return data, nil
}

func (l layoutDir) fetch(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, tap io.Writer) error {
	p, err := l.blobPath(desc.Digest)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := store.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	n, err := io.Copy(io.MultiWriter(w, tap), io.LimitReader(ctxio.Reader(ctx, f), desc.Size+1))
	if err != nil {
		return err
	}
	if n != desc.Size {
		return fmt.Errorf("blob %s: %d bytes, the cache says %d", desc.Digest, n, desc.Size)
	}
	_, _, err = w.Commit(desc.Digest)
	return err
}

func (l layoutDir) close() {}
