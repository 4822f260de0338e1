package layer

import (
	"errors"
	"fmt"
	"io"
)

// Bounds of one Apply. A layer or an ADD archive is untrusted: a few KB of
// compressed tar must not be able to fill the disk or keep us busy for
// hours.
//
// Expansion: the uncompressed tar stream may hold at most maxExpansion
// bytes per compressed byte read, plus expansionSlack. Every byte Apply
// writes (file data, never the holes of sparse files) comes from that
// stream, so this bounds the bytes written as well, and the time spent.
// Real layers compress 2-5x (binaries, packages), text and JSON 10-20x;
// 64x leaves a wide margin for them, while a gzip bomb (zeros compress
// about 1000x) is stopped after about 68 MiB of output, in well under a
// second. The slack admits small, very repetitive archives whole (a few MB
// of padding in a 100 KB layer). A plain (uncompressed) tar never crosses
// the bound: it expands 1x.
//
// Apparent size: the sizes of the regular files one apply creates, holes
// included, add up to at most maxApparent. Holes cost no disk, but whoever
// reads the files later without seeking holes pays for them. 4 TiB admits
// the largest sparse file commonly found in images, /var/log/lastlog after
// useradd of a uid near 2^32 (292 bytes per uid: 1.2 TB), with room to
// spare, and stays below ext4's 16 TiB file size limit.
const (
	maxExpansion   = 64
	expansionSlack = 64 << 20
	maxApparent    = 4 << 40
)

// ErrTooLarge is returned (wrapped) when an apply crosses one of its bounds.
var ErrTooLarge = errors.New("archive exceeds the unpack bounds")

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// maxRecord bounds what tarStream keeps of one tar.Reader.Next call: the
// headers of one entry (archive/tar allows 1 MiB of PAX records, 1 MiB of
// GNU long name or link and 1 MiB of sparse map, and PAX headers may
// chain). Only a sparse entry needs them; one whose headers take more is
// refused.
const maxRecord = 8 << 20

// tarStream sits between the decompressed stream and archive/tar. It
// enforces the expansion bound, records the raw header bytes tar.Reader
// reads in Next (archive/tar reads sparse maps but does not expose them;
// parseSparse reads them from the record), and lets Apply read the data of
// a sparse entry itself, skipping the holes archive/tar would expand to
// zeros. The bytes read that way are owed to tar.Reader, which skips them
// (Seek) when it moves to the next entry.
type tarStream struct {
	r          io.Reader    // the uncompressed stream (hashed for the diffID)
	compressed *countReader // the compressed input, for the expansion bound
	out        int64        // uncompressed bytes read
	owed       int64        // bytes read directly that tar.Reader still has to skip
	pos        int64        // tar.Reader's position in the stream (owed bytes included)

	recording bool
	rec       []byte
	recStart  int64 // tar.Reader's position where the record starts
	recLost   bool  // more than maxRecord bytes were read
}

// Read serves tar.Reader.
func (s *tarStream) Read(p []byte) (int, error) {
	if s.owed > 0 {
		// Only discard reads an owed byte, after Seek skipped the rest.
		n := int(min(int64(len(p)), s.owed))
		clear(p[:n])
		s.owed -= int64(n)
		s.pos += int64(n)
		return n, nil
	}
	n, err := s.read(p)
	s.pos += int64(n)
	if s.recording && n > 0 {
		if len(s.rec)+n > maxRecord {
			s.recLost = true
		} else {
			s.rec = append(s.rec, p[:n]...)
		}
	}
	return n, err
}

// Seek lets tar.Reader skip the bytes Apply read directly, and nothing else.
func (s *tarStream) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 || offset > s.owed {
		return 0, fmt.Errorf("tar framing: skip of %d bytes where %d were read ahead", offset, s.owed)
	}
	s.owed -= offset
	s.pos += offset
	return s.pos, nil
}

// direct reads the data of the current (sparse) entry past tar.Reader,
// which is told to skip as many bytes.
func (s *tarStream) direct(p []byte) (int, error) {
	n, err := s.read(p)
	s.owed += int64(n)
	return n, err
}

// read reads from the stream and checks the expansion bound: no byte past
// it is handed out.
func (s *tarStream) read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if limit := maxExpansion*s.compressed.n + expansionSlack; s.out+int64(n) > limit {
		keep := max(0, limit-s.out)
		s.out += int64(n)
		return int(keep), fmt.Errorf("%w: more than %s unpacked from %s compressed (at most %dx + %s)",
			ErrTooLarge, sizeString(limit), sizeString(s.compressed.n), maxExpansion, sizeString(expansionSlack))
	}
	s.out += int64(n)
	return n, err
}

// record starts keeping what tar.Reader reads; the owed bytes it skips
// first are not part of it.
func (s *tarStream) record() {
	s.recording, s.rec, s.recLost = true, s.rec[:0], false
	s.recStart = s.pos + s.owed
}

// stop ends the record and returns it (valid until the next record).
func (s *tarStream) stop() ([]byte, bool) {
	s.recording = false
	return s.rec, !s.recLost
}

// sizeString prints a byte count for error messages.
func sizeString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
