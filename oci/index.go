package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// annotationContainerdName is the fully qualified image name that
// containerd and docker 25+ write next to ref.name.
const annotationContainerdName = "io.containerd.image.name"

// noSuchImage is the "no such image: X" error; it matches ErrNotFound.
type noSuchImage string

func (e noSuchImage) Error() string        { return "no such image: " + string(e) }
func (e noSuchImage) Is(target error) bool { return target == ErrNotFound }

// readIndex reads root/index.json. Readers need no lock: the file is only
// ever replaced by rename.
func (s *Store) readIndex(ctx context.Context) (ocispec.Index, error) {
	idx, _, err := s.readIndexData(ctx)
	return idx, err
}

// readIndexData is readIndex that also returns the file's bytes.
func (s *Store) readIndexData(ctx context.Context) (ocispec.Index, []byte, error) {
	var idx ocispec.Index
	if err := ctx.Err(); err != nil {
		return idx, nil, fmt.Errorf("read index: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(s.root, indexFile))
	if err != nil {
		return idx, nil, fmt.Errorf("read index: %w", err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, nil, fmt.Errorf("read index: %w", err)
	}
	return idx, data, nil
}

// updateIndex read-modify-writes index.json under the exclusive index.lock
// flock; the new index replaces the old one by rename, so readers see one
// or the other. When fn fails, or changes nothing (a rebuild that tags the
// same image again), nothing is written. ctx is checked once the lock is
// held (the lock is only ever held briefly), so a cancelled update writes
// nothing.
func (s *Store) updateIndex(ctx context.Context, fn func(idx *ocispec.Index) error) error {
	lf, err := os.OpenFile(filepath.Join(s.root, indexLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock index: %w", err)
	}
	defer lf.Close()
	if err := flockWait(lf); err != nil {
		return fmt.Errorf("lock index: %w", err)
	}
	defer funlock(lf)

	idx, old, err := s.readIndexData(ctx)
	if err != nil {
		return err
	}
	if err := fn(&idx); err != nil {
		return err
	}
	idx.SchemaVersion = 2
	idx.MediaType = ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if bytes.Equal(data, old) {
		return nil
	}
	if err := s.replaceFile(filepath.Join(s.root, indexFile), data); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// namedDesc is one tag to set: a normalized name ("" = keep untagged).
type namedDesc struct {
	name string
	desc ocispec.Descriptor
}

// Tag points ref (normalized) at the manifest desc, replacing index.json atomically.
func (s *Store) Tag(ctx context.Context, ref string, desc ocispec.Descriptor) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	r, err := parseRef(ref)
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	if r.digest != "" {
		return fmt.Errorf("tag %s: a tag cannot hold a digest", ref)
	}
	return s.setTags(ctx, []namedDesc{{name: r.String(), desc: desc}})
}

// setTags adds all entries in one index update: either all or none land.
// A named entry replaces any entry with the same name and any untagged
// entry of the same manifest; an unnamed one is added only when the
// manifest has no entry yet.
func (s *Store) setTags(ctx context.Context, entries []namedDesc) error {
	for _, e := range entries {
		if mt := e.desc.MediaType; !isManifestType(mt) && !isIndexType(mt) {
			return fmt.Errorf("tag %s: media type %q is not a manifest or index", e.name, mt)
		}
		if _, err := parseDigest(string(e.desc.Digest)); err != nil {
			return fmt.Errorf("tag %s: %w", e.name, err)
		}
		size, err := s.BlobSize(ctx, e.desc.Digest)
		if err != nil {
			return fmt.Errorf("tag %s: manifest %w", e.name, err)
		}
		if size != e.desc.Size {
			return fmt.Errorf("tag %s: manifest %s: size mismatch: descriptor says %d, blob has %d", e.name, e.desc.Digest, e.desc.Size, size)
		}
	}
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		for _, e := range entries {
			if e.name == "" {
				if !slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == e.desc.Digest }) {
					d := e.desc
					d.Annotations = without(d.Annotations, ocispec.AnnotationRefName)
					idx.Manifests = append(idx.Manifests, d)
				}
				continue
			}
			idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
				n := refName(d)
				return n == e.name || n == "" && d.Digest == e.desc.Digest
			})
			d := e.desc
			d.Annotations = maps.Clone(d.Annotations)
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[ocispec.AnnotationRefName] = e.name
			idx.Manifests = append(idx.Manifests, d)
		}
		return nil
	})
}

// Keep records the manifest desc in index.json without a name (an
// untagged image, as `docker build` without -t leaves): it resolves by its
// ID or digest until a tag replaces the entry or Prune drops it. A manifest
// that already has an entry is left as it is.
func (s *Store) Keep(ctx context.Context, desc ocispec.Descriptor) error {
	return s.setTags(ctx, []namedDesc{{desc: desc}})
}

// DropUntagged removes the unnamed entries of index.json and returns how
// many it removed; their blobs stay until a prune deletes what no entry
// needs.
func (s *Store) DropUntagged(ctx context.Context) (int, error) {
	n := 0
	err := s.updateIndex(ctx, func(idx *ocispec.Index) error {
		before := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == "" })
		n = before - len(idx.Manifests)
		return nil
	})
	return n, err
}

// Untag removes ref from index.json. The manifest's blobs stay (prune
// removes them); an untagged manifest leaves index.json with its last name.
func (s *Store) Untag(ctx context.Context, ref string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("untag %s: %w", ref, err)
	}
	name, err := NormalizeRef(ref)
	if err != nil {
		return fmt.Errorf("untag %s: %w", ref, err)
	}
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == name })
		if len(idx.Manifests) == n {
			return noSuchImage(name)
		}
		return nil
	})
}

// Images lists the tagged images, sorted by name.
func (s *Store) Images(ctx context.Context) ([]Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range idx.Manifests {
		name := refName(d)
		if name == "" {
			continue
		}
		img, err := s.image(ctx, name, d)
		if err != nil {
			return nil, fmt.Errorf("list images: %s: %w", name, err)
		}
		out = append(out, *img)
	}
	slices.SortStableFunc(out, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func refName(d ocispec.Descriptor) string { return d.Annotations[ocispec.AnnotationRefName] }

// without returns a copy of m without key (nil when empty).
func without(m map[string]string, key string) map[string]string {
	if _, ok := m[key]; !ok {
		return m
	}
	m = maps.Clone(m)
	delete(m, key)
	if len(m) == 0 {
		return nil
	}
	return m
}
