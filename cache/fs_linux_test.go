package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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
			var scratch []byte
			st, _, err := d.lstat("c.txt", &scratch)
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

// TestStatxMatchesFstatat: lstat through statx (with only the fields the
// cache uses) and through the fstatat fallback agree on every field, for
// every file type; so does fstat of the open file, which the read compares
// against lstat.
func TestStatxMatchesFstatat(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o640))
	must(t, os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "hard")))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o700))
	must(t, os.Symlink("f", filepath.Join(dir, "l")))
	must(t, unix.Mkfifo(filepath.Join(dir, "p"), 0o600))
	names := []string{"f", "hard", "d", "l", "p"}
	if err := unix.Mknod(filepath.Join(dir, "c"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err == nil {
		names = append(names, "c")
	} else {
		t.Logf("no char device (%v): not compared", err)
	}
	root, err := openContextRoot(dir)
	must(t, err)
	defer root.Close()
	d, err := root.openDir(".")
	must(t, err)
	defer d.Close()
	var scratch []byte
	for _, name := range names {
		root.noStatx.Store(false)
		viaStatx, link1, err1 := d.lstat(name, &scratch)
		if root.noStatx.Load() {
			t.Skip("statx unavailable: only fstatat is used")
		}
		root.noStatx.Store(true)
		viaFstatat, link2, err2 := d.lstat(name, &scratch)
		if err1 != nil || err2 != nil || viaStatx != viaFstatat || link1 != link2 {
			t.Errorf("%s: statx %+v %q %v; fstatat %+v %q %v", name, viaStatx, link1, err1, viaFstatat, link2, err2)
		}
		if name == "f" {
			f, err := d.open(name)
			must(t, err)
			fst, err := fstatFile(f)
			f.Close()
			if err != nil || !sameVersion(fst, viaStatx) {
				t.Errorf("fstat %+v, %v; lstat %+v", fst, err, viaStatx)
			}
		}
	}
}
