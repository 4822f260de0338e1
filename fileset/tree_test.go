package fileset

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestResolveInStaysInRoot(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "real/sub"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "real/file"), nil, 0o644))
	must(os.Symlink("/etc", filepath.Join(root, "abs")))
	must(os.Symlink("../../..", filepath.Join(root, "real/up")))
	must(os.Symlink("real", filepath.Join(root, "rel")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	must(os.Symlink("/", filepath.Join(root, "slash")))
	must(os.Symlink("/etc", filepath.Join(root, "real/sub/abs")))
	d := Dir(root)
	tests := []struct {
		in, want string
		err      error // errors.Is target, or errAny
	}{
		{"/rel/sub", "/real/sub", nil},
		{"rel/sub", "/real/sub", nil},
		{"/abs/passwd", "/etc/passwd", nil}, // the image's /etc, never the host's
		{"/real/up/real", "/real", nil},
		{"/real/sub/abs", "/etc", nil}, // an absolute target restarts at the root
		{"/real/sub/abs/passwd", "/etc/passwd", nil},
		{"/../../real", "/real", nil},
		{"/slash/slash/rel", "/real", nil},
		{"/rel/missing", "/real/missing", nil},
		{"/", "/", nil},
		{"", "/", nil},
		{"/missing/x", "", fs.ErrNotExist},
		{"/real/file/x", "", ErrNotDir},
		{"/loop", "", errAny},
		{"/loop/x", "", errAny},
	}
	for _, tt := range tests {
		got, err := d.Resolve(tt.in)
		if got != tt.want || (tt.err == nil) != (err == nil) || (tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	if _, err := d.Resolve("/loop"); err == nil || err.Error() != "/loop: too many levels of symbolic links" {
		t.Errorf("Resolve(/loop) error = %v", err)
	}
}

var errAny = errors.New("any error")

func TestAncestors(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/a/b/c", []string{"/a", "/a/b", "/a/b/c"}},
		{"/a/b/c/", []string{"/a", "/a/b", "/a/b/c"}},
		{"/a//b/../c", []string{"/a", "/a/c"}},
		{"/a", []string{"/a"}},
		{"/", nil},
		{"/..", nil},
	}
	for _, tt := range tests {
		if got := Ancestors(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Ancestors(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveDest(t *testing.T) {
	root := mkTree(t, "real/f", "ln -> real", "abs -> /etc", "loop -> loop", "app/")
	d := Dir(root)
	tests := []struct {
		in, want string
		err      error
	}{
		{"/app", "/app", nil},
		{"/app/new", "/app/new", nil},
		{"/ln/new/deeper", "/real/new/deeper", nil},
		{"/abs/x/y", "/etc/x/y", nil}, // the tree has no /etc: made inside it
		{"/new/a/b", "/new/a/b", nil},
		{"/", "/", nil},
		{"/real/f/x", "", ErrNotDir},
		{"/loop/x", "", errAny},
	}
	for _, tt := range tests {
		got, err := ResolveDest(d, tt.in)
		if got != tt.want || (tt.err == nil) != (err == nil) || (tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err)) {
			t.Errorf("ResolveDest(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	// Over the empty tree every destination is new.
	if got, err := ResolveDest(View(nil), "/usr/local/bin"); got != "/usr/local/bin" || err != nil {
		t.Errorf("ResolveDest(scratch) = %q, %v", got, err)
	}
}

func TestDirFS(t *testing.T) {
	root := mkTree(t, "d/b", "d/a", "d/l -> b", "f")
	d := Dir(root)
	if d.Root() != root {
		t.Errorf("Root() = %q, want %q", d.Root(), root)
	}
	for in, want := range map[string]string{"/d/b": "d/b", "d/b": "d/b", "/../../d/b": "d/b", "/": ""} {
		if got, err := d.HostPath(in); err != nil || got != filepath.Join(root, filepath.FromSlash(want)) {
			t.Errorf("HostPath(%q) = %q, %v", in, got, err)
		}
	}
	ents, err := d.ReadDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !equal(names, []string{"a", "b", "l"}) || ents[2].Type() != fs.ModeSymlink {
		t.Errorf("ReadDir = %q", names)
	}
	if fi, err := d.Lstat("/d/l"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(/d/l) = %v, %v; want the link itself", fi, err)
	}
	if got, err := d.Readlink("/d/l"); got != "b" || err != nil {
		t.Errorf("Readlink = %q, %v", got, err)
	}
	f, err := d.Open("/d/b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "d/b" {
		t.Errorf("Open(/d/b) read %q", b)
	}
	if _, err := d.Open("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(/nope) = %v", err)
	}
}
