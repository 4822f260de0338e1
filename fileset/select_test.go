package fileset

import (
	"errors"
	"io"
	"testing"
)

func TestMatchGlobs(t *testing.T) {
	root := mkTree(t,
		"a.txt", "b.txt", "abc", "axc", "ac", "c.md",
		"dir/x.txt", "dir/y.md", "dir/sub/z.txt",
		"d1/f1", "d1/g1", "d2/f2", "dfile", "dl -> d1",
		"empty/")
	sel := &Selection{FS: Dir(root), Context: true}
	runMatch(t, sel, []matchCase{
		{src: "*.txt", want: []matchRow{file("/a.txt", "a.txt"), file("/b.txt", "b.txt")}},
		{src: "./*.txt", want: []matchRow{file("/a.txt", "a.txt"), file("/b.txt", "b.txt")}},
		{src: "dir/*", want: []matchRow{dir("/dir/sub"), file("/dir/x.txt", "x.txt"), file("/dir/y.md", "y.md")}},
		{src: "a?c", want: []matchRow{file("/abc", "abc"), file("/axc", "axc")}},
		{src: "[ab]*", want: []matchRow{file("/a.txt", "a.txt"), file("/abc", "abc"), file("/ac", "ac"), file("/axc", "axc"), file("/b.txt", "b.txt")}},
		// Only directories continue a pattern: dfile is a file, dl a symlink.
		{src: "d*/f*", want: []matchRow{file("/d1/f1", "f1"), file("/d2/f2", "f2")}},
		{src: "*/sub", want: []matchRow{dir("/dir/sub")}},
		{src: "*/*/z.txt", want: []matchRow{file("/dir/sub/z.txt", "z.txt")}},
		{src: `\a.txt`, want: []matchRow{file("/a.txt", "a.txt")}}, // an escape is a pattern
		// A wildcard matching nothing in an existing dir selects nothing.
		{src: "empty/*"},
		{src: "dir/*.none"},
		{src: "*.none"},
		// Kept as the executor had it: the pattern's literal prefix is
		// looked up without following a symlink, so dl/* is empty, not d1's files.
		{src: "dl/*"},
		// ... but in a missing dir (or through a file) it is no source.
		{src: "missing/*", err: "missing/*: no such file in context", is: ErrNoSource},
		{src: "a.txt/*", err: "a.txt/*: no such file in context", is: ErrNoSource},
		{src: "missing/*/x", err: "missing/*/x: no such file in context", is: ErrNoSource},
		{src: "[", err: `bad pattern "/[": syntax error in pattern`},
		{src: "dir/[a-", err: `bad pattern "/dir/[a-": syntax error in pattern`},
	})
}

func TestMatchPlainPaths(t *testing.T) {
	root := mkTree(t, "a.txt", "dir/x.txt", "dir/sub/")
	sel := &Selection{FS: Dir(root), Context: true}
	runMatch(t, sel, []matchCase{
		{src: "a.txt", want: []matchRow{file("/a.txt", "a.txt")}},
		{src: "/a.txt", want: []matchRow{file("/a.txt", "a.txt")}},
		{src: "./dir/../a.txt", want: []matchRow{file("/a.txt", "a.txt")}},
		{src: "dir", want: []matchRow{dir("/dir")}},
		{src: "dir/", want: []matchRow{dir("/dir")}},
		{src: ".", want: []matchRow{dir("/")}},
		{src: "dir/x.txt", want: []matchRow{file("/dir/x.txt", "x.txt")}},
		{src: "nope", err: "nope: no such file in context", is: ErrNoSource},
		{src: "a.txt/x", err: "a.txt/x: no such file in context", is: ErrNoSource},
		{src: "dir/nope/x", err: "dir/nope/x: no such file in context", is: ErrNoSource},
		{src: "..", err: "..: source is outside the build context", is: ErrOutside},
		{src: "../x", err: "../x: source is outside the build context", is: ErrOutside},
		{src: "dir/../../x", err: "dir/../../x: source is outside the build context", is: ErrOutside},
	})

	// Outside the context (COPY --from) ".." stops at the root and errors
	// do not say "in context".
	other := &Selection{FS: Dir(root)}
	runMatch(t, other, []matchCase{
		{src: "../a.txt", want: []matchRow{file("/a.txt", "a.txt")}},
		{src: "../x", err: "../x: no such file", is: ErrNoSource},
		{src: "x/*", err: "x/*: no such file", is: ErrNoSource},
	})

	var none Selection
	if _, err := none.Match("a"); err == nil || err.Error() != "a: no source" {
		t.Errorf("Match without FS: %v", err)
	}
}

