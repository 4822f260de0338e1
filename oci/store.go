// Package oci is the image store: an OCI image layout (blobs/, index.json,
// oci-layout) whose tags are org.opencontainers.image.ref.name annotations,
// plus imports (load) and exports (OCI tar, docker-archive tar, layout dir).
//
// The store root is both the builder's state directory and a valid OCI
// image layout, so `skopeo inspect oci:<root>:app:v1` reads it directly:
//
//	blobs/sha256/<hex>  content, written only through BlobWriter
//	index.json          tags; rewritten atomically under the index.lock flock
//	oci-layout          {"imageLayoutVersion":"1.0.0"}
//	tmp/<pid>-<rand>/   one work dir per process (TempDir, blob ingests)
//	lock                store flock (Lock): shared for builds, exclusive for prune
//	index.lock          held only while index.json is read-modified-written
//
// Other entries of the root (snapshots/, cache/) belong to other packages.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/builderdev/builder/internal/ctxio"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound is returned (wrapped) for a missing image or blob.
var ErrNotFound = errors.New("not found")

// Store is an OCI image layout directory used as the builder's state root.
// Its methods are safe for concurrent use, also by several processes.
type Store struct {
	root string
	// tmp is this process's dir under root/tmp, made when first needed
	// (a fully cached build writes nothing and makes none).
	tmpMu sync.Mutex
	tmp   string
}

const (
	layoutFile   = "oci-layout"
	indexFile    = "index.json"
	indexLock    = "index.lock"
	storeLock    = "lock"
	tmpDir       = "tmp"
	blobsDir     = "blobs/sha256"
	lockInterval = 20 * time.Millisecond
	maxJSONSize  = 16 << 20 // manifests, configs, index.json
)

var (
	layoutJSON     = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	emptyIndexJSON = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
)

// Open creates the layout under root when missing and deletes root/tmp leftovers.
//
// Several builder processes may share one root, so root/tmp cannot simply
// be emptied: each process works in its own tmp/<pid>-<random>/ dir, and
// Open removes only the dirs whose pid is no longer alive (leftovers of
// crashed or killed runs) and entries that do not follow that naming. A pid
// reused by an unrelated process only delays the cleanup until that process
// exits. The per-process dir of a live process is never touched.
func Open(ctx context.Context, root string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	for _, d := range []string{blobsDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	cleanTmp(filepath.Join(root, tmpDir))
	s := &Store{root: root}
	for _, f := range []struct {
		name string
		data []byte
	}{{layoutFile, layoutJSON}, {indexFile, emptyIndexJSON}} {
		if _, err := os.Lstat(filepath.Join(root, f.name)); err == nil {
			continue
		}
		if err := s.replaceFile(filepath.Join(root, f.name), f.data); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	return s, nil
}

// cleanTmp removes the entries of dir that belong to dead processes. It is
// best effort: what cannot be removed now is retried by the next Open.
func cleanTmp(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pidStr, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if ok && err == nil && pid > 0 && (pid == os.Getpid() || pidAlive(pid)) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// Root returns the store directory.
func (s *Store) Root() string { return s.root }

// Close removes this process's work dir under root/tmp (which a later Open
// would otherwise remove only once this process is gone). The Store must
// not be used after Close.
func (s *Store) Close() error {
	s.tmpMu.Lock()
	defer s.tmpMu.Unlock()
	if s.tmp == "" {
		return nil
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// TempDir makes a new directory under root/tmp (same filesystem as blobs).
// It lives in this process's tmp dir, so a later Open removes it once this
// process is gone; callers remove it earlier when done.
func (s *Store) TempDir(pattern string) (string, error) {
	work, err := s.workDir()
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	d, err := os.MkdirTemp(work, pattern)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return d, nil
}

// Lock takes the store flock: shared for builds, exclusive for prune/rmi.
// It waits until the lock is free or ctx is done.
func (s *Store) Lock(ctx context.Context, exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, storeLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	for {
		ok, err := tryFlock(f, exclusive)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock store: %w", err)
		}
		if ok {
			return func() { _ = funlock(f); _ = f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock store: %w", ctx.Err())
		case <-time.After(lockInterval):
		}
	}
}

// Has reports whether the blob is in the store. It reports false once ctx
// is done: a caller that then goes on to fetch or write the blob fails
// with ctx's error there, and one that skips what is missing must check
// ctx itself.
func (s *Store) Has(ctx context.Context, d digest.Digest) bool {
	if ctx.Err() != nil {
		return false
	}
	p, err := s.blobPath(d)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// OpenBlob opens a blob for reading. ctx is checked once, before the
// open; the reader does not watch it (wrap it to stop a long copy).
func (s *Store) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	p, err := s.blobPath(d)
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// BlobSize returns the size of a stored blob (a stat; ErrNotFound when missing).
func (s *Store) BlobSize(ctx context.Context, d digest.Digest) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	p, err := s.blobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// PutJSON stores v as canonical JSON and returns its descriptor. The
// canonical form is encoding/json's output without indentation.
func (s *Store) PutJSON(ctx context.Context, mediaType string, v any) (ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store %s: %w", mediaType, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("marshal %s: %w", mediaType, err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := s.Put(ctx, desc.Digest, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// GetJSON reads a JSON blob into v (at most 16 MiB, digest verified).
func (s *Store) GetJSON(ctx context.Context, d digest.Digest, v any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	data, err := s.readBlob(ctx, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode blob %s: %w", d, err)
	}
	return nil
}

// readBlob reads a small (JSON) blob and verifies its digest.
func (s *Store) readBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(ctxio.Reader(ctx, rc), maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(data) > maxJSONSize {
		return nil, fmt.Errorf("read blob %s: larger than %d bytes", d, maxJSONSize)
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("read blob %s: digest mismatch: expected %s, got %s", d, d, got)
	}
	return data, nil
}

// replaceFile writes data to a temp file in this process's tmp dir (so
// Open removes it if we die), fsyncs it, renames it over path and fsyncs
// the parent dir.
func (s *Store) replaceFile(path string, data []byte) error {
	work, err := s.workDir()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644, atomicfile.Options{TempDir: work, TempPattern: "file-"})
}

// workDir returns this process's dir under root/tmp, making it on first use.
func (s *Store) workDir() (string, error) {
	s.tmpMu.Lock()
	defer s.tmpMu.Unlock()
	if s.tmp == "" {
		tmp, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return "", err
		}
		s.tmp = tmp
	}
	return s.tmp, nil
}

// Image is a resolved image of the store.
type Image struct {
	Name       string // normalized ref, empty when resolved by digest
	Descriptor ocispec.Descriptor
	Manifest   ocispec.Manifest
	Config     ocispec.Image
	// Index is the image index the ref named, when it named one
	// (Descriptor is then the entry picked from it).
	Index *ocispec.Descriptor
	// Extra, for an export whose Descriptor is an index, are the blobs it
	// holds besides Manifest's config and layers: its manifests, and their
	// configs and layers (an attestation manifest and its statement).
	Extra []ocispec.Descriptor
}

// Format of an export.
type Format string

const (
	FormatOCI       Format = "oci"        // OCI layout in a tar file
	FormatDocker    Format = "docker"     // docker-archive tar (docker load)
	FormatOCILayout Format = "oci-layout" // OCI layout directory
)
