package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Source is one selected build-context file, as the step will copy it.
type Source struct {
	Path string // slash path relative to the context root
	Dest string // destination path in the image (part of the digest)
}

// sourcesVersion tags the source digest; bump it when its encoding changes.
const sourcesVersion = "builder.sources.v2"

// errEscapes marks a source path that leaves the context directory.
var errEscapes = errors.New("path escapes the build context")

// racyWindow bounds the timestamp granularity of the file system. A file
// whose ctime is this close to the moment it was stat'ed could change again
// without a visible ctime change, so its digest is used but not remembered.
// File systems with whole-second timestamps get a wider window.
const (
	racyWindow       = 50 * time.Millisecond
	racyWindowCoarse = 2 * time.Second
)

// maxAttempts bounds the re-reads of a file that changes while hashed.
const maxAttempts = 3

// Type bits of st_mode (the same on every Unix).
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// fileStat is the part of struct stat the cache uses.
type fileStat struct {
	mode         uint32 // st_mode: type, permission and special bits
	uid, gid     uint32
	nlink        uint64
	size         int64
	mtime, ctime int64 // ns
	ino, dev     uint64
	major, minor uint32 // of st_rdev, for devices
}

// sourceEntry is the canonical description of one source in the digest,
// written as one JSON line after the version line.
type sourceEntry struct {
	Dest     string        `json:"dest"`
	Type     string        `json:"type"`
	Mode     uint32        `json:"mode"` // permission, setuid, setgid and sticky bits
	UID      uint32        `json:"uid"`
	GID      uint32        `json:"gid"`
	Link     string        `json:"link,omitempty"`     // symlink target
	Hardlink string        `json:"hardlink,omitempty"` // dest of an earlier source with the same inode
	Major    uint32        `json:"major,omitempty"`
	Minor    uint32        `json:"minor,omitempty"`
	Digest   digest.Digest `json:"digest,omitempty"` // content of a regular file
}

// fileResult is what HashSources learned of one distinct source path.
type fileResult struct {
	st      fileStat
	sum     [sha256.Size]byte
	read    bool // content was read (not taken from the stat cache)
	persist bool // the read digest may be remembered
}

// fileResults is what statAndHash learned of each distinct path, by index.
// The array holds no pointer, so the collector never reads it while the
// workers fill it (a collector's read of a page not yet written costs a
// copy-on-write fault and a TLB shootdown when a worker writes it: most of
// a cached build's collection cost); the few symlink targets sit beside it.
type fileResults struct {
	r     []fileResult
	mu    sync.Mutex
	links map[int]string
}

func (fr *fileResults) setLink(i int, target string) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.links == nil {
		fr.links = map[int]string{}
	}
	fr.links[i] = target
}

// link is the target of path i, a symlink.
func (fr *fileResults) link(i int) string {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.links[i]
}

// HashSources returns the content digest of exactly the sources given (a
// directory source contributes its own metadata, not its children). For
// each source, sorted by Dest then Path, it covers dest, type, permission
// and special mode bits, uid/gid, symlink target (never followed), device
// numbers, hardlinks among the sources and the sha256 of regular files;
// never the source path or mtime. A path leaving contextDir ("..",
// absolute, or through a symlinked parent) is an error; "" and "." name
// the context dir itself.
//
// File digests come from a persistent stat cache kept per context dir: a
// file whose size, mtime, ctime, inode and device are unchanged is not read
// again.
func (s *Store) HashSources(ctx context.Context, contextDir string, srcs []Source) (digest.Digest, error) {
	h, err := s.Hash(ctx, contextDir, srcs)
	if err != nil {
		return "", err
	}
	return h.Digest, nil
}

// Hashed is what Hash found of a set of sources: their digest, and the
// stats it made, from which Sums answers as SourceSums would without a
// second look at the files (a COPY that misses explains itself file by
// file: statting 50,000 files again, and holding both passes' state, was
// a third of its peak memory). Drop it once Sums is not needed.
type Hashed struct {
	Digest  digest.Digest
	sorted  []cleanedSource
	results *fileResults
}

