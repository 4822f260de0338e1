package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/builderdev/builder/oci"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Repo reads one repository: the manifest a reference names, and blobs by
// digest. Build caches are read through it (package cache/remote), a blob
// at a time, when the build needs it.
type Repo struct {
	ref  name.Reference
	opts Options
	c    *client
}

// OpenRepo connects to the repository of ref with pull access.
func OpenRepo(ctx context.Context, ref string, opts Options) (*Repo, error) {
	r, err := parseRef(ref, opts)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, r.Context(), opts, []string{r.Context().Scope("pull")})
	if err != nil {
		return nil, err
	}
	return &Repo{ref: r, opts: opts, c: c}, nil
}

// Name is the repository as blob sources name it ("host/path").
func (r *Repo) Name() string { return r.ref.Context().Name() }

// Close drops the connections.
func (r *Repo) Close() { r.c.close() }

// Manifest fetches the manifest (or index) the reference names, verified
// against its digest.
func (r *Repo) Manifest(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	p := &puller{opts: r.opts, ref: r.ref.String(), repo: r.ref.Context(), c: r.c}
	desc, raw, err := p.manifest(ctx, r.ref.Identifier(), "")
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read %s: %w", r.ref, err)
	}
	if d, ok := r.ref.(name.Digest); ok && digest.Digest(d.DigestStr()) != desc.Digest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read %s: digest mismatch: registry sent %s", r.ref, desc.Digest)
	}
	return desc, raw, nil
}

// ManifestByDigest fetches a manifest of the repository by digest (an
// entry of the index Manifest returned), verified.
func (r *Repo) ManifestByDigest(ctx context.Context, d digest.Digest) (ocispec.Descriptor, []byte, error) {
	if err := checkDigest(d); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	p := &puller{opts: r.opts, ref: r.ref.String(), repo: r.ref.Context(), c: r.c}
	desc, raw, err := p.manifest(ctx, d.String(), "")
	if err == nil && desc.Digest != d {
		err = fmt.Errorf("digest mismatch: registry sent %s", desc.Digest)
	}
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read %s@%s: %w", r.ref.Context(), d, err)
	}
	return desc, raw, nil
}

// ReadBlob reads a small blob (at most maxManifestSize bytes), verified.
func (r *Repo) ReadBlob(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := checkDigest(desc.Digest); err != nil {
		return nil, err
	}
	if desc.Size > maxManifestSize {
		return nil, fmt.Errorf("blob %s: %d bytes, more than %d", desc.Digest, desc.Size, maxManifestSize)
	}
	var data []byte
	err := retry(ctx, func() error {
		resp, err := r.c.send(ctx, http.MethodGet, r.c.url("blobs/"+desc.Digest.String()), nil, nil, 0, http.StatusOK)
		if err != nil {
			return fmt.Errorf("fetch blob %s: %w", desc.Digest, err)
		}
		defer resp.Body.Close()
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return fmt.Errorf("fetch blob %s: %w", desc.Digest, cleanURLError(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("blob %s: digest mismatch: registry sent %s", desc.Digest, got)
	}
	return data, nil
}

// FetchBlob downloads desc into store (verified by size and digest before
// it enters it), writing every byte to tap as well (nil: none). One
// attempt: a caller that verifies the bytes through tap retries itself.
func (r *Repo) FetchBlob(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, tap io.Writer) error {
	if err := checkDigest(desc.Digest); err != nil {
		return err
	}
	return r.c.download(ctx, store, desc, tap)
}

// RecordSources notes that repo ("host/path") holds blobs, so that a later
// push to the same registry mounts them from there instead of uploading.
func RecordSources(store *oci.Store, repo string, blobs []ocispec.Descriptor) {
	recordSources(store, repo, blobs)
}
