package fileset

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWalk(t *testing.T) {
	root := mkTree(t, "w/b.txt", "w/a/z", "w/A.txt", "w/c -> b.txt", "w/e/", "w/a/y/", "top.txt", "wl -> w")
	if l, err := net.Listen("unix", filepath.Join(root, "w", "sock")); err == nil {
		defer l.Close()
	} else {
		t.Logf("no unix socket (%v): socket skipping not tested", err)
	}
	sel := &Selection{FS: Dir(root), Context: true}
	ms, err := sel.Match("w")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := sel.Walk(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by name (bytes), depth first, no socket.
	want := []string{"", "A.txt", "a", "a/y", "a/z", "b.txt", "c", "e"}
	if g := rels(ws); !equal(g, want) {
		t.Fatalf("Walk rels = %q, want %q", g, want)
	}
	srcs := make([]string, len(ws))
	for i, w := range ws {
		srcs[i] = w.Src
	}
	if want := []string{"/w", "/w/A.txt", "/w/a", "/w/a/y", "/w/a/z", "/w/b.txt", "/w/c", "/w/e"}; !equal(srcs, want) {
		t.Errorf("Walk srcs = %q, want %q", srcs, want)
	}
	if ws[0].Info != ms[0].Info || ws[0].Entry != nil {
		t.Errorf("Walk[0] = %+v, want the match's Info and no Entry", ws[0])
	}
	for _, w := range ws[1:] {
		if w.Info != nil || w.Entry == nil || w.Entry.Name() != filepath.Base(w.Src) {
			t.Errorf("Walk %s: Info %v Entry %v; want nil Info below the match, an Entry", w.Rel, w.Info, w.Entry)
		}
	}
	if err := StatAll(ws); err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{}
	for _, w := range ws {
		if w.Info == nil {
			t.Fatalf("StatAll left %s without Info", w.Rel)
		}
		modes[w.Rel] = w.Info.Mode().Type()
	}
	wantModes := map[string]fs.FileMode{"": fs.ModeDir, "A.txt": 0, "a": fs.ModeDir, "a/y": fs.ModeDir,
		"a/z": 0, "b.txt": 0, "c": fs.ModeSymlink, "e": fs.ModeDir}
	for k, v := range wantModes {
		if modes[k] != v {
			t.Errorf("StatAll %s type = %v, want %v (links not followed)", k, modes[k], v)
		}
	}

	// A file, and a link to a directory (its target is walked, named by the link).
	for _, tt := range []struct {
		src  string
		want []string
	}{
		{"top.txt", []string{""}},
		{"w/c", []string{""}},
		{"wl", want},
	} {
		ms, err := sel.Match(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := sel.Walk(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		if g := rels(ws); !equal(g, tt.want) {
			t.Errorf("Walk(%s) = %q, want %q", tt.src, g, tt.want)
		}
	}

	// Walk of a Match with no Info lists only the match.
	if ws, err := sel.Walk(Match{Path: "/w"}); err != nil || len(ws) != 1 {
		t.Errorf("Walk without Info = %v, %v", ws, err)
	}
}

func TestWalkDockerignore(t *testing.T) {
	root := mkTree(t,
		"keep.txt", "secret.txt", "logs/a.log", "logs/keep.log", "logs/old/b.log",
		"build/out/bin", "build/out/readme.md",
		"src/a.go", "src/a_test.go", "src/deep/b_test.go")
	tests := []struct {
		patterns []string
		want     []string
	}{
		{nil, []string{"", "build", "build/out", "build/out/bin", "build/out/readme.md", "keep.txt",
			"logs", "logs/a.log", "logs/keep.log", "logs/old", "logs/old/b.log",
			"secret.txt", "src", "src/a.go", "src/a_test.go", "src/deep", "src/deep/b_test.go"}},
		{[]string{"secret.txt", "build"}, []string{"", "keep.txt",
			"logs", "logs/a.log", "logs/keep.log", "logs/old", "logs/old/b.log",
			"src", "src/a.go", "src/a_test.go", "src/deep", "src/deep/b_test.go"}},
		// "!" re-includes a file below an excluded dir: the walk descends
		// into every excluded dir and keeps the file and its parents only.
		{[]string{"secret.txt", "logs", "!logs/keep.log", "**/*_test.go", "build"},
			[]string{"", "keep.txt", "logs", "logs/keep.log", "src", "src/a.go", "src/deep"}},
		{[]string{"logs", "!logs/old/b.log"},
			[]string{"", "build", "build/out", "build/out/bin", "build/out/readme.md", "keep.txt",
				"logs", "logs/old", "logs/old/b.log", "secret.txt",
				"src", "src/a.go", "src/a_test.go", "src/deep", "src/deep/b_test.go"}},
		{[]string{"*", "!src/*.go"}, []string{"", "src", "src/a.go", "src/a_test.go"}},
		{[]string{"**/*.md", "**/*.log"}, []string{"", "build", "build/out", "build/out/bin", "keep.txt",
			"logs", "logs/old", "secret.txt", "src", "src/a.go", "src/a_test.go", "src/deep", "src/deep/b_test.go"}},
	}
	for _, tt := range tests {
		ig, err := NewIgnore(tt.patterns)
		if err != nil {
			t.Fatal(err)
		}
		sel := &Selection{FS: Dir(root), Ignore: ig, Context: true}
		ms, err := sel.Match(".")
		if err != nil {
			t.Fatalf("%q: %v", tt.patterns, err)
		}
		ws, err := sel.Walk(ms[0])
		if err != nil {
			t.Fatalf("%q: %v", tt.patterns, err)
		}
		if g := rels(ws); !equal(g, tt.want) {
			t.Errorf("%q: Walk = %q\nwant %q", tt.patterns, g, tt.want)
		}
		// Not the context: the same Ignore is not applied.
		other := &Selection{FS: Dir(root), Ignore: ig}
		if ws, _ := other.Walk(ms[0]); !equal(rels(ws), tests[0].want) {
			t.Errorf("%q: Walk outside the context = %q", tt.patterns, rels(ws))
		}
	}
}

func TestWalkErrors(t *testing.T) {
	root := mkTree(t, "d/f", "d/sub/g")
	sel := &Selection{FS: Dir(root)}
	ms, err := sel.Match("d")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := sel.Walk(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "d", "f")); err != nil {
		t.Fatal(err)
	}
	if err := StatAll(ws); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "stat /d/f: lstat ") {
		t.Errorf("StatAll of a removed file = %v", err)
	}
	if err := os.RemoveAll(filepath.Join(root, "d", "sub")); err != nil {
		t.Fatal(err)
	}
	ms[0].Path = "/d/sub"
	if _, err := sel.Walk(ms[0]); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read /d/sub: open ") {
		t.Errorf("Walk of a removed dir = %v", err)
	}
}
