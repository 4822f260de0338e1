package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// settle waits until freshly written files are outside the racy window, so
// their digests go into the stat cache.
func settle() { time.Sleep(racyWindow + 20*time.Millisecond) }

func write(t testing.TB, dir, rel, content string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// baseContext makes a small build context and the sources a COPY selects
// from it.
func baseContext(t testing.TB) (string, []Source) {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "a.txt", "hello", 0o644)
	write(t, dir, "b.txt", "world", 0o755)
	write(t, dir, "sub/c.txt", "nested", 0o600)
	write(t, dir, "unselected.txt", "ignored", 0o644)
	must(t, os.Chmod(filepath.Join(dir, "sub"), 0o755))
	must(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	return dir, []Source{
		{Path: "a.txt", Dest: "/app/a.txt"},
		{Path: "b.txt", Dest: "/app/b.txt"},
		{Path: "sub", Dest: "/app/sub"},
		{Path: "sub/c.txt", Dest: "/app/sub/c.txt"},
		{Path: "link", Dest: "/app/link"},
	}
}

func hash(t testing.TB, s *Store, dir string, srcs []Source) digest.Digest {
	t.Helper()
	d, err := s.HashSources(context.Background(), dir, srcs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHashSourcesChanges(t *testing.T) {
	cases := []struct {
		name   string
		root   bool
		change bool
		mutate func(t *testing.T, dir string, srcs []Source) []Source
	}{
		{"content same size", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			write(t, dir, "a.txt", "hellO", 0o644)
			return srcs
		}},
		{"content grows", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			write(t, dir, "sub/c.txt", "nested!", 0o600)
			return srcs
		}},
		{"file mode", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Chmod(filepath.Join(dir, "a.txt"), 0o600))
			return srcs
		}},
		{"setuid bit", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Chmod(filepath.Join(dir, "b.txt"), 0o755|os.ModeSetuid))
			return srcs
		}},
		{"dir mode", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Chmod(filepath.Join(dir, "sub"), 0o700))
			return srcs
		}},
		{"owner uid", true, false, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Lchown(filepath.Join(dir, "a.txt"), 1000, -1))
			return srcs
		}},
		{"owner gid", true, false, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Lchown(filepath.Join(dir, "sub"), -1, 1000))
			return srcs
		}},
		{"symlink owner", true, false, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Lchown(filepath.Join(dir, "link"), 1000, 1000))
			return srcs
		}},
		{"symlink target", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Remove(filepath.Join(dir, "link")))
			must(t, os.Symlink("b.txt", filepath.Join(dir, "link")))
			return srcs
		}},
		{"file to dir", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Remove(filepath.Join(dir, "b.txt")))
			must(t, os.Mkdir(filepath.Join(dir, "b.txt"), 0o755))
			return srcs
		}},
		{"file to symlink", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Remove(filepath.Join(dir, "b.txt")))
			must(t, os.Symlink("world", filepath.Join(dir, "b.txt")))
			return srcs
		}},
		{"hardlinked", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			write(t, dir, "b.txt", "hello", 0o644) // now equal to a.txt...
			return srcs
		}},
		{"dest", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			srcs = append([]Source(nil), srcs...)
			srcs[1].Dest = "/app/B.txt"
			return srcs
		}},
		{"source added", false, true, func(t *testing.T, dir string, srcs []Source) []Source {
			return append(srcs, Source{Path: "unselected.txt", Dest: "/app/u"})
		}},
		{"mtime only", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			future := time.Now().Add(time.Hour)
			must(t, os.Chtimes(filepath.Join(dir, "a.txt"), future, future))
			must(t, os.Chtimes(filepath.Join(dir, "sub"), future, future))
			return srcs
		}},
		{"unselected file", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			write(t, dir, "unselected.txt", "changed a lot", 0o600)
			return srcs
		}},
		{"rewritten, same content", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			tmp := filepath.Join(dir, "tmp")
			write(t, dir, "tmp", "hello", 0o644)
			must(t, os.Rename(tmp, filepath.Join(dir, "a.txt"))) // new inode and ctime
			return srcs
		}},
		{"source order", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			out := make([]Source, len(srcs))
			for i, s := range srcs {
				out[len(srcs)-1-i] = s
			}
			return out
		}},
		{"source path spelling", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			srcs = append([]Source(nil), srcs...)
			srcs[0].Path = "./sub/../a.txt"
			return srcs
		}},
		{"source path renamed, same dest", false, false, func(t *testing.T, dir string, srcs []Source) []Source {
			must(t, os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "renamed.txt")))
			srcs = append([]Source(nil), srcs...)
			srcs[0].Path = "renamed.txt"
			return srcs
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				requireRoot(t)
			}
			dir, srcs := baseContext(t)
			s := openStore(t)
			settle()
			before := hash(t, s, dir, srcs)
			srcs = tc.mutate(t, dir, srcs)
			after := hash(t, s, dir, srcs)
			fresh := hash(t, openStore(t), dir, srcs) // no stat cache
			if after != fresh {
				t.Fatalf("stat cache gave %s, a fresh hash %s", after, fresh)
			}
			if changed := before != after; changed != tc.change {
				t.Fatalf("digest changed = %v, want %v (%s -> %s)", changed, tc.change, before, after)
			}
		})
	}
}

