package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
)

// CheckReproducible builds opts again with no cache in a temporary store
// and compares that image with first, the result of building opts in b.
//
// The temporary store lives under b's tmp dir (a killed check is cleaned up
// by the next Open) and starts with the base images first resolved, copied
// from b, so both builds have the same inputs: nothing is pulled again,
// whatever opts.Pull says. It is removed before CheckReproducible returns.
// The second build tags, exports and pushes nothing.
func (b *Builder) CheckReproducible(ctx context.Context, opts Options, first *Result) (*imagediff.Report, error) {
	// Shared, as a build: no prune or rmi may drop the first image or its
	// bases while the second build runs.
	unlock, err := b.Store.Lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir, err := b.Store.TempDir("check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b2, err := Open(ctx, dir, b.log)
	if err != nil {
		return nil, fmt.Errorf("open temporary store: %w", err)
	}
	defer b2.Close()
	refs := make([]string, 0, len(first.Bases))
	for ref := range first.Bases {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for i, ref := range refs {
		if err := copyImage(b.Store, b2.Store, ref, first.Bases[ref], i); err != nil {
			return nil, fmt.Errorf("copy base image %s: %w", ref, err)
		}
	}
	o := opts
	o.NoCache, o.NoCacheFilter, o.Pull, o.Push = true, nil, false, false
	o.Tags, o.Outputs = nil, nil
	second, err := b2.Build(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("build again: %w", err)
	}
	name := "first build"
	if len(first.Tags) > 0 {
		name = first.Tags[0]
	}
	return imagediff.Compare(ctx,
		imagediff.Image{Name: name, Manifest: first.Manifest, Blobs: b.Store},
		imagediff.Image{Name: "build without cache", Manifest: second.Manifest, Blobs: b2.Store},
		imagediff.Options{Steps: first.LayerSteps})
}

// copyImage copies im (manifest, config, layers) from src to dst so that
// dst.Resolve(ref) finds it: by name, or by digest (an index digest in ref
// is copied too, as a blob).
func copyImage(src, dst *oci.Store, ref string, im *oci.Image, n int) error {
	blobs := []digest.Digest{im.Descriptor.Digest, im.Manifest.Config.Digest}
	blobs = append(blobs, layerDigests(im.Manifest.Layers)...)
	if _, d, ok := strings.Cut(ref, "@"); ok {
		blobs = append(blobs, digest.Digest(d))
	}
	for _, d := range blobs {
		if err := copyBlob(src, dst, d); err != nil {
			return err
		}
	}
	name, err := oci.NormalizeRef(ref)
	if err != nil || strings.Contains(ref, "@") {
		// An image ID or a digest: any name lets Resolve scan it.
		name = "builder-check/base-" + strconv.Itoa(n)
	}
	return dst.Tag(name, im.Descriptor)
}

func copyBlob(src, dst *oci.Store, d digest.Digest) error {
	if _, err := dst.BlobSize(d); err == nil {
		return nil
	}
	r, err := src.OpenBlob(d)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := dst.Writer()
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("copy blob %s: %w", d, err)
	}
	if _, _, err := w.Commit(d); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