// Hash is HashSources, keeping what Sums needs.
func (s *Store) Hash(ctx context.Context, contextDir string, srcs []Source) (*Hashed, error) {
	h := &Hashed{}
	var err error
	h.Digest, h.sorted, h.results, err = s.hashSources(ctx, contextDir, srcs)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Sums returns SourceSums' answer for the sources, as Hash saw them. It
// drops the stats: a second call returns nil (a step explains a miss once,
// then makes its layer, which should not hold them).
func (h *Hashed) Sums() map[string]string {
	if h.sorted == nil {
		return nil
	}
	defer func() { h.sorted, h.results = nil, nil }()
	out := make(map[string]string, len(h.sorted))
	// The lines are encoded again (a hit never needs them): the same
	// bytes as the digest covered, from the same stats.
	_, _ = sourcesDigest(h.sorted, h.results, func(src string, line []byte) {
		sum := sha256.Sum256(line)
		out[src] = hex.EncodeToString(sum[:8])
	})
	return out
}

// SourceSums returns, for each source of HashSources' digest, a short
// digest of what the digest covers of it (dest, type, mode, owner, link
// target, content), by its path in the context: two calls tell which
// sources changed, were added or removed. It reads no file that the stat
// cache already knows.
func (s *Store) SourceSums(ctx context.Context, contextDir string, srcs []Source) (map[string]string, error) {
	h, err := s.Hash(ctx, contextDir, srcs)
	if err != nil {
		return nil, err
	}
	return h.Sums(), nil
}

func (s *Store) hashSources(ctx context.Context, contextDir string, srcs []Source) (digest.Digest, []cleanedSource, *fileResults, error) {
	fail := func(err error) (digest.Digest, []cleanedSource, *fileResults, error) {
		return "", nil, nil, fmt.Errorf("hash sources in %s: %w", contextDir, err)
	}
	abs, err := filepath.Abs(contextDir)
	if err != nil {
		return fail(err)
	}
	sorted, paths, err := cleanSources(srcs)
	if err != nil {
		return fail(err)
	}
	root, err := openContextRoot(abs)
	if err != nil {
		return "", nil, nil, fmt.Errorf("hash sources: %w", err)
	}
	defer root.Close()

	cachePath := s.statCachePath(abs)
	cached := s.statCacheOf(abs)
	results, err := s.statAndHash(ctx, root, paths, cached)
	if err != nil {
		return fail(err)
	}
	sum, err := sourcesDigest(sorted, results, nil)
	if err != nil {
		return fail(err)
	}
	// The merged cache is written as it is merged, never built: a cold
	// build of 50,000 files would otherwise hold it and its encoding.
	if m := (statMerge{cached, paths, results}); m.changes() {
		if err := s.saveStatCache(cachePath, m); err != nil {
			return fail(err)
		}
	}
	return sum, sorted, results, nil
}

// cleanedSource is a Source with its Path cleaned.
type cleanedSource struct {
	Source
	rel string
	idx int // of rel in the distinct paths
}

// cleanSources validates and cleans the source paths, sorts the sources by
// Dest then path, and lists the distinct paths in sorted order.
func cleanSources(srcs []Source) ([]cleanedSource, []string, error) {
	out := make([]cleanedSource, len(srcs))
	for i, src := range srcs {
		rel := path.Clean(src.Path) // "" becomes ".", the context dir
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, nil, fmt.Errorf("check source %q: %w", src.Path, errEscapes)
		}
		out[i] = cleanedSource{Source: src, rel: rel}
	}
	less := func(a, b *cleanedSource) bool {
		if a.Dest != b.Dest {
			return a.Dest < b.Dest
		}
		return a.rel < b.rel
	}
	// A walk in name order is often in this order already (it is not when
	// a directory name is a prefix of a sibling's, as "a" and "a.txt"):
	// then the sources are their own distinct sorted paths.
	sorted, distinct := true, true
	for i := 1; i < len(out) && sorted; i++ {
		sorted = !less(&out[i], &out[i-1])
		distinct = distinct && out[i-1].rel < out[i].rel
	}
	if sorted && distinct {
		paths := make([]string, len(out))
		for i := range out {
			paths[i], out[i].idx = out[i].rel, i
		}
		return out, paths, nil
	}
	if !sorted {
		sort.SliceStable(out, func(i, j int) bool { return less(&out[i], &out[j]) })
	}
	paths := make([]string, 0, len(out))
	for _, src := range out {
		paths = append(paths, src.rel)
	}
	sort.Strings(paths)
	paths = slices.Compact(paths)
	for i := range out {
		out[i].idx, _ = slices.BinarySearch(paths, out[i].rel)
	}
	return out, paths, nil
}

// chunkSize caps the paths of one directory a worker takes at a time, so a
// big directory is still spread over the workers.
const chunkSize = 256

