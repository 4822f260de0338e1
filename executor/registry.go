package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pullCache remembers the images pulled during one build, so each base is
// resolved against its registry at most once.
type pullCache struct {
	mu     sync.Mutex
	images map[string]*oci.Image
}

// targetPlatform is --platform, or zero (the host's, and whatever the store has).
func (bd *build) targetPlatform() ocispec.Platform { return bd.opts.Platform }

// stagePlatform is the stage's FROM --platform, else the build's.
func (bd *build) stagePlatform(s *stage) (ocispec.Platform, error) {
	if s.def.Platform == "" {
		return bd.targetPlatform(), nil
	}
	v, _, err := bd.lex().ProcessWord(s.def.Platform, bd.global.Getter())
	if err != nil {
		return ocispec.Platform{}, err
	}
	p, err := registry.ParsePlatform(v)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("FROM --platform: %w", err)
	}
	return p, nil
}

// baseImage finds a base image (see findBase) and remembers it for Result.Bases.
func (bd *build) baseImage(ctx context.Context, ref string, plat ocispec.Platform) (*oci.Image, error) {
	im, err := bd.findBase(ctx, ref, plat)
	if err != nil {
		return nil, err
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if bd.bases == nil {
		bd.bases = map[string]*oci.Image{}
	}
	bd.bases[ref] = im
	return im, nil
}

// baseImages returns a copy of the images baseImage found.
func (bd *build) baseImages() map[string]*oci.Image {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	return maps.Clone(bd.bases)
}

// findBase finds a base image: in the store, unless --pull was given or
// the stored image is for another platform; else from its registry.
func (bd *build) findBase(ctx context.Context, ref string, plat ocispec.Platform) (*oci.Image, error) {
	var stored *oci.Image
	var missing error // the stored index lacks plat
	if !bd.opts.Pull {
		im, err := bd.st.Images.Resolve(ctx, ref)
		if plat.Architecture != "" {
			// A multi-platform index: the entry for plat, else an error
			// naming the platforms it has.
			pim, perr := bd.st.Images.ResolvePlatform(ctx, ref, registry.Picker(plat))
			switch {
			case perr == nil:
				im, err = pim, nil
			case err == nil:
				missing, err = perr, oci.ErrNotFound
			}
		}
		switch {
		case err == nil && registry.Fits(im.Config, plat):
			if err := checkRefDigest(ctx, bd.st.Images, ref, im); err != nil {
				return nil, err
			}
			return im, nil
		case err == nil:
			stored = im
		case !errors.Is(err, oci.ErrNotFound):
			return nil, err
		}
	}
	if _, err := oci.NormalizeRef(ref); err != nil || strings.HasPrefix(ref, "sha256:") {
		return nil, fmt.Errorf("base image %q is not in the store (add it with `builder load -i FILE`): %w", ref, oci.ErrNotFound)
	}
	key := ref + "|" + registry.FormatPlatform(plat)
	bd.sh.pulls.mu.Lock()
	defer bd.sh.pulls.mu.Unlock()
	if im := bd.sh.pulls.images[key]; im != nil {
		return im, nil
	}
	ro := bd.opts.Registry
	ro.Platform = plat
	im, err := registry.Pull(ctx, bd.st.Images, ref, ro)
	if err != nil {
		if missing != nil {
			return nil, fmt.Errorf("base image %s: %v, and pulling it failed: %w", ref, missing, err)
		}
		if stored != nil {
			return nil, fmt.Errorf("the stored %s is for %s, not %s: %w", ref, registry.ImagePlatform(stored.Config), registry.FormatPlatform(plat), err)
		}
		if !bd.opts.Pull {
			return nil, fmt.Errorf("base image %q is not in the store and pulling it failed (or add it with `builder load -i FILE`): %w", ref, err)
		}
		return nil, err
	}
	if bd.sh.pulls.images == nil {
		bd.sh.pulls.images = map[string]*oci.Image{}
	}
	bd.sh.pulls.images[key] = im
	return im, nil
}

// checkRefDigest checks name@digest against the resolved image: the digest
// is its manifest, or an index of the store that lists it.
func checkRefDigest(ctx context.Context, store *oci.Store, ref string, im *oci.Image) error {
	_, dgst, ok := strings.Cut(ref, "@")
	if !ok || digest.Digest(dgst) == im.Descriptor.Digest {
		return nil
	}
	var idx ocispec.Index
	if err := store.GetJSON(ctx, digest.Digest(dgst), &idx); err == nil {
		for _, m := range idx.Manifests {
			if m.Digest == im.Descriptor.Digest {
				return nil
			}
		}
	}
	return fmt.Errorf("image %s: digest mismatch: store has %s", ref, im.Descriptor.Digest)
}
