package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
)

// Sparse files in layers Pack writes.
//
// A file with holes (a RUN that ran truncate -s 1T, a sparse file an ADD
// archive carried) is written as a GNU PAX 1.0 sparse entry, the format
// GNU tar, libarchive and archive/tar read: a data map and the data,
// never the holes. archive/tar cannot write it (it drops GNU.sparse.*
// records), so Pack writes the header with placeholder record names of the
// same length and renames them in the header bytes; the checksum covers
// the header block only, not the records.

// sparseBlock is the granularity of the data map: a block holding a
// non-zero byte is data, an all-zero one a hole.
const sparseBlock = 4096

// maxMapText bounds the map of one file (archive/tar reads up to 1 MiB):
// a file with more fragments gets a coarser map.
const maxMapText = 256 << 10

// sparsePlaceholder stands in for "GNU.sparse." while archive/tar formats
// the header.
const (
	sparsePlaceholder = "XNU.sparse."
	sparsePrefix      = "GNU.sparse."
)

// addRun appends f to runs, merged with the last run when they touch.
func addRun(runs []fragment, f fragment) []fragment {
	if n := len(runs); n > 0 && runs[n-1].end() >= f.off {
		runs[n-1].len = max(runs[n-1].end(), f.end()) - runs[n-1].off
		return runs
	}
	return append(runs, f)
}

// sparseMap returns the PAX 1.0 map of runs in a file of size bytes,
// padded to whole blocks, and the runs it describes: coarser than the ones
// given when those do not fit in maxMapText. A file ending in a hole gets
// a last, empty run at its size, as GNU tar writes it.
func sparseMap(runs []fragment, size int64) ([]byte, []fragment) {
	for g := int64(sparseBlock); ; g *= 2 {
		text := formatMap(runs, size)
		if len(text) <= maxMapText {
			return text, runs
		}
		var coarse []fragment
		for _, r := range runs {
			start := r.off / (2 * g) * (2 * g)
			end := min((r.end()+2*g-1)/(2*g)*(2*g), size)
			coarse = addRun(coarse, fragment{start, end - start})
		}
		runs = coarse
	}
}

func formatMap(runs []fragment, size int64) []byte {
	entries := runs
	if len(runs) == 0 || runs[len(runs)-1].end() < size {
		entries = append(entries[:len(entries):len(entries)], fragment{size, 0})
	}
	b := strconv.AppendInt(nil, int64(len(entries)), 10)
	b = append(b, '\n')
	for _, r := range entries {
		b = strconv.AppendInt(b, r.off, 10)
		b = append(b, '\n')
		b = strconv.AppendInt(b, r.len, 10)
		b = append(b, '\n')
	}
	if pad := len(b) % blockSize; pad != 0 {
		b = append(b, make([]byte, blockSize-pad)...)
	}
	return b
}

// switchWriter is what the tar writer writes to; while capturing, it keeps
// the bytes instead, for the sparse header to be patched.
type switchWriter struct {
	w         io.Writer
	capturing bool
	captured  bytes.Buffer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	if s.capturing {
		return s.captured.Write(p)
	}
	return s.w.Write(p)
}

// writeSparse writes the regular file e (open as f), whose data is runs,
// as a PAX 1.0 sparse entry; hdr is its plain header.
func (p *packer) writeSparse(e *Entry, hdr *tar.Header, f *os.File, runs []fragment) error {
	mapText, runs := sparseMap(runs, e.Size)
	stored := int64(len(mapText))
	for _, r := range runs {
		stored += r.len
	}
	dir, base := path.Split(hdr.Name)
	h := *hdr
	h.Name = dir + "GNUSparseFile.0/" + base
	h.Size = stored
	h.PAXRecords = make(map[string]string, len(hdr.PAXRecords)+4)
	for k, v := range hdr.PAXRecords {
		h.PAXRecords[k] = v
	}
	h.PAXRecords[sparsePlaceholder+"major"] = "1"
	h.PAXRecords[sparsePlaceholder+"minor"] = "0"
	h.PAXRecords[sparsePlaceholder+"name"] = hdr.Name
	h.PAXRecords[sparsePlaceholder+"realsize"] = strconv.FormatInt(e.Size, 10)
	if err := p.tw.Flush(); err != nil { // the previous entry's padding
		return err
	}
	p.out.capturing = true
	err := p.tw.WriteHeader(&h)
	p.out.capturing = false
	raw := p.out.captured.Bytes()
	p.out.captured.Reset()
	if err != nil {
		return err
	}
	if err := renameSparseRecords(raw); err != nil {
		return err
	}
	if _, err := p.out.w.Write(raw); err != nil {
		return err
	}
	if _, err := p.tw.Write(mapText); err != nil {
		return err
	}
	for _, r := range runs {
		for off := r.off; off < r.end(); {
			if err := p.ctx.Err(); err != nil {
				return err
			}
			n, err := f.ReadAt(p.buf[:min(int64(len(p.buf)), r.end()-off)], off)
			if n > 0 {
				if _, werr := p.tw.Write(p.buf[:n]); werr != nil {
					return fmt.Errorf("copy content: %w", werr)
				}
				off += int64(n)
			}
			if errors.Is(err, io.EOF) && off < r.end() {
				return fmt.Errorf("file shrank below %d bytes while packing", e.Size)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("copy content: %w", err)
			}
		}
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != e.Size {
		return fmt.Errorf("file size changed from %d bytes while packing", e.Size)
	}
	return nil
}

// renameSparseRecords turns the placeholder record names in the PAX
// header that starts raw (an 'x' block, its records, then the entry's own
// block) into GNU.sparse.* names.
func renameSparseRecords(raw []byte) error {
	if len(raw) < 2*blockSize || raw[156] != tar.TypeXHeader {
		return errors.New("sparse header: no PAX records")
	}
	size, err := parseNumeric(raw[124:136])
	if err != nil || size < 0 || blockSize+size > int64(len(raw)) {
		return errors.New("sparse header: bad PAX size")
	}
	recs := raw[blockSize : blockSize+size]
	for len(recs) > 0 {
		sp := bytes.IndexByte(recs, ' ')
		if sp <= 0 {
			return errors.New("sparse header: bad PAX record")
		}
		n, err := strconv.Atoi(string(recs[:sp]))
		if err != nil || n <= sp || n > len(recs) {
			return errors.New("sparse header: bad PAX record")
		}
		if key := recs[sp+1 : n]; bytes.HasPrefix(key, []byte(sparsePlaceholder)) {
			copy(key, sparsePrefix)
		}
		recs = recs[n:]
	}
	return nil
}