// chunk is a run of sorted paths sharing the parent directory dir.
type chunk struct {
	dir        string
	start, end int
}

// chunks splits the sorted paths into runs with one parent directory.
func chunks(paths []string) []chunk {
	var out []chunk
	for i, p := range paths {
		dir := path.Dir(p)
		if n := len(out); n > 0 && out[n-1].dir == dir && i-out[n-1].start < chunkSize {
			out[n-1].end = i + 1
			continue
		}
		out = append(out, chunk{dir: dir, start: i, end: i + 1})
	}
	return out
}

// statAndHash stats every path and finds the digest of every regular file,
// from cached or by reading it, using up to runtime.NumCPU workers. cached
// is only read here. The workers take the paths a chunk (one directory) at
// a time, and leave a big file to read to a second pass where each takes
// one file at a time: a directory of a few big files is read by every
// worker, not by the one that took the directory.
func (s *Store) statAndHash(ctx context.Context, root *contextRoot, paths []string, cached *statCache) (*fileResults, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := &fileResults{r: make([]fileResult, len(paths))}
	var (
		mu  sync.Mutex
		big []int // in paths: the files the first pass left to the second
	)
	work := chunks(paths)
	err := s.parallel(ctx, cancel, len(work), func(i int, buf []byte, name *[]byte) error {
		return s.statChunk(ctx, root, paths, work[i], cached, results, buf, name, func(j int) {
			mu.Lock()
			big = append(big, j)
			mu.Unlock()
		})
	})
	if err == nil && len(big) > 0 {
		slices.Sort(big)
		err = s.parallel(ctx, cancel, len(big), func(i int, buf []byte, name *[]byte) error {
			return s.statChunk(ctx, root, paths, chunk{dir: path.Dir(paths[big[i]]), start: big[i], end: big[i] + 1},
				cached, results, buf, name, nil)
		})
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// parallel runs do(0..n-1) on up to runtime.NumCPU workers, each with its
// own read buffer and name scratch, and returns the first error (which
// cancels the others through cancel).
func (s *Store) parallel(ctx context.Context, cancel func(), n int, do func(i int, buf []byte, name *[]byte) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(runtime.NumCPU(), n) {
		wg.Go(func() {
			buf := make([]byte, 128<<10)
			var name []byte // lstat's scratch
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i, buf, &name); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Without a worker error only the caller can have cancelled ctx, and
	// the workers may have stopped early.
	return ctx.Err()
}

// bigRead is the size from which a file to read is left to statAndHash's
// second pass.
var bigRead int64 = 16 << 20 // a variable for the tests

// statChunk fills results for the paths of one chunk. A regular file of
// bigRead bytes or more that must be read is handed to later instead,
// when later is not nil.
func (s *Store) statChunk(ctx context.Context, root *contextRoot, paths []string, c chunk, cached *statCache, results *fileResults, buf []byte, name *[]byte, later func(int)) error {
	dir, err := root.openDir(c.dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.dir, err)
	}
	defer dir.Close()
	// Taken before any lstat of the chunk: an earlier time only makes the
	// racy check stricter.
	start := time.Now()
	cur := 0 // in cached: the chunk's paths are sorted
	deferAbove := int64(-1)
	if later != nil {
		deferAbove = bigRead
	}
	for i := c.start; i < c.end; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, link, deferred, err := s.statOne(ctx, dir, paths[i], cached, &cur, start, buf, name, deferAbove)
		if err != nil {
			return err
		}
		if link != "" {
			results.setLink(i, link)
		}
		if deferred {
			later(i)
			continue
		}
		results.r[i] = res
	}
	return nil
}

// statOne stats rel, a name in dir, and for a regular file finds its
// digest and, for a symlink, its target; start is a time before the stat. A file that changes while it is read is stat'ed and read again.
// A regular file to read of deferAbove bytes or more (when not negative)
// is not read: statOne reports it deferred.
func (s *Store) statOne(ctx context.Context, dir *dirHandle, rel string, cached *statCache, cur *int, start time.Time, buf []byte, scratch *[]byte, deferAbove int64) (fileResult, string, bool, error) {
	name := path.Base(rel)
	for range maxAttempts {
		st, link, err := dir.lstat(name, scratch)
		if err != nil {
			return fileResult{}, "", false, fmt.Errorf("stat %s: %w", rel, err)
		}
		res := fileResult{st: st}
		if st.mode&sIFMT != sIFREG {
			return res, link, false, nil
		}
		if e, ok := cached.find(rel, cur); ok && e.matches(st) {
			res.sum = e.sum
			return res, link, false, nil
		}
		if deferAbove >= 0 && st.size >= deferAbove {
			return res, "", true, nil
		}
		sum, err := s.readSum(ctx, dir, name, st, buf)
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return fileResult{}, "", false, fmt.Errorf("hash %s: %w", rel, err)
		}
		res.sum, res.read = sum, true
		res.persist = !racy(st, start)
		return res, link, false, nil
	}
	return fileResult{}, "", false, fmt.Errorf("hash %s: %w", rel, errChanged)
}

// errChanged reports a file modified while it was being hashed.
var errChanged = errors.New("file changed while being read")

// racy reports whether a change to the file right after stat time could
// leave its ctime as it is.
func racy(st fileStat, statTime time.Time) bool {
	window := racyWindow
	if st.ctime%int64(time.Second) == 0 {
		window = racyWindowCoarse
	}
	return st.ctime >= statTime.Add(-window).UnixNano()
}

// readSum returns the sha256 of the regular file name in dir, which must
// still be the file st describes before and after the read.
func (s *Store) readSum(ctx context.Context, dir *dirHandle, name string, st fileStat, buf []byte) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := dir.open(name)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	s.reads.Add(1)
	before, err := fstatFile(f)
	if err != nil {
		return sum, err
	}
	if !sameVersion(st, before) {
		return sum, errChanged
	}
	h := sha256.New()
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, err
		}
	}
	after, err := fstatFile(f)
	if err != nil {
		return sum, err
	}
	if !sameVersion(st, after) {
		return sum, errChanged
	}
	h.Sum(sum[:0])
	return sum, nil
}

