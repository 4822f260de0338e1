package layer

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Magic numbers of the compression formats Decompress knows.
const (
	magicGzip  = "\x1f\x8b\x08"
	magicZstd  = "\x28\xb5\x2f\xfd"
	magicBzip2 = "BZh"
	magicXz    = "\xfd7zXZ\x00"
)

// Decompress detects gzip, zstd, bzip2, xz or no compression by magic bytes.
// Closing the result releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(len(magicXz))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("detect compression: %w", err)
	}
	head := string(magic)
	switch {
	case strings.HasPrefix(head, magicGzip):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip stream: %w", err)
		}
		return gz, nil
	case strings.HasPrefix(head, magicZstd):
		// Layers are untrusted: a frame may not make us hold more than a
		// 128 MiB window (zstd --long's largest; encoders default to 8 MiB).
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	case strings.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case strings.HasPrefix(head, magicXz):
		return newXzReader(br)
	default:
		return io.NopCloser(br), nil
	}
}

// IsArchive reports whether the file at path is a tar archive, plain or
// compressed by one of the formats Decompress knows (ADD's auto-extract rule).
// As in Docker, the file must start with a valid tar header once
// decompressed: empty files, empty archives and garbage are not archives.
func IsArchive(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open archive candidate: %w", err)
	}
	defer f.Close()
	rc, err := Decompress(f)
	if err != nil {
		return false, nil
	}
	defer rc.Close()
	_, err = tar.NewReader(rc).Next()
	return err == nil, nil
}

// DiffID is the sha256 of the uncompressed content of the layer blob r
// (compressed as Decompress detects): r is inflated on this goroutine and
// hashed on another, so a big layer is checked in about the time of one of
// the two.
func DiffID(r io.Reader) (digest.Digest, error) {
	rc, err := Decompress(r)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	aw := ctxio.NewAsyncWriter(h)
	_, err = io.Copy(aw, rc)
	if cerr := aw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}
