package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobInfo describes one stored blob.
type BlobInfo struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Blobs lists the blobs of the store.
func (s *Store) Blobs() ([]BlobInfo, error) {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	out := make([]BlobInfo, 0, len(ents))
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if _, err := parseDigest(d.String()); err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// DeleteBlob removes a blob (missing is not an error).
func (s *Store) DeleteBlob(d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// VerifyBlob re-hashes a blob and fails when its content does not match.
func (s *Store) VerifyBlob(d digest.Digest) error {
	r, err := s.OpenBlob(d)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
		return fmt.Errorf("blob %s is corrupt: content hashes to %s", d, got)
	}
	return nil
}

// InUse returns every blob reachable from index.json (indexes, manifests,
// configs, layers), tagged or not. A missing child blob is reported.
func (s *Store) InUse() (map[digest.Digest]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	used := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if used[d.Digest] {
			return nil
		}
		used[d.Digest] = true
		switch {
		case isIndexType(d.MediaType):
			var ix ocispec.Index
			if err := s.GetJSON(d.Digest, &ix); err != nil {
				return err
			}
			for _, m := range ix.Manifests {
				if !s.Has(m.Digest) {
					continue // other platforms of a pulled index may be absent
				}
				if err := walk(m); err != nil {
					return err
				}
			}
		case isManifestType(d.MediaType):
			var m ocispec.Manifest
			if err := s.GetJSON(d.Digest, &m); err != nil {
				return err
			}
			used[m.Config.Digest] = true
			for _, l := range m.Layers {
				used[l.Digest] = true
			}
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := walk(m); err != nil {
			return nil, fmt.Errorf("walk %s: %w", m.Digest, err)
		}
	}
	return used, nil
}