// sameVersion reports whether a and b describe the same unmodified file.
func sameVersion(a, b fileStat) bool {
	return a.mode == b.mode && a.size == b.size && a.mtime == b.mtime &&
		a.ctime == b.ctime && a.ino == b.ino && a.dev == b.dev
}

// sourcesDigest encodes the sorted sources as JSON lines and digests them;
// each, when set, sees every source's path and line.
func sourcesDigest(srcs []cleanedSource, results *fileResults, each func(src string, line []byte)) (digest.Digest, error) {
	type inode struct{ dev, ino uint64 }
	firstDest := map[inode]string{}
	d := digest.Canonical.Digester()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"version":`...)
	buf = appendJSONString(buf, sourcesVersion)
	buf = append(buf, "}\n"...)
	for _, src := range srcs {
		res := results.r[src.idx]
		st := res.st
		// Owners are not in the key (UID and GID stay 0): BuildKit sends
		// the context with them reset to root, a COPY makes its files
		// root's (or --chown's) whoever owns the sources, and a user's
		// build sees its files as root in its user namespace and as
		// itself outside (a fully cached build tries outside: fromcache.go).
		e := sourceEntry{
			Dest: keyString(src.Dest),
			Mode: st.mode & 0o7777,
		}
		switch st.mode & sIFMT {
		case sIFREG:
			e.Type = "file"
			if st.nlink > 1 {
				id := inode{st.dev, st.ino}
				if first, ok := firstDest[id]; ok {
					e.Hardlink = keyString(first)
				} else {
					firstDest[id] = src.Dest
				}
			}
		case sIFDIR:
			e.Type = "dir"
		case sIFLNK:
			e.Type, e.Link = "symlink", keyString(results.link(src.idx))
		case sIFIFO:
			e.Type = "fifo"
		case sIFSOCK:
			e.Type = "socket"
		case sIFCHR:
			e.Type, e.Major, e.Minor = "char", st.major, st.minor
		case sIFBLK:
			e.Type, e.Major, e.Minor = "block", st.major, st.minor
		default:
			return "", fmt.Errorf("encode source %s: unknown file type %o", src.rel, st.mode&sIFMT)
		}
		var sum *[sha256.Size]byte
		if e.Type == "file" {
			sum = &res.sum
		}
		start := len(buf)
		buf = appendSourceEntry(buf, &e, sum)
		if each != nil {
			each(src.rel, buf[start:])
		}
		if len(buf) > 60<<10 {
			d.Hash().Write(buf)
			buf = buf[:0]
		}
	}
	d.Hash().Write(buf)
	return d.Digest(), nil
}