func TestHashSourcesSymlinkNotFollowed(t *testing.T) {
	dir, _ := baseContext(t)
	srcs := []Source{{Path: "link", Dest: "/link"}}
	s := openStore(t)
	before := hash(t, s, dir, srcs)
	write(t, dir, "a.txt", "other content", 0o600)
	if hash(t, s, dir, srcs) != before {
		t.Fatal("changing a symlink's target file changed the symlink's digest")
	}
}

func TestHashSourcesHardlink(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a", "same", 0o644)
	write(t, dir, "b", "same", 0o644)
	srcs := []Source{{Path: "a", Dest: "/a"}, {Path: "b", Dest: "/b"}}
	s := openStore(t)
	copies := hash(t, s, dir, srcs)
	must(t, os.Remove(filepath.Join(dir, "b")))
	must(t, os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	if linked := hash(t, s, dir, srcs); linked == copies {
		t.Fatal("hardlinking two selected files did not change the digest")
	}
	// A link to an unselected file is just a file.
	alone := hash(t, s, dir, srcs[:1])
	must(t, os.Remove(filepath.Join(dir, "b")))
	if got := hash(t, s, dir, srcs[:1]); got != alone {
		t.Fatal("a link count change alone changed the digest")
	}
}

func TestHashSourcesEmptyAndDuplicates(t *testing.T) {
	dir, srcs := baseContext(t)
	s := openStore(t)
	if hash(t, s, dir, nil) != hash(t, s, dir, []Source{}) {
		t.Fatal("nil and empty sources differ")
	}
	one := hash(t, s, dir, srcs[:1])
	twice := hash(t, s, dir, []Source{srcs[0], {Path: "a.txt", Dest: "/copy"}})
	if one == twice {
		t.Fatal("a second dest for the same file did not change the digest")
	}
}

func TestHashSourcesEscapes(t *testing.T) {
	dir, _ := baseContext(t)
	outside := t.TempDir()
	write(t, outside, "secret", "s3cr3t", 0o644)
	must(t, os.Symlink(outside, filepath.Join(dir, "out")))
	must(t, os.Symlink("/", filepath.Join(dir, "rootlink")))
	must(t, os.Symlink("../..", filepath.Join(dir, "sub", "up")))
	s := openStore(t)
	for _, p := range []string{"../x", "..", "/etc/passwd", "a/../../x", "out/secret", "rootlink/etc/passwd", "sub/up/x"} {
		_, err := s.HashSources(context.Background(), dir, []Source{{Path: p, Dest: "/x"}})
		if !errors.Is(err, errEscapes) {
			t.Errorf("HashSources(%q) = %v, want errEscapes", p, err)
		}
	}
	// Symlinks inside the context are followed in parent components only.
	must(t, os.Symlink("sub", filepath.Join(dir, "inlink")))
	via := hash(t, s, dir, []Source{{Path: "inlink/c.txt", Dest: "/c"}})
	direct := hash(t, s, dir, []Source{{Path: "sub/c.txt", Dest: "/c"}})
	if via != direct {
		t.Fatal("in-context symlinked parent resolved differently")
	}
	// A symlink escaping the context is fine as a source: it is not followed.
	hash(t, s, dir, []Source{{Path: "out", Dest: "/out"}})
	// The context root itself is a directory source.
	rootDigest := hash(t, s, dir, []Source{{Path: ".", Dest: "/app"}})
	for _, p := range []string{"", "sub/..", "./"} {
		if hash(t, s, dir, []Source{{Path: p, Dest: "/app"}}) != rootDigest {
			t.Errorf("source %q is not the context root", p)
		}
	}

	if _, err := s.HashSources(context.Background(), dir, []Source{{Path: "missing", Dest: "/m"}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: %v, want ErrNotExist", err)
	}
	if _, err := s.HashSources(context.Background(), filepath.Join(dir, "nope"), nil); err == nil {
		t.Error("missing context dir accepted")
	}
}

// manyFiles writes n small files and returns them as sources.
func manyFiles(t testing.TB, dir string, n, size int) []Source {
	t.Helper()
	content := make([]byte, size)
	srcs := make([]Source, n)
	for i := range n {
		rel := fmt.Sprintf("d%03d/f%05d", i/100, i)
		copy(content, fmt.Sprintf("file %d\n", i))
		p := filepath.Join(dir, rel)
		if i%100 == 0 {
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		}
		must(t, os.WriteFile(p, content, 0o644))
		srcs[i] = Source{Path: rel, Dest: "/data/" + rel}
	}
	return srcs
}

func TestStatCacheSkipsReads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 300, 100)
	s := openStore(t)
	settle()

	first := hash(t, s, dir, srcs)
	if got := s.reads.Load(); got != 300 {
		t.Fatalf("cold hash read %d files, want 300", got)
	}
	if hash(t, s, dir, srcs) != first {
		t.Fatal("warm digest differs")
	}
	if got := s.reads.Load(); got != 300 {
		t.Fatalf("warm hash read %d more files, want 0", got-300)
	}

	// The cache persists: a new Store on the same root reads nothing.
	s2, err := Open(ctx, s.root)
	must(t, err)
	if hash(t, s2, dir, srcs) != first || s2.reads.Load() != 0 {
		t.Fatalf("reopened store read %d files", s2.reads.Load())
	}

	// Edit one file, same size: exactly that one is read again.
	write(t, dir, srcs[42].Path, "changed\n", 0o644)
	must(t, os.Truncate(filepath.Join(dir, srcs[42].Path), 100))
	settle()
	edited := hash(t, s2, dir, srcs)
	if edited == first {
		t.Fatal("edit not seen")
	}
	if got := s2.reads.Load(); got != 1 {
		t.Fatalf("after one edit %d files were read, want 1", got)
	}
	if hash(t, s2, dir, srcs) != edited || s2.reads.Load() != 1 {
		t.Fatalf("edited file read again: %d reads", s2.reads.Load())
	}

	// A subset of the sources hashes from the same cache.
	hash(t, s2, dir, srcs[:10])
	if got := s2.reads.Load(); got != 1 {
		t.Fatalf("subset read %d files", got-1)
	}
}

