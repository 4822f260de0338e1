package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Sparse tar entries.
//
// archive/tar reads the four GNU sparse formats (old GNU type 'S', PAX 0.0,
// 0.1 and 1.0) but returns the file expanded, holes as zeros, and keeps the
// map to itself: a few KB of tar declaring a 1 TiB file would take hours
// to read and, written as read, fill the disk. Apply therefore reads the
// map from the raw header bytes tar.Reader consumed (tarStream's record),
// exactly as archive/tar parses it, reads the data fragments past
// tar.Reader and writes them at their offsets, leaving holes.

// fragment is a data region of a sparse file.
type fragment struct{ off, len int64 }

func (f fragment) end() int64 { return f.off + f.len }

// sparseFile is the layout of a sparse entry.
type sparseFile struct {
	size     int64      // apparent size
	data     []fragment // in order, non-overlapping, within size
	physical int64      // sum of the data lengths: the bytes stored in the tar
}

// PAX records of the GNU sparse formats.
const (
	paxSparseMajor     = "GNU.sparse.major"
	paxSparseMinor     = "GNU.sparse.minor"
	paxSparseName      = "GNU.sparse.name"
	paxSparseSize      = "GNU.sparse.size"
	paxSparseRealSize  = "GNU.sparse.realsize"
	paxSparseMap       = "GNU.sparse.map"
	paxSparseNumBlocks = "GNU.sparse.numblocks"
)

const blockSize = 512

// Limits archive/tar puts on a sparse map; the same here, so that both
// read the same archives.
const (
	maxSpecialFileSize   = 1 << 20
	maxSparseFileEntries = 1e6
)

// sparseKind says which sparse format hdr uses, as archive/tar decides it:
// 'S' (old GNU), '0' (PAX 0.0 or 0.1), '1' (PAX 1.0), or 0 (not sparse).
func sparseKind(hdr *tar.Header) byte {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return 'S'
	}
	major, minor := hdr.PAXRecords[paxSparseMajor], hdr.PAXRecords[paxSparseMinor]
	switch {
	case major == "0" && (minor == "0" || minor == "1"):
		return '0'
	case major == "1" && minor == "0":
		return '1'
	case major != "" || minor != "":
		return 0 // unknown version: archive/tar reads it as a plain file
	case hdr.PAXRecords[paxSparseMap] != "":
		return '0'
	}
	return 0
}

// parseSparse returns the layout of hdr, a sparse entry of kind
// sparseKind(hdr), from rec, the raw bytes tar.Reader read to return hdr,
// starting at stream offset start.
func parseSparse(hdr *tar.Header, kind byte, rec []byte, start int64) (*sparseFile, error) {
	at := int((blockSize - start%blockSize) % blockSize) // padding of the previous entry
	if at > len(rec) {
		return nil, errors.New("sparse header: record too short")
	}
	blk, rest, err := lastHeader(rec[at:])
	if err != nil {
		return nil, fmt.Errorf("sparse header: %w", err)
	}
	// The size tar.Reader gave the data section: a PAX "size", else the
	// header's size field.
	stored, err := parseNumeric(blk[124:136])
	if err != nil {
		return nil, fmt.Errorf("sparse header: size: %w", err)
	}
	if v := hdr.PAXRecords["size"]; v != "" {
		if stored, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("sparse header: size: %w", err)
		}
	}
	var data []fragment
	switch kind {
	case 'S':
		data, rest, err = oldGNUMap(blk, rest)
	case '1':
		var used int
		data, used, err = map1x0(rest)
		stored -= int64(used)
		rest = rest[used:]
	default:
		data, err = map0x1(hdr.PAXRecords)
	}
	if err != nil {
		return nil, fmt.Errorf("sparse map: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("sparse header: unexpected bytes after the map")
	}
	sp := &sparseFile{size: hdr.Size}
	var prev fragment
	for _, f := range data {
		switch {
		case f.off < 0 || f.len < 0 || f.off > math.MaxInt64-f.len:
			return nil, errors.New("sparse map: invalid fragment")
		case f.end() > sp.size || prev.end() > f.off:
			return nil, errors.New("sparse map: fragments out of order or beyond the size")
		}
		prev = f
		if f.len > 0 {
			sp.data = append(sp.data, f)
			sp.physical += f.len
		}
	}
	if sp.physical != stored {
		return nil, fmt.Errorf("sparse map: %d bytes of data, %d stored", sp.physical, stored)
	}
	return sp, nil
}

// lastHeader skips the meta headers (PAX 'x', GNU long name 'L' and long
// link 'K') at the start of b and returns the entry's own header block and
// what follows it.
func lastHeader(b []byte) (blk, rest []byte, err error) {
	for len(b) >= blockSize {
		blk, b = b[:blockSize], b[blockSize:]
		switch blk[156] {
		case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			n, err := parseNumeric(blk[124:136])
			if err != nil || n < 0 || n > int64(len(b)) {
				return nil, nil, errors.New("bad meta header size")
			}
			skip := (n + blockSize - 1) / blockSize * blockSize
			if skip > int64(len(b)) {
				return nil, nil, errors.New("bad meta header size")
			}
			b = b[skip:]
		default:
			return blk, b, nil
		}
	}
	return nil, nil, errors.New("no header block")
}

