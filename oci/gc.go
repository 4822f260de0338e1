package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/internal/ctxio"
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
func (s *Store) Blobs(ctx context.Context) ([]BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	out := make([]BlobInfo, 0, len(ents))
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list blobs: %w", err)
		}
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
func (s *Store) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
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
// A cancelled ctx stops the read.
func (s *Store) VerifyBlob(ctx context.Context, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	r, err := s.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxio.Reader(ctx, r)); err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
		return fmt.Errorf("blob %s is corrupt: content hashes to %s", d, got)
	}
	return nil
}

// InUse returns every blob reachable from index.json (indexes, manifests,
// configs, layers), tagged or not. A missing child blob is reported. When
// ctx is done it fails: it never returns a partial set (prune deletes what
// is not in it).
func (s *Store) InUse(ctx context.Context) (map[digest.Digest]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find blobs in use: %w", err)
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	used := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if used[d.Digest] {
			return nil
		}
		used[d.Digest] = true
		switch {
		case isIndexType(d.MediaType):
			var ix ocispec.Index
			if err := s.GetJSON(ctx, d.Digest, &ix); err != nil {
				return err
			}
			for _, m := range ix.Manifests {
				if !s.Has(ctx, m.Digest) {
					continue // other platforms of a pulled index may be absent
				}
				if err := walk(m); err != nil {
					return err
				}
			}
		case isManifestType(d.MediaType):
			var m ocispec.Manifest
			if err := s.GetJSON(ctx, d.Digest, &m); err != nil {
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
	// Has reports false once ctx is done, so a walk cancelled after its
	// last GetJSON may have skipped children: never return that set.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find blobs in use: %w", err)
	}
	return used, nil
}
