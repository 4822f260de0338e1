package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
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

// statCachePath names the stat cache of the absolute context dir.
func (s *Store) statCachePath(absContext string) string {
	sum := sha256.Sum256([]byte(absContext))
	return filepath.Join(s.contextsDir(), fmt.Sprintf("%x.bin", sum))
}

// loadStatCache reads the stat cache at path; a missing or corrupt file
// gives an empty cache.
func loadStatCache(path string) map[string]statEntry {
	b, err := os.ReadFile(path)
	if err != nil {
		return map[string]statEntry{}
	}
	m, err := decodeStatCache(b)
	if err != nil {
		return map[string]statEntry{}
	}
	return m
}

var errBadStatCache = errors.New("malformed stat cache")

func decodeStatCache(b []byte) (map[string]statEntry, error) {
	if len(b) < len(statMagic)+4 || string(b[:len(statMagic)]) != statMagic {
		return nil, errBadStatCache
	}
	body, trailer := b[:len(b)-4], b[len(b)-4:]
	if crc32c(body) != binary.BigEndian.Uint32(trailer) {
		return nil, errBadStatCache
	}
	d := statDecoder{b: body[len(statMagic):]}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, errBadStatCache
	}
	m := make(map[string]statEntry, n)
	for range n {
		l := d.uvarint()
		name := string(d.bytes(l))
		var e statEntry
		e.size = d.varint()
		e.mtime = d.varint()
		e.ctime = d.varint()
		e.ino = d.uvarint()
		e.dev = d.uvarint()
		copy(e.sum[:], d.bytes(sha256.Size))
		if d.err != nil {
			return nil, d.err
		}
		m[name] = e
	}
	if len(d.b) != 0 {
		return nil, errBadStatCache
	}
	return m, nil
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

// encodeStatCache serializes m, paths sorted so equal caches give equal
// bytes.
func encodeStatCache(m map[string]statEntry) []byte {
	names := make([]string, 0, len(m))
	size := len(statMagic) + 4 + binary.MaxVarintLen64
	for name := range m {
		names = append(names, name)
		size += len(name) + 5*binary.MaxVarintLen64 + sha256.Size + 2
	}
	sort.Strings(names)
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteString(statMagic)
	var tmp [binary.MaxVarintLen64]byte
	putU := func(v uint64) { buf.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	putI := func(v int64) { buf.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	putU(uint64(len(names)))
	for _, name := range names {
		e := m[name]
		putU(uint64(len(name)))
		buf.WriteString(name)
		putI(e.size)
		putI(e.mtime)
		putI(e.ctime)
		putU(e.ino)
		putU(e.dev)
		buf.Write(e.sum[:])
	}
	sum := crc32c(buf.Bytes())
	binary.BigEndian.PutUint32(tmp[:4], sum)
	buf.Write(tmp[:4])
	return buf.Bytes()
}

// saveStatCache replaces the stat cache at path atomically. It is not
// fsynced: after a crash a torn file fails its checksum and is rebuilt.
// Concurrent builders may race here; the last writer wins, which is safe
// because every entry is checked against a fresh stat before use.
func (s *Store) saveStatCache(path string, m map[string]statEntry) error {
	if err := s.writeFile(path, encodeStatCache(m), false); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	return nil
}
