package fileset

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadDirMatchesOS: readDir lists what os.ReadDir lists (names, order,
// types, Info), over several getdents calls, for every file type.
func TestReadDirMatchesOS(t *testing.T) {
	dir := t.TempDir()
	for i := range 1500 { // ~80 KB of dirents: several getdents calls
		name := fmt.Sprintf("f%04d-%s", i, strings.Repeat("x", i%40))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"d", "d.txt", "d-x", "é", "with space"} {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("unix", filepath.Join(dir, "s")); err == nil {
		defer l.Close()
	}
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("readDir: %d entries, os.ReadDir %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name() != w.Name() || g.Type() != w.Type() || g.IsDir() != w.IsDir() {
			t.Fatalf("entry %d: %s %v, want %s %v", i, g.Name(), g.Type(), w.Name(), w.Type())
		}
		gi, err1 := g.Info()
		wi, err2 := w.Info()
		if err1 != nil || err2 != nil || gi.Mode() != wi.Mode() || gi.Size() != wi.Size() {
			t.Fatalf("%s: Info %v %v, want %v %v", g.Name(), gi, err1, wi, err2)
		}
	}
	if _, err := readDir(filepath.Join(dir, "missing")); !os.IsNotExist(err) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("readDir of a missing dir = %v", err)
	}
	if _, err := readDir(filepath.Join(dir, "p")); err == nil {
		t.Error("readDir of a fifo succeeded")
	}
}
