package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenDirFallback checks the path used where openat2 is missing (Linux
// < 5.6, seccomp) resolves and confines like openat2.
func TestOpenDirFallback(t *testing.T) {
	dir, _ := baseContext(t)
	must(t, os.Symlink(t.TempDir(), filepath.Join(dir, "out")))
	must(t, os.Symlink("sub", filepath.Join(dir, "inlink")))
	must(t, os.Symlink("../..", filepath.Join(dir, "sub", "up")))
	for _, fallback := range []bool{false, true} {
		root, err := openContextRoot(dir)
		must(t, err)
		defer root.Close()
		root.noOpenat2.Store(fallback)
		for _, rel := range []string{".", "sub", "inlink", "sub/../sub"} {
			d, err := root.openDir(rel)
			if err != nil {
				t.Fatalf("fallback=%v: openDir(%q): %v", fallback, rel, err)
			}
			st, _, err := d.lstat("c.txt")
			if rel == "sub" || rel == "inlink" {
				if err != nil || st.size != int64(len("nested")) {
					t.Fatalf("fallback=%v: lstat %s/c.txt = %+v, %v", fallback, rel, st, err)
				}
			}
			d.Close()
		}
		for _, rel := range []string{"out", "sub/up"} {
			if _, err := root.openDir(rel); !errors.Is(err, errEscapes) {
				t.Errorf("fallback=%v: openDir(%q) = %v, want errEscapes", fallback, rel, err)
			}
		}
		if _, err := root.openDir("a.txt"); err == nil {
			t.Errorf("fallback=%v: openDir of a file succeeded", fallback)
		}
	}
}
