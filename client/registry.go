package client

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/oci/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RegistryOptions configure registry access: platform, TLS, credentials
// and the per-blob progress callback (see oci/registry).
type RegistryOptions = registry.Options

// BlobEvent is one finished blob of a pull or push.
type BlobEvent = registry.BlobEvent

// Blob statuses of a BlobEvent.
const (
	BlobSkipped = registry.BlobSkipped
	BlobMounted = registry.BlobMounted
)

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (ocispec.Platform, error) { return registry.ParsePlatform(s) }

// Pull fetches ref from its registry into the store and tags it.
func (c *Client) Pull(ctx context.Context, ref string, opts RegistryOptions) (*Image, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	img, err := registry.Pull(ctx, c.images, ref, opts)
	if err != nil {
		return nil, err
	}
	return imageInfo(img), nil
}

// Push uploads the store image image to ref (image's own name when ref is
// empty).
func (c *Client) Push(ctx context.Context, image, ref string, opts RegistryOptions) error {
	unlock, err := c.shared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := c.images.Resolve(ctx, image)
	if err != nil {
		return fmt.Errorf("push %s: %w", image, err)
	}
	if ref == "" {
		ref = img.Name
		if ref == "" {
			return fmt.Errorf("%w: push %s: %v", ErrUsage, image, errNoName)
		}
	}
	if c.wholeIndex(ctx, img.Index) {
		return registry.PushIndex(ctx, c.images, *img.Index, ref, opts) // multi-platform
	}
	return registry.Push(ctx, c.images, img, ref, opts)
}

// Login checks the credentials against the registry and saves them in the
// docker config file.
func Login(ctx context.Context, reg, user, password string, opts RegistryOptions) error {
	return registry.Login(ctx, reg, user, password, opts)
}

// Logout removes the saved credentials of a registry (ErrNotFound when
// there were none).
func Logout(ctx context.Context, reg string, opts RegistryOptions) error {
	return registry.Logout(ctx, reg, opts)
}
