package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Multi-platform images. A build for more than one platform
// (BuildOptions.Platforms) runs the engine once for all of them
// (executor.BuildPlatforms) and writes one OCI image index listing a
// manifest per platform, in the order asked. The index is what is tagged,
// exported (type=oci and type=oci-layout hold it; type=local writes one
// rootfs per platform in <dest>/<os>_<arch>[_<variant>]; type=docker
// refuses: a docker archive holds one platform) and pushed (each manifest
// by digest, then the index at the tag).

// buildEngine runs the engine: one image, or, for several platforms, an
// index of one image per platform (whose Result describes the index and
// holds the cache records of every platform; plats has each image).
func (c *Client) buildEngine(ctx context.Context, eopts executor.Options, platforms []ocispec.Platform) (*executor.Result, []executor.Result, error) {
	if len(platforms) <= 1 {
		if len(platforms) == 1 {
			eopts.Platform = platforms[0]
		}
		res, err := executor.Build(ctx, c.stores(), eopts)
		return res, nil, err
	}
	results, err := executor.BuildPlatforms(ctx, c.stores(), eopts, platforms)
	if err != nil {
		return nil, nil, err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	res := &executor.Result{Bases: map[string]*oci.Image{}}
	plats := make([]executor.Result, 0, len(results))
	seen := map[digest.Digest]bool{}
	for _, r := range results {
		idx.Manifests = append(idx.Manifests, r.Manifest)
		for k, v := range r.Bases {
			res.Bases[k] = v
		}
		for _, rec := range r.Records {
			if !seen[rec.Key] {
				seen[rec.Key] = true
				res.Records = append(res.Records, rec)
			}
		}
		plats = append(plats, *r)
	}
	for _, r := range results {
		for _, rec := range r.StageRecords {
			if !seen[rec.Key] {
				seen[rec.Key] = true
				res.StageRecords = append(res.StageRecords, rec)
			}
		}
	}
	desc, err := c.images.PutJSON(ctx, ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return nil, nil, fmt.Errorf("write image index: %w", err)
	}
	res.Manifest, res.ManifestDigest, res.ImageID = desc, desc.Digest, desc.Digest
	return res, plats, nil
}

// checkPlatforms refuses what a multi-platform build cannot do.
func checkPlatforms(opts BuildOptions) error {
	if len(opts.Platforms) <= 1 {
		return nil
	}
	if opts.CheckReproducible {
		return fmt.Errorf("%w: --check-reproducible builds one platform at a time (drop the other --platform values)", ErrUsage)
	}
	for _, sp := range opts.CacheTo {
		if sp.Type == "inline" {
			return fmt.Errorf("%w: --cache-to type=inline is for one platform; use type=registry or type=local with several", ErrUsage)
		}
	}
	for _, o := range opts.Outputs {
		if o.Type == "docker" {
			return fmt.Errorf("%w: -o type=docker holds one platform (docker load has no image index): use -o type=oci (or oci-layout) for several platforms, or build one --platform", ErrUsage)
		}
	}
	return nil
}

// manifestsOf returns the image manifests of desc: itself, or the entries
// of an image index.
func (c *Client) manifestsOf(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if desc.MediaType != ocispec.MediaTypeImageIndex {
		return []ocispec.Descriptor{desc}, nil
	}
	var idx ocispec.Index
	if err := c.images.GetJSON(ctx, desc.Digest, &idx); err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	return idx.Manifests, nil
}

// layersOf lists the layers of every manifest of desc.
func (c *Client) layersOf(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	mans, err := c.manifestsOf(ctx, desc)
	if err != nil {
		return nil, err
	}
	var out []ocispec.Descriptor
	for _, d := range mans {
		var m ocispec.Manifest
		if err := c.images.GetJSON(ctx, d.Digest, &m); err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		out = append(out, m.Layers...)
	}
	return out, nil
}

// wholeIndex reports whether idx is an image index the store holds every
// manifest of (one that a build made, or loaded whole): Publish pushes
// and exports it as an index. A pulled index has only the platform that
// was pulled: its manifest is published alone.
func (c *Client) wholeIndex(ctx context.Context, idx *ocispec.Descriptor) bool {
	if idx == nil || idx.MediaType != ocispec.MediaTypeImageIndex {
		return false
	}
	mans, err := c.manifestsOf(ctx, *idx)
	if err != nil || len(mans) == 0 {
		return false
	}
	for _, m := range mans {
		if m.MediaType != ocispec.MediaTypeImageManifest || !c.images.Has(ctx, m.Digest) {
			return false
		}
	}
	return true
}

// publishIndex runs the outputs, then the push to refs, of the image
// index idx (caller holds the shared lock).
func (c *Client) publishIndex(ctx context.Context, idx ocispec.Descriptor, refs []string, opts PublishOptions) error {
	name := ""
	if len(refs) > 0 {
		name = refs[0]
	}
	img := &oci.Image{Name: name, Descriptor: idx}
	for _, o := range opts.Outputs {
		if err := c.exportIndex(ctx, img, o, opts.Registry); err != nil {
			return fmt.Errorf("export %s to %s: %w", o.Type, o.Dest, err)
		}
	}
	if !opts.Push {
		return nil
	}
	for _, ref := range refs {
		if err := registry.PushIndex(ctx, c.images, idx, ref, opts.Registry); err != nil {
			return err
		}
	}
	return nil
}

// exportIndex runs one output for an image index.
func (c *Client) exportIndex(ctx context.Context, img *oci.Image, o Output, ro RegistryOptions) error {
	if o.Dest == "" {
		return fmt.Errorf("%w: output type=%s needs dest=", ErrUsage, o.Type)
	}
	switch o.Type {
	case "oci":
		return c.images.Export(ctx, o.Dest, oci.FormatOCI, []*oci.Image{img})
	case "oci-layout":
		return c.images.Export(ctx, o.Dest, oci.FormatOCILayout, []*oci.Image{img})
	case "docker":
		return fmt.Errorf("%w: a docker archive holds one platform (use type=oci)", ErrUsage)
	case "local":
		mans, err := c.manifestsOf(ctx, img.Descriptor)
		if err != nil {
			return err
		}
		for _, d := range mans {
			child := &oci.Image{Descriptor: d}
			if err := c.images.GetJSON(ctx, d.Digest, &child.Manifest); err != nil {
				return fmt.Errorf("read manifest: %w", err)
			}
			if err := c.exportRootfs(ctx, child, filepath.Join(o.Dest, platformDir(d.Platform))); err != nil {
				return err
			}
		}
		return nil
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
		return registry.PushIndex(ctx, c.images, img.Descriptor, o.Dest, ro)
	}
	return fmt.Errorf("%w: unknown output type %q", ErrUsage, o.Type)
}

// platformDir is BuildKit's directory name for a platform in a local
// export: "linux_arm64", "linux_arm_v7".
func platformDir(p *ocispec.Platform) string {
	if p == nil {
		return "unknown"
	}
	return strings.ReplaceAll(registry.FormatPlatform(*p), "/", "_")
}

// Emulation is how this host runs binaries of one architecture (native,
// or under QEMU through binfmt_misc), for `builder platforms`.
type Emulation struct {
	Platform string // "linux/arm64"
	sandbox.Emulation
	Err error // why RUN cannot run them, with the command that fixes it
}

// Platforms lists the platforms builder knows and how this host runs
// their RUN steps.
func Platforms() []Emulation {
	var out []Emulation
	for _, a := range sandbox.Arches() {
		e, err := sandbox.CanRun(a)
		if errors.Is(err, errors.ErrUnsupported) {
			continue
		}
		p := registry.DefaultPlatform()
		if a != p.Architecture {
			p = ocispec.Platform{OS: "linux", Architecture: a}
			if a == "arm" {
				p.Variant = "v7"
			}
		}
		e.Arch = a
		out = append(out, Emulation{Platform: registry.FormatPlatform(p), Emulation: e, Err: err})
	}
	return out
}
