package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Commit makes a new image of img plus the changes in upper, the upper dir
// of an overlay over img's snapshots (lowers, top first), as docker commit
// does: one more layer (none when nothing changed), the config of img with
// that layer and a history entry created now by createdBy. It returns the
// manifest, not tagged. The caller holds the store lock.
func Commit(ctx context.Context, st Stores, img *oci.Image, upper string, lowers []string, createdBy string) (ocispec.Descriptor, error) {
	var cfg dockerspec.DockerOCIImage
	if err := st.Images.GetJSON(ctx, img.Manifest.Config.Digest, &cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("read config of %s: %w", img.Descriptor.Digest, err)
	}
	below := viewOf(lowers)
	ents, err := layer.Changes(upper, belowIn(below), changeOptions(below))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("diff container: %w", err)
	}
	bd := &build{st: st, clock: newClock(nil)}
	var p *produced
	if len(ents) > 0 {
		if p, err = bd.writeLayer(ctx, ents); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("write layer: %w", err)
		}
	}
	now := time.Now().UTC()
	layers := append([]ocispec.Descriptor{}, img.Manifest.Layers...)
	h := ocispec.History{Created: &now, CreatedBy: createdBy, EmptyLayer: p == nil}
	if p != nil {
		layers = append(layers, ocispec.Descriptor{MediaType: p.packed.MediaType, Digest: p.packed.Digest, Size: p.packed.Size})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, p.packed.DiffID)
	}
	cfg.History = append(cfg.History, h)
	cfg.Created = &now
	data, err := oci.ConfigJSON(cfg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write image config: %w", err)
	}
	cfgDesc, err := st.Images.PutJSON(ctx, ocispec.MediaTypeImageConfig, json.RawMessage(data))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write image config: %w", err)
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfgDesc, Layers: layers}
	desc, err := st.Images.PutJSON(ctx, ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write manifest: %w", err)
	}
	desc.Platform = &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	return desc, nil
}
