package testutil

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// TarEntry is one member of a hand-built tar: the header is written as
// given, so tests can build hostile archives (names like "../x" or "/abs",
// links pointing anywhere, whiteouts, duplicates, pax records). Only what
// is left zero gets a default:
//
//	Typeflag  tar.TypeReg
//	Mode      0o755 for a dir, 0o777 for a symlink, 0o644 otherwise
//	ModTime   2001-09-09 01:46:40 UTC (Unix 1e9)
//	Format    tar.FormatPAX
//
// Size is always len(Data). A truncated archive is made by cutting the
// bytes TarBytes returns.
type TarEntry struct {
	Header tar.Header
	Data   []byte
}

// TarFile is a regular file entry holding data.
func TarFile(name, data string) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg}, Data: []byte(data)}
}

// TarDir is a directory entry.
func TarDir(name string) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir}}
}

// TarLink is a symlink (typ tar.TypeSymlink) or hardlink (tar.TypeLink)
// entry.
func TarLink(name, target string, typ byte) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: typ, Linkname: target}}
}

// TarBytes returns the uncompressed tar of ents, in order.
func TarBytes(t testing.TB, ents ...TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := writeTar(&buf, ents); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// WriteTar writes the tar of ents to the file path (mode 0644).
func WriteTar(t testing.TB, path string, ents ...TarEntry) {
	t.Helper()
	if err := os.WriteFile(path, TarBytes(t, ents...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadTar returns the entries of the tar file at path, headers as read
// (Format included) and bodies in Data, so that a test can change some and
// write them back with WriteTar.
func ReadTar(t testing.TB, path string) []TarEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []TarEntry
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar %s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar %s: %s: %v", path, hdr.Name, err)
		}
		out = append(out, TarEntry{Header: *hdr, Data: data})
	}
}

// writeTar writes ents to w as TarEntry describes.
func writeTar(w io.Writer, ents []TarEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range ents {
		h := e.Header
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			switch h.Typeflag {
			case tar.TypeDir:
				h.Mode = 0o755
			case tar.TypeSymlink:
				h.Mode = 0o777
			default:
				h.Mode = 0o644
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1e9, 0)
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		h.Size = int64(len(e.Data))
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("write tar entry %q: %w", h.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return fmt.Errorf("write tar entry %q: %w", h.Name, err)
		}
	}
	return tw.Close()
}
