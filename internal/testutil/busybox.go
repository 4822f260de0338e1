// Package testutil holds test helpers shared by the packages of builder: a
// root gate, a locally made busybox base image (there is no Docker Hub in
// tests), the builder binary, a throwaway local registry and a fault-
// injecting proxy in front of it, and hand-built (hostile) tar archives.
//
// It imports no package of the project but internal ones, so that the
// internal tests of layer, oci, ... can use it without an import cycle.
package testutil

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"time"

	"github.com/builderdev/builder/internal/atomicfile"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixedTime is the mtime of every tar entry and the creation time of the image.
func fixedTime() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// Defaults of BusyboxOptions.
const (
	defaultBusybox = "/bin/busybox"
	defaultName    = "busybox:latest"
	defaultTag     = "latest"
)

// annotationImageName is the index.json annotation containerd and our store
// read the full image name from.
const annotationImageName = "io.containerd.image.name"

// BusyboxOptions configures WriteBusyboxImage. The zero value makes
// busybox:latest from the host's /bin/busybox.
type BusyboxOptions struct {
	// Busybox is the static busybox binary to copy; default /bin/busybox.
	Busybox string
	// Name is the io.containerd.image.name annotation; default "busybox:latest".
	Name string
	// Tag is the org.opencontainers.image.ref.name annotation; default "latest".
	Tag string
	// Arch is the architecture of Busybox (GOARCH name); default the
	// host's. The applets are listed by running the host's /bin/busybox
	// when it is another (the same Debian package has the same applets).
	Arch string
	// Others are images of more platforms: with them the archive tags an
	// image index of every platform (Arch first) instead of one image.
	Others []BusyboxPlatform
}

// BusyboxPlatform is one more platform of a multi-platform busybox image.
type BusyboxPlatform struct {
	Arch    string // GOARCH name
	Busybox string // static busybox binary of that architecture
}

// WriteBusyboxImage writes an OCI image archive (a tar holding oci-layout,
// index.json and blobs/sha256/...) of a one-layer busybox image to path. The
// bytes depend only on the busybox binary and opts: the same input gives the
// same manifest digest. The file is replaced atomically.
func WriteBusyboxImage(path string, opts BusyboxOptions) error {
	if opts.Busybox == "" {
		opts.Busybox = defaultBusybox
	}
	if opts.Name == "" {
		opts.Name = defaultName
	}
	if opts.Tag == "" {
		opts.Tag = defaultTag
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	blobs := map[digest.Digest][]byte{}
	var descs []ocispec.Descriptor
	for _, p := range append([]BusyboxPlatform{{Arch: opts.Arch, Busybox: opts.Busybox}}, opts.Others...) {
		lister := p.Busybox
		if p.Arch != runtime.GOARCH {
			lister = defaultBusybox
		}
		applets, err := busyboxApplets(lister)
		if err != nil {
			return err
		}
		entries, err := busyboxEntries(p.Busybox, applets)
		if err != nil {
			return err
		}
		layer, err := buildLayer(entries)
		if err != nil {
			return err
		}
		desc, err := busyboxImage(layer, p.Arch, blobs)
		if err != nil {
			return err
		}
		descs = append(descs, desc)
	}
	top := descs[0]
	if len(descs) > 1 {
		idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
		data, err := json.Marshal(idx)
		if err != nil {
			return fmt.Errorf("marshal image index: %w", err)
		}
		top = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
		blobs[top.Digest] = data
	}
	top.Annotations = map[string]string{ocispec.AnnotationRefName: opts.Tag, annotationImageName: opts.Name}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{top},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("marshal image index: %w", err)
	}
	return writeArchive(path, blobs, indexJSON)
}

// busyboxImage adds the config, manifest and layer blobs of one image to
// blobs and returns the descriptor of its manifest.
func busyboxImage(layer builtLayer, arch string, blobs map[digest.Digest][]byte) (ocispec.Descriptor, error) {
	created := fixedTime()
	config := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: arch, OS: "linux"},
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "testutil.WriteBusyboxImage: busybox-static rootfs",
		}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("marshal image config: %w", err)
	}
	configDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(configJSON),
		Size:      int64(len(configJSON)),
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest:    layer.digest,
			Size:      int64(len(layer.blob)),
		}},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("marshal image manifest: %w", err)
	}
	blobs[configDesc.Digest] = configJSON
	blobs[manifest.Layers[0].Digest] = layer.blob
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(manifestJSON),
		Size:      int64(len(manifestJSON)),
		Platform:  &ocispec.Platform{Architecture: arch, OS: "linux"},
	}
	blobs[desc.Digest] = manifestJSON
	return desc, nil
}

// writeArchive writes the OCI layout as a tar to a temp file next to path and
// renames it into place.
func writeArchive(path string, blobs map[digest.Digest][]byte, indexJSON []byte) error {
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("marshal oci-layout: %w", err)
	}
	entries := []layerEntry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/sha256/", Mode: 0o755}},
		regular("index.json", indexJSON),
		regular(ocispec.ImageLayoutFile, layoutJSON),
	}
	for d, b := range blobs {
		entries = append(entries, regular("blobs/"+d.Algorithm().String()+"/"+d.Encoded(), b))
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })

	// Not fsynced, as before: a fixture, made again by every test process.
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, e := range entries {
			if err := writeEntry(tw, e); err != nil {
				return err
			}
		}
		return tw.Close()
	}, atomicfile.Options{TempPattern: ".busybox-*.tar", NoSync: true})
	if err != nil {
		return fmt.Errorf("write image archive: %w", err)
	}
	return nil
}

func regular(name string, data []byte) layerEntry {
	return layerEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}, data: data}
}
