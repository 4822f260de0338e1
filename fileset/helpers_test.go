package fileset

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// mkTree makes a tree under a new temp dir from entries: "d/" is a
// directory, "l -> t" a symlink to t, anything else a file whose content is
// its own name. Parent directories are made as needed.
func mkTree(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		name, target, isLink := strings.Cut(e, " -> ")
		p := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(name, "/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case isLink:
			err = os.Symlink(target, p)
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(name), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// matchRow is a Match without its FileInfo, for exact comparison.
type matchRow struct {
	Path, Matched, DestRel string
	Dir                    bool
}

func rows(ms []Match) []matchRow {
	if ms == nil {
		return nil
	}
	out := make([]matchRow, len(ms))
	for i, m := range ms {
		out[i] = matchRow{Path: m.Path, Matched: m.Matched, DestRel: m.DestRel, Dir: m.Info.IsDir()}
	}
	return out
}

// file and dir are matchRows of a match that is not a symlink.
func file(p, destRel string) matchRow { return matchRow{Path: p, Matched: p, DestRel: destRel} }
func dir(p string) matchRow           { return matchRow{Path: p, Matched: p, Dir: true} }

// rels lists the Rel of each walked entry.
func rels(ws []Walked) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Rel
	}
	return out
}

// matchCase is one source argument and what Match must return: rows, or
// an error with exactly the text err (and matching errors.Is(is) if set).
type matchCase struct {
	src  string
	want []matchRow
	err  string
	is   error
}

func runMatch(t *testing.T, sel *Selection, tests []matchCase) {
	t.Helper()
	for _, tt := range tests {
		got, err := sel.Match(tt.src)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Match(%q) error = %v, want %q", tt.src, err, tt.err)
			} else if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Match(%q) error %v is not %v", tt.src, err, tt.is)
			}
			continue
		}
		if err != nil {
			t.Errorf("Match(%q): %v", tt.src, err)
			continue
		}
		if g := rows(got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("Match(%q) =\n\t%+v\nwant\n\t%+v", tt.src, g, tt.want)
		}
		for _, m := range got {
			if fi, err := sel.FS.Lstat(m.Path); err != nil || fi.Mode() != m.Info.Mode() {
				t.Errorf("Match(%q): Info of %s is not its Lstat", tt.src, m.Path)
			}
		}
	}
}

// isNotExist reports whether err is a *fs.PathError for op wrapping fs.ErrNotExist.
func isNotExist(err error, op string) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == op && errors.Is(err, fs.ErrNotExist)
}
