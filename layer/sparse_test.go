//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// sparseSample is a file with a few data regions in a huge apparent size.
type sparseSample struct {
	size int64
	data map[int64]string // offset -> bytes
}

var tib = sparseSample{size: 1 << 40, data: map[int64]string{0: "hello", 1 << 39: "middle", 1<<40 - 3: "end"}}

// write makes the sample at p without writing its holes.
func (s sparseSample) write(t testing.TB, p string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(s.size); err != nil {
		t.Fatal(err)
	}
	for off, d := range s.data {
		if _, err := f.WriteAt([]byte(d), off); err != nil {
			t.Fatal(err)
		}
	}
}

// check verifies that p holds the sample, with its holes costing no disk.
func (s sparseSample) check(t testing.TB, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != s.size {
		t.Errorf("%s: size %d, want %d", p, st.Size, s.size)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("%s: %d bytes of disk, want < 1 MiB (holes materialised)", p, used)
	}
	for off, d := range s.data {
		got := make([]byte, len(d)+2)
		n, _ := f.ReadAt(got, off-1)
		want := "\x00" + d + "\x00"
		if off == 0 {
			n, _ = f.ReadAt(got[1:], 0)
			n++
		}
		if off+int64(len(d)) == s.size {
			want = want[:len(want)-1]
		}
		if string(got[:n]) != want {
			t.Errorf("%s at %d: %q, want %q", p, off, got[:n], want)
		}
	}
	// A byte in a hole reads as zero.
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, s.size/3+7); err != nil || b[0] != 0 {
		t.Errorf("%s: hole byte %v, %v", p, b, err)
	}
}

// gnuTarSparse archives dir with GNU tar -S in format ("gnu" for the old
// GNU 'S' type, else a PAX sparse version: 0.0, 0.1, 1.0).
func gnuTarSparse(t testing.TB, dir, format string) []byte {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar not installed")
	}
	args := []string{"-cS", "--format=gnu"}
	if format != "gnu" {
		args = []string{"-cS", "--format=posix", "--sparse-version=" + format}
	}
	cmd := exec.Command("tar", append(args, "-f", "-", "-C", dir, ".")...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, stderr.String())
	}
	return out.Bytes()
}

func TestApplySparseFormats(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	tib.write(t, filepath.Join(src, "big"))
	small := sparseSample{size: 3 << 20, data: map[int64]string{1 << 20: "x", 3<<20 - 1: "z"}}
	small.write(t, filepath.Join(src, "small"))
	if err := os.WriteFile(filepath.Join(src, "zafter"), []byte("after the sparse files\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "0.0", "0.1", "1.0"} {
		t.Run(format, func(t *testing.T) {
			blob := gnuTarSparse(t, src, format)
			for _, gz := range []bool{false, true} {
				in := blob
				if gz {
					in = gzipBytes(t, blob)
				}
				dst := t.TempDir()
				start := time.Now()
				got, err := Apply(context.Background(), dst, bytes.NewReader(in), ApplyOptions{Whiteouts: WhiteoutReject})
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("Apply took %v: holes were read", d)
				}
				if want := digest.FromBytes(blob); got != want {
					t.Errorf("diffID %s, want %s", got, want)
				}
				tib.check(t, filepath.Join(dst, "big"))
				small.check(t, filepath.Join(dst, "small"))
				if b, err := os.ReadFile(filepath.Join(dst, "zafter")); err != nil || string(b) != "after the sparse files\n" {
					t.Errorf("file after the sparse entries: %q, %v", b, err)
				}
			}
		})
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeroTarGz streams a gzipped tar holding one file of n zero bytes into w.
func zeroTarGz(w io.Writer, n int64) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: n, Format: tar.FormatPAX}); err != nil {
		return err
	}
	var buf [1 << 20]byte
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := tw.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func TestApplyExpansionBound(t *testing.T) {
	requireRoot(t)
	var bomb bytes.Buffer
	if err := zeroTarGz(&bomb, 256<<20); err != nil {
		t.Fatal(err)
	}
	t.Logf("256 MiB of zeros: %d bytes compressed", bomb.Len())
	for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete, WhiteoutReject} {
		dst := t.TempDir()
		start := time.Now()
		_, err := Apply(context.Background(), dst, bytes.NewReader(bomb.Bytes()), ApplyOptions{Whiteouts: mode})
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("mode %d: Apply = %v, want ErrTooLarge", mode, err)
		}
		t.Logf("mode %d: %v after %v", mode, err, time.Since(start))
		if !strings.Contains(err.Error(), `apply "zeros"`) || !strings.Contains(err.Error(), "at most 64x + 64.0 MiB") {
			t.Errorf("error %q: want the entry and the bound named", err)
		}
		if used := diskUse(t, dst); used > expansionSlack+maxExpansion*int64(bomb.Len())+2*sparseBlock {
			t.Errorf("wrote %d bytes before stopping", used)
		}
	}
	// A plain tar expands 1x: big files of zeros are fine.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 80 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, 80<<20)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(tb.Bytes()), ApplyOptions{}); err != nil {
		t.Errorf("plain 80 MiB tar: %v", err)
	}
}