func TestMatchDockerignore(t *testing.T) {
	root := mkTree(t,
		"keep.txt", "secret.txt", "logs/a.log", "logs/keep.log",
		"build/out/bin", "build/out/readme.md",
		"src/a.go", "src/a_test.go", "src/deep/b_test.go",
		"alias -> secret.txt", "via -> build")
	ig, err := NewIgnore([]string{"secret.txt", "logs", "!logs/keep.log", "**/*_test.go", "build"})
	if err != nil {
		t.Fatal(err)
	}
	sel := &Selection{FS: Dir(root), Ignore: ig, Context: true}
	const excl = " (excluded by .dockerignore)"
	runMatch(t, sel, []matchCase{
		{src: "keep.txt", want: []matchRow{file("/keep.txt", "keep.txt")}},
		{src: "secret.txt", err: "secret.txt: no such file in context" + excl, is: ErrNoSource},
		{src: "src/a_test.go", err: "src/a_test.go: no such file in context" + excl, is: ErrNoSource},
		{src: "src/deep/b_test.go", err: "src/deep/b_test.go: no such file in context" + excl, is: ErrNoSource},
		{src: "build", err: "build: no such file in context" + excl, is: ErrNoSource},
		{src: "build/out/bin", err: "build/out/bin: no such file in context" + excl, is: ErrNoSource},
		// A link that is not ignored to a target that is.
		{src: "alias", err: "alias: no such file in context" + excl, is: ErrNoSource},
		{src: "via/out", err: "via/out: no such file in context" + excl, is: ErrNoSource},
		// Re-included below an excluded dir: the file itself is selectable.
		{src: "logs/keep.log", want: []matchRow{file("/logs/keep.log", "keep.log")}},
		// Globs drop ignored matches, and ignored links' targets.
		{src: "*.txt", want: []matchRow{file("/keep.txt", "keep.txt")}},
		{src: "src/*", want: []matchRow{file("/src/a.go", "a.go"), dir("/src/deep")}},
		{src: "src/deep/*"},
		{src: "a*"},
		{src: "build/*", err: "build/*: no such file in context", is: ErrNoSource},
	})

	// The same tree as a --from source: .dockerignore does not apply.
	other := &Selection{FS: Dir(root), Ignore: ig}
	runMatch(t, other, []matchCase{
		{src: "secret.txt", want: []matchRow{file("/secret.txt", "secret.txt")}},
		{src: "*.txt", want: []matchRow{file("/keep.txt", "keep.txt"), file("/secret.txt", "secret.txt")}},
	})
	if other.Skip("/secret.txt") || !sel.Skip("/secret.txt") || !sel.Skip("logs/a.log") || sel.Skip("/") {
		t.Error("Skip applies .dockerignore to the context only, to paths with or without a slash")
	}
}

