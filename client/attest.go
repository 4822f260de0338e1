package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/provenance"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Provenance asks for a SLSA provenance attestation (--provenance).
type Provenance struct {
	Mode      string // "min" or "max"
	BuilderID string // runDetails.builder.id ("": provenance.BuilderID)
}

// ParseProvenance reads --provenance as buildx does: true (mode=min),
// false (none: nil), min, max, or mode=min|max[,builder-id=URI][,version=v1].
func ParseProvenance(s string) (*Provenance, error) {
	switch strings.ToLower(s) {
	case "true", "1":
		return &Provenance{Mode: "min"}, nil
	case "false", "0", "":
		return nil, nil
	case "min", "max":
		return &Provenance{Mode: s}, nil
	}
	p := &Provenance{Mode: "min"}
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "mode":
			if v != "min" && v != "max" {
				return nil, fmt.Errorf("%w: --provenance %q: mode must be min or max", ErrUsage, s)
			}
			p.Mode = v
		case "builder-id":
			p.BuilderID = v
		case "version":
			if v != "v1" {
				return nil, fmt.Errorf("%w: --provenance %q: only SLSA version v1 is written", ErrUsage, s)
			}
		case "disabled":
			if v == "true" {
				return nil, nil
			}
		default:
			return nil, fmt.Errorf("%w: --provenance %q: unknown key %q", ErrUsage, s, k)
		}
	}
	return p, nil
}

// Annotation is one --annotation: where it goes ("manifest", "index" or
// "manifest-descriptor": the index's entry for the image) and what.
type Annotation struct {
	Kind, Key, Value string
}

// ParseAnnotation reads --annotation as buildx does: KEY=VALUE (on the
// manifest) or TYPE[,TYPE]:KEY=VALUE with TYPE manifest, index or
// manifest-descriptor.
func ParseAnnotation(s string) ([]Annotation, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return nil, fmt.Errorf("%w: malformed --annotation %q: want [TYPE:]KEY=VALUE", ErrUsage, s)
	}
	kinds := []string{"manifest"}
	if types, key, ok := strings.Cut(k, ":"); ok && isAnnotationTypes(types) {
		kinds, k = strings.Split(types, ","), key
		for _, t := range kinds {
			if t != "manifest" && t != "index" && t != "manifest-descriptor" {
				return nil, fmt.Errorf("%w: --annotation %q: type %s is not supported (manifest, index, manifest-descriptor)", ErrUsage, s, t)
			}
		}
	}
	if k == "" {
		return nil, fmt.Errorf("%w: malformed --annotation %q: empty key", ErrUsage, s)
	}
	out := make([]Annotation, 0, len(kinds))
	for _, t := range kinds {
		out = append(out, Annotation{Kind: t, Key: k, Value: v})
	}
	return out, nil
}

// isAnnotationTypes tells a "TYPE[,TYPE]" prefix from a key holding ":".
func isAnnotationTypes(s string) bool {
	for _, t := range strings.Split(s, ",") {
		base, _, _ := strings.Cut(t, "[")
		switch base {
		case "manifest", "index", "manifest-descriptor", "index-descriptor":
		default:
			return false
		}
	}
	return true
}

func annotations(as []Annotation, kind string) map[string]string {
	var out map[string]string
	for _, a := range as {
		if a.Kind == kind {
			if out == nil {
				out = map[string]string{}
			}
			out[a.Key] = a.Value
		}
	}
	return out
}

