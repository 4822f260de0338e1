package executor

import (
	"context"
	"fmt"
	"os"

	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
)

// Publish runs the outputs and the push of opts for res, an image Build
// made with none (build --check-reproducible publishes only what passed).
func (b *Builder) Publish(ctx context.Context, opts Options, res *Result) error {
	img, err := b.Store.Resolve(res.ManifestDigest.String())
	if err != nil {
		return err
	}
	return (&build{b: b, opts: opts}).publish(ctx, img, res.Tags)
}

// publish runs the outputs, then the push, of the image tagged tags.
func (bd *build) publish(ctx context.Context, img *oci.Image, tags []string) error {
	if len(tags) > 0 {
		img.Name = tags[0]
	}
	if err := bd.export(ctx, img); err != nil {
		return err
	}
	if bd.opts.Push {
		return bd.push(ctx, img, tags)
	}
	return nil
}

// export runs every requested output for the built image.
func (bd *build) export(ctx context.Context, img *oci.Image) error {
	for _, o := range bd.opts.Outputs {
		if o.Dest == "" {
			return fmt.Errorf("%w: output type=%s needs dest=", ErrUsage, o.Type)
		}
		var err error
		switch o.Type {
		case "oci":
			err = bd.b.Store.Export(ctx, o.Dest, oci.FormatOCI, []*oci.Image{img})
		case "docker":
			err = bd.b.Store.Export(ctx, o.Dest, oci.FormatDocker, []*oci.Image{img})
		case "oci-layout":
			err = bd.b.Store.Export(ctx, o.Dest, oci.FormatOCILayout, []*oci.Image{img})
		case "local":
			err = bd.b.ExportRootfs(ctx, img, o.Dest)
		case "image":
			err = bd.exportImage(ctx, img, o)
		default:
			err = fmt.Errorf("%w: unknown output type %q", ErrUsage, o.Type)
		}
		if err != nil {
			return fmt.Errorf("export %s to %s: %w", o.Type, o.Dest, err)
		}
	}
	return nil
}

// ExportRootfs writes the flattened rootfs of img into dir (created when
// missing), applying the layers in order with whiteouts removing files.
func (b *Builder) ExportRootfs(ctx context.Context, img *oci.Image, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, l := range img.Manifest.Layers {
		if err := func() error {
			r, err := b.Store.OpenBlob(l.Digest)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = layer.Apply(ctx, dir, r, layer.ApplyOptions{Whiteouts: layer.WhiteoutDelete})
			return err
		}(); err != nil {
			return fmt.Errorf("apply layer %s: %w", l.Digest, err)
		}
	}
	return nil
}
