package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	minIDPrefix                 = 12
	maxIndexDepth               = 4
)

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// Resolve finds an image by ref ("name", "name:tag", "name@sha256:...",
// "sha256:<hex>" or a unique hex prefix of at least 12 chars of the
// manifest digest or config digest).
//
// The image ID, as with docker, is the config digest. A name that is also
// a hex string is looked up as a name first. For name@digest the digest
// decides: it must be a manifest (or index) blob of the store. When the
// manifest is an image index, the linux/GOARCH entry is picked.
func (s *Store) Resolve(ctx context.Context, ref string) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("resolve image %s: %w", ref, err)
	}
	if hex, ok := strings.CutPrefix(ref, "sha256:"); ok {
		if len(hex) == 64 {
			return s.byDigest(ctx, ref)
		}
		return s.byPrefix(ctx, ref, hex)
	}
	if len(ref) == 64 && isLowerHex(ref) {
		return s.byDigest(ctx, "sha256:"+ref)
	}
	r, err := parseRef(ref)
	if err == nil {
		if r.digest != "" {
			return s.byDigest(ctx, r.digest)
		}
		img, err := s.byName(ctx, r.String())
		if !errors.Is(err, ErrNotFound) || len(ref) < minIDPrefix || !isLowerHex(ref) {
			return img, err
		}
	}
	if len(ref) >= minIDPrefix && isLowerHex(ref) {
		return s.byPrefix(ctx, ref, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve image: %w", err)
	}
	return nil, noSuchImage(ref)
}

func (s *Store) byName(ctx context.Context, name string) (*Image, error) {
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(idx.Manifests) - 1; i >= 0; i-- {
		if d := idx.Manifests[i]; refName(d) == name {
			return s.image(ctx, name, d)
		}
	}
	return nil, noSuchImage(name)
}

