package oci

import (
	"encoding/json"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opencontainers/go-digest"
)

// ConfigJSON is an image config as BuildKit's exporter writes it
// (patchImageConfig in exporter/containerimage/writer.go): the config
// marshalled, then its top-level keys re-marshalled as a map (so sorted),
// with "rootfs" and "history" always present, as null when empty (an
// image with no layers has "diff_ids": null, one with no history
// "history": null).
func ConfigJSON(img dockerspec.DockerOCIImage) ([]byte, error) {
	data, err := json.Marshal(img)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var diffIDs []digest.Digest
	if len(img.RootFS.DiffIDs) > 0 {
		diffIDs = img.RootFS.DiffIDs
	}
	if m["rootfs"], err = json.Marshal(ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}); err != nil {
		return nil, err
	}
	var history []ocispec.History
	if len(img.History) > 0 {
		history = img.History
	}
	if m["history"], err = json.Marshal(history); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
