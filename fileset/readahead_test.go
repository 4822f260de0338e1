package fileset

import (
	"fmt"
	"strings"
	"testing"
)

// lineFS is a Dir tree that is not a DirFS, so Walk lists it in line.
type lineFS struct{ DirFS }

// TestWalkReadahead: with directories listed ahead on other goroutines,
// Walk returns exactly what a walk on one goroutine returns (names that
// sort differently as paths and as components, .dockerignore with a "!"
// re-include, --exclude).
func TestWalkReadahead(t *testing.T) {
	var entries []string
	for i := range 40 {
		for _, n := range []string{"a/x", "a.txt", "a-b/y", "b/c/d/e", "skip/keep.txt", "skip/drop.txt", "ex/f"} {
			entries = append(entries, fmt.Sprintf("d%02d/%s", i, n))
		}
	}
	root := mkTree(t, entries...)
	ig, err := NewIgnore([]string{"*/skip", "!*/skip/keep.txt"})
	if err != nil {
		t.Fatal(err)
	}
	walk := func(fsys FS) []string {
		t.Helper()
		sel := &Selection{FS: fsys, Ignore: ig, Context: true, Excludes: []string{"*/ex"}}
		ms, err := sel.Match(".")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := sel.Walk(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range ws {
			if w.Rel != "" && w.Src != "/"+w.Rel {
				t.Fatalf("Walk: Src %q, Rel %q", w.Src, w.Rel)
			}
			out = append(out, w.Rel)
		}
		return out
	}
	got, want := walk(Dir(root)), walk(lineFS{Dir(root)})
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Walk with readahead:\n%q\nin line:\n%q", got, want)
	}
	if len(want) != 40*12+1 || want[1] != "d00" || want[2] != "d00/a" || want[4] != "d00/a-b" {
		t.Fatalf("Walk = %d entries, starting %q", len(want), want[:5])
	}

}
