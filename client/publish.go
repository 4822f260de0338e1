package client

import (
	"context"
	"fmt"
	"os"

	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Output is one export of a built image.
type Output struct {
	Type string // "oci", "docker", "oci-layout", "local", "image"
	Dest string // path; for "image", the name to tag (and push)
	Push bool   // "image" only: push Dest to its registry
}

// PublishOptions say what happens to an image once it is built.
type PublishOptions struct {
	Outputs  []Output
	Push     bool // push to every tag of the image
	Registry RegistryOptions
}

// publish runs the outputs, then the push to refs, of the image man
// (caller holds the shared lock).
func (c *Client) publish(ctx context.Context, man ocispec.Descriptor, refs []string, opts PublishOptions) error {
	if man.MediaType == ocispec.MediaTypeImageIndex {
		return c.publishIndex(ctx, man, refs, opts)
	}
	img := &oci.Image{Descriptor: man}
	if err := c.images.GetJSON(ctx, man.Digest, &img.Manifest); err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if len(refs) > 0 {
		img.Name = refs[0]
	}
	for _, o := range opts.Outputs {
		if err := c.export(ctx, img, o, opts.Registry); err != nil {
			return fmt.Errorf("export %s to %s: %w", o.Type, o.Dest, err)
		}
	}
	if !opts.Push {
		return nil
	}
	for _, ref := range refs {
		if err := registry.Push(ctx, c.images, img, ref, opts.Registry); err != nil {
			return err
		}
	}
	return nil
}

// export runs one output for img.
func (c *Client) export(ctx context.Context, img *oci.Image, o Output, ro RegistryOptions) error {
	if o.Dest == "" {
		return fmt.Errorf("%w: output type=%s needs dest=", ErrUsage, o.Type)
	}
	switch o.Type {
	case "oci":
		return c.images.Export(ctx, o.Dest, oci.FormatOCI, []*oci.Image{img})
	case "docker":
		return c.images.Export(ctx, o.Dest, oci.FormatDocker, []*oci.Image{img})
	case "oci-layout":
		return c.images.Export(ctx, o.Dest, oci.FormatOCILayout, []*oci.Image{img})
	case "local":
		return c.exportRootfs(ctx, img, o.Dest)
	case "image":
		name, err := oci.NormalizeRef(o.Dest)
		if err != nil {
			return fmt.Errorf("%w: output name %q: %v", ErrUsage, o.Dest, err)
		}
		if err := c.images.Tag(ctx, name, img.Descriptor); err != nil {
			return err
		}
		if !o.Push {
			return nil
		}
		return registry.Push(ctx, c.images, img, o.Dest, ro)
	}
	return fmt.Errorf("%w: unknown output type %q", ErrUsage, o.Type)
}

// exportRootfs writes the flattened rootfs of img into dir (created when
// missing), applying the layers in order with whiteouts removing files.
func (c *Client) exportRootfs(ctx context.Context, img *oci.Image, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, l := range img.Manifest.Layers {
		if err := func() error {
			r, err := c.images.OpenBlob(ctx, l.Digest)
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
