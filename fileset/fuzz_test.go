package fileset

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher/ignorefile"
)

// FuzzParseChmod: no panic; a mode it accepts changes permission bits only
// (the type is kept), and an octal one is exactly that mode.
func FuzzParseChmod(f *testing.F) {
	const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := ParseChmod(s)
		if err != nil || ch == nil {
			if s == "" && (ch != nil || err != nil) {
				t.Errorf(`ParseChmod("") = %v, %v`, ch, err)
			}
			return
		}
		for _, m := range []fs.FileMode{0, 0o644, fs.ModeDir | 0o755, fs.ModeSymlink | 0o777, 0o4755 | fs.ModeSetuid, fs.ModeDir | fs.ModeSticky | 0o1777} {
			got := ch(m)
			if got.Type() != m.Type() || got&^(permBits|fs.ModeType) != 0 {
				t.Errorf("chmod %q of %v = %v: type or other bits changed", s, m, got)
			}
			if again := ch(m); again != got {
				t.Errorf("chmod %q of %v is not a function: %v then %v", s, m, got, again)
			}
		}
		if n, err := strconv.ParseUint(s, 8, 32); err == nil {
			if want := FromOctal(uint32(n)); ch(0) != want {
				t.Errorf("chmod %q = %v, want %v", s, ch(0), want)
			}
		}
	})
}

// FuzzSelect selects a source from a small tree (symlinks that point out
// of it included) with arbitrary .dockerignore content and --exclude
// patterns: no panic, nothing outside the tree, no file that the
// .dockerignore or --exclude patterns drop.
func FuzzSelect(f *testing.F) {
	root := f.TempDir()
	for _, e := range []string{"a/b/c.txt", "a/b/d.go", "a/e", "f.txt", ".dockerignore", "dir with space/x", "g/h/i/j"} {
		p := filepath.Join(root, e)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(e), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{"up": "../..", "abs": "/etc", "a/back": "..", "loop": "loop", "g/toa": "../a"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, dockerignore, excludes, src string) {
		pats, err := ignorefile.ReadAll(strings.NewReader(dockerignore))
		if err != nil {
			return
		}
		ig, err := NewIgnore(pats)
		if err != nil {
			return
		}
		var excl []string
		if excludes != "" {
			excl = strings.Split(excludes, "\n")
		}
		s := &Selection{FS: Dir(root), Ignore: ig, Context: true, Excludes: excl}
		ms, err := s.Match(src)
		if err != nil {
			return
		}
		for _, m := range ms {
			if !path.IsAbs(m.Path) || path.Clean(m.Path) != m.Path {
				t.Fatalf("match %q for %q: not a clean absolute path", m.Path, src)
			}
			ws, err := s.Walk(m)
			if err != nil {
				continue
			}
			for _, w := range ws {
				host, err := s.FS.HostPath(w.Src)
				if err != nil {
					t.Fatal(err)
				}
				if rel, err := filepath.Rel(root, host); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
					t.Fatalf("walked %q (host %s): outside the tree", w.Src, host)
				}
				if w.Rel == "" || w.Entry == nil || w.Entry.IsDir() {
					continue
				}
				if s.Skip(w.Src) {
					t.Errorf("walked %q, which the .dockerignore %q excludes", w.Src, pats)
				}
				if s.excluded(w.Rel) {
					t.Errorf("walked %q, which --exclude %q drops", w.Rel, excl)
				}
			}
		}
	})
}
