package cache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/builderdev/builder/internal/atomicfile"
)

// statEntry is what the stat cache remembers of one regular file: while the
// first five fields are unchanged the content digest is reused.
type statEntry struct {
	size  int64
	mtime int64 // ns
	ctime int64 // ns
	ino   uint64
	dev   uint64
	sum   [sha256.Size]byte
}

// matches reports whether st is the file the entry was made from.
func (e statEntry) matches(st fileStat) bool {
	return e.size == st.size && e.mtime == st.mtime && e.ctime == st.ctime &&
		e.ino == st.ino && e.dev == st.dev
}

// The stat cache file is binary, for fast load and save of many entries:
//
//	magic "BLDSTAT1"
//	uvarint count
//	count x { uvarint len, path, varint size, varint mtime, varint ctime,
//	          uvarint ino, uvarint dev, 32-byte sha256 }
//	4-byte big-endian CRC-32C of everything before
//
// A file that does not parse is ignored: the cache is rebuilt by hashing.
const statMagic = "BLDSTAT1"

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// statCache is a loaded stat cache: entries sorted by path, looked up by
// binary search from a cursor, since the paths of a chunk are sorted too.
// The entries hold no pointer: each name is an offset into names, the one
// string the file was read into (no allocation per entry), so the
// collector never scans the array, which a cached build fills while the
// walk runs (a collector's read of a page not yet written costs a
// copy-on-write fault and a TLB shootdown when the decoder writes it).
type statCache struct {
	names string
	ents  []cachedStat
}

type cachedStat struct {
	off, len uint32 // the name: names[off:off+len]
	statEntry
}

// name is entry i's path.
func (c *statCache) name(i int) string {
	e := &c.ents[i]
	return c.names[e.off : e.off+e.len]
}

// newStatCache returns a cache holding m.
func newStatCache(m map[string]statEntry) *statCache {
	keys := slices.Sorted(maps.Keys(m))
	var names strings.Builder
	c := &statCache{ents: make([]cachedStat, 0, len(m))}
	for _, k := range keys {
		c.ents = append(c.ents, cachedStat{uint32(names.Len()), uint32(len(k)), m[k]})
		names.WriteString(k)
	}
	c.names = names.String()
	return c
}

// search is the first entry at or after from whose name is not below name.
func (c *statCache) search(from int, name string) int {
	return from + sort.Search(len(c.ents)-from, func(j int) bool { return c.name(from+j) >= name })
}

// find returns the entry of name, searching from *cur (an index no entry
// before which is wanted again) and moving *cur past it.
func (c *statCache) find(name string, cur *int) (statEntry, bool) {
	i := *cur
	if i >= len(c.ents) || c.name(i) != name {
		i = c.search(i, name)
	}
	*cur = i
	if i < len(c.ents) && c.name(i) == name {
		*cur = i + 1
		return c.ents[i].statEntry, true
	}
	return statEntry{}, false
}

// get is find from the start.
func (c *statCache) get(name string) (statEntry, bool) {
	cur := 0
	return c.find(name, &cur)
}

// statCachePath names the stat cache of the absolute context dir.
func (s *Store) statCachePath(absContext string) string {
	sum := sha256.Sum256([]byte(absContext))
	return filepath.Join(s.contextsDir(), fmt.Sprintf("%x.bin", sum))
}

// loadStatCache reads the stat cache at path with one read; a missing or
// corrupt file gives an empty cache.
func loadStatCache(path string) *statCache {
	b, err := readWhole(path)
	if err != nil {
		return &statCache{}
	}
	c, err := decodeStatCache(b)
	if err != nil {
		return &statCache{}
	}
	return c
}

// readWhole reads the file at path in one read of its size (plus one to
// see the end), without os.ReadFile's growing buffer.
func readWhole(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, b)
	if err == nil {
		return nil, errBadStatCache // grew since the stat
	}
	if err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}

var errBadStatCache = errors.New("malformed stat cache")

