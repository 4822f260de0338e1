package oci

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportLayoutImage brings one image of the OCI layout dir into the store,
// untagged (--build-context NAME=oci-layout://DIR[:TAG|@DIGEST]): the
// manifest or index of index.json whose digest is dgst, else the one named
// tag (org.opencontainers.image.ref.name: the tag itself, or NAME:tag as
// builder and skopeo write it), else the only one. Its blobs
// are verified as Load verifies them; nothing names them, so a prune drops
// them once no image or record needs them. It returns the digest to
// Resolve.
func (s *Store) ImportLayoutImage(ctx context.Context, dir, tag string, dgst digest.Digest) (digest.Digest, error) {
	layout, err := readSmallFile(filepath.Join(dir, layoutFile))
	if err != nil {
		return "", fmt.Errorf("oci-layout %s: not an OCI layout: %w", dir, err)
	}
	index, err := readSmallFile(filepath.Join(dir, indexFile))
	if err != nil {
		return "", fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	idx, err := parseLayout(layout, index)
	if err != nil {
		return "", fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	var pick *ocispec.Descriptor
	for i, m := range idx.Manifests {
		switch {
		case dgst != "" && m.Digest == dgst,
			dgst == "" && tag != "" && pick == nil && (refName(m) == tag || strings.HasSuffix(refName(m), ":"+tag)):
			pick = &idx.Manifests[i]
		}
	}
	if pick == nil && dgst == "" && tag == "" && len(idx.Manifests) == 1 {
		pick = &idx.Manifests[0]
	}
	if pick == nil {
		want := tag
		if dgst != "" {
			want = dgst.String()
		}
		if want == "" {
			return "", fmt.Errorf("oci-layout %s: %d images: name one with :TAG or @DIGEST", dir, len(idx.Manifests))
		}
		return "", fmt.Errorf("oci-layout %s: no image %s: %w", dir, want, ErrNotFound)
	}
	if err := s.walk(ctx, *pick, s.layoutFetch(ctx, dir)); err != nil {
		return "", fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	return pick.Digest, nil
}
