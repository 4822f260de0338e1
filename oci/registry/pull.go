package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/builderdev/builder/oci"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1"
	parallelBlobs               = 3
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	mediaTypeDockerManifestList, mediaTypeDockerManifest,
}, ", ")

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// Pull fetches ref into the store and tags it there (an image pulled by
// digest is left untagged). A manifest list or OCI index is resolved to
// opts.Platform. Only blobs missing from the store are fetched; each is
// verified by size and digest before it enters the store.
func Pull(ctx context.Context, store *oci.Store, ref string, opts Options) (*oci.Image, error) {
	img, err := pull(ctx, store, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

// puller is the state of one Pull.
type puller struct {
	store    *oci.Store
	opts     Options
	ref      string
	repo     name.Repository
	want     ocispec.Platform
	explicit bool // the platform was asked for
	c        *client
	prog     *progress
}

func pull(ctx context.Context, store *oci.Store, ref string, opts Options) (*oci.Image, error) {
	r, err := parseRef(ref, opts)
	if err != nil {
		return nil, err
	}
	p := &puller{store: store, opts: opts, ref: ref, repo: r.Context(), want: normalizePlatform(opts.Platform),
		prog: newProgress(opts.Progress)}
	p.explicit = p.want.Architecture != ""
	if !p.explicit {
		p.want = DefaultPlatform()
	}
	if p.want.OS == "" {
		p.want.OS = "linux"
	}
	defer func() {
		if p.c != nil {
			p.c.close()
		}
	}()

	var expected digest.Digest
	if d, ok := r.(name.Digest); ok {
		expected = digest.Digest(d.DigestStr())
	}
	desc, raw, err := p.manifest(ctx, r.Identifier(), expected)
	if err != nil {
		return nil, err
	}
	fromIndex := false
	if isIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("decode index %s: %w", desc.Digest, err)
		}
		child, err := pickManifest(idx, p.want)
		if err != nil {
			return nil, err
		}
		if expected != "" { // keep the index so name@<index digest> resolves offline
			if err := store.Put(ctx, desc.Digest, raw); err != nil {
				return nil, err
			}
		}
		if err := checkDigest(child.Digest); err != nil {
			return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		platform := child.Platform
		desc, raw, err = p.manifest(ctx, child.Digest.String(), child.Digest)
		if err != nil {
			return nil, err
		}
		if !isManifestType(desc.MediaType) {
			return nil, fmt.Errorf("index %s: entry %s is a %s, not an image manifest", expected, child.Digest, desc.MediaType)
		}
		desc.Platform = platform
		fromIndex = true
	}
	if !isManifestType(desc.MediaType) {
		return nil, fmt.Errorf("manifest %s: unsupported media type %q", desc.Digest, desc.MediaType)
	}
	img := &oci.Image{Descriptor: desc}
	if err := json.Unmarshal(raw, &img.Manifest); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", desc.Digest, err)
	}
	if err := checkManifest(img.Manifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if err := p.fetchBlobs(ctx, []ocispec.Descriptor{img.Manifest.Config}); err != nil {
		return nil, err
	}
	if err := store.GetJSON(ctx, img.Manifest.Config.Digest, &img.Config); err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	have := ocispec.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
	if p.explicit && !fromIndex && !matchPlatform(p.want, have) {
		return nil, fmt.Errorf("image is for platform %s, not %s: %w", FormatPlatform(normalizePlatform(have)), FormatPlatform(p.want), oci.ErrNotFound)
	}
	if img.Descriptor.Platform == nil {
		img.Descriptor.Platform = &have
	}
	if err := p.fetchBlobs(ctx, img.Manifest.Layers); err != nil {
		return nil, err
	}
	if err := store.Put(ctx, desc.Digest, raw); err != nil {
		return nil, err
	}
	blobs := append([]ocispec.Descriptor{img.Manifest.Config}, img.Manifest.Layers...)
	recordSources(store, p.repo.Name(), blobs)
	if expected == "" {
		tag, err := oci.NormalizeRef(ref)
		if err != nil {
			return nil, err
		}
		if err := store.Tag(ctx, tag, img.Descriptor); err != nil {
			return nil, err
		}
		img.Name = tag
	}
	return img, nil
}

// client connects on first use, so a pull served from the store needs no
// network.
func (p *puller) client(ctx context.Context) (*client, error) {
	if p.c != nil {
		return p.c, nil
	}
	c, err := newClient(ctx, p.repo, p.opts, []string{p.repo.Scope("pull")})
	if err != nil {
		return nil, err
	}
	p.c = c
	return c, nil
}

// manifest returns the manifest or index ident (a tag or digest) and its
// raw bytes. A manifest known by digest is read from the store when there.
func (p *puller) manifest(ctx context.Context, ident string, expected digest.Digest) (ocispec.Descriptor, []byte, error) {
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		if p.store.Has(ctx, expected) {
			if raw, err := readStoreBlob(ctx, p.store, expected); err == nil {
				return ocispec.Descriptor{MediaType: sniffMediaType(raw, ""), Digest: expected, Size: int64(len(raw))}, raw, nil
			}
		}
	}
	c, err := p.client(ctx)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	var raw []byte
	var header, ctype string
	err = retry(ctx, func() error {
		resp, err := c.send(ctx, http.MethodGet, c.url("manifests/"+ident), http.Header{"Accept": {manifestAccept}}, nil, 0, http.StatusOK)
		if err != nil {
			return fmt.Errorf("get manifest %s: %w", ident, err)
		}
		defer resp.Body.Close()
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return fmt.Errorf("get manifest %s: %w", ident, cleanURLError(err))
		}
		header, ctype = resp.Header.Get("Docker-Content-Digest"), resp.Header.Get(headerContentType)
		return nil
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if len(raw) > maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is larger than %d bytes", ident, maxManifestSize)
	}
	got := digest.FromBytes(raw)
	if expected != "" && got != expected {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: digest mismatch: registry sent %s", expected, got)
	}
	if d, err := digest.Parse(header); err == nil && d.Algorithm() == digest.SHA256 && d != got {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: digest mismatch: registry says %s, content is %s", ident, d, got)
	}
	mt := sniffMediaType(raw, ctype)
	if strings.HasPrefix(mt, mediaTypeDockerSchema1) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: docker schema 1 images are not supported", ident)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(raw))}, raw, nil
}

