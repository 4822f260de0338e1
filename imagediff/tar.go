package imagediff

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // sha384 and sha512 blob digests
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerScan is what one layer tar holds, as metadata only.
type layerScan struct {
	entries map[string]*entry // by normalized path; a repeated path: the last one wins
	order   []string          // normalized paths in tar order, repeats included
	diffID  digest.Digest     // sha256 of the whole uncompressed stream
}

// entry holds the compared attributes of one tar entry.
type entry struct {
	typeflag     byte
	mode         int64
	uid, gid     int
	uname, gname string
	mtime        time.Time
	atime, ctime time.Time
	link         string
	devmajor     int64
	devminor     int64
	sum          [sha256.Size]byte // content of regular files
	size         int64
	xattrs       map[string]string // SCHILY.xattr.* records, by xattr name
	pax          map[string]string // other PAX records
	format       tar.Format
}

// paxCovered reports whether a PAX record is already compared as an attribute.
func paxCovered(key string) bool {
	switch key {
	case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
		return true
	}
	return strings.HasPrefix(key, xattrPrefix)
}

const xattrPrefix = "SCHILY.xattr."

// scanLayer reads a layer blob: each entry's metadata and content digest,
// the digest of the whole uncompressed stream (trailing padding included),
// and a check of the blob against its digest.
func scanLayer(ctx context.Context, br BlobReader, desc ocispec.Descriptor) (*layerScan, error) {
	rc, err := br.OpenBlob(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	verifier := desc.Digest.Verifier()
	raw := io.TeeReader(ctxio.Reader(ctx, rc), verifier)
	s, err := scanStream(ctx, raw)
	if err == nil {
		// Compressed streams may end before the blob does; hash the rest.
		_, err = io.Copy(io.Discard, raw)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if !verifier.Verified() {
		return nil, fmt.Errorf("verify blob %s: content does not match the digest", desc.Digest)
	}
	return s, nil
}

func scanStream(ctx context.Context, raw io.Reader) (*layerScan, error) {
	dec, err := layer.Decompress(raw)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	uh := sha256.New()
	ur := io.TeeReader(dec, uh)
	tr := tar.NewReader(ur)
	s := &layerScan{entries: make(map[string]*entry)}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar entry %d: %w", len(s.order), err)
		}
		e, err := newEntry(h, tr)
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", h.Name, err)
		}
		name := compact(cleanName(h.Name), maxName)
		s.entries[name] = e
		s.order = append(s.order, name)
	}
	// The end-of-archive blocks, any extra padding or garbage after them.
	if _, err := io.Copy(io.Discard, ur); err != nil {
		return nil, fmt.Errorf("read tar end: %w", err)
	}
	s.diffID = digest.NewDigest(digest.SHA256, uh)
	return s, nil
}

// cleanName makes an absolute path of a tar entry name: "./a/", "/a" and
// "a" are all "/a"; ".", "./" and "" are "/".
func cleanName(n string) string {
	// "./a", "/a", "a/", "a//b" and "a/./b" all name /a or /a/b, as an
	// extractor sees them; ".." stays, for the report to show it.
	parts := strings.Split(n, "/")
	parts = slices.DeleteFunc(parts, func(p string) bool { return p == "" || p == "." })
	return "/" + strings.Join(parts, "/")
}

// Hostile tars may carry names and PAX values of up to a MiB each (the
// tar reader's limit): longer than these, only a prefix and a digest are
// kept, so memory stays per entry and the report readable.
const (
	maxName  = 4096 // PATH_MAX
	maxValue = 256
)

// compact returns s, or when longer than limit a prefix of it and the
// digest and length of the whole.
func compact(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return fmt.Sprintf("%s…(sha256:%x, %d bytes)", s[:limit/4], sha256.Sum256([]byte(s)), len(s))
}

func newEntry(h *tar.Header, content io.Reader) (*entry, error) {
	e := &entry{
		typeflag: h.Typeflag,
		mode:     h.Mode & 07777,
		uid:      h.Uid,
		gid:      h.Gid,
		uname:    h.Uname,
		gname:    h.Gname,
		mtime:    h.ModTime,
		atime:    h.AccessTime,
		ctime:    h.ChangeTime,
		format:   h.Format,
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		e.link = compact(h.Linkname, maxName)
	case tar.TypeLink:
		e.link = compact(cleanName(h.Linkname), maxName)
	case tar.TypeChar, tar.TypeBlock:
		e.devmajor, e.devminor = h.Devmajor, h.Devminor
	}
	if isRegular(h.Typeflag) {
		hash := sha256.New()
		n, err := io.Copy(hash, content)
		if err != nil {
			return nil, err
		}
		hash.Sum(e.sum[:0])
		e.size = n
	}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if e.xattrs == nil {
				e.xattrs = make(map[string]string)
			}
			e.xattrs[compact(x, maxName)] = compact(v, maxValue)
		} else if !paxCovered(k) {
			if e.pax == nil {
				e.pax = make(map[string]string)
			}
			e.pax[compact(k, maxName)] = compact(v, maxValue)
		}
	}
	return e, nil
}

