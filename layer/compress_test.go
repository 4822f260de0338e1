package layer

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// compressWith compresses data with an in-process encoder or a real tool.
func compressWith(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "plain":
		return data
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
	case "bzip2", "xz":
		if _, err := exec.LookPath(format); err != nil {
			t.Skipf("%s not installed", format)
		}
		cmd := exec.Command(format, "-c")
		cmd.Stdin, cmd.Stdout = bytes.NewReader(data), &buf
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
	default:
		t.Fatalf("unknown format %s", format)
	}
	return buf.Bytes()
}

func TestDecompressAndIsArchive(t *testing.T) {
	tarball := testutil.TarBytes(t, testutil.TarFile("hello.txt", "hello"))
	emptyTar := testutil.TarBytes(t)
	text := bytes.Repeat([]byte("not a tar at all\n"), 100)
	formats := []string{"plain", "gzip", "zstd", "bzip2", "xz"}
	dir := t.TempDir()
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			for _, c := range []struct {
				name      string
				data      []byte
				isArchive bool
			}{
				{"tar", tarball, true},
				{"empty tar", emptyTar, false},
				{"text", text, false},
			} {
				blob := compressWith(t, f, c.data)
				rc, err := Decompress(bytes.NewReader(blob))
				if err != nil {
					t.Fatalf("%s: Decompress: %v", c.name, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, c.data) {
					t.Errorf("%s: round trip failed: %v", c.name, err)
				}
				p := filepath.Join(dir, f+"-"+c.name)
				if err := os.WriteFile(p, blob, 0o644); err != nil {
					t.Fatal(err)
				}
				if ok, err := IsArchive(p); err != nil || ok != c.isArchive {
					t.Errorf("%s: IsArchive = %v, %v; want %v", c.name, ok, err, c.isArchive)
				}
			}
		})
	}
	for name, data := range map[string][]byte{
		"empty":        nil,
		"short":        []byte("x"),
		"broken gzip":  {0x1f, 0x8b, 0x08, 0, 1, 2},
		"broken xz":    append([]byte("\xfd7zXZ\x00"), bytes.Repeat([]byte{7}, 600)...),
		"zero block":   make([]byte, 512),
		"garbage 1024": bytes.Repeat([]byte{0xa5}, 1024),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, err := IsArchive(p); err != nil || ok {
			t.Errorf("%s: IsArchive = %v, %v; want false", name, ok, err)
		}
	}
	if _, err := IsArchive(filepath.Join(dir, "missing")); err == nil {
		t.Error("IsArchive of a missing file: no error")
	}
}

func TestDecompressXzError(t *testing.T) {
	rc, err := Decompress(bytes.NewReader(append([]byte("\xfd7zXZ\x00"), bytes.Repeat([]byte{7}, 600)...)))
	if err != nil {
		return // refused when opening: fine
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("corrupt xz read without error")
	}
}

// TestDiffID: the diffID of a blob in each format is the sha256 of its
// content (several chunks of the two-goroutine pipeline), and a blob cut
// short is an error, not a digest.
func TestDiffID(t *testing.T) {
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	want := digest.FromBytes(data)
	for _, format := range []string{"plain", "gzip", "zstd"} {
		blob := compressWith(t, format, data)
		got, err := DiffID(bytes.NewReader(blob))
		if err != nil || got != want {
			t.Errorf("%s: DiffID = %s, %v; want %s", format, got, err, want)
		}
		if format == "plain" {
			continue
		}
		if got, err := DiffID(bytes.NewReader(blob[:len(blob)/2])); err == nil {
			t.Errorf("%s cut in half: DiffID = %s, want an error", format, got)
		}
	}
}
