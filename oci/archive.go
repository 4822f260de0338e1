package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/builderdev/builder/internal/ctxio"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// archive is a tar file read as a hostile input: entries are looked up by
// name only, nothing is extracted, links are followed inside the archive's
// own namespace and never outside it. Reading is sequential, so an import
// takes two passes: scanArchive (headers and small metadata files), then
// each (streams the wanted entries).
type archive struct {
	path    string
	entries map[string]tarEntry
	meta    map[string][]byte // the metadata files below, when present
}

type tarEntry struct {
	typ  byte
	link string
}

// metaFiles are read into memory by the first pass.
var metaFiles = []string{layoutFile, indexFile, "manifest.json"}

const maxLinkDepth = 16

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// openTar opens path as a tar stream, decompressing a gzip or zstd
// wrapper. A plain tar is read through a seeker, so skipped entries are
// seeked over. What is read leaves the page cache behind the reader past
// the first directFrom bytes (stream.go): each of load's two passes reads
// what it needs once (a plain tar's scan only its headers).
func openTar(path string) (*tar.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	magic := make([]byte, 4)
	n, _ := f.ReadAt(magic, 0)
	magic = magic[:n]
	db := newDropBehind(f)
	closeFile := func() { db.finish(); _ = f.Close() }
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		zr, err := gzip.NewReader(bufio.NewReader(db))
		if err != nil {
			closeFile()
			return nil, nil, err
		}
		return tar.NewReader(zr), func() { zr.Close(); closeFile() }, nil
	case bytes.HasPrefix(magic, magicZstd):
		zr, err := zstd.NewReader(db)
		if err != nil {
			closeFile()
			return nil, nil, err
		}
		return tar.NewReader(zr), func() { zr.Close(); closeFile() }, nil
	}
	return tar.NewReader(db), closeFile, nil
}

// scanArchive reads every header of the tar at path, rejecting unsafe or
// duplicate names, and keeps the small metadata files in memory.
func scanArchive(ctx context.Context, path string) (*archive, error) {
	tr, done, err := openTar(path)
	if err != nil {
		return nil, err
	}
	defer done()
	a := &archive{path: path, entries: map[string]tarEntry{}, meta: map[string][]byte{}}
	prev := ""
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readError(prev, err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		prev = hdr.Name
		if name == "" {
			continue
		}
		if _, dup := a.entries[name]; dup {
			return nil, fmt.Errorf("duplicate archive entry %q", name)
		}
		a.entries[name] = tarEntry{typ: hdr.Typeflag, link: hdr.Linkname}
		if isRegular(hdr.Typeflag) && isMetaFile(name) {
			if hdr.Size > maxJSONSize {
				return nil, fmt.Errorf("archive entry %s: larger than %d bytes", name, maxJSONSize)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			a.meta[name] = data
		}
	}
	if len(a.entries) == 0 {
		return nil, errors.New("empty or not a tar archive")
	}
	return a, nil
}

func isMetaFile(name string) bool {
	for _, m := range metaFiles {
		if name == m {
			return true
		}
	}
	return false
}

func isRegular(typ byte) bool { return typ == tar.TypeReg || typ == '\x00' }

// cleanEntryName strips "./" and a trailing "/" and refuses absolute names
// and names with "..", empty or "." elements. "" means the archive root.
func cleanEntryName(name string) (string, error) {
	n := name
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", nil
	}
	if path.IsAbs(n) || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("unsafe archive entry name %q", name)
	}
	return n, nil
}

// resolve follows symlinks and hardlinks inside the archive to a regular
// file entry. Links to absolute paths or out of the archive are refused.
func (a *archive) resolve(name string) (string, error) {
	start := name
	for range maxLinkDepth {
		e, ok := a.entries[name]
		if !ok {
			return "", fmt.Errorf("archive has no entry %s: %w", name, ErrNotFound)
		}
		switch e.typ {
		case tar.TypeReg, '\x00':
			return name, nil
		case tar.TypeSymlink:
			if path.IsAbs(e.link) {
				return "", fmt.Errorf("archive entry %s: unsafe link to %q", name, e.link)
			}
			target := path.Join(path.Dir(name), e.link)
			if target == ".." || strings.HasPrefix(target, "../") {
				return "", fmt.Errorf("archive entry %s: unsafe link to %q", name, e.link)
			}
			name = target
		case tar.TypeLink:
			target, err := cleanEntryName(e.link)
			if err != nil || target == "" {
				return "", fmt.Errorf("archive entry %s: unsafe link to %q", name, e.link)
			}
			name = target
		default:
			return "", fmt.Errorf("archive entry %s is not a regular file", name)
		}
	}
	return "", fmt.Errorf("archive entry %s: too many levels of links", start)
}

// entryPath checks a path named by archive metadata (manifest.json) and
// resolves it to a regular entry.
func (a *archive) entryPath(p string) (string, error) {
	n, err := cleanEntryName(p)
	if err != nil || n == "" || n != p {
		return "", fmt.Errorf("unsafe path %q in archive metadata", p)
	}
	return a.resolve(n)
}

// each streams the wanted regular entries to fn, in archive order. Every
// wanted entry must be seen.
func (a *archive) each(ctx context.Context, wanted map[string]bool, fn func(name string, r io.Reader) error) error {
	if len(wanted) == 0 {
		return nil
	}
	tr, done, err := openTar(a.path)
	if err != nil {
		return err
	}
	defer done()
	seen, prev := 0, ""
	for seen < len(wanted) {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readError(prev, err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		prev = hdr.Name
		if !wanted[name] || !isRegular(hdr.Typeflag) {
			continue
		}
		seen++
		if err := fn(name, ctxio.Reader(ctx, tr)); err != nil {
			return err
		}
	}
	if seen < len(wanted) {
		return errors.New("archive changed while reading it")
	}
	return nil
}

// readError reports a failed tar.Next: a truncated archive usually fails
// while skipping the data of the previous entry, so name it.
func readError(prev string, err error) error {
	if prev == "" {
		return fmt.Errorf("read archive: not a tar file: %w", err)
	}
	return fmt.Errorf("read archive entry %s: %w", prev, err)
}