func TestMatchSymlinks(t *testing.T) {
	root := mkTree(t,
		"real/f", "etc/passwd", "ln -> real", "fileln -> real/f", "abs -> /etc",
		"real/up -> ../../..", "dang -> nowhere", "gl/ok -> ../real/f", "gl/bad -> ../nope/deeper", "gl2/ok -> ../real/f", "gl2/gone -> ../nope",
		"loop1 -> loop2", "loop2 -> loop1", "chain -> ln")
	sel := &Selection{FS: Dir(root), Context: true}
	const hint = "; symlinks resolve inside the build context)"
	runMatch(t, sel, []matchCase{
		{src: "ln", want: []matchRow{{Path: "/real", Matched: "/ln", Dir: true}}},
		{src: "chain/f", want: []matchRow{{Path: "/real/f", Matched: "/chain/f", DestRel: "f"}}},
		// A file lands under the name it was asked by.
		{src: "fileln", want: []matchRow{{Path: "/real/f", Matched: "/fileln", DestRel: "fileln"}}},
		{src: "abs/passwd", want: []matchRow{{Path: "/etc/passwd", Matched: "/abs/passwd", DestRel: "passwd"}}},
		{src: "real/up/real/f", want: []matchRow{{Path: "/real/f", Matched: "/real/up/real/f", DestRel: "f"}}},
		{src: "gl/o*", want: []matchRow{{Path: "/real/f", Matched: "/gl/ok", DestRel: "ok"}}},
		{src: "gl/*", err: "gl/bad: no such file in context (a symlink whose target is missing)", is: ErrNoSource},
		// A link to a missing file resolves (a missing last component is
		// allowed), so only the pattern is named, as the executor had it.
		{src: "gl2/*", err: "gl2/*: no such file in context", is: ErrNoSource},
		{src: "gl2/g*", err: "gl2/g*: no such file in context", is: ErrNoSource},
		{src: "ln/missing", err: "ln/missing: no such file in context (ln is a symlink to real" + hint, is: ErrNoSource},
		{src: "abs/shadow", err: "abs/shadow: no such file in context (abs is a symlink to /etc" + hint, is: ErrNoSource},
		{src: "dang", err: "dang: no such file in context (dang is a symlink to nowhere" + hint, is: ErrNoSource},
		{src: "loop1", err: "resolve loop1: /loop1: too many levels of symbolic links"},
		{src: "loop*", err: "resolve loop1: /loop1: too many levels of symbolic links"},
	})

	// /etc/passwd through "abs" is the tree's, never the host's.
	ms, err := sel.Match("abs/passwd")
	if err != nil {
		t.Fatal(err)
	}
	f, err := sel.FS.Open(ms[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "etc/passwd" {
		t.Errorf("abs/passwd read %q, want the tree's file", b)
	}

	// Outside the context a missing path through a link gets no hint.
	other := &Selection{FS: Dir(root)}
	runMatch(t, other, []matchCase{
		{src: "ln/missing", err: "ln/missing: no such file", is: ErrNoSource},
		{src: "gl/*", err: "gl/bad: no such file (a symlink whose target is missing)", is: ErrNoSource},
	})
}

func TestMatchExcludes(t *testing.T) {
	root := mkTree(t, "app/main.go", "app/main_test.go", "app/vendor/x.go", "app/docs/readme.md", "app/a.md")
	tests := []struct {
		excludes []string
		src      string
		want     []matchRow
		walks    [][]string // Walk of each match
	}{
		{[]string{"*_test.go", "vendor"}, "app", []matchRow{dir("/app")},
			[][]string{{"", "a.md", "docs", "docs/readme.md", "main.go"}}},
		// Patterns are relative to the source: "*.md" is not "docs/readme.md".
		{[]string{"*.md", "vendor/*.go"}, "app", []matchRow{dir("/app")},
			[][]string{{"", "docs", "docs/readme.md", "main.go", "main_test.go", "vendor"}}},
		{[]string{"docs"}, "app", []matchRow{dir("/app")},
			[][]string{{"", "a.md", "main.go", "main_test.go", "vendor", "vendor/x.go"}}},
		{[]string{"**/*.go"}, "app", []matchRow{dir("/app")},
			[][]string{{"", "a.md", "docs", "docs/readme.md", "vendor"}}},
		// The last component of a glob is matched by name.
		{[]string{"*.md", "vendor"}, "app/*", []matchRow{dir("/app/docs"), file("/app/main.go", "main.go"), file("/app/main_test.go", "main_test.go")},
			[][]string{{""}, {""}, {""}}},
		// A plain source is never excluded itself.
		{[]string{"*.md"}, "app/a.md", []matchRow{file("/app/a.md", "a.md")}, [][]string{{""}}},
	}
	for _, tt := range tests {
		sel := &Selection{FS: Dir(root), Context: true, Excludes: tt.excludes}
		ms, err := sel.Match(tt.src)
		if err != nil {
			t.Errorf("%v Match(%q): %v", tt.excludes, tt.src, err)
			continue
		}
		if g := rows(ms); !equal(g, tt.want) {
			t.Errorf("%v Match(%q) = %+v, want %+v", tt.excludes, tt.src, g, tt.want)
			continue
		}
		for i, m := range ms {
			ws, err := sel.Walk(m)
			if err != nil {
				t.Errorf("%v Walk(%s): %v", tt.excludes, m.Path, err)
				continue
			}
			if g := rels(ws); !equal(g, tt.walks[i]) {
				t.Errorf("%v Walk(%s) = %q, want %q", tt.excludes, m.Path, g, tt.walks[i])
			}
		}
	}
}

func TestKeepParents(t *testing.T) {
	root := mkTree(t, "a/b/c/file.txt", "a/b/d/x.txt", "lnk -> a/b/c")
	tests := []struct {
		src  string
		want []string // DestRel of each match
	}{
		{"a/b/c/file.txt", []string{"a/b/c/file.txt"}},
		{"./a/b/c/file.txt", []string{"a/b/c/file.txt"}},
		{"/a/b/c/file.txt", []string{"a/b/c/file.txt"}},
		{"a/./b/c/file.txt", []string{"b/c/file.txt"}},
		{"./a/./b/c", []string{"b/c"}},
		{"a/b/./c", []string{"c"}},
		{"a/b", []string{"a/b"}},
		{"a/b/*/*.txt", []string{"a/b/c/file.txt", "a/b/d/x.txt"}},
		{"a/./b/*/*.txt", []string{"b/c/file.txt", "b/d/x.txt"}},
		// Kept as the executor had it: a pivot after a wildcard is taken
		// literally, so it matches nothing and the full path is kept.
		{"a/*/./d/x.txt", []string{"a/b/d/x.txt"}},
		// A symlink keeps the path that matched, not its target.
		{"lnk", []string{"lnk"}},
		{"lnk/file.txt", []string{"lnk/file.txt"}},
		{".", []string{""}},
	}
	sel := &Selection{FS: Dir(root), Context: true}
	for _, tt := range tests {
		ms, err := sel.Match(tt.src)
		if err != nil {
			t.Errorf("Match(%q): %v", tt.src, err)
			continue
		}
		KeepParents(tt.src, ms)
		got := make([]string, len(ms))
		for i, m := range ms {
			got[i] = m.DestRel
		}
		if !equal(got, tt.want) {
			t.Errorf("KeepParents(%q) DestRel = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestNoSourceError(t *testing.T) {
	tests := []struct {
		e    NoSourceError
		want string
	}{
		{NoSourceError{Src: "a", Context: true}, "a: no such file in context"},
		{NoSourceError{Src: "a"}, "a: no such file"},
		{NoSourceError{Context: true, Why: " (excluded by .dockerignore)"}, "no such file in context (excluded by .dockerignore)"},
		{NoSourceError{}, "no such file"},
	}
	for _, tt := range tests {
		e := tt.e
		if got := e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
		if !errors.Is(&e, ErrNoSource) {
			t.Errorf("%+v is not ErrNoSource", tt.e)
		}
	}
	// The caller drops Src when the instruction names the only source.
	_, err := (&Selection{FS: Dir(t.TempDir()), Context: true}).Match("x")
	var ns *NoSourceError
	if !errors.As(err, &ns) {
		t.Fatalf("Match error %T is not a *NoSourceError", err)
	}
	bare := *ns
	bare.Src = ""
	if bare.Error() != "no such file in context" {
		t.Errorf("bare error = %q", bare.Error())
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
