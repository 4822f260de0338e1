package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Output is one export of a built image.
type Output struct {
	Type string // "oci", "docker", "oci-layout", "local", "tar", "image"
	Dest string // path ("-": W); for "image", the name to tag (and push)
	Push bool   // "image" only: push Dest to its registry
	// W receives the archive when Dest is "-" (types oci, docker, tar):
	// the CLI's stdout, which it has checked is not a terminal.
	W io.Writer
}

// PublishOptions say what happens to an image once it is built.
type PublishOptions struct {
	Outputs  []Output
	Push     bool // push to every tag of the image
	Registry RegistryOptions
	Reporter Reporter // warnings (nil: none)
}

// publish runs the outputs, then the push to refs, of the image man
// (caller holds the shared lock).
// man is the image manifest, or an image index that holds it with its
// attestations (readTop).
func (c *Client) publish(ctx context.Context, man ocispec.Descriptor, refs []string, opts PublishOptions) error {
	img, index, err := c.readTop(ctx, man)
	if err != nil {
		return err
	}
	if index == nil && man.MediaType == ocispec.MediaTypeImageIndex {
		// A multi-platform image: whole, unless the store lacks some of
		// it or the output is a docker archive (one platform: img).
		docker := slices.ContainsFunc(opts.Outputs, func(o Output) bool { return o.Type == "docker" })
		if !docker && c.wholeIndex(ctx, &man) {
			return c.publishIndex(ctx, man, refs, opts)
		}
	}
	if len(refs) > 0 {
		img.Name = refs[0]
		if index != nil {
			index.Name = refs[0]
		}
	}
	for _, o := range opts.Outputs {
		if err := c.export(ctx, img, index, o, opts); err != nil {
			return fmt.Errorf("export %s to %s: %w", o.Type, o.Dest, err)
		}
	}
	if !opts.Push {
		return nil
	}
	for _, ref := range refs {
		if err := c.push(ctx, img, index, ref, opts.Registry); err != nil {
			return err
		}
	}
	return nil
}

// push pushes the index when there is one, else the image.
func (c *Client) push(ctx context.Context, img, index *oci.Image, ref string, ro RegistryOptions) error {
	if index != nil {
		return registry.PushIndex(ctx, c.images, index.Descriptor, ref, ro)
	}
	return registry.Push(ctx, c.images, img, ref, ro)
}

// export runs one output for img (or index, when not nil: OCI outputs
// hold it whole; a docker archive cannot hold attestations).
func (c *Client) export(ctx context.Context, img, index *oci.Image, o Output, po PublishOptions) error {
	if o.Dest == "" {
		return fmt.Errorf("%w: output type=%s needs dest=", ErrUsage, o.Type)
	}
	whole := img
	if index != nil {
		whole = index
	}
	if o.Dest == "-" {
		return c.exportStream(ctx, img, whole, o)
	}
	switch o.Type {
	case "tar":
		return atomicfile.Write(o.Dest, 0o644, func(w io.Writer) error {
			return c.exportRootfsTar(ctx, img, w)
		}, atomicfile.Options{})
	case "oci":
		return c.images.Export(ctx, o.Dest, oci.FormatOCI, []*oci.Image{whole})
	case "docker":
		if index != nil {
			warn(po.Reporter, "output type=docker cannot hold attestations: %s is written without its provenance", o.Dest)
		}
		return c.images.Export(ctx, o.Dest, oci.FormatDocker, []*oci.Image{img})
	case "oci-layout":
		return c.images.Export(ctx, o.Dest, oci.FormatOCILayout, []*oci.Image{whole})
	case "local":
		return c.exportRootfs(ctx, img, o.Dest)
	case "image":
		name, err := oci.NormalizeRef(o.Dest)
		if err != nil {
			return fmt.Errorf("%w: output name %q: %v", ErrUsage, o.Dest, err)
		}
		if err := c.images.Tag(ctx, name, whole.Descriptor); err != nil {
			return err
		}
		if !o.Push {
			return nil
		}
		return c.push(ctx, img, index, o.Dest, po.Registry)
	}
	return fmt.Errorf("%w: unknown output type %q", ErrUsage, o.Type)
}

// exportStream writes an archive output to o.W (an OCI archive holds
// whole, the image or its index).
func (c *Client) exportStream(ctx context.Context, img, whole *oci.Image, o Output) error {
	if o.W == nil {
		return fmt.Errorf("%w: output type=%s has no writer for dest=-", ErrUsage, o.Type)
	}
	switch o.Type {
	case "oci":
		return c.images.ExportTo(ctx, o.W, oci.FormatOCI, []*oci.Image{whole})
	case "docker":
		return c.images.ExportTo(ctx, o.W, oci.FormatDocker, []*oci.Image{img})
	case "tar":
		bw := bufio.NewWriterSize(o.W, 1<<20)
		if err := c.exportRootfsTar(ctx, img, bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	return fmt.Errorf("%w: output type=%s cannot write to dest=-", ErrUsage, o.Type)
}

// exportRootfsTar writes the flattened rootfs of img as one plain tar, as
// BuildKit's type=tar output: the layers are applied in a work dir of the
// store, which is then packed (in Pack order, times as the layers had
// them) and removed.
func (c *Client) exportRootfsTar(ctx context.Context, img *oci.Image, w io.Writer) error {
	dir, err := c.images.TempDir("rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := c.exportRootfs(ctx, img, dir); err != nil {
		return err
	}
	entries, err := layer.DirEntries(dir)
	if err != nil {
		return err
	}
	_, err = layer.Pack(ctx, w, entries, layer.PackOptions{Compression: layer.Uncompressed})
	return err
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
