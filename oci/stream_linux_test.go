package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// resident returns how many of the pages of path in [from, to) are in the
// page cache, and how many pages that range has.
func resident(t *testing.T, path string, from, to int64) (cached, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(to), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	ps := int64(os.Getpagesize())
	vec := make([]byte, (to+ps-1)/ps)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i := (from + ps - 1) / ps; i < int64(len(vec)); i++ {
		pages++
		if vec[i]&1 != 0 {
			cached++
		}
	}
	return cached, pages
}

// noOwnCache reports whether dir's file system keeps no page cache of its
// own to drop: tmpfs, or overlayfs (its files' pages are the lower file
// system's, whose writeback sync_file_range does not start).
func noOwnCache(t *testing.T, dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.OVERLAYFS_SUPER_MAGIC
}

// TestExportDropsBigBlobPages: an export reads a big blob and writes its
// archive without leaving either in the page cache past their first
// directFrom bytes (stream.go), and the archive holds the blob whole.
func TestExportDropsBigBlobPages(t *testing.T) {
	defer func(old int64) { directFrom = old }(directFrom)
	directFrom = 1 << 20
	s := openStore(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	if noOwnCache(t, s.Root()) || noOwnCache(t, filepath.Dir(out)) {
		t.Skip("on tmpfs or overlayfs: no page cache of its own to leave")
	}
	data := testutil.RandomBytes(rand.New(rand.NewPCG(3, 4)), 40<<20)
	img := makeImage(t, s, "big:v1", map[string]string{"big.bin": string(data)})
	layer := img.Manifest.Layers[0]
	blob := filepath.Join(s.Root(), "blobs", "sha256", layer.Digest.Encoded())
	if _, err := os.ReadFile(blob); err != nil { // in the page cache now
		t.Fatal(err)
	}
	if err := s.Export(t.Context(), out, FormatOCI, []*Image{img}); err != nil {
		t.Fatal(err)
	}
	if cached, pages := resident(t, blob, directFrom, layer.Size); cached > pages/10 {
		t.Errorf("%d of the %d pages of the blob past directFrom are in the page cache after the export read it", cached, pages)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	// The writer drops all but what it wrote last (two chunks and a block).
	if cached, pages := resident(t, out, directFrom, fi.Size()-2*writebackChunk-dropAlign); cached > pages/10 {
		t.Errorf("%d of the %d pages of the archive past directFrom are in the page cache after the export wrote it", cached, pages)
	}
	checkArchiveBlob(t, out, layer.Digest)

	// Loaded into another store, the archive leaves the page cache behind
	// the reader too, and the blob arrives whole.
	if _, err := os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t)
	if _, err := s2.Load(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if cached, pages := resident(t, out, directFrom+dropAlign, fi.Size()-dropAlign); cached > pages/10 {
		t.Errorf("%d of the %d pages of the archive past directFrom are in the page cache after a load read it", cached, pages)
	}
	if size, err := s2.BlobSize(t.Context(), layer.Digest); err != nil || size != layer.Size {
		t.Errorf("loaded blob: %d bytes, %v; want %d", size, err, layer.Size)
	}
}

// checkArchiveBlob fails unless the archive at path holds the blob d whole.
func checkArchiveBlob(t *testing.T, path string, d digest.Digest) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("the archive has no blob %s", d)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != "blobs/sha256/"+d.Encoded() {
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			t.Fatal(err)
		}
		if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != d {
			t.Fatalf("the archive's blob %s holds %s", d, got)
		}
		return
	}
}

// TestWriteBehindPipe: where sync_file_range does not work (a pipe:
// ESPIPE; a seccomp filter may refuse it too), writeBehind writes plainly
// and loses nothing.
func TestWriteBehindPipe(t *testing.T) {
	defer func(old int64) { directFrom = old }(directFrom)
	directFrom = 0
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	data := testutil.RandomBytes(rand.New(rand.NewPCG(5, 6)), 3*writebackChunk+dropAlign+123)
	wb := newWriteBehind(w)
	for p := data; len(p) > 0; p = p[min(len(p), 1<<20):] {
		if _, err := wb.Write(p[:min(len(p), 1<<20)]); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the pipe got %d bytes, not the %d written", len(b), len(data))
	}
	if !wb.off {
		t.Error("writeBehind would wait for ranges of a pipe")
	}
}

// TestIngestWithoutDirectDropsPages: where O_DIRECT is refused, an ingest
// writes through the page cache, and its bytes past directFrom leave it
// as they go (writeBehind), as the direct writes would have kept them out.
func TestIngestWithoutDirectDropsPages(t *testing.T) {
	defer func(old int64) { directFrom = old }(directFrom)
	directFrom = 1 << 20
	s := openStore(t)
	if noOwnCache(t, s.Root()) {
		t.Skip("on tmpfs or overlayfs: no page cache of its own to leave")
	}
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.noDirect = true // as when the file system refuses O_DIRECT
	data := testutil.RandomBytes(rand.New(rand.NewPCG(7, 8)), 40<<20)
	for p := data; len(p) > 0; p = p[min(len(p), 1<<20):] {
		if _, err := w.Write(p[:min(len(p), 1<<20)]); err != nil {
			t.Fatal(err)
		}
	}
	d, _, err := w.Commit(digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if w.direct != nil {
		t.Fatal("the ingest wrote with O_DIRECT")
	}
	blob := filepath.Join(s.Root(), "blobs", "sha256", d.Encoded())
	if cached, pages := resident(t, blob, directFrom, int64(len(data))-2*writebackChunk-dropAlign); cached > pages/10 {
		t.Errorf("%d of the %d pages of the blob past directFrom are in the page cache after a buffered ingest", cached, pages)
	}
	if got, err := os.ReadFile(blob); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the blob holds %d bytes (%v), not the %d written", len(got), err, len(data))
	}
}
