package oci

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/builderdev/builder/internal/ctxio"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// exportPlan is what an export writes: the index entries, the blobs
// (deduplicated, sorted by digest) and, for docker, manifest.json.
type exportPlan struct {
	index  ocispec.Index
	blobs  []ocispec.Descriptor
	docker []dockerManifest
}

// Export writes the images (tagged with their Name when set) to dest.
//
// FormatOCI and FormatDocker write a deterministic tar (sorted entries,
// zero mtimes, uid/gid 0, modes 0644/0755) to a temp file next to dest and
// rename it, so dest is complete or untouched. FormatDocker is the OCI tar
// plus manifest.json, as docker 25+ `docker save` writes it. Index entries
// carry org.opencontainers.image.ref.name ("app:v1") and
// io.containerd.image.name ("docker.io/library/app:v1"). FormatOCILayout
// creates dest, or merges into the OCI layout already there (a name
// already in its index.json is replaced). Blobs are streamed and their
// digests checked on the way.
func (s *Store) Export(ctx context.Context, dest string, format Format, images []*Image) error {
	plan, err := s.plan(ctx, images, format)
	if err != nil {
		return fmt.Errorf("export %s: %w", dest, err)
	}
	switch format {
	case FormatOCI, FormatDocker:
		if format != FormatDocker {
			plan.docker = nil
		}
		err = writeFileAtomic(dest, func(w io.Writer) error { return s.writeTar(ctx, w, plan) })
	case FormatOCILayout:
		err = s.writeLayout(ctx, dest, plan)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", dest, err)
	}
	return nil
}

// ExportTo writes images as an archive (FormatOCI or FormatDocker) to w,
// as Export writes a file: `-o type=oci,dest=-` streams to stdout.
func (s *Store) ExportTo(ctx context.Context, w io.Writer, format Format, images []*Image) error {
	plan, err := s.plan(ctx, images, format)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	switch format {
	case FormatOCI:
		plan.docker = nil
	case FormatDocker:
	default:
		return fmt.Errorf("export: format %q cannot be streamed", format)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := s.writeTar(ctx, bw, plan); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}

func (s *Store) plan(ctx context.Context, images []*Image, format Format) (exportPlan, error) {
	p := exportPlan{index: ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}}
	p.index.SchemaVersion = 2
	if len(images) == 0 {
		return p, errors.New("no images to export")
	}
	blobs := map[digest.Digest]ocispec.Descriptor{}
	dockerIdx := map[digest.Digest]int{}
	type key struct {
		d    digest.Digest
		name string
	}
	seen := map[key]bool{}
	for _, img := range images {
		desc := img.Descriptor
		if _, err := parseDigest(string(desc.Digest)); err != nil {
			return p, err
		}
		name := ""
		if img.Name != "" {
			r, err := parseRef(img.Name)
			if err != nil {
				return p, err
			}
			if r.digest == "" {
				name = r.String()
			}
		}
		if seen[key{desc.Digest, name}] {
			continue
		}
		seen[key{desc.Digest, name}] = true
		entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
		if name != "" {
			r, _ := parseRef(name)
			entry.Annotations = map[string]string{ocispec.AnnotationRefName: name, annotationContainerdName: r.qualified()}
		}
		p.index.Manifests = append(p.index.Manifests, entry)
		if isIndexType(desc.MediaType) {
			// A multi-platform image: the index, and each of its images.
			if format == FormatDocker {
				return p, errors.New("a docker archive holds one platform, not an image index")
			}
			if err := s.indexBlobs(ctx, desc, blobs); err != nil {
				return p, err
			}
			continue
		}
		for _, b := range slices.Concat([]ocispec.Descriptor{entry, img.Manifest.Config}, img.Manifest.Layers, img.Extra) {
			if _, err := parseDigest(string(b.Digest)); err != nil {
				return p, err
			}
			blobs[b.Digest] = ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size}
		}
		i, ok := dockerIdx[desc.Digest]
		if !ok {
			i = len(p.docker)
			dockerIdx[desc.Digest] = i
			dm := dockerManifest{Config: blobsDir + "/" + img.Manifest.Config.Digest.Encoded(), RepoTags: []string{}}
			for _, l := range img.Manifest.Layers {
				dm.Layers = append(dm.Layers, blobsDir+"/"+l.Digest.Encoded())
			}
			p.docker = append(p.docker, dm)
		}
		if name != "" {
			p.docker[i].RepoTags = append(p.docker[i].RepoTags, name)
		}
	}
	// An unnamed entry is dropped when the same manifest is also named.
	named := map[digest.Digest]bool{}
	for _, d := range p.index.Manifests {
		if refName(d) != "" {
			named[d.Digest] = true
		}
	}
	p.index.Manifests = slices.DeleteFunc(p.index.Manifests, func(d ocispec.Descriptor) bool {
		return refName(d) == "" && named[d.Digest]
	})
	for _, b := range blobs {
		p.blobs = append(p.blobs, b)
	}
	slices.SortFunc(p.blobs, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return p, nil
}

