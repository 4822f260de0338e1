package executor

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/builderdev/builder/layer"
)

// TestStampRunTimes: what the step wrote gets newest+1 s, a copy-up that
// kept its time below keeps it, the root takes the root below; and inside
// a dir the step made nothing is looked up below (one lookup for a whole
// new tree, not one per file: below walks every lower layer).
func TestStampRunTimes(t *testing.T) {
	upper := t.TempDir()
	since := time.Now()
	old := time.Unix(1000, 0)
	var ents []layer.Entry
	add := func(name string, dir bool, mtime time.Time) {
		p := filepath.Join(upper, name)
		var err error
		if dir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err == nil {
			err = os.Chtimes(p, mtime, mtime)
		}
		if err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o644)
		if dir {
			mode = fs.ModeDir | 0o755
		}
		ents = append(ents, layer.Entry{Name: name, Mode: mode, ModTime: mtime})
	}
	add("etc", true, since)          // exists below, the step changed it
	add("etc/chowned", false, since) // copy-up: the time it has below
	add("etc/older", false, old)     // before the step: not even looked up
	add("etc/new", false, since)
	add("nm", true, since)
	for _, d := range []string{"nm/a", "nm/b"} {
		add(d, true, since)
		for _, f := range []string{"/1", "/2", "/3"} {
			add(d+f, false, since)
		}
	}
	var asked []string
	below := func(p string) (fs.FileInfo, error) {
		asked = append(asked, p)
		switch p {
		case "/", "/etc":
			return os.Lstat(t.TempDir())
		case "/etc/chowned":
			return os.Lstat(filepath.Join(upper, "etc/chowned"))
		}
		return nil, fs.ErrNotExist
	}
	if err := stampRunTimes(upper, ents, since, 5000, below); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		want := int64(5001)
		switch e.Name {
		case "etc/chowned":
			want = since.Unix()
		case "etc/older":
			want = old.Unix()
		}
		fi, err := os.Lstat(filepath.Join(upper, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().Unix() != want || e.ModTime.Unix() != want {
			t.Errorf("%s: on disk %d, entry %d; want %d", e.Name, fi.ModTime().Unix(), e.ModTime.Unix(), want)
		}
	}
	if want := []string{"/etc", "/etc/chowned", "/etc/new", "/nm", "/"}; !slices.Equal(asked, want) {
		t.Errorf("looked up %v, want %v", asked, want)
	}
}
