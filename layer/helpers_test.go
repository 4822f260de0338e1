package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (chown, mknod, trusted xattrs, overlay mounts)")
	}
}

// memEntry is a regular file entry whose content lives in memory.
func memEntry(name, content string, mode fs.FileMode, mtime time.Time) Entry {
	return Entry{
		Name:    name,
		Mode:    mode,
		ModTime: mtime,
		Size:    int64(len(content)),
		Open:    func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil },
	}
}

func dirEntry(name string, mode fs.FileMode, mtime time.Time) Entry {
	return Entry{Name: name, Mode: fs.ModeDir | mode, ModTime: mtime}
}

// pack packs entries and fails the test on error.
func pack(t testing.TB, entries []Entry, opts PackOptions) ([]byte, Packed) {
	t.Helper()
	var buf bytes.Buffer
	p, err := Pack(context.Background(), &buf, entries, opts)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	return buf.Bytes(), p
}

// tarHeaders decompresses blob and returns its headers.
func tarHeaders(t testing.TB, blob []byte) []*tar.Header {
	t.Helper()
	rc, err := Decompress(bytes.NewReader(blob))
	if err != nil {
		t.Fatalf("Decompress: %v", err)
	}
	defer rc.Close()
	var out []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		out = append(out, h)
	}
}

// listing formats tar headers one per line for golden files.
func listing(hdrs []*tar.Header) string {
	var b strings.Builder
	for _, h := range hdrs {
		fmt.Fprintf(&b, "%s %c mode=%o uid=%d gid=%d size=%d mtime=%d", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.ModTime.Unix())
		if h.Linkname != "" {
			fmt.Fprintf(&b, " link=%s", h.Linkname)
		}
		if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
			fmt.Fprintf(&b, " dev=%d,%d", h.Devmajor, h.Devminor)
		}
		if h.Uname != "" || h.Gname != "" {
			fmt.Fprintf(&b, " uname=%s gname=%s", h.Uname, h.Gname)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			b.WriteString(" atime/ctime set")
		}
		var keys []string
		for k := range h.PAXRecords {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", k, h.PAXRecords[k])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkGolden compares got with testdata/name; UPDATE_GOLDEN=1 rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read golden (UPDATE_GOLDEN=1 writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch (UPDATE_GOLDEN=1 rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// fileState is what a tree comparison looks at for one path.
type fileState struct {
	Name     string
	Mode     fs.FileMode
	UID, GID int
	MTime    int64 // seconds; 0 for directories when ignored
	Size     int64
	Link     string
	Dev      [2]uint32
	Xattrs   string
	Content  string // sha256 of regular files
}

// treeState describes root for comparisons, mtimes to the second.
func treeState(t testing.TB, root string, ignoreDirMtime bool) []fileState {
	t.Helper()
	entries, err := DirEntries(root)
	if err != nil {
		t.Fatalf("DirEntries(%s): %v", root, err)
	}
	out := make([]fileState, 0, len(entries))
	for _, e := range entries {
		s := fileState{
			Name: e.Name, Mode: e.Mode, UID: e.UID, GID: e.GID, MTime: e.ModTime.Unix(),
			Size: e.Size, Link: e.Linkname, Dev: [2]uint32{e.Devmajor, e.Devminor},
		}
		if ignoreDirMtime && e.Mode.IsDir() {
			s.MTime = 0
		}
		if len(e.Xattrs) > 0 {
			var kv []string
			for k, v := range e.Xattrs {
				kv = append(kv, k+"="+v)
			}
			slices.Sort(kv)
			s.Xattrs = strings.Join(kv, ",")
		}
		if e.Mode.IsRegular() {
			rc, err := e.Open()
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			s.Content = hex.EncodeToString(h.Sum(nil))[:12]
		}
		out = append(out, s)
	}
	return out
}

// diffStates reports the differences between two tree descriptions.
func diffStates(a, b []fileState) string {
	am := make(map[string]fileState)
	for _, s := range a {
		am[s.Name] = s
	}
	bm := make(map[string]fileState)
	for _, s := range b {
		bm[s.Name] = s
	}
	var out []string
	for _, s := range a {
		o, ok := bm[s.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("only in first: %+v", s))
		case o != s:
			out = append(out, fmt.Sprintf("differ:\n  %+v\n  %+v", s, o))
		}
	}
	for _, s := range b {
		if _, ok := am[s.Name]; !ok {
			out = append(out, fmt.Sprintf("only in second: %+v", s))
		}
	}
	return strings.Join(out, "\n")
}

// applyBytes applies a layer blob to dir.
func applyBytes(t testing.TB, dir string, blob []byte, mode WhiteoutMode) {
	t.Helper()
	if _, err := Apply(context.Background(), dir, bytes.NewReader(blob), ApplyOptions{Whiteouts: mode}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}
