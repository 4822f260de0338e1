package oci

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/builderdev/builder/internal/ctxio"
	"github.com/opencontainers/go-digest"
)

// BlobWriter ingests one blob: written to tmp/, verified, renamed into blobs/.
//
// Lifecycle: Writer(ctx) -> Write... -> Commit (the blob is in the store) or
// Close (the ingest is dropped). Close after Commit is a no-op, so
// `defer w.Close()` is always right. A BlobWriter is not safe for
// concurrent use; several writers of the same blob may run at once and
// the first to commit wins (the content is the same). Follow gives
// readers of the blob as it is written (follow.go).
type BlobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool

	out      *writeBehind  // the part through the page cache (stream.go)
	direct   *directWriter // past directFrom bytes: the rest, with O_DIRECT
	noDirect bool          // O_DIRECT was refused
	fol      *follow       // nil until Follow
}

// directFrom is where a blob's writes go around the page cache (see
// directWriter); a variable for the tests. The first 64 MiB stay there:
// most blobs are smaller, and are read again soon (an export, a push), and
// a small direct write waits for the disk. A bigger blob is mostly read
// once if ever, at disk speed, and each page cache page it took cost a
// copy and a fresh page: a 10 GB COPY's blob kept its first GiB cached
// until this was 64 MiB, and that GiB was a tenth of the build's CPU (the
// kernel's copy into pages never touched before, 2.3 s a GiB on a virtual
// machine that backs its memory lazily) and cold took 11.9-12.4 s, now
// 9.7-11.3; a 270 MB blob's build and save went from 1.35 s and 0.84 s to
// 1.1 s and 0.25 s: the save wrote its tar into the pages the blob left.
var directFrom int64 = 64 << 20

// directAlign is the block size O_DIRECT writes are aligned to.
const directAlign = 4096

// writebackChunk: a blob's bytes are sent to disk every this many bytes
// while it is written (startWriteback), not all at its fsync.
const writebackChunk = 8 << 20

// Writer starts a new blob ingest; it fails when ctx is done. ctx is not
// kept: the caller stops its copy on cancel (reading through a ctx-aware
// reader) and Closes the writer.
func (s *Store) Writer(ctx context.Context) (*BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start blob ingest: %w", err)
	}
	work, err := s.workDir()
	if err != nil {
		return nil, fmt.Errorf("start blob ingest: %w", err)
	}
	f, err := os.CreateTemp(work, "blob-")
	if err != nil {
		return nil, fmt.Errorf("start blob ingest: %w", err)
	}
	return &BlobWriter{s: s, f: f, h: sha256.New(), out: newWriteBehind(f)}, nil
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.write(p)
	if w.fol != nil {
		w.fol.wrote(w.inFile())
	}
	return n, err
}

// inFile is the number of bytes the ingest file holds: all written but
// those the direct writer holds until it has a whole chunk.
func (w *BlobWriter) inFile() int64 {
	return w.n - int64(w.direct.pending())
}

func (w *BlobWriter) write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write blob: ingest already finished")
	}
	n := 0
	if w.direct == nil {
		k := len(p)
		if !w.noDirect && w.n+int64(k) > directFrom {
			// Through the page cache up to directFrom, rounded up to a
			// block (O_DIRECT writes whole blocks at aligned offsets).
			edge := (max(directFrom, w.n) + directAlign - 1) &^ (directAlign - 1)
			k = int(min(int64(k), edge-w.n))
		}
		m, err := w.writeBuffered(p[:k])
		if n += m; err != nil || k == len(p) {
			return n, err
		}
		p = p[k:]
		if w.direct = startDirect(w.f, w.n); w.direct == nil {
			w.noDirect = true
			m, err := w.writeBuffered(p)
			return n + m, err
		}
	}
	if err := w.direct.write(p); err != nil {
		return n, fmt.Errorf("write blob: %w", err)
	}
	w.h.Write(p)
	w.n += int64(len(p))
	return n + len(p), nil
}

// writeBuffered writes p through the page cache: its writeback starts
// every writebackChunk bytes, and where O_DIRECT was refused, the bytes
// past directFrom leave the page cache as they would have (writeBehind).
func (w *BlobWriter) writeBuffered(p []byte) (int, error) {
	n, err := w.out.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob: %w", err)
	}
	return n, nil
}

// Digest returns the digest of what was written so far: a writer that
// hashes as it writes saves its caller a second hash (layer.Pack asks).
func (w *BlobWriter) Digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, w.h.Sum(nil))
}

// Commit fsyncs, checks the digest against expected (when non-empty) and
// renames the blob into place. It returns the blob's digest and size.
func (w *BlobWriter) Commit(expected digest.Digest) (_ digest.Digest, _ int64, err error) {
	if w.done {
		return "", 0, errors.New("commit blob: ingest already finished")
	}
	w.done = true
	defer func() {
		if err == nil {
			w.fol.wrote(w.n) // the direct writer's last bytes
		}
		w.fol.finish(err == nil)
	}()
	tmp := w.f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if w.direct != nil {
		err = w.direct.finish()
	}
	if err == nil {
		err = w.f.Chmod(0o644)
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("commit blob: %w", err)
	}
	got := digest.NewDigestFromBytes(digest.SHA256, w.h.Sum(nil))
	if expected != "" {
		if _, err := parseDigest(string(expected)); err != nil {
			return "", 0, fmt.Errorf("commit blob: %w", err)
		}
		if got != expected {
			return "", 0, fmt.Errorf("digest mismatch: expected %s, got %s", expected, got)
		}
	}
	dst, err := w.s.blobPath(got)
	if err != nil {
		return "", 0, fmt.Errorf("commit blob: %w", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return got, w.n, nil // already there: same content, drop ours
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", 0, fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return "", 0, fmt.Errorf("commit blob %s: %w", got, err)
	}
	return got, w.n, nil
}

// Close aborts an uncommitted ingest and removes its temp file.
func (w *BlobWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.fol.finish(false)
	if w.direct != nil {
		_ = w.direct.wait()
	}
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil {
		return fmt.Errorf("abort blob ingest: %w", err)
	}
	return nil
}

// parseDigest accepts only "sha256:" followed by 64 lowercase hex digits,
// so a digest can always be used as a path element.
func parseDigest(s string) (digest.Digest, error) {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 || !isLowerHex(hex) {
		return "", fmt.Errorf("invalid digest %q: want sha256:<64 hex digits>", s)
	}
	return digest.Digest(s), nil
}

// blobRel is the layout-relative path of a blob: blobs/sha256/<hex>.
func blobRel(d digest.Digest) (string, error) {
	if _, err := parseDigest(string(d)); err != nil {
		return "", err
	}
	return blobsDir + "/" + d.Encoded(), nil
}

func (s *Store) blobPath(d digest.Digest) (string, error) {
	rel, err := blobRel(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(rel)), nil
}

// Put stores data as the blob d (verified). A blob already stored is not
// written again.
func (s *Store) Put(ctx context.Context, d digest.Digest, data []byte) error {
	if s.Has(ctx, d) {
		return nil
	}
	w, err := s.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		return err
	}
	if _, _, err := w.Commit(d); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// CopyBlob copies the blob d from src into dst (verified), unless dst has
// it already.
func CopyBlob(ctx context.Context, src, dst *Store, d digest.Digest) error {
	if dst.Has(ctx, d) {
		return nil
	}
	r, err := src.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := dst.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxio.Reader(ctx, r)); err != nil {
		return fmt.Errorf("copy blob %s: %w", d, err)
	}
	if _, _, err := w.Commit(d); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
