package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/builderdev/builder/internal/refgrammar"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Load imports an OCI tar, an OCI layout dir or a docker-archive tar and
// tags what it names; it returns the names tagged (or digests when unnamed).
//
// The input is untrusted: every blob goes through BlobWriter and is
// verified against its digest, every descriptor size is checked, and
// nothing else is written. index.json changes once, at the end, with all
// the names of the import, so a failed load leaves it unchanged (verified
// blobs already ingested stay until prune). A tar holding both an OCI
// layout and a manifest.json (docker 25+ `docker save`) is read as OCI.
// For an image index only the linux/GOARCH image must be complete.
func (s *Store) Load(ctx context.Context, path string) ([]string, error) {
	named, err := s.load(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := s.setTags(ctx, named); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	out := make([]string, 0, len(named))
	for _, n := range named {
		if n.name != "" {
			out = append(out, n.name)
		} else {
			out = append(out, n.desc.Digest.String())
		}
	}
	return out, nil
}

func (s *Store) load(ctx context.Context, path string) ([]namedDesc, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(filepath.Base(path), ".tar")
	if fi.IsDir() {
		return s.loadLayoutDir(ctx, path, base)
	}
	a, err := scanArchive(ctx, path)
	if err != nil {
		return nil, err
	}
	_, hasLayout := a.entries[layoutFile]
	_, hasIndex := a.entries[indexFile]
	_, hasManifest := a.entries["manifest.json"]
	switch {
	case hasLayout && hasIndex:
		return s.loadOCIArchive(ctx, a, base)
	case hasManifest:
		return s.loadDockerArchive(ctx, a)
	}
	return nil, errors.New("not an OCI archive (no oci-layout and index.json) nor a docker archive (no manifest.json)")
}

// parseLayout checks the oci-layout and index.json files of a layout.
func parseLayout(layout, index []byte) (ocispec.Index, error) {
	var l ocispec.ImageLayout
	var idx ocispec.Index
	if err := json.Unmarshal(layout, &l); err != nil {
		return idx, fmt.Errorf("parse oci-layout: %w", err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return idx, fmt.Errorf("unsupported image layout version %q", l.Version)
	}
	if err := json.Unmarshal(index, &idx); err != nil {
		return idx, fmt.Errorf("parse index.json: %w", err)
	}
	return idx, nil
}

func (s *Store) loadOCIArchive(ctx context.Context, a *archive, base string) ([]namedDesc, error) {
	if a.meta[layoutFile] == nil || a.meta[indexFile] == nil {
		return nil, errors.New("oci-layout or index.json is not a regular file")
	}
	idx, err := parseLayout(a.meta[layoutFile], a.meta[indexFile])
	if err != nil {
		return nil, err
	}
	// Ingest every blob entry, verified against its own name; the walk
	// below then checks that the images are complete.
	expect := map[string][]digest.Digest{}
	wanted := map[string]bool{}
	for name := range a.entries {
		hex, ok := strings.CutPrefix(name, blobsDir+"/")
		if !ok {
			continue
		}
		d, err := parseDigest("sha256:" + hex)
		if err != nil {
			return nil, fmt.Errorf("archive entry %s: %w", name, err)
		}
		if s.Has(ctx, d) {
			continue
		}
		target, err := a.resolve(name)
		if err != nil {
			return nil, err
		}
		expect[target] = append(expect[target], d)
		wanted[target] = true
	}
	err = a.each(ctx, wanted, func(name string, r io.Reader) error {
		ds := expect[name]
		got, err := s.ingest(ctx, r, ds[0])
		if err != nil {
			return fmt.Errorf("archive entry %s: blob %s: %w", name, ds[0], err)
		}
		for _, d := range ds[1:] {
			if d != got {
				return fmt.Errorf("archive entry %s: blob %s: digest mismatch: expected %s, got %s", name, d, d, got)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	have := func(d ocispec.Descriptor) error {
		if !s.Has(ctx, d.Digest) {
			return fmt.Errorf("archive has no blob %s: %w", d.Digest, ErrNotFound)
		}
		return nil
	}
	return s.loadIndex(ctx, idx, base, have)
}

// ingest copies r into a new blob verified against expected.
func (s *Store) ingest(ctx context.Context, r io.Reader, expected digest.Digest) (digest.Digest, error) {
	w, err := s.Writer(ctx)
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", err
	}
	got, _, err := w.Commit(expected)
	return got, err
}

func (s *Store) loadLayoutDir(ctx context.Context, dir, base string) ([]namedDesc, error) {
	layout, err := readSmallFile(filepath.Join(dir, layoutFile))
	if err != nil {
		return nil, fmt.Errorf("not an OCI layout: %w", err)
	}
	index, err := readSmallFile(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, err
	}
	idx, err := parseLayout(layout, index)
	if err != nil {
		return nil, err
	}
	return s.loadIndex(ctx, idx, base, s.layoutFetch(ctx, dir))
}

// layoutFetch ingests (verified) the blobs of the layout dir that the
// store lacks.
func (s *Store) layoutFetch(ctx context.Context, dir string) func(ocispec.Descriptor) error {
	return func(d ocispec.Descriptor) error {
		if s.Has(ctx, d.Digest) {
			return nil
		}
		rel, err := blobRel(d.Digest)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("layout has no blob %s: %w", d.Digest, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("blob %s is not a regular file", d.Digest)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		db := newDropBehind(f)
		defer db.finish()
		if _, err := s.ingest(ctx, ctxio.Reader(ctx, db), d.Digest); err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		return nil
	}
}

func readSmallFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJSONSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJSONSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, maxJSONSize)
	}
	return data, nil
}

// loadIndex walks every image of a layout's index (fetch puts a blob in
// the store or fails) and names them.
func (s *Store) loadIndex(ctx context.Context, idx ocispec.Index, base string, fetch func(ocispec.Descriptor) error) ([]namedDesc, error) {
	var out []namedDesc
	for _, m := range idx.Manifests {
		if err := s.walk(ctx, m, fetch); err != nil {
			return nil, err
		}
		name, err := loadName(m.Annotations, base)
		if err != nil {
			return nil, err
		}
		d := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Platform: m.Platform}
		raw, err := s.readBlob(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		if mt := sniffMediaType(raw); mt != "" {
			d.MediaType = mt
		}
		out = append(out, namedDesc{name: name, desc: d})
	}
	if len(out) == 0 {
		return nil, errors.New("no images in index.json")
	}
	return out, nil
}

// walk makes sure the image (for an index: the linux/GOARCH image) of desc
// is complete in the store, checking every digest and size.
func (s *Store) walk(ctx context.Context, desc ocispec.Descriptor, fetch func(ocispec.Descriptor) error) error {
	need := func(d ocispec.Descriptor) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := parseDigest(string(d.Digest)); err != nil {
			return err
		}
		if err := fetch(d); err != nil {
			return err
		}
		size, err := s.BlobSize(ctx, d.Digest)
		if err != nil {
			return err
		}
		if size != d.Size {
			return fmt.Errorf("blob %s: size mismatch: descriptor says %d, blob has %d", d.Digest, d.Size, size)
		}
		return nil
	}
	for range maxIndexDepth {
		if err := need(desc); err != nil {
			return err
		}
		raw, err := s.readBlob(ctx, desc.Digest)
		if err != nil {
			return err
		}
		mt := sniffMediaType(raw)
		switch {
		case isIndexType(mt):
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return fmt.Errorf("decode index %s: %w", desc.Digest, err)
			}
			child, err := pickPlatform(idx.Manifests, "linux", runtime.GOARCH)
			if err != nil {
				return fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			desc = child
		case isManifestType(mt):
			var m ocispec.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("decode manifest %s: %w", desc.Digest, err)
			}
			for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if err := need(d); err != nil {
					return fmt.Errorf("manifest %s: %w", desc.Digest, err)
				}
			}
			return nil
		default:
			return fmt.Errorf("blob %s is not an image manifest (media type %q)", desc.Digest, mt)
		}
	}
	return fmt.Errorf("index %s: nested more than %d levels", desc.Digest, maxIndexDepth)
}

// loadName names an imported image from its index annotations: a full
// ref.name ("app:v1"), else the containerd name, else a tag-only ref.name
// (skopeo, docker 25+) with the file's base name as repository. Unnamed or
// unnameable images stay untagged ("").
func loadName(ann map[string]string, base string) (string, error) {
	refName, ctrName := ann[ocispec.AnnotationRefName], ann[annotationContainerdName]
	full := refName
	if !strings.ContainsAny(refName, ":/@") {
		full = ctrName
	}
	if full != "" {
		r, err := parseRef(full)
		if err != nil {
			return "", err
		}
		if r.digest != "" {
			return "", nil
		}
		return r.String(), nil
	}
	if refName == "" {
		return "", nil
	}
	if !refgrammar.ValidTag(refName) {
		return "", fmt.Errorf("invalid tag %q in annotation %s", refName, ocispec.AnnotationRefName)
	}
	r, err := parseRef(strings.ToLower(base) + ":" + refName)
	if err != nil || r.digest != "" {
		return "", nil
	}
	return r.String(), nil
}
