package client

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/oci"
)

// Diff compares two images: manifest and config field by field, then each
// pair of layers path by path. A and b are each an image of the store
// (name, digest or ID) or a path to an OCI tar, an OCI layout dir or a
// docker-archive tar (an existing path wins; oci:PATH, oci-archive:PATH
// and docker-archive:PATH force a path). Archives are loaded into scratch
// stores under the store's tmp, removed by Close; the inputs are only read.
func (c *Client) Diff(ctx context.Context, a, b string) (*DiffReport, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var sides [2]imagediff.Image
	for i, arg := range []string{a, b} {
		if sides[i], err = c.diffSide(ctx, arg); err != nil {
			return nil, err
		}
	}
	return imagediff.Compare(ctx, sides[0], sides[1], imagediff.Options{})
}

// diffSide finds arg in the store, or loads the archive or layout dir it
// names into a scratch store.
func (c *Client) diffSide(ctx context.Context, arg string) (imagediff.Image, error) {
	path, forced := arg, false
	for _, p := range []string{"oci:", "oci-archive:", "docker-archive:"} {
		if rest, ok := strings.CutPrefix(arg, p); ok {
			path, forced = rest, true
			break
		}
	}
	if _, err := os.Stat(path); err != nil {
		if forced {
			return imagediff.Image{}, fmt.Errorf("read %s: %w", arg, err)
		}
		im, rerr := c.images.Resolve(ctx, arg)
		if rerr != nil {
			return imagediff.Image{}, fmt.Errorf("%s: no such file, dir or image in the store", arg)
		}
		return imagediff.Image{Name: arg, Manifest: im.Descriptor, Blobs: c.images}, nil
	}
	dir, err := c.images.TempDir("diff-")
	if err != nil {
		return imagediff.Image{}, err
	}
	scratch, err := oci.Open(ctx, dir)
	if err != nil {
		return imagediff.Image{}, err
	}
	names, err := scratch.Load(ctx, path)
	if err != nil {
		return imagediff.Image{}, fmt.Errorf("%w (diff reads OCI tars, OCI layout dirs and docker-archive tars)", err)
	}
	if len(names) != 1 {
		return imagediff.Image{}, fmt.Errorf("%s holds %d images (%s): load it with `builder load -i` and name one",
			path, len(names), strings.Join(names, ", "))
	}
	im, err := scratch.Resolve(ctx, names[0])
	if err != nil {
		return imagediff.Image{}, fmt.Errorf("%s: %w", path, err)
	}
	return imagediff.Image{Name: arg, Manifest: im.Descriptor, Blobs: scratch}, nil
}