// writeTar writes the plan as a deterministic OCI (and docker) archive.
func (s *Store) writeTar(ctx context.Context, w io.Writer, p exportPlan) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	// Entries in byte order: blobs/, blobs/sha256/, blobs/sha256/<hex>...,
	// index.json, manifest.json, oci-layout.
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir(blobsDir + "/"); err != nil {
		return err
	}
	for _, b := range p.blobs {
		if err := s.checkSize(ctx, b); err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: blobsDir + "/" + b.Digest.Encoded(), Mode: 0o644, Size: b.Size, ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := s.copyBlob(ctx, tw, b); err != nil {
			return err
		}
	}
	index, err := json.Marshal(p.index)
	if err != nil {
		return err
	}
	if err := file(indexFile, index); err != nil {
		return err
	}
	if p.docker != nil {
		manifest, err := json.Marshal(p.docker)
		if err != nil {
			return err
		}
		if err := file("manifest.json", manifest); err != nil {
			return err
		}
	}
	if err := file(layoutFile, layoutJSON); err != nil {
		return err
	}
	return tw.Close()
}

// checkSize fails when the stored blob's size differs from its descriptor.
func (s *Store) checkSize(ctx context.Context, b ocispec.Descriptor) error {
	size, err := s.BlobSize(ctx, b.Digest)
	if err != nil {
		return err
	}
	if size != b.Size {
		return fmt.Errorf("blob %s: size mismatch: descriptor says %d, blob has %d", b.Digest, b.Size, size)
	}
	return nil
}

// copyBlobBuf is the bytes copyBlob reads at a time (io.Copy's 32 KB
// made a 5 GB blob 160,000 reads).
const copyBlobBuf = 1 << 20

// copyBlob streams a blob to w, checking its digest and size.
func (s *Store) copyBlob(ctx context.Context, w io.Writer, b ocispec.Descriptor) error {
	rc, err := s.OpenBlob(ctx, b.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if f, ok := rc.(*os.File); ok {
		db := newDropBehind(f) // see stream.go
		defer db.finish()
		r = db
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), ctxio.Reader(ctx, r), make([]byte, max(min(b.Size, copyBlobBuf), 512)))
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", b.Digest, err)
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != b.Digest || n != b.Size {
		return fmt.Errorf("copy blob %s: store copy is corrupt (got %s, %d bytes)", b.Digest, got, n)
	}
	return nil
}

// writeLayout creates or merges into the OCI layout directory dest.
func (s *Store) writeLayout(ctx context.Context, dest string, p exportPlan) error {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	if abs == s.root {
		return errors.New("cannot export into the store itself")
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	layout, err := readSmallFile(filepath.Join(dest, layoutFile))
	switch {
	case err == nil:
		index, err := readSmallFile(filepath.Join(dest, indexFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err == nil {
			if idx, err = parseLayout(layout, index); err != nil {
				return err
			}
		}
	case errors.Is(err, os.ErrNotExist):
		if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
			return errors.New("destination exists and is not an OCI layout")
		}
	default:
		return err
	}
	blobDir := filepath.Join(dest, filepath.FromSlash(blobsDir))
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	for _, b := range p.blobs {
		target := filepath.Join(blobDir, b.Digest.Encoded())
		if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() && fi.Size() == b.Size {
			continue
		}
		if err := s.checkSize(ctx, b); err != nil {
			return err
		}
		err := writeFileAtomic(target, func(w io.Writer) error { return s.copyBlob(ctx, w, b) })
		if err != nil {
			return err
		}
	}
	for _, e := range p.index.Manifests {
		if name := refName(e); name != "" {
			idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == name })
		} else if slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == e.Digest }) {
			continue
		}
		idx.Manifests = append(idx.Manifests, e)
	}
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dest, indexFile), bytesWriter(index)); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dest, layoutFile), bytesWriter(layoutJSON))
}

func bytesWriter(data []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(data); return err }
}

// writeFileAtomic writes path through a temp file next to it: write
// (buffered), fsync, rename, fsync the dir. On failure path is left
// untouched.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if f, ok := w.(*os.File); ok {
			w = newWriteBehind(f) // see stream.go
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}, atomicfile.Options{})
}

// indexBlobs adds the blobs of the image index desc to blobs: the index,
// its manifests, their configs and layers.
func (s *Store) indexBlobs(ctx context.Context, desc ocispec.Descriptor, blobs map[digest.Digest]ocispec.Descriptor) error {
	var idx ocispec.Index
	if err := s.GetJSON(ctx, desc.Digest, &idx); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	blobs[desc.Digest] = ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	for _, m := range idx.Manifests {
		if !isManifestType(m.MediaType) {
			return fmt.Errorf("index %s: entry %s is a %q, not an image manifest", desc.Digest, m.Digest, m.MediaType)
		}
		var man ocispec.Manifest
		if err := s.GetJSON(ctx, m.Digest, &man); err != nil {
			return fmt.Errorf("read manifest: %w", err)
		}
		for _, b := range append([]ocispec.Descriptor{m, man.Config}, man.Layers...) {
			if _, err := parseDigest(string(b.Digest)); err != nil {
				return err
			}
			blobs[b.Digest] = ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size}
		}
	}
	return nil
}