func isRegular(flag byte) bool {
	switch flag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		return true
	}
	return false
}

func typeName(flag byte) string {
	switch {
	case isRegular(flag):
		return "file"
	case flag == tar.TypeDir:
		return "dir"
	case flag == tar.TypeSymlink:
		return "symlink"
	case flag == tar.TypeLink:
		return "hardlink"
	case flag == tar.TypeChar:
		return "char"
	case flag == tar.TypeBlock:
		return "block"
	case flag == tar.TypeFifo:
		return "fifo"
	case flag == tar.TypeXGlobalHeader:
		return "pax-global-header"
	}
	return fmt.Sprintf("typeflag %q", rune(flag))
}

func (e *entry) content() string {
	if !isRegular(e.typeflag) {
		return ""
	}
	return fmt.Sprintf("sha256:%x %d bytes", e.sum, e.size)
}

func (e *entry) dev() string {
	if e.typeflag != tar.TypeChar && e.typeflag != tar.TypeBlock {
		return ""
	}
	return fmt.Sprintf("%d:%d", e.devmajor, e.devminor)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// diffScans lists the paths that differ, sorted.
func diffScans(a, b *layerScan) []FileDiff {
	var out []FileDiff
	for p, ea := range a.entries {
		eb, ok := b.entries[p]
		if !ok {
			out = append(out, FileDiff{Path: p, Change: "removed"})
			continue
		}
		if attrs := diffEntry(ea, eb); len(attrs) > 0 {
			out = append(out, FileDiff{Path: p, Change: "changed", Attrs: attrs})
		}
	}
	for p := range b.entries {
		if _, ok := a.entries[p]; !ok {
			out = append(out, FileDiff{Path: p, Change: "added"})
		}
	}
	slices.SortFunc(out, func(x, y FileDiff) int { return strings.Compare(x.Path, y.Path) })
	return out
}

// diffEntry lists the attributes of two entries that differ, in a fixed order.
func diffEntry(a, b *entry) []AttrDiff {
	var out []AttrDiff
	add := func(name, x, y string) {
		if x != y {
			out = append(out, AttrDiff{Name: name, A: x, B: y})
		}
	}
	add("type", typeName(a.typeflag), typeName(b.typeflag))
	if a.sum != b.sum || a.size != b.size || isRegular(a.typeflag) != isRegular(b.typeflag) {
		add("content", a.content(), b.content())
	}
	if a.mode != b.mode {
		add("mode", fmt.Sprintf("%04o", a.mode), fmt.Sprintf("%04o", b.mode))
	}
	if a.uid != b.uid {
		add("uid", strconv.Itoa(a.uid), strconv.Itoa(b.uid))
	}
	if a.gid != b.gid {
		add("gid", strconv.Itoa(a.gid), strconv.Itoa(b.gid))
	}
	add("uname", a.uname, b.uname)
	add("gname", a.gname, b.gname)
	for _, t := range []struct {
		name string
		a, b time.Time
	}{{"mtime", a.mtime, b.mtime}, {"atime", a.atime, b.atime}, {"ctime", a.ctime, b.ctime}} {
		if !t.a.Equal(t.b) {
			add(t.name, formatTime(t.a), formatTime(t.b))
		}
	}
	add("link", a.link, b.link)
	add("dev", a.dev(), b.dev())
	diffRecords(&out, "xattr ", a.xattrs, b.xattrs)
	diffRecords(&out, "pax ", a.pax, b.pax)
	if a.format != b.format {
		add("format", a.format.String(), b.format.String())
	}
	return out
}

// diffRecords adds one AttrDiff per key whose value differs, values quoted
// with %q and "" for absent.
func diffRecords(out *[]AttrDiff, prefix string, a, b map[string]string) {
	if len(a) == 0 && len(b) == 0 {
		return
	}
	for _, k := range unionKeys(a, b) {
		va, okA := a[k]
		vb, okB := b[k]
		if okA == okB && va == vb {
			continue
		}
		d := AttrDiff{Name: prefix + k}
		if okA {
			d.A = fmt.Sprintf("%q", va)
		}
		if okB {
			d.B = fmt.Sprintf("%q", vb)
		}
		*out = append(*out, d)
	}
}