// oldGNUMap reads the map of an old GNU sparse header (four entries in the
// header, 21 in each extension block that follows).
func oldGNUMap(blk, rest []byte) ([]fragment, []byte, error) {
	var data []fragment
	s := blk[386:483] // 4 entries of 24 bytes, then isextended
	total := len(s)
	for total < maxSpecialFileSize {
		entries := (len(s) - 1) / 24
		for i := range entries {
			e := s[i*24 : i*24+24]
			if e[0] == 0 {
				break
			}
			off, err1 := parseNumeric(e[:12])
			n, err2 := parseNumeric(e[12:])
			if err := errors.Join(err1, err2); err != nil {
				return nil, nil, err
			}
			if len(data) >= maxSparseFileEntries {
				return nil, nil, errors.New("too many entries")
			}
			data = append(data, fragment{off, n})
		}
		if s[len(s)-1] == 0 {
			return data, rest, nil
		}
		if len(rest) < blockSize {
			return nil, nil, errors.New("missing extension block")
		}
		s, rest = rest[:505], rest[blockSize:]
		total += len(s)
	}
	return nil, nil, errors.New("too many entries")
}

// map1x0 reads a PAX 1.0 map: newline-terminated decimal numbers (the
// count, then offset and length pairs) in whole blocks at the start of the
// data section, read block by block as archive/tar does. It returns the
// bytes the map takes.
func map1x0(b []byte) ([]fragment, int, error) {
	used, newlines := 0, int64(0)
	feed := func(want int64) error {
		for newlines < want {
			if used+blockSize > maxSpecialFileSize {
				return errors.New("map too long")
			}
			if used+blockSize > len(b) {
				return errors.New("truncated map")
			}
			newlines += int64(bytes.Count(b[used:used+blockSize], []byte{'\n'}))
			used += blockSize
		}
		return nil
	}
	pos := 0
	token := func() string {
		i := bytes.IndexByte(b[pos:used], '\n')
		t := string(b[pos : pos+i])
		pos += i + 1
		return t
	}
	if err := feed(1); err != nil {
		return nil, 0, err
	}
	n, err := strconv.ParseInt(token(), 10, 0)
	if err != nil || n < 0 || int(2*n) < int(n) {
		return nil, 0, errors.New("bad entry count")
	}
	if err := feed(1 + 2*n); err != nil {
		return nil, 0, err
	}
	var data []fragment
	for range n {
		off, err1 := strconv.ParseInt(token(), 10, 64)
		length, err2 := strconv.ParseInt(token(), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, 0, err
		}
		if len(data) >= maxSparseFileEntries {
			return nil, 0, errors.New("too many entries")
		}
		data = append(data, fragment{off, length})
	}
	return data, used, nil
}

// map0x1 reads a PAX 0.1 map (archive/tar turns 0.0 records into 0.1).
func map0x1(rec map[string]string) ([]fragment, error) {
	n, err := strconv.ParseInt(rec[paxSparseNumBlocks], 10, 0)
	if err != nil || n < 0 || int(2*n) < int(n) {
		return nil, errors.New("bad entry count")
	}
	fields := strings.Split(rec[paxSparseMap], ",")
	if len(fields) == 1 && fields[0] == "" {
		fields = nil
	}
	if int64(len(fields)) != 2*n {
		return nil, errors.New("entry count does not match the map")
	}
	var data []fragment
	for ; len(fields) >= 2; fields = fields[2:] {
		off, err1 := strconv.ParseInt(fields[0], 10, 64)
		length, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if len(data) >= maxSparseFileEntries {
			return nil, errors.New("too many entries")
		}
		data = append(data, fragment{off, length})
	}
	return data, nil
}

// parseNumeric reads a tar number field: octal, or base-256 when the high
// bit of the first byte is set (archive/tar's parser.parseNumeric).
func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		var inv byte
		if b[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range b {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 > 0 {
				return 0, errors.New("number overflows")
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, errors.New("number overflows")
		}
		if inv == 0xff {
			return ^int64(x), nil
		}
		return int64(x), nil
	}
	b = bytes.Trim(b, " \x00")
	if len(b) == 0 {
		return 0, nil
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	x, err := strconv.ParseUint(string(b), 8, 64)
	if err != nil {
		return 0, errors.New("bad octal number")
	}
	return int64(x), nil
}

// body is one entry of an archive being applied, and its content.
type body struct {
	hdr    *tar.Header
	tr     *tar.Reader
	stream *tarStream
	sparse *sparseFile // nil for a plain entry; its data shrinks as it is read
}

// next reads the next entry's header (io.EOF at the end of the archive).
func next(tr *tar.Reader, s *tarStream) (*body, error) {
	s.record()
	hdr, err := tr.Next()
	rec, whole := s.stop()
	if s.owed != 0 {
		return nil, fmt.Errorf("read layer: tar framing: %d bytes read ahead were not skipped", s.owed)
	}
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	b := &body{hdr: hdr, tr: tr, stream: s}
	if kind := sparseKind(hdr); kind != 0 {
		if !whole {
			return nil, fmt.Errorf("read %q: sparse entry headers take more than %s", hdr.Name, sizeString(maxRecord))
		}
		if b.sparse, err = parseSparse(hdr, kind, rec, s.recStart); err != nil {
			return nil, fmt.Errorf("read %q: %w", hdr.Name, err)
		}
	}
	return b, nil
}

// drain reads what is left of the entry's content, so that the next header
// starts where tar.Reader expects it; the data of a sparse entry is read
// past tar.Reader, never its holes.
func (b *body) drain() error {
	if b.sparse == nil {
		_, err := io.Copy(io.Discard, struct{ io.Reader }{b.tr})
		return err
	}
	var buf [32 << 10]byte
	for _, f := range b.sparse.data {
		for f.len > 0 {
			n, err := b.stream.direct(buf[:min(int64(len(buf)), f.len)])
			f.len -= int64(n)
			if errors.Is(err, io.EOF) && f.len > 0 {
				return io.ErrUnexpectedEOF
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
		}
	}
	b.sparse.data = nil
	return nil
}
