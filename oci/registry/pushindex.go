package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/builderdev/builder/oci"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushIndex uploads the image index idx of the store (a multi-platform
// image) to ref: each of its manifests first, by digest (as Push does,
// blobs skipped or mounted when the registry has them), then the index
// itself, byte for byte, at ref.
func PushIndex(ctx context.Context, store *oci.Store, idx ocispec.Descriptor, ref string, opts Options) error {
	if err := pushIndex(ctx, store, idx, ref, opts); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func pushIndex(ctx context.Context, store *oci.Store, idx ocispec.Descriptor, ref string, opts Options) error {
	r, err := parseRef(ref, opts)
	if err != nil {
		return err
	}
	if d, ok := r.(name.Digest); ok && digest.Digest(d.DigestStr()) != idx.Digest {
		return fmt.Errorf("index is %s, not %s", idx.Digest, d.DigestStr())
	}
	raw, err := readStoreBlob(ctx, store, idx.Digest)
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	mt := sniffMediaType(raw, idx.MediaType)
	if !isIndexType(mt) {
		return fmt.Errorf("%s is a %s, not an image index", idx.Digest, mt)
	}
	var ix ocispec.Index
	if err := json.Unmarshal(raw, &ix); err != nil {
		return fmt.Errorf("decode index %s: %w", idx.Digest, err)
	}
	repo := r.Context()
	for _, m := range ix.Manifests {
		if err := checkDigest(m.Digest); err != nil {
			return err
		}
		// By digest: the tag is written once, with the index.
		child := repo.Digest(m.Digest.String()).String()
		if err := push(ctx, store, &oci.Image{Descriptor: m}, child, opts); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
	}
	c, err := newClient(ctx, repo, opts, []string{repo.Scope("push,pull")})
	if err != nil {
		return err
	}
	defer c.close()
	return retry(ctx, func() error {
		resp, err := c.send(ctx, http.MethodPut, c.url("manifests/"+r.Identifier()),
			http.Header{headerContentType: {mt}}, bytes.NewReader(raw), int64(len(raw)), http.StatusCreated, http.StatusOK)
		if err != nil {
			return fmt.Errorf("put index: %w", err)
		}
		resp.Body.Close()
		return nil
	})
}
