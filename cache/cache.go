// Package cache turns a step's inputs into a versioned key, maps keys to
// records of what the step produced, and hashes build-context files.
//
// Layout under the root given to Open (usually <state>/cache):
//
//	records/sha256/<hex>         one small JSON Record per key, written last
//	contexts/<sha256 of dir>.bin the stat cache of one build-context directory
//	history/<id>.json            the last build of a Dockerfile and target (miss explanations)
//	history/builds.jsonl         the build log: one line a build, the last 50 (buildlog.go)
//	tmp/                         temporary files, renamed into place
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped) by Get on a miss.
var ErrNotFound = errors.New("cache record not found")

// Record is what a step produced.
type Record struct {
	Key       digest.Digest `json:"key"`
	Layer     digest.Digest `json:"layer,omitempty"` // blob digest; empty for no layer
	LayerSize int64         `json:"layerSize,omitempty"`
	MediaType string        `json:"mediaType,omitempty"`
	DiffID    digest.Digest `json:"diffID,omitempty"`
	Created   string        `json:"created,omitempty"` // RFC3339 history time
	// Newest is the newest file mtime in the layer (Unix seconds), as
	// unpacked: the executor stamps later RUN output after it.
	Newest int64 `json:"newest,omitempty"`
}

// Store keeps records under <state>/cache.
type Store struct {
	root string
	// reads counts the build-context files whose content HashSources read;
	// tests use it to prove the stat cache works.
	reads atomic.Int64
	pre   preloads // stat caches read ahead (preload.go)
}

// staleTmp is how old a file in tmp/ must be before Open deletes it: younger
// ones may belong to a concurrent builder.
const staleTmp = time.Hour

// Open creates the cache dirs under root.
func Open(ctx context.Context, root string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open cache %s: %w", root, err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", root, err)
	}
	s := &Store{root: abs}
	for _, dir := range []string{s.recordDir(), s.tmpDir(), s.contextsDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open cache %s: %w", root, err)
		}
	}
	s.removeStaleTmp()
	return s, nil
}

func (s *Store) recordDir() string   { return filepath.Join(s.root, "records", "sha256") }
func (s *Store) tmpDir() string      { return filepath.Join(s.root, "tmp") }
func (s *Store) contextsDir() string { return filepath.Join(s.root, "contexts") }

// removeStaleTmp deletes what killed writers left in tmp/. Best effort.
func (s *Store) removeStaleTmp() {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > staleTmp {
			_ = os.RemoveAll(filepath.Join(s.tmpDir(), e.Name()))
		}
	}
}

// recordPath validates key and returns the path of its record file.
func (s *Store) recordPath(key digest.Digest) (string, error) {
	if err := validSHA256(key); err != nil {
		return "", err
	}
	return filepath.Join(s.recordDir(), key.Encoded()), nil
}

// validSHA256 accepts only sha256:<64 lowercase hex>, the one form used in
// paths.
func validSHA256(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("validate digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("validate digest %q: not sha256", d)
	}
	return nil
}

// Get opens the one record file of key.
func (s *Store) Get(ctx context.Context, key digest.Digest) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("get record %s: %w", key, err)
	}
	p, err := s.recordPath(key)
	if err != nil {
		return Record{}, fmt.Errorf("get record: %w", err)
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, fmt.Errorf("get record %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get record %s: %w", key, err)
	}
	r, err := decodeRecord(b, key)
	if err != nil {
		// A corrupt record is a miss; drop it so the step is redone and
		// rewritten.
		_ = os.Remove(p)
		return Record{}, fmt.Errorf("get record %s: %w (%w)", key, ErrNotFound, err)
	}
	return r, nil
}

// decodeRecord parses b and checks it is a sound record of key.
func decodeRecord(b []byte, key digest.Digest) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	if r.Key != key {
		return Record{}, fmt.Errorf("decode record: key %q does not match file name", r.Key)
	}
	if err := checkRecord(r); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// checkRecord checks the fields of r other than Key.
// Validate checks that r is well formed: a sha256 key, valid layer and
// diffID digests, a size that is not negative.
func (r Record) Validate() error {
	if err := validSHA256(r.Key); err != nil {
		return err
	}
	return checkRecord(r)
}

func checkRecord(r Record) error {
	for _, d := range []digest.Digest{r.Layer, r.DiffID} {
		if d == "" {
			continue
		}
		if err := d.Validate(); err != nil {
			return fmt.Errorf("check digest %q: %w", d, err)
		}
	}
	if r.LayerSize < 0 {
		return errors.New("check layer size: negative")
	}
	return nil
}

// Put writes the record last, crash-safely (tmp, fsync, rename, fsync dir).
func (s *Store) Put(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put record %s: %w", r.Key, err)
	}
	p, err := s.recordPath(r.Key)
	if err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("put record %s: %w", r.Key, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put record %s: %w", r.Key, err)
	}
	if err := s.writeFile(p, b, true); err != nil {
		return fmt.Errorf("put record %s: %w", r.Key, err)
	}
	return nil
}

// writeFile replaces path with b through a temp file in tmp/ (same file
// system; Open removes leftovers). With durable, the data and the rename
// are fsynced.
func (s *Store) writeFile(path string, b []byte, durable bool) error {
	return atomicfile.WriteFile(path, b, 0o600, atomicfile.Options{
		TempDir:     s.tmpDir(),
		TempPattern: filepath.Base(path) + ".*",
		NoSync:      !durable,
	})
}

// Remove deletes the record of key. Removing a missing record is not an
// error.
func (s *Store) Remove(ctx context.Context, key digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove record %s: %w", key, err)
	}
	p, err := s.recordPath(key)
	if err != nil {
		return fmt.Errorf("remove record: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", key, err)
	}
	return nil
}

// Empty reports whether the store holds no record, so that no key can
// hit: the records dir is missing or lists nothing (records are written
// under tmp/ and renamed in). When unsure, it is not empty.
func (s *Store) Empty() bool {
	f, err := os.Open(s.recordDir())
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && err == io.EOF
}

// Records returns every sound record, sorted by key. Files that are not
// records are skipped; corrupt records are removed, as Get does.
func (s *Store) Records(ctx context.Context) ([]Record, error) {
	entries, err := os.ReadDir(s.recordDir())
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var out []Record
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		key := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !e.Type().IsRegular() || validSHA256(key) != nil {
			continue
		}
		r, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile, or corrupt
		}
		if err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