// byDigest finds the manifest (or index) d, or the image whose config is d.
func (s *Store) byDigest(ctx context.Context, ref string) (*Image, error) {
	d, err := parseDigest(ref)
	if err != nil {
		return nil, fmt.Errorf("resolve image: %w", err)
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range idx.Manifests {
		if m.Digest == d {
			return s.image(ctx, "", m)
		}
	}
	if size, err := s.BlobSize(ctx, d); err == nil && size <= maxJSONSize {
		if img, err := s.image(ctx, "", ocispec.Descriptor{Digest: d, Size: size}); err == nil {
			return img, nil
		}
	}
	var found *Image
	err = s.scan(ctx, idx, func(top ocispec.Descriptor, img *Image) bool {
		if img.Descriptor.Digest == d || img.Manifest.Config.Digest == d {
			found = img
			return false
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("resolve image %s: %w", ref, err)
	}
	if found == nil {
		return nil, noSuchImage(ref)
	}
	return found, nil
}

// byPrefix finds the one image whose manifest or config digest starts with hex.
func (s *Store) byPrefix(ctx context.Context, ref, hex string) (*Image, error) {
	if len(hex) < minIDPrefix || !isLowerHex(hex) {
		return nil, noSuchImage(ref)
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	var found *Image
	ambiguous := false
	err = s.scan(ctx, idx, func(top ocispec.Descriptor, img *Image) bool {
		if !strings.HasPrefix(top.Digest.Encoded(), hex) &&
			!strings.HasPrefix(img.Descriptor.Digest.Encoded(), hex) &&
			!strings.HasPrefix(img.Manifest.Config.Digest.Encoded(), hex) {
			return true
		}
		if found != nil && found.Descriptor.Digest != img.Descriptor.Digest {
			ambiguous = true
			return false
		}
		found = img
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("resolve image %s: %w", ref, err)
	}
	if ambiguous {
		return nil, fmt.Errorf("resolve image %s: ambiguous image ID prefix", ref)
	}
	if found == nil {
		return nil, noSuchImage(ref)
	}
	return found, nil
}

// scan resolves every distinct manifest of the index (skipping broken
// ones) until fn returns false. Images found this way have no Name. It
// fails only when ctx is done: a cancelled scan is not "nothing found".
func (s *Store) scan(ctx context.Context, idx ocispec.Index, fn func(top ocispec.Descriptor, img *Image) bool) error {
	seen := map[digest.Digest]bool{}
	for _, m := range idx.Manifests {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen[m.Digest] {
			continue
		}
		seen[m.Digest] = true
		img, err := s.image(ctx, "", m)
		if err != nil {
			continue
		}
		if !fn(m, img) {
			return nil
		}
	}
	return ctx.Err()
}

// image reads the manifest of desc (following an image index to the entry
// for this platform) and its config.
func (s *Store) image(ctx context.Context, name string, desc ocispec.Descriptor) (*Image, error) {
	return s.imageFor(ctx, name, desc, func(m []ocispec.Descriptor) (ocispec.Descriptor, error) {
		return pickPlatform(m, "linux", runtime.GOARCH)
	})
}

// ResolvePlatform is Resolve for a name or name@digest whose image index
// holds several platforms: pick chooses the entry of an index (an error
// saying which platforms there are when none fits). Other refs (image IDs)
// resolve as Resolve does.
func (s *Store) ResolvePlatform(ctx context.Context, ref string, pick func([]ocispec.Descriptor) (ocispec.Descriptor, error)) (*Image, error) {
	r, err := parseRef(ref)
	if err != nil || strings.HasPrefix(ref, "sha256:") {
		return s.Resolve(ctx, ref)
	}
	if r.digest != "" {
		d, err := parseDigest(r.digest)
		if err != nil {
			return nil, fmt.Errorf("resolve image: %w", err)
		}
		if size, err := s.BlobSize(ctx, d); err == nil && size <= maxJSONSize {
			return s.imageFor(ctx, "", ocispec.Descriptor{Digest: d, Size: size}, pick)
		}
		return s.Resolve(ctx, ref)
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(idx.Manifests) - 1; i >= 0; i-- {
		if d := idx.Manifests[i]; refName(d) == r.String() {
			return s.imageFor(ctx, r.String(), d, pick)
		}
	}
	return s.Resolve(ctx, ref)
}

// imageFor is image, with pick choosing the entry of an index.
func (s *Store) imageFor(ctx context.Context, name string, desc ocispec.Descriptor, pick func([]ocispec.Descriptor) (ocispec.Descriptor, error)) (*Image, error) {
	desc.Annotations = without(desc.Annotations, ocispec.AnnotationRefName)
	var top *ocispec.Descriptor
	for range maxIndexDepth {
		raw, err := s.readBlob(ctx, desc.Digest)
		if err != nil {
			return nil, err
		}
		mt := sniffMediaType(raw)
		if mt == "" {
			mt = desc.MediaType
		}
		desc.MediaType, desc.Size = mt, int64(len(raw))
		switch {
		case isIndexType(mt):
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return nil, fmt.Errorf("decode index %s: %w", desc.Digest, err)
			}
			child, err := pick(idx.Manifests)
			if err == nil {
				_, err = parseDigest(string(child.Digest))
			}
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			if top == nil {
				t := desc
				top = &t
			}
			desc = child
			desc.Annotations = without(desc.Annotations, ocispec.AnnotationRefName)
		case isManifestType(mt):
			img := &Image{Name: name, Descriptor: desc, Index: top}
			if err := json.Unmarshal(raw, &img.Manifest); err != nil {
				return nil, fmt.Errorf("decode manifest %s: %w", desc.Digest, err)
			}
			if err := s.GetJSON(ctx, img.Manifest.Config.Digest, &img.Config); err != nil {
				return nil, fmt.Errorf("read config of %s: %w", desc.Digest, err)
			}
			return img, nil
		default:
			return nil, fmt.Errorf("blob %s is not an image manifest (media type %q)", desc.Digest, mt)
		}
	}
	return nil, fmt.Errorf("index %s: nested more than %d levels", desc.Digest, maxIndexDepth)
}

// sniffMediaType returns the media type a manifest or index declares, or
// guesses it from its fields; "" when raw is neither.
func sniffMediaType(raw []byte) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
		Layers    json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil && probe.Layers != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// pickPlatform returns the first manifest of an index for os/arch, or the
// only image of an index that holds one image and its attestation
// manifests (platform unknown/unknown), whatever its platform.
func pickPlatform(manifests []ocispec.Descriptor, os, arch string) (ocispec.Descriptor, error) {
	var images []ocispec.Descriptor
	for _, m := range manifests {
		if p := m.Platform; p != nil && p.OS == os && p.Architecture == arch {
			if _, err := parseDigest(string(m.Digest)); err != nil {
				return ocispec.Descriptor{}, err
			}
			return m, nil
		}
		if p := m.Platform; p == nil || p.OS != "unknown" {
			images = append(images, m)
		}
	}
	if len(images) == 1 && len(images) < len(manifests) {
		if _, err := parseDigest(string(images[0].Digest)); err != nil {
			return ocispec.Descriptor{}, err
		}
		return images[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for %s/%s: %w", os, arch, ErrNotFound)
}
