package executor

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Unpack makes sure every layer of img, an image of st.Images, has a
// snapshot in st.Snapshots (unpacking the missing ones, as a RUN on img
// would) and returns the chain ID of its rootfs: "" for an image without
// layers. builder run prepares its container's rootfs on it. The caller
// holds the store lock.
func Unpack(ctx context.Context, st Stores, img *oci.Image) (digest.Digest, error) {
	diffIDs := img.Config.RootFS.DiffIDs
	if len(diffIDs) != len(img.Manifest.Layers) {
		return "", fmt.Errorf("image %s: %d layers but %d diff_ids", img.Descriptor.Digest, len(img.Manifest.Layers), len(diffIDs))
	}
	s := &imageState{layers: append([]ocispec.Descriptor(nil), img.Manifest.Layers...)}
	s.img.RootFS = img.Config.RootFS
	for _, d := range diffIDs {
		s.chain = snapshot.ChainID(s.chain, d)
	}
	bd := &build{st: st}
	if _, err := bd.lowers(ctx, s); err != nil {
		return "", err
	}
	return s.chain, nil
}
