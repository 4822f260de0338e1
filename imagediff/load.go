package imagediff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxJSONSize bounds manifests and configs, as the store does.
const maxJSONSize = 16 << 20

// Media types of Docker schema 2 manifests and manifest lists.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// side is one image, loaded: its manifest and config as generic JSON (for
// the field diff) and what the layer comparison needs.
type side struct {
	label       string
	img         Image
	manifestDoc any
	configDoc   any
	manifest    ocispec.Manifest
	diffIDs     []digest.Digest // from rootfs.diff_ids; "" where missing or invalid
	createdBy   []string        // created_by of the history entries that made a layer
}

func checkImage(img Image) error {
	if img.Blobs == nil {
		return errors.New("no BlobReader")
	}
	if err := img.Manifest.Digest.Validate(); err != nil {
		return fmt.Errorf("check manifest digest %q: %w", img.Manifest.Digest, err)
	}
	return checkManifestType(img.Manifest.MediaType)
}

// checkManifestType accepts image manifests (and an unset media type).
func checkManifestType(mt string) error {
	switch mt {
	case "", ocispec.MediaTypeImageManifest, dockerManifest:
		return nil
	case ocispec.MediaTypeImageIndex, dockerManifestList:
		return fmt.Errorf("%s is an image index, not an image manifest (pick a platform first)", mt)
	default:
		return fmt.Errorf("unsupported manifest media type %q", mt)
	}
}

func loadSide(ctx context.Context, img Image, label string) (*side, error) {
	s := &side{label: label, img: img}
	raw, err := readJSONBlob(ctx, img.Blobs, img.Manifest.Digest)
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", label, err)
	}
	if s.manifestDoc, err = decodeJSON(raw); err != nil {
		return nil, fmt.Errorf("decode manifest of %s: %w", label, err)
	}
	if err := parseManifest(raw, s.manifestDoc, &s.manifest); err != nil {
		return nil, fmt.Errorf("decode manifest of %s: %w", label, err)
	}
	if raw, err = readJSONBlob(ctx, img.Blobs, s.manifest.Config.Digest); err != nil {
		return nil, fmt.Errorf("read config of %s: %w", label, err)
	}
	if s.configDoc, err = decodeJSON(raw); err != nil {
		return nil, fmt.Errorf("decode config of %s: %w", label, err)
	}
	s.diffIDs, s.createdBy = configLayers(s.configDoc)
	return s, nil
}

// parseManifest checks that doc is an image manifest and decodes it into m.
func parseManifest(raw []byte, doc any, m *ocispec.Manifest) error {
	obj, ok := doc.(map[string]any)
	if !ok {
		return errors.New("manifest is not a JSON object")
	}
	if _, ok := obj["manifests"]; ok {
		if _, ok := obj["config"]; !ok {
			return errors.New("this is an image index, not an image manifest (pick a platform first)")
		}
	}
	if err := json.Unmarshal(raw, m); err != nil {
		return err
	}
	if m.SchemaVersion != 2 {
		return fmt.Errorf("unsupported schemaVersion %d", m.SchemaVersion)
	}
	if err := checkManifestType(m.MediaType); err != nil {
		return err
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return fmt.Errorf("check config digest %q: %w", m.Config.Digest, err)
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return fmt.Errorf("check digest %q of layer %d: %w", l.Digest, i, err)
		}
	}
	return nil
}

// readJSONBlob reads a blob of at most maxJSONSize bytes and verifies its digest.
func readJSONBlob(ctx context.Context, br BlobReader, d digest.Digest) ([]byte, error) {
	rc, err := br.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(ctxio.Reader(ctx, rc), maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(b) > maxJSONSize {
		return nil, fmt.Errorf("read blob %s: larger than %d bytes", d, maxJSONSize)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("verify blob %s: content has digest %s", d, got)
	}
	return b, nil
}

// decodeJSON decodes exactly one JSON value, keeping numbers as written.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// configLayers extracts rootfs.diff_ids and the created_by of each history
// entry that made a layer, tolerating missing or ill-typed fields (those
// differences show in the field diff).
func configLayers(doc any) ([]digest.Digest, []string) {
	obj, _ := doc.(map[string]any)
	rootfs, _ := obj["rootfs"].(map[string]any)
	ids, _ := rootfs["diff_ids"].([]any)
	diffIDs := make([]digest.Digest, len(ids))
	for i, v := range ids {
		s, _ := v.(string)
		if d := digest.Digest(s); d.Validate() == nil {
			diffIDs[i] = d
		}
	}
	hist, _ := obj["history"].([]any)
	var createdBy []string
	for _, h := range hist {
		entry, _ := h.(map[string]any)
		if empty, _ := entry["empty_layer"].(bool); empty {
			continue
		}
		cb, _ := entry["created_by"].(string)
		createdBy = append(createdBy, cb)
	}
	return diffIDs, createdBy
}

// layerInfo describes layer i, or returns nil when the image has no layer i.
func (s *side) layerInfo(i int) *LayerInfo {
	if i >= len(s.manifest.Layers) {
		return nil
	}
	l := s.manifest.Layers[i]
	info := &LayerInfo{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size}
	if i < len(s.diffIDs) {
		info.DiffID = s.diffIDs[i]
	}
	if i < len(s.createdBy) {
		info.CreatedBy = s.createdBy[i]
	}
	return info
}
