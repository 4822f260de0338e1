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

// PushIndex uploads the image index desc of the store to ref: first every
// manifest it lists, each with its blobs and by digest (as Push does), then
// the index itself, byte for byte. The store must hold every manifest (an
// index built here, with its attestations; not a pulled index of which
// one platform is here).
func PushIndex(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, ref string, opts Options) error {
	if err := pushIndex(ctx, store, desc, ref, opts); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func pushIndex(ctx context.Context, store *oci.Store, desc ocispec.Descriptor, ref string, opts Options) error {
	r, err := parseRef(ref, opts)
	if err != nil {
		return err
	}
	if d, ok := r.(name.Digest); ok && digest.Digest(d.DigestStr()) != desc.Digest {
		return fmt.Errorf("index is %s, not %s", desc.Digest, d.DigestStr())
	}
	raw, err := readStoreBlob(ctx, store, desc.Digest)
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	mt := sniffMediaType(raw, desc.MediaType)
	if !isIndexType(mt) {
		return fmt.Errorf("%s is a %s, not an image index", desc.Digest, mt)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("decode index %s: %w", desc.Digest, err)
	}
	repo := r.Context()
	each := opts // progress names ref, not the digest each manifest goes to
	if opts.Progress != nil {
		each.Progress = func(e BlobEvent) {
			e.Ref = ref
			opts.Progress(e)
		}
	}
	for _, m := range idx.Manifests {
		if err := checkDigest(m.Digest); err != nil {
			return err
		}
		if !isManifestType(m.MediaType) {
			return fmt.Errorf("index %s lists a %s: only image manifests are pushed", desc.Digest, m.MediaType)
		}
		img := &oci.Image{Descriptor: m}
		if err := push(ctx, store, img, repo.Name()+"@"+m.Digest.String(), each); err != nil {
			return err
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