func decodeStatCache(raw []byte) (*statCache, error) {
	if len(raw) < len(statMagic)+4 || string(raw[:len(statMagic)]) != statMagic {
		return nil, errBadStatCache
	}
	body, trailer := raw[:len(raw)-4], raw[len(raw)-4:]
	if crc32c(body) != binary.BigEndian.Uint32(trailer) {
		return nil, errBadStatCache
	}
	// Names are substrings of the buffer, which nothing writes to again:
	// no copy of it, no allocation per entry.
	all := unsafe.String(unsafe.SliceData(body), len(body))
	d := statDecoder{b: body[len(statMagic):]}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, errBadStatCache
	}
	if len(body) > math.MaxUint32 {
		return nil, errBadStatCache
	}
	c := &statCache{names: all, ents: make([]cachedStat, 0, n)}
	sorted := true
	prev := ""
	for range n {
		l := d.uvarint()
		off := len(body) - len(d.b)
		d.bytes(l)
		if d.err != nil {
			return nil, d.err
		}
		e := cachedStat{off: uint32(off), len: uint32(l)}
		name := all[off : off+int(l)]
		e.size = d.varint()
		e.mtime = d.varint()
		e.ctime = d.varint()
		e.ino = d.uvarint()
		e.dev = d.uvarint()
		copy(e.sum[:], d.bytes(sha256.Size))
		if d.err != nil {
			return nil, d.err
		}
		if len(c.ents) > 0 && prev >= name {
			sorted = false
		}
		c.ents, prev = append(c.ents, e), name
	}
	if len(d.b) != 0 {
		return nil, errBadStatCache
	}
	if !sorted {
		return nil, errBadStatCache // this encoder writes sorted, distinct names
	}
	return c, nil
}

type statDecoder struct {
	b   []byte
	err error
}

func (d *statDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *statDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *statDecoder) bytes(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *statDecoder) fail() {
	d.err = errBadStatCache
	d.b = nil
}

// encodeStatCache serializes c (sorted by path, so equal caches give equal
// bytes).
func encodeStatCache(c *statCache) []byte {
	var buf bytes.Buffer
	_ = writeStatCache(&buf, len(c.ents), func(f func(string, *statEntry)) {
		for i := range c.ents {
			f(c.name(i), &c.ents[i].statEntry)
		}
	})
	return buf.Bytes()
}

// writeStatCache writes the n entries each gives, in the format above, to
// w through a small buffer.
func writeStatCache(w io.Writer, n int, each func(func(string, *statEntry))) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	var tmp [binary.MaxVarintLen64]byte
	putU := func(v uint64) { bw.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	putI := func(v int64) { bw.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	bw.WriteString(statMagic)
	putU(uint64(n))
	each(func(name string, e *statEntry) {
		putU(uint64(len(name)))
		bw.WriteString(name)
		putI(e.size)
		putI(e.mtime)
		putI(e.ctime)
		putU(e.ino)
		putU(e.dev)
		bw.Write(e.sum[:])
	})
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(tmp[:4], crc.Sum32())
	_, err := w.Write(tmp[:4])
	return err
}

// saveStatCache replaces the stat cache at path atomically with m, written
// as it is merged. It is not fsynced: after a crash a torn file fails its
// checksum and is rebuilt. Concurrent builders may race here; the last
// writer wins, which is safe because every entry is checked against a
// fresh stat before use.
func (s *Store) saveStatCache(path string, m statMerge) error {
	n := m.count()
	err := atomicfile.Write(path, 0o600, func(w io.Writer) error { return writeStatCache(w, n, m.each) },
		atomicfile.Options{TempDir: s.tmpDir(), TempPattern: filepath.Base(path) + ".*", NoSync: true})
	if err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	return nil
}

// statMerge is a stat cache with what a Hash learned merged in, walked
// without being built: the digests read added, the entries of paths that
// are no longer regular files dropped. paths are sorted, as the cache is,
// so the walk is one merge of the two.
type statMerge struct {
	cached  *statCache
	paths   []string
	results *fileResults
}

// changes reports whether the merge differs from the cache (a fully cached
// build changes nothing).
func (m statMerge) changes() bool {
	cur := 0
	for i, p := range m.paths {
		res := m.results.r[i]
		if res.st.mode&sIFMT == sIFREG && !res.read {
			continue // served from the cache, still there
		}
		if res.st.mode&sIFMT == sIFREG && res.persist {
			return true
		}
		if _, ok := m.cached.find(p, &cur); ok {
			return true
		}
	}
	return false
}

// count is the number of entries each gives.
func (m statMerge) count() int {
	n := 0
	m.each(func(string, *statEntry) { n++ })
	return n
}

// each calls f for every entry of the merged cache, in path order.
func (m statMerge) each(f func(name string, e *statEntry)) {
	c := m.cached
	ents := c.ents
	j := 0 // next entry of ents not yet given
	for i, p := range m.paths {
		res := m.results.r[i]
		if res.st.mode&sIFMT == sIFREG && !res.read {
			continue // served from the cache: given with the others
		}
		k := c.search(j, p)
		for ; j < k; j++ {
			f(c.name(j), &ents[j].statEntry)
		}
		if j < len(ents) && c.name(j) == p {
			j++ // replaced or dropped
		}
		if res.st.mode&sIFMT == sIFREG && res.persist {
			st := res.st
			e := statEntry{size: st.size, mtime: st.mtime, ctime: st.ctime, ino: st.ino, dev: st.dev, sum: res.sum}
			f(p, &e)
		}
	}
	for ; j < len(ents); j++ {
		f(c.name(j), &ents[j].statEntry)
	}
}