// attach applies --annotation and --provenance to the built image: manifest
// annotations rewrite the manifest (a new digest, the same image ID); a
// provenance statement goes, in BuildKit's layout, into an attestation
// manifest that a new image index lists next to the image (out.Index).
// Without provenance the image stays a single manifest.
func (c *Client) attach(ctx context.Context, opts BuildOptions, out *BuildResult, started time.Time) error {
	if len(out.Platforms) > 0 {
		// A multi-platform index: attestations per platform are not made
		// yet (BuildKit adds one attestation manifest per platform).
		if opts.Provenance != nil || len(opts.Annotations) > 0 {
			warn(opts.Reporter, "provenance and annotations are not attached to multi-platform images yet: %s is pushed without them", out.Manifest.Digest)
		}
		return nil
	}
	if ma := annotations(opts.Annotations, "manifest"); ma != nil {
		var m ocispec.Manifest
		if err := c.images.GetJSON(ctx, out.Manifest.Digest, &m); err != nil {
			return fmt.Errorf("annotate manifest: %w", err)
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		maps.Copy(m.Annotations, ma)
		desc, err := c.images.PutJSON(ctx, ocispec.MediaTypeImageManifest, m)
		if err != nil {
			return fmt.Errorf("annotate manifest: %w", err)
		}
		desc.Platform = out.Manifest.Platform
		out.Manifest, out.ManifestDigest = desc, desc.Digest
	}
	ia, da := annotations(opts.Annotations, "index"), annotations(opts.Annotations, "manifest-descriptor")
	if opts.Provenance == nil {
		if ia != nil || da != nil {
			return fmt.Errorf("%w: index and manifest-descriptor annotations need an image index: a single-platform image without --provenance is a manifest", ErrUsage)
		}
		return nil
	}
	stmt, err := c.statement(ctx, opts, out, started)
	if err != nil {
		return err
	}
	att, err := c.attestationManifest(ctx, stmt, out.Manifest.Digest)
	if err != nil {
		return err
	}
	img := ocispec.Descriptor{MediaType: out.Manifest.MediaType, Digest: out.Manifest.Digest, Size: out.Manifest.Size,
		Platform: out.Manifest.Platform, Annotations: da}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{img, att}, Annotations: ia}
	idx.SchemaVersion = 2
	desc, err := c.images.PutJSON(ctx, ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	out.Index = &desc
	return nil
}

// statement is the provenance of the build, as JSON.
func (c *Client) statement(ctx context.Context, opts BuildOptions, out *BuildResult, started time.Time) ([]byte, error) {
	b := provenance.Build{
		Mode:           provenance.Mode(opts.Provenance.Mode),
		DockerfileName: opts.DockerfileName,
		Dockerfile:     opts.Dockerfile,
		Target:         opts.Target,
		BuildArgs:      opts.BuildArgs,
		Labels:         opts.Labels,
		BuilderID:      opts.Provenance.BuilderID,
		BuilderVersion: provenance.Version(),
		VCS:            provenance.GitVCS(ctx, opts.ContextDir),
		Started:        started,
		Finished:       time.Now(),
		InvocationID:   invocationID(),
	}
	if p := out.Manifest.Platform; p != nil {
		b.Platform = *p
	}
	for id := range opts.Secrets {
		b.Secrets = append(b.Secrets, id)
	}
	for _, s := range opts.SSH {
		b.SSH = append(b.SSH, s.ID)
	}
	for _, ref := range slices.Sorted(maps.Keys(out.Bases)) {
		im := out.Bases[ref]
		name, err := oci.NormalizeRef(ref)
		if err != nil {
			name = ref
		}
		p := &ocispec.Platform{OS: im.Config.OS, Architecture: im.Config.Architecture, Variant: im.Config.Variant}
		b.Bases = append(b.Bases, provenance.Base{Ref: name, Platform: p, Digest: im.Descriptor.Digest})
	}
	sub := map[string]string{out.ManifestDigest.Algorithm().String(): out.ManifestDigest.Encoded()}
	names := slices.Clone(opts.Tags)
	for _, o := range opts.Outputs {
		if o.Type == "image" {
			names = append(names, o.Dest) // the exporter's names, as BuildKit's subjects
		}
	}
	for _, t := range names {
		if name, err := oci.NormalizeRef(t); err == nil {
			b.Subjects = append(b.Subjects, provenance.Subject{Name: provenance.PURL(name, out.Manifest.Platform), Digest: sub})
		}
	}
	if len(b.Subjects) == 0 {
		b.Subjects = []provenance.Subject{{Name: "_", Digest: sub}} // in-toto: no meaningful name
	}
	return provenance.Statement(b)
}

func invocationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// unknownPlatform is the platform of an attestation manifest.
var unknownPlatform = ocispec.Platform{OS: "unknown", Architecture: "unknown"}

// attestationManifest stores the statement as BuildKit does: a layer of
// the in-toto media type in a manifest whose config is an image config of
// platform unknown/unknown; it returns the index entry, which points at
// the image manifest subject.
func (c *Client) attestationManifest(ctx context.Context, stmt []byte, subject digest.Digest) (ocispec.Descriptor, error) {
	sd := digest.FromBytes(stmt)
	if err := c.images.Put(ctx, sd, stmt); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write provenance: %w", err)
	}
	layer := ocispec.Descriptor{MediaType: provenance.MediaType, Digest: sd, Size: int64(len(stmt)),
		Annotations: map[string]string{provenance.AnnotationPredicateType: provenance.PredicateType}}
	cfg := ocispec.Image{Platform: unknownPlatform, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{sd}}}
	cd, err := c.images.PutJSON(ctx, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write attestation config: %w", err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	md, err := c.images.PutJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write attestation manifest: %w", err)
	}
	p := unknownPlatform
	md.Platform = &p
	md.Annotations = map[string]string{
		provenance.AnnotationReferenceType:   provenance.ReferenceTypeAttestation,
		provenance.AnnotationReferenceDigest: subject.String(),
	}
	return md, nil
}