// sniffMediaType prefers the media type the document declares, then the
// Content-Type, then a guess from its fields.
func sniffMediaType(raw []byte, ctype string) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	_ = json.Unmarshal(raw, &probe)
	ctype, _, _ = strings.Cut(ctype, ";")
	ctype = strings.TrimSpace(ctype)
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case ctype != "" && ctype != "application/json" && ctype != "application/octet-stream":
		return ctype
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ctype
}

// fetchBlobs downloads the blobs missing from the store, a few at a time.
func (p *puller) fetchBlobs(ctx context.Context, descs []ocispec.Descriptor) error {
	var c *client
	for _, d := range descs {
		if !p.store.Has(ctx, d.Digest) {
			var err error
			if c, err = p.client(ctx); err != nil {
				return err
			}
			break
		}
	}
	return parallel(ctx, len(descs), func(ctx context.Context, i int) error {
		d := descs[i]
		ev := BlobEvent{Op: "pull", Ref: p.ref, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Status: BlobSkipped}
		if !p.store.Has(ctx, d.Digest) {
			if c == nil { // appeared and vanished meanwhile (a concurrent prune), or cancelled
				if err := ctx.Err(); err != nil {
					return err
				}
				return fmt.Errorf("fetch blob %s: removed from the store during the pull", d.Digest)
			}
			if err := retry(ctx, func() error { return c.download(ctx, p.store, d, nil) }); err != nil {
				return err
			}
			ev.Status = BlobDone
		}
		p.prog.report(ev)
		return nil
	})
}

// download streams one blob into a store ingest, and to tap when set;
// Commit verifies digest and size, and an ingest that fails is removed.
func (c *client) download(ctx context.Context, store *oci.Store, d ocispec.Descriptor, tap io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, c.url("blobs/"+d.Digest.String()), nil, nil, 0, http.StatusOK)
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
		return fmt.Errorf("fetch blob %s: size mismatch: registry sends %d bytes, manifest says %d", d.Digest, resp.ContentLength, d.Size)
	}
	w, err := store.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	var dst io.Writer = w
	if tap != nil {
		dst = io.MultiWriter(w, tap)
	}
	n, err := io.Copy(dst, io.LimitReader(resp.Body, d.Size+1))
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, cleanURLError(err))
	}
	if n != d.Size {
		return fmt.Errorf("fetch blob %s: size mismatch: got %d bytes, manifest says %d", d.Digest, n, d.Size)
	}
	if _, _, err := w.Commit(d.Digest); err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	return nil
}

// checkManifest validates the digests and sizes a manifest points at.
func checkManifest(m ocispec.Manifest) error {
	if m.Config.Digest == "" {
		return errors.New("no config")
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if err := checkDigest(d.Digest); err != nil {
			return err
		}
		if d.Size < 0 {
			return fmt.Errorf("blob %s: negative size %d", d.Digest, d.Size)
		}
	}
	return nil
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("unsupported digest algorithm %s", d.Algorithm())
	}
	return nil
}

// readStoreBlob reads a small blob of the store and verifies its digest.
func readStoreBlob(ctx context.Context, store *oci.Store, d digest.Digest) ([]byte, error) {
	rc, err := store.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(raw) > maxManifestSize || digest.FromBytes(raw) != d {
		return nil, fmt.Errorf("read blob %s: corrupt or too large", d)
	}
	return raw, nil
}

// progress serializes the Progress callback.
type progress struct {
	mu sync.Mutex
	fn func(BlobEvent)
}

func newProgress(fn func(BlobEvent)) *progress { return &progress{fn: fn} }

func (p *progress) report(e BlobEvent) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(e)
}

// parallel runs fn(0..n-1), parallelBlobs at a time, and returns the first
// error (the others are cancelled).
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first error in time is the cause; the others may be its
	// consequences (a sibling's retry cut short by the cancel returns its
	// last transient error, which says nothing of why).
	var (
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, parallelBlobs)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // the parent was cancelled
	}
	return first
}
