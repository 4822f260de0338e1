package remote

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Export writes recs and their layer blobs where spec says (registry or
// local; inline is Inline's). Every layer must be in images, except in a
// registry that already has it or can mount it from a repository a pull
// or an import of the same registry recorded; otherwise the error wraps
// oci.ErrNotFound and the caller fetches the layers and exports again.
func Export(ctx context.Context, spec Spec, images *oci.Store, recs []cache.Record, ro registry.Options) (Stats, error) {
	var st Stats
	var err error
	switch spec.Type {
	case "registry":
		st, err = exportRegistry(ctx, spec, images, recs, ro)
	case "local":
		st, err = exportLocal(ctx, spec, images, recs)
	default:
		err = fmt.Errorf("type=%s is not exported on its own", spec.Type)
	}
	if err != nil {
		return st, fmt.Errorf("export cache to %s: %w", spec, err)
	}
	return st, nil
}

// Missing lists the layers of recs that images does not hold.
func Missing(ctx context.Context, images *oci.Store, recs []cache.Record) []digest.Digest {
	var out []digest.Digest
	for _, r := range layers(recs) {
		if !images.Has(ctx, r.Layer) {
			out = append(out, r.Layer)
		}
	}
	return out
}

// manifest stores the cache's config and manifest in store.
func manifest(ctx context.Context, store *oci.Store, recs []cache.Record) (*oci.Image, error) {
	data, err := encodeConfig(recs)
	if err != nil {
		return nil, err
	}
	cfg := ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := store.Put(ctx, cfg.Digest, data); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{}}
	for _, r := range layers(recs) {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: r.MediaType, Digest: r.Layer, Size: r.LayerSize})
	}
	desc, err := store.PutJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return nil, err
	}
	return &oci.Image{Descriptor: desc, Manifest: m}, nil
}

func exportRegistry(ctx context.Context, spec Spec, images *oci.Store, recs []cache.Record, ro registry.Options) (Stats, error) {
	var st Stats
	img, err := manifest(ctx, images, recs)
	if err != nil {
		return st, err
	}
	report := ro.Progress
	ro.Progress = func(e registry.BlobEvent) {
		if e.Status == registry.BlobDone {
			st.Bytes += e.Size
			if e.Digest != img.Manifest.Config.Digest {
				st.Blobs++
			}
		}
		if report != nil {
			report(e)
		}
	}
	if err := registry.Push(ctx, images, img, spec.Ref, ro); err != nil {
		return st, err
	}
	return st, nil
}

func exportLocal(ctx context.Context, spec Spec, images *oci.Store, recs []cache.Record) (Stats, error) {
	var st Stats
	dst, err := oci.Open(ctx, spec.Dir)
	if err != nil {
		return st, err
	}
	defer dst.Close()
	// Blobs first, the manifest and index.json last: a reader (or a second
	// exporter) never sees a manifest whose blobs are not all there.
	for _, r := range layers(recs) {
		if dst.Has(ctx, r.Layer) {
			continue
		}
		if err := oci.CopyBlob(ctx, images, dst, r.Layer); err != nil {
			return st, err
		}
		st.Blobs++
		st.Bytes += r.LayerSize
	}
	img, err := manifest(ctx, dst, recs)
	if err != nil {
		return st, err
	}
	st.Bytes += img.Descriptor.Size + img.Manifest.Config.Size
	return st, dst.Tag(ctx, localName, img.Descriptor)
}

// Inline returns the manifest man of images with recs as its inline cache
// annotation (stored in images; man itself is left as it is).
func Inline(ctx context.Context, images *oci.Store, man ocispec.Descriptor, recs []cache.Record) (ocispec.Descriptor, error) {
	var m ocispec.Manifest
	if err := images.GetJSON(ctx, man.Digest, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("inline cache: %w", err)
	}
	data, err := encodeConfig(recs)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[InlineAnnotation] = string(data)
	desc, err := images.PutJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("inline cache: %w", err)
	}
	desc.Platform = man.Platform
	return desc, nil
}