// diskUse is the disk space the files below dir take.
func diskUse(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	seen := map[uint64]bool{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// sparseTar writes a PAX 1.0 sparse entry by hand: data fragments at
// offsets in a file of apparent size size.
func sparseTar(t testing.TB, name string, size int64, frags []fragment, stored int64) []byte {
	t.Helper()
	var m bytes.Buffer
	fmt.Fprintf(&m, "%d\n", len(frags))
	var data int64
	for _, f := range frags {
		fmt.Fprintf(&m, "%d\n%d\n", f.off, f.len)
		data += f.len
	}
	for m.Len()%blockSize != 0 {
		m.WriteByte(0)
	}
	if stored < 0 {
		stored = data
	}
	var buf bytes.Buffer
	hdr := &tar.Header{Name: "GNUSparseFile.0/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(m.Len()) + stored,
		Format: tar.FormatPAX, PAXRecords: map[string]string{"XNU.sparse.major": "1", "XNU.sparse.minor": "0",
			"XNU.sparse.name": name, "XNU.sparse.realsize": fmt.Sprint(size)}}
	var raw bytes.Buffer
	rtw := tar.NewWriter(&raw)
	if err := rtw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	buf.Write(bytes.ReplaceAll(raw.Bytes(), []byte("XNU.sparse."), []byte("GNU.sparse.")))
	buf.Write(m.Bytes())
	buf.Write(bytes.Repeat([]byte{'d'}, int(stored)))
	for buf.Len()%blockSize != 0 {
		buf.WriteByte(0)
	}
	end := tar.NewWriter(&buf)
	if err := end.WriteHeader(&tar.Header{Name: "after", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	end.Write([]byte("ok"))
	end.Close()
	return buf.Bytes()
}

func TestApplySparseHostile(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name   string
		blob   []byte
		want   string // error fragment; "" = applies
		check  func(t *testing.T, dir string)
		reject bool
	}{
		{"1 TiB, no data", sparseTar(t, "f", 1<<40, nil, -1), "", func(t *testing.T, dir string) {
			sparseSample{size: 1 << 40}.check(t, filepath.Join(dir, "f"))
		}, false},
		{"8 EiB", sparseTar(t, "f", 1<<62, nil, -1), "exceeds the unpack bounds", nil, false},
		{"fragments beyond the size", sparseTar(t, "f", 10, []fragment{{5, 10}}, -1), "invalid tar header", nil, false},
		{"fragments overlap", sparseTar(t, "f", 100, []fragment{{5, 10}, {8, 10}}, -1), "invalid tar header", nil, false},
		{"stored more than the map says", sparseTar(t, "f", 100, []fragment{{5, 10}}, 20), "", nil, true},
		{"stored less than the map says", sparseTar(t, "f", 100, []fragment{{5, 10}}, 4), "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Apply(context.Background(), dir, bytes.NewReader(c.blob), ApplyOptions{Whiteouts: WhiteoutReject})
			t.Logf("err = %v", err)
			switch {
			case c.reject && err == nil:
				t.Fatal("applied")
			case c.reject:
			case c.want == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Apply = %v, want %q", err, c.want)
			}
			if c.check != nil {
				c.check(t, dir)
			}
			if used := diskUse(t, dir); used > 1<<20 {
				t.Errorf("%d bytes of disk used", used)
			}
		})
	}
	// Archive/tar agrees with the hand-made entries.
	tr := tar.NewReader(bytes.NewReader(sparseTar(t, "f", 20, []fragment{{5, 3}}, -1)))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	if hdr.Name != "f" || string(b) != "\x00\x00\x00\x00\x00ddd"+strings.Repeat("\x00", 12) {
		t.Errorf("archive/tar reads %q %q", hdr.Name, b)
	}
}

func TestPackSparse(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	tib.write(t, filepath.Join(src, "big"))
	// Explicit zeros inside data count as holes: the map depends on the
	// content, not on how the file was written.
	zeros := sparseSample{size: 64 << 20, data: map[int64]string{0: "a", 40 << 20: "b"}}
	zeros.write(t, filepath.Join(src, "zeros"))
	zf, err := os.OpenFile(filepath.Join(src, "zeros"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zf.WriteAt(make([]byte, 1<<20), 8<<20); err != nil {
		t.Fatal(err)
	}
	zf.Close()
	if err := os.WriteFile(filepath.Join(src, "dense"), bytes.Repeat([]byte("dense\x00"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	es, err := DirEntries(src)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	blob, p := pack(t, es, PackOptions{})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Pack took %v", d)
	}
	t.Logf("packed: %d bytes, %s", len(blob), p.DiffID)
	if len(blob) > 64<<10 {
		t.Errorf("layer of %d bytes: holes were packed", len(blob))
	}
	// Deterministic.
	if blob2, _ := pack(t, es, PackOptions{}); !bytes.Equal(blob, blob2) {
		t.Error("two packs differ")
	}
	var names []string
	for _, h := range tarHeaders(t, blob) {
		names = append(names, fmt.Sprintf("%s %d", h.Name, h.Size))
	}
	if want := "big 1099511627776, dense 60000, zeros 67108864"; strings.Join(names, ", ") != want {
		t.Errorf("archive/tar reads %q, want %q", strings.Join(names, ", "), want)
	}
	dst := t.TempDir()
	applyBytes(t, dst, blob, WhiteoutReject)
	tib.check(t, filepath.Join(dst, "big"))
	zeros.check(t, filepath.Join(dst, "zeros"))
	if b, err := os.ReadFile(filepath.Join(dst, "dense")); err != nil || !bytes.Equal(b, bytes.Repeat([]byte("dense\x00"), 10000)) {
		t.Errorf("dense file: %d bytes, %v", len(b), err)
	}

	// GNU tar extracts it, holes and all.
	if _, err := exec.LookPath("tar"); err == nil {
		out := t.TempDir()
		cmd := exec.Command("tar", "-xzf", "-", "-C", out)
		cmd.Stdin = bytes.NewReader(blob)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("GNU tar: %v\n%s", err, msg)
		}
		tib.check(t, filepath.Join(out, "big"))
		zeros.check(t, filepath.Join(out, "zeros"))
	}
}

func TestSparseMapCoarsens(t *testing.T) {
	var runs []fragment
	for i := int64(0); i < 100000; i++ {
		runs = append(runs, fragment{i * 3 * sparseBlock, sparseBlock})
	}
	size := int64(300000 * sparseBlock)
	text, got := sparseMap(runs, size)
	if len(text) > maxMapText {
		t.Fatalf("map of %d bytes", len(text))
	}
	if len(got) >= len(runs) || got[0].off != 0 {
		t.Fatalf("%d runs", len(got))
	}
	// Every original run is inside a coarse one.
	j := 0
	for _, r := range runs {
		for got[j].end() < r.end() {
			j++
		}
		if got[j].off > r.off {
			t.Fatalf("run %v not covered by %v", r, got[j])
		}
	}
}