// isAttestation tells an attestation manifest's index entry.
func isAttestation(d ocispec.Descriptor) bool {
	return d.Annotations[provenance.AnnotationReferenceType] == provenance.ReferenceTypeAttestation
}

// readTop reads what publishing top sends: the image, and, when top is an
// index of one image and its attestation manifests (one built here with
// --provenance) whose manifests the store holds, that index as an export
// (Descriptor the index, Manifest the image's, Extra the blobs under it;
// the image's layers may be in a registry only, as for any push). Any
// other index (pulled or loaded, of several platforms) is published as the
// image alone (index nil), as a name pointing at one always was.
func (c *Client) readTop(ctx context.Context, top ocispec.Descriptor) (img, index *oci.Image, err error) {
	if top.MediaType != ocispec.MediaTypeImageIndex && top.MediaType != mediaTypeDockerList {
		img = &oci.Image{Descriptor: top}
		if err := c.images.GetJSON(ctx, top.Digest, &img.Manifest); err != nil {
			return nil, nil, fmt.Errorf("read manifest: %w", err)
		}
		return img, nil, nil
	}
	var idx ocispec.Index
	if err := c.images.GetJSON(ctx, top.Digest, &idx); err != nil {
		return nil, nil, fmt.Errorf("read index: %w", err)
	}
	index = &oci.Image{Descriptor: top}
	var images []*oci.Image
	for _, m := range idx.Manifests {
		var mf ocispec.Manifest
		if !c.images.Has(ctx, m.Digest) || c.images.GetJSON(ctx, m.Digest, &mf) != nil {
			index = nil
			break
		}
		if !isAttestation(m) {
			images = append(images, &oci.Image{Descriptor: m, Manifest: mf})
			index.Extra = append(index.Extra, m) // its config and layers: Manifest
			continue
		}
		index.Extra = append(append(index.Extra, m, mf.Config), mf.Layers...)
	}
	if index != nil && len(images) == 1 && len(idx.Manifests) > 1 {
		img = images[0]
		index.Manifest = img.Manifest
		return img, index, nil
	}
	img, err = c.images.Resolve(ctx, top.Digest.String())
	return img, nil, err
}

// mediaTypeDockerList is docker's image index.
const mediaTypeDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

// Provenance returns the provenance statement attached to an image of the
// store (name, digest or ID), as stored.
func (c *Client) Provenance(ctx context.Context, ref string) ([]byte, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	im, err := c.images.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	errNone := fmt.Errorf("%s has no provenance attestation (build it with --provenance, or push it)", ref)
	if im.Index == nil {
		return nil, errNone
	}
	var idx ocispec.Index
	if err := c.images.GetJSON(ctx, im.Index.Digest, &idx); err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	for _, m := range idx.Manifests {
		if !isAttestation(m) || m.Annotations[provenance.AnnotationReferenceDigest] != im.Descriptor.Digest.String() {
			continue
		}
		var mf ocispec.Manifest
		if err := c.images.GetJSON(ctx, m.Digest, &mf); err != nil {
			return nil, fmt.Errorf("read attestation manifest: %w", err)
		}
		for _, l := range mf.Layers {
			if l.Annotations[provenance.AnnotationPredicateType] != provenance.PredicateType {
				continue
			}
			var raw json.RawMessage
			if err := c.images.GetJSON(ctx, l.Digest, &raw); err != nil {
				return nil, fmt.Errorf("read provenance: %w", err)
			}
			return raw, nil
		}
	}
	return nil, errNone
}
