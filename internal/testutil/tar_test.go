package testutil

import (
	"archive/tar"
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// TestTarRoundTrip writes hostile and odd entries verbatim, with defaults
// only for zero fields, and reads them back.
func TestTarRoundTrip(t *testing.T) {
	mtime := time.Unix(1234, 0)
	ents := []TarEntry{
		TarDir("d/"),
		TarFile("d/f", "data"),
		TarFile("../x", "escape"),
		TarFile("/abs", ""),
		TarFile("a/.wh.b", ""),
		TarLink("s", "/etc/passwd", tar.TypeSymlink),
		TarLink("h", "../../x", tar.TypeLink),
		{Header: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
		{Header: tar.Header{Name: "p", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mtime, Uid: 1000, Gid: 10,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}},
		TarFile("d/f", "duplicate"),
	}
	path := filepath.Join(t.TempDir(), "x.tar")
	WriteTar(t, path, ents...)
	got := ReadTar(t, path)
	if len(got) != len(ents) {
		t.Fatalf("read %d entries, wrote %d", len(got), len(ents))
	}
	for i, g := range got {
		w := ents[i].Header
		h := g.Header
		wantMode := map[byte]int64{tar.TypeDir: 0o755, tar.TypeSymlink: 0o777}[w.Typeflag]
		if wantMode == 0 {
			wantMode = 0o644
		}
		if w.Mode != 0 {
			wantMode = w.Mode
		}
		wantTime := time.Unix(1e9, 0)
		if !w.ModTime.IsZero() {
			wantTime = w.ModTime
		}
		if h.Name != w.Name || h.Typeflag != w.Typeflag || h.Linkname != w.Linkname || h.Mode != wantMode ||
			!h.ModTime.Equal(wantTime) || h.Uid != w.Uid || h.Gid != w.Gid || h.Devmajor != w.Devmajor || h.Devminor != w.Devminor ||
			h.Size != int64(len(ents[i].Data)) || !bytes.Equal(g.Data, ents[i].Data) {
			t.Errorf("entry %d: got %+v %q, wrote %+v %q", i, h, g.Data, w, ents[i].Data)
		}
		for k, v := range w.PAXRecords {
			if h.PAXRecords[k] != v {
				t.Errorf("entry %d: pax %s = %q, want %q", i, k, h.PAXRecords[k], v)
			}
		}
	}
	// Read entries written back give the same archive.
	if again := TarBytes(t, got...); !bytes.Equal(again, TarBytes(t, ents...)) {
		t.Error("ReadTar then TarBytes changed the archive")
	}
}

func TestTarBytesEmpty(t *testing.T) {
	b := TarBytes(t)
	if _, err := tar.NewReader(bytes.NewReader(b)).Next(); err != io.EOF {
		t.Errorf("empty tar: Next = %v, want EOF", err)
	}
}
