package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image of the store, as `builder images` lists it.
type Image struct {
	Name     string        // normalized name; "" when resolved by digest
	Manifest digest.Digest // manifest digest
	ID       digest.Digest // config digest (the image ID)
	Layers   int
	Size     int64 // compressed size of the layers
}

func imageInfo(im *oci.Image) *Image {
	out := &Image{Name: im.Name, Manifest: im.Descriptor.Digest, ID: im.Manifest.Config.Digest, Layers: len(im.Manifest.Layers)}
	for _, l := range im.Manifest.Layers {
		out.Size += l.Size
	}
	return out
}

// Images lists the tagged images of the store.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	imgs, err := c.images.Images(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(imgs))
	for i := range imgs {
		out = append(out, *imageInfo(&imgs[i]))
	}
	return out, nil
}

// Inspection is an image's manifest and config, as `builder inspect`
// prints them.
type Inspection struct {
	Name     string           `json:"name,omitempty"`
	Digest   string           `json:"digest"`
	ID       string           `json:"id"`
	Manifest ocispec.Manifest `json:"manifest"`
	Config   json.RawMessage  `json:"config"`
}

// Inspect reads the manifest and config of an image (name, digest or ID).
func (c *Client) Inspect(ctx context.Context, ref string) (*Inspection, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	im, err := c.images.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	var cfg json.RawMessage
	if err := c.images.GetJSON(ctx, im.Manifest.Config.Digest, &cfg); err != nil {
		return nil, err
	}
	return &Inspection{Name: im.Name, Digest: im.Descriptor.Digest.String(), ID: im.Manifest.Config.Digest.String(),
		Manifest: im.Manifest, Config: cfg}, nil
}

// Tag gives the image src (name, digest or ID) the name target. It holds
// the shared lock from resolving src to writing the tag, so a prune cannot
// remove an untagged src in between.
func (c *Client) Tag(ctx context.Context, src, target string) error {
	name, err := oci.NormalizeRef(target)
	if err != nil {
		return fmt.Errorf("%w: invalid tag %q: %v", ErrUsage, target, err)
	}
	unlock, err := c.shared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	im, err := c.images.Resolve(ctx, src)
	if err != nil {
		return err
	}
	if c.wholeIndex(ctx, im.Index) {
		return c.images.Tag(ctx, name, *im.Index) // every platform
	}
	return c.images.Tag(ctx, name, im.Descriptor)
}

// Untag removes names (blobs stay until prune), under the exclusive lock;
// it returns the normalized names removed.
func (c *Client) Untag(ctx context.Context, names ...string) ([]string, error) {
	norm := make([]string, 0, len(names))
	for _, n := range names {
		name, err := oci.NormalizeRef(n)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid image name %q: %v", ErrUsage, n, err)
		}
		norm = append(norm, name)
	}
	unlock, err := c.exclusive(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var done []string
	for _, name := range norm {
		if err := c.images.Untag(ctx, name); err != nil {
			return done, err
		}
		done = append(done, name)
	}
	return done, nil
}

// Archive formats of Save.
type Format = oci.Format

const (
	FormatOCI       = oci.FormatOCI       // OCI layout in a tar file
	FormatDocker    = oci.FormatDocker    // docker-archive tar (docker load)
	FormatOCILayout = oci.FormatOCILayout // OCI layout directory
)

// Save writes images (names, digests or IDs) to dest in format.
func (c *Client) Save(ctx context.Context, dest string, format Format, refs ...string) error {
	unlock, err := c.shared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	imgs := make([]*oci.Image, 0, len(refs))
	for _, r := range refs {
		im, err := c.images.Resolve(ctx, r)
		if err != nil {
			return err
		}
		if format != oci.FormatDocker && c.wholeIndex(ctx, im.Index) {
			im = &oci.Image{Name: im.Name, Descriptor: *im.Index} // every platform
		}
		imgs = append(imgs, im)
	}
	return c.images.Export(ctx, dest, format, imgs)
}

// Load imports an OCI tar, OCI layout dir or docker-archive tar and returns
// the names it tagged (digests for unnamed images). It holds the shared
// lock from the first blob to the last tag, so a concurrent prune can
// never remove the blobs of the image being loaded.
func (c *Client) Load(ctx context.Context, path string) ([]string, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return c.images.Load(ctx, path)
}
