package client

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
)

// checkReproducible builds opts again with no cache in a temporary store
// and compares that image with first, the result of building opts (the
// caller holds the shared lock across both builds).
//
// The temporary store lives under the store's tmp dir (a killed check is
// cleaned up by the next Open) and starts with the base images first
// resolved, copied over, so both builds have the same inputs: nothing is
// pulled again, whatever opts.Pull says. It is removed before
// checkReproducible returns. The second build tags, exports and pushes
// nothing.
func (c *Client) checkReproducible(ctx context.Context, opts executor.Options, first *BuildResult) (*imagediff.Report, error) {
	dir, err := c.images.TempDir("check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c2, err := Open(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("open temporary store: %w", err)
	}
	defer c2.Close()
	refs := make([]string, 0, len(first.Bases))
	for ref := range first.Bases {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for i, ref := range refs {
		if err := copyImage(ctx, c.images, c2.images, ref, first.Bases[ref], i); err != nil {
			return nil, fmt.Errorf("copy base image %s: %w", ref, err)
		}
	}
	opts.NoCache, opts.NoCacheFilter, opts.Pull = true, nil, false
	second, err := executor.Build(ctx, c2.stores(), opts)
	if err != nil {
		return nil, fmt.Errorf("build again: %w", err)
	}
	name := "first build"
	if len(first.Tags) > 0 {
		name = first.Tags[0]
	}
	return imagediff.Compare(ctx,
		imagediff.Image{Name: name, Manifest: first.Manifest, Blobs: c.images},
		imagediff.Image{Name: "build without cache", Manifest: second.Manifest, Blobs: c2.images},
		imagediff.Options{Steps: first.LayerSteps})
}

// copyImage copies im (manifest, config, layers) from src to dst so that
// dst.Resolve(ctx, ref) finds it: by name, or by digest (an index digest in ref
// is copied too, as a blob).
func copyImage(ctx context.Context, src, dst *oci.Store, ref string, im *oci.Image, n int) error {
	blobs := []digest.Digest{im.Descriptor.Digest, im.Manifest.Config.Digest}
	blobs = append(blobs, layerDigests(im.Manifest.Layers)...)
	if _, d, ok := strings.Cut(ref, "@"); ok {
		blobs = append(blobs, digest.Digest(d))
	}
	for _, d := range blobs {
		if err := oci.CopyBlob(ctx, src, dst, d); err != nil {
			return err
		}
	}
	name, err := oci.NormalizeRef(ref)
	if err != nil || strings.Contains(ref, "@") {
		// An image ID or a digest: any name lets Resolve scan it.
		name = "builder-check/base-" + strconv.Itoa(n)
	}
	return dst.Tag(ctx, name, im.Descriptor)
}