func TestStatCacheCorruptFile(t *testing.T) {
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 20, 10)
	s := openStore(t)
	settle()
	want := hash(t, s, dir, srcs)
	p := s.statCachePath(dir)
	b, err := os.ReadFile(p)
	must(t, err)
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"bit flip":  append(append([]byte(nil), b[:20]...), append([]byte{b[20] ^ 1}, b[21:]...)...),
		"garbage":   []byte("not a stat cache"),
	} {
		must(t, os.WriteFile(p, bad, 0o600))
		before := s.reads.Load()
		if got := hash(t, s, dir, srcs); got != want {
			t.Fatalf("%s: digest %s, want %s", name, got, want)
		}
		if got := s.reads.Load() - before; got != 20 {
			t.Fatalf("%s: %d files read, want all 20", name, got)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != string(b) {
			t.Fatalf("%s: stat cache not rewritten", name)
		}
	}
}

func TestStatCacheEncoding(t *testing.T) {
	m := map[string]statEntry{
		"a":         {size: 1, mtime: -5, ctime: 1 << 62, ino: 1<<64 - 1, dev: 0, sum: [32]byte{1, 2, 3}},
		"dir/\xff":  {size: 0},
		"with\nnul": {size: 1 << 40, sum: [32]byte{31: 9}},
	}
	b := encodeStatCache(newStatCache(m))
	got, err := decodeStatCache(b)
	must(t, err)
	if len(got.ents) != len(m) {
		t.Fatalf("decoded %d entries, want %d", len(got.ents), len(m))
	}
	for k, v := range m {
		if e, ok := got.get(k); !ok || e != v {
			t.Errorf("entry %q = %+v, want %+v", k, e, v)
		}
	}
	if string(encodeStatCache(got)) != string(b) {
		t.Error("encoding is not deterministic")
	}
	for i := range len(b) {
		if _, err := decodeStatCache(b[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
	}
}

func TestRacy(t *testing.T) {
	now := time.Now()
	ns := func(d time.Duration) int64 { return now.Add(d).UnixNano() | 1 } // non-zero ns part
	cases := []struct {
		name  string
		ctime int64
		racy  bool
	}{
		{"old", ns(-time.Hour), false},
		{"just outside window", ns(-racyWindow - time.Millisecond), false},
		{"inside window", ns(-racyWindow / 2), true},
		{"future", ns(time.Minute), true},
		{"whole second, 1s old", now.Add(-time.Second).Truncate(time.Second).UnixNano(), true},
		{"whole second, old", now.Add(-time.Minute).Truncate(time.Second).UnixNano(), false},
	}
	for _, tc := range cases {
		if got := racy(fileStat{ctime: tc.ctime}, now); got != tc.racy {
			t.Errorf("%s: racy = %v, want %v", tc.name, got, tc.racy)
		}
	}
}

func TestHashSourcesRacyNotPersisted(t *testing.T) {
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 5, 10)
	s := openStore(t)
	hash(t, s, dir, srcs) // files are brand new: read, not remembered
	if _, err := os.Stat(s.statCachePath(dir)); !errors.Is(err, os.ErrNotExist) {
		// A very slow machine may have passed the window; nothing to check.
		t.Skip("files aged past the racy window before the first hash")
	}
	settle()
	hash(t, s, dir, srcs)
	reads := s.reads.Load()
	hash(t, s, dir, srcs)
	if s.reads.Load() != reads {
		t.Fatal("settled files were read again")
	}
}

func TestHashSourcesCancel(t *testing.T) {
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 50, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := openStore(t).HashSources(ctx, dir, srcs); !errors.Is(err, context.Canceled) {
		t.Fatalf("HashSources(cancelled) = %v, want context.Canceled", err)
	}
}

func BenchmarkHashContextWarm(b *testing.B) {
	const n, size = 20000, 4 << 10
	dir := b.TempDir()
	srcs := manyFiles(b, dir, n, size)
	settle()
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(n * size)
		for b.Loop() {
			b.StopTimer()
			s := openStore(b)
			b.StartTimer()
			if _, err := s.HashSources(context.Background(), dir, srcs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		s := openStore(b)
		hash(b, s, dir, srcs)
		reads := s.reads.Load()
		for b.Loop() {
			if _, err := s.HashSources(context.Background(), dir, srcs); err != nil {
				b.Fatal(err)
			}
		}
		if s.reads.Load() != reads {
			b.Fatalf("warm runs read %d files", s.reads.Load()-reads)
		}
	})
}

// TestAppendSourceEntry: the hand-written encoder of a source line writes
// exactly what json.Encoder wrote for the same entry (the digest format).
func TestAppendSourceEntry(t *testing.T) {
	sum := sha256.Sum256([]byte("content"))
	names := []string{"", "a/b.txt", "with space", `quote"back\slash`, "<html>&amp;", "tab\there", "ctl\x01\x7f",
		"ünïcödé/日本", "line\u2028sep\u2029", "bad\xffutf8", "/abs/path"}
	var entries []sourceEntry
	for i, n := range names {
		entries = append(entries,
			sourceEntry{Dest: n, Type: "file", Mode: 0o4755, UID: uint32(i), GID: 1 << 31, Hardlink: n},
			sourceEntry{Dest: n, Type: "symlink", Mode: 0o777, Link: n},
			sourceEntry{Dest: n, Type: "char", Major: uint32(i), Minor: 3},
			sourceEntry{Dest: n, Type: "dir", Mode: 0o1777, UID: 4294967295},
		)
	}
	for _, e := range entries {
		var want bytes.Buffer
		withSum := e
		if e.Type == "file" {
			withSum.Digest = digest.NewDigestFromBytes(digest.SHA256, sum[:])
		}
		if err := json.NewEncoder(&want).Encode(withSum); err != nil {
			t.Fatal(err)
		}
		var s *[sha256.Size]byte
		if e.Type == "file" {
			s = &sum
		}
		if got := appendSourceEntry(nil, &e, s); string(got) != want.String() {
			t.Errorf("appendSourceEntry(%+v)\n got %s\nwant %s", e, got, want.String())
		}
	}
}

// TestBigReadsSecondPass: files left to the second pass (every file, none,
// the default) give the same digest, are read once and go into the stat
// cache like the others.
func TestBigReadsSecondPass(t *testing.T) {
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 300, 4096)
	for i, size := range []int{1 << 20, 3 << 20, 2 << 20} { // big ones in one directory
		rel := fmt.Sprintf("big/f%d", i)
		write(t, dir, rel, string(bytes.Repeat([]byte{byte('a' + i)}, size)), 0o644)
		srcs = append(srcs, Source{Path: rel, Dest: "/data/" + rel})
	}
	settle()
	defer func(old int64) { bigRead = old }(bigRead)
	var want digest.Digest
	for _, threshold := range []int64{1 << 62, 0, 1 << 20, 2 << 20} {
		bigRead = threshold
		s := openStore(t)
		got := hash(t, s, dir, srcs)
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("bigRead %d: digest %s, want %s", threshold, got, want)
		}
		if n := s.reads.Load(); n != int64(len(srcs)) {
			t.Errorf("bigRead %d: read %d files, want %d", threshold, n, len(srcs))
		}
		if hash(t, s, dir, srcs) != want || s.reads.Load() != int64(len(srcs)) {
			t.Errorf("bigRead %d: warm hash read %d more files", threshold, s.reads.Load()-int64(len(srcs)))
		}
	}
}

// TestPreloadStatCache: Hash takes a preloaded stat cache (no file read
// again), a release drops it, and a preload of a stale cache only costs
// reads, never a wrong digest.
func TestPreloadStatCache(t *testing.T) {
	dir := t.TempDir()
	srcs := manyFiles(t, dir, 50, 100)
	s := openStore(t)
	settle()
	first := hash(t, s, dir, srcs)
	release := s.PreloadStatCache(dir)
	release2 := s.PreloadStatCache(dir) // a second COPY of the same context
	if hash(t, s, dir, srcs) != first || s.reads.Load() != 50 {
		t.Fatalf("preloaded warm hash read %d more files", s.reads.Load()-50)
	}
	release()
	release()  // twice is once
	release2() // the last: dropped
	if len(s.pre.m) != 0 {
		t.Fatalf("%d preloads left after release", len(s.pre.m))
	}

	// Preloaded, then a file changes and the cache is rewritten by the
	// Hash: the next Hash still sees the change.
	release = s.PreloadStatCache(dir)
	defer release()
	write(t, dir, srcs[3].Path, "changed", 0o644)
	if hash(t, s, dir, srcs) == first {
		t.Fatal("a changed file left the digest as it was")
	}
}
