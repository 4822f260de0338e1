package oci

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerManifest is one entry of a docker-archive manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ingested is a docker-archive file stored as a blob.
type ingested struct {
	digest    digest.Digest
	size      int64
	mediaType string        // layer media type, by magic
	diffID    digest.Digest // digest of the uncompressed content
}

// loadDockerArchive imports a docker-archive (docker save, skopeo
// docker-archive:): the config is stored byte for byte, layers as they are
// (uncompressed tars as application/vnd.oci.image.layer.v1.tar, gzip/zstd
// ones with their media type), each layer's uncompressed digest is checked
// against the config's diff_ids, and an OCI manifest is written.
func (s *Store) loadDockerArchive(ctx context.Context, a *archive) ([]namedDesc, error) {
	raw := a.meta["manifest.json"]
	if raw == nil {
		return nil, errors.New("manifest.json is not a regular file")
	}
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("manifest.json lists no images")
	}
	// Map every named path to its regular entry, then ingest those.
	paths := map[string]string{}
	wanted := map[string]bool{}
	for _, e := range entries {
		for _, p := range append([]string{e.Config}, e.Layers...) {
			target, err := a.entryPath(p)
			if err != nil {
				return nil, err
			}
			paths[p] = target
			wanted[target] = true
		}
	}
	files := map[string]ingested{}
	err := a.each(ctx, wanted, func(name string, r io.Reader) error {
		var expected digest.Digest
		if hex, ok := strings.CutPrefix(name, blobsDir+"/"); ok {
			d, err := parseDigest("sha256:" + hex)
			if err != nil {
				return fmt.Errorf("archive entry %s: %w", name, err)
			}
			expected = d
		}
		got, err := s.ingestLayer(ctx, r, expected)
		if err != nil {
			return fmt.Errorf("archive entry %s: %w", name, err)
		}
		files[name] = got
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []namedDesc
	for _, e := range entries {
		desc, err := s.dockerImage(ctx, e, files, paths)
		if err != nil {
			return nil, err
		}
		if len(e.RepoTags) == 0 {
			out = append(out, namedDesc{desc: desc})
		}
		for _, t := range e.RepoTags {
			r, err := parseRef(t)
			if err != nil {
				return nil, err
			}
			if r.digest != "" {
				return nil, fmt.Errorf("RepoTags entry %q holds a digest", t)
			}
			out = append(out, namedDesc{name: r.String(), desc: desc})
		}
	}
	return out, nil
}

// dockerImage writes the OCI manifest of one manifest.json entry.
func (s *Store) dockerImage(ctx context.Context, e dockerManifest, files map[string]ingested, paths map[string]string) (ocispec.Descriptor, error) {
	cfgFile := files[paths[e.Config]]
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgFile.digest, Size: cfgFile.size}
	var cfg ocispec.Image
	if err := s.GetJSON(ctx, cfgDesc.Digest, &cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config %s: %w", e.Config, err)
	}
	if n := len(cfg.RootFS.DiffIDs); n != len(e.Layers) {
		return ocispec.Descriptor{}, fmt.Errorf("config %s lists %d diff_ids for %d layers", e.Config, n, len(e.Layers))
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    make([]ocispec.Descriptor, 0, len(e.Layers)),
	}
	for i, p := range e.Layers {
		f := files[paths[p]]
		if f.diffID != cfg.RootFS.DiffIDs[i] {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: diff_id mismatch: config says %s, content is %s", p, cfg.RootFS.DiffIDs[i], f.diffID)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: f.mediaType, Digest: f.digest, Size: f.size})
	}
	return s.PutJSON(ctx, ocispec.MediaTypeImageManifest, m)
}

// ingestLayer stores r as a blob (verified against expected when set),
// detecting its compression by magic and computing its uncompressed digest
// in the same pass.
func (s *Store) ingestLayer(ctx context.Context, r io.Reader, expected digest.Digest) (ingested, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(len(magicZstd))
	res := ingested{mediaType: ocispec.MediaTypeImageLayer}
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		res.mediaType = ocispec.MediaTypeImageLayerGzip
	case bytes.HasPrefix(magic, magicZstd):
		res.mediaType = ocispec.MediaTypeImageLayerZstd
	}
	w, err := s.Writer(ctx)
	if err != nil {
		return res, err
	}
	defer w.Close()
	if res.mediaType == ocispec.MediaTypeImageLayer {
		if _, err := io.Copy(w, br); err != nil {
			return res, err
		}
	} else {
		pr, pw := io.Pipe()
		diff := make(chan digest.Digest, 1)
		go func() {
			d, err := uncompressedDigest(pr, res.mediaType)
			pr.CloseWithError(err) // unblocks the writer on a decode error
			diff <- d
		}()
		_, err := io.Copy(io.MultiWriter(w, pw), br)
		pw.CloseWithError(err)
		res.diffID = <-diff
		if err != nil {
			return res, err
		}
		if res.diffID == "" {
			return res, fmt.Errorf("decompress %s layer: invalid data", res.mediaType)
		}
	}
	res.digest, res.size, err = w.Commit(expected)
	if err != nil {
		return res, err
	}
	if res.diffID == "" {
		res.diffID = res.digest
	}
	return res, nil
}

// uncompressedDigest decompresses r and digests the result; it drains r
// so the writer side never blocks. It returns "" and an error on bad data.
func uncompressedDigest(r io.Reader, mediaType string) (digest.Digest, error) {
	h := sha256.New()
	var err error
	if mediaType == ocispec.MediaTypeImageLayerGzip {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(r); err == nil {
			_, err = io.Copy(h, zr)
			zr.Close()
		}
	} else {
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(r); err == nil {
			_, err = io.Copy(h, zr)
			zr.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("decompress layer: %w", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}
