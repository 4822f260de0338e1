//go:build linux

package layer

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestApplyImplicitParentsIgnoreUmask: parents a tar does not list are made
// 0755 whatever the umask (overlay shows a snapshot's dir mode over the
// lower layers', so a narrowed one would leak the host's umask into RUN).
func TestApplyImplicitParentsIgnoreUmask(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	applyBytes(t, dir, testutil.TarBytes(t, testutil.TarFile("a/b/c", "x")), WhiteoutReject)
	for _, p := range []string{"a", "a/b"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Errorf("%s: mode %o, want 755", p, got)
		}
	}
}

// TestApplyImplicitParentsFromBelow: a parent the tar does not list takes
// owner, mode and mtime from the layers below (overlay shows the topmost
// copy of a dir); without one there, root 0755 at time 0.
func TestApplyImplicitParentsFromBelow(t *testing.T) {
	requireRoot(t)
	below := t.TempDir()
	if err := os.MkdirAll(filepath.Join(below, "home/www"), 0o755); err != nil {
		t.Fatal(err)
	}
	www := filepath.Join(below, "home/www")
	mtime := time.Unix(1234567890, 0)
	if err := os.Chtimes(filepath.Join(below, "home"), time.Unix(1000, 0), time.Unix(1000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(www, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(www, 0o750|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(www, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var asked []string
	opts := ApplyOptions{Whiteouts: WhiteoutOverlay, Below: func(name string) (fs.FileInfo, error) {
		asked = append(asked, name)
		return os.Lstat(filepath.Join(below, name))
	}}
	data := testutil.TarBytes(t, testutil.TarFile("home/www/app/x", "x"))
	if _, err := Apply(context.Background(), dir, bytes.NewReader(data), opts); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		uid   uint32
		mode  fs.FileMode
		mtime int64
	}{
		{"home", 0, 0o755, 1000},
		{"home/www", 1000, 0o750 | fs.ModeSetgid, 1234567890},
		{"home/www/app", 0, 0o755, 0}, // not below either
	}
	for _, tt := range tests {
		fi, err := os.Lstat(filepath.Join(dir, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		got := fi.Mode() &^ fs.ModeDir
		if st.Uid != tt.uid || got != tt.mode || fi.ModTime().Unix() != tt.mtime {
			t.Errorf("%s: uid %d mode %v mtime %d; want %d %v %d", tt.path, st.Uid, got, fi.ModTime().Unix(), tt.uid, tt.mode, tt.mtime)
		}
	}
	rootBelow, _ := os.Lstat(below)
	if rootNow, _ := os.Lstat(dir); !rootNow.ModTime().Equal(rootBelow.ModTime()) {
		t.Errorf("root mtime %v, want the one below %v", rootNow.ModTime(), rootBelow.ModTime())
	}
	if !slices.Equal(asked, []string{"", "home", "home/www", "home/www/app"}) { // "": the root
		t.Errorf("Below asked for %v", asked)
	}
}
