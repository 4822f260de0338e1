package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	errWrite := errors.New("write failed")
	cases := []struct {
		name    string
		old     string // content of the target before; "" = no target
		perm    fs.FileMode
		write   func(io.Writer) error
		opts    func(dir string) Options
		target  string // "" = "out"; a dir already there makes the rename fail
		wantErr error  // checked with errors.Is when set
		fail    bool
		want    string // content after
	}{
		{name: "new file", perm: 0o644, write: text("hello\n"), want: "hello\n"},
		{name: "replace", old: "old", perm: 0o600, write: text("new"), want: "new"},
		{name: "empty", old: "old", perm: 0o644, write: text(""), want: ""},
		{name: "mode not masked", perm: 0o666, write: text("x"), want: "x"},
		{name: "no sync", old: "old", perm: 0o600, write: text("cheap"), want: "cheap",
			opts: func(string) Options { return Options{NoSync: true} }},
		{name: "temp dir and pattern", perm: 0o644, write: text("t"), want: "t",
			opts: func(dir string) Options { return Options{TempDir: filepath.Join(dir, "tmp"), TempPattern: "file-"} }},
		{name: "write error", old: "old", perm: 0o644, write: partial("half", errWrite), wantErr: errWrite, want: "old"},
		{name: "write error no target", perm: 0o644, write: partial("half", errWrite), wantErr: errWrite},
		{name: "write error no sync", old: "old", perm: 0o644, write: partial("half", errWrite), wantErr: errWrite, want: "old",
			opts: func(string) Options { return Options{NoSync: true} }},
		{name: "write error in temp dir", old: "old", perm: 0o644, write: partial("half", errWrite), wantErr: errWrite, want: "old",
			opts: func(dir string) Options { return Options{TempDir: filepath.Join(dir, "tmp")} }},
		{name: "missing temp dir", old: "old", perm: 0o644, write: text("new"), wantErr: fs.ErrNotExist, want: "old",
			opts: func(dir string) Options { return Options{TempDir: filepath.Join(dir, "nope")} }},
		{name: "rename fails", perm: 0o644, write: text("new"), target: "busy", fail: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			// busy is a non-empty dir: renaming a file over it fails.
			if err := os.MkdirAll(filepath.Join(dir, "busy", "inside"), 0o755); err != nil {
				t.Fatal(err)
			}
			name := c.target
			if name == "" {
				name = "out"
			}
			path := filepath.Join(dir, name)
			if c.old != "" {
				if err := os.WriteFile(path, []byte(c.old), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			var opts Options
			if c.opts != nil {
				opts = c.opts(dir)
			}
			before := listing(t, dir)
			err := Write(path, c.perm, c.write, opts)
			failed := c.fail || c.wantErr != nil
			switch {
			case failed && err == nil:
				t.Fatal("Write succeeded, want an error")
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("Write: %v, want %v", err, c.wantErr)
			case !failed && err != nil:
				t.Fatalf("Write: %v", err)
			}
			// No temp file is left, in path's dir or the temp dir.
			after := listing(t, dir)
			if !failed && c.old == "" && name == "out" {
				before = append(before, "out")
				slices.Sort(before)
			}
			if !slices.Equal(after, before) {
				t.Errorf("entries %v, want %v", after, before)
			}
			if name != "out" {
				return // the dir in the way is untouched: checked by the listing
			}
			data, err := os.ReadFile(path)
			if failed && c.old == "" {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("target after a failed write: %q, %v; want none", data, err)
				}
				return
			}
			if err != nil || string(data) != c.want {
				t.Errorf("content %q, %v; want %q", data, err, c.want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			wantPerm := c.perm
			if failed {
				wantPerm = 0o640 // the old file's
			}
			if fi.Mode().Perm() != wantPerm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), wantPerm)
			}
		})
	}
}

// TestWriteTempLocation checks where the temp file is made and how it is
// named, as seen by the write func.
func TestWriteTempLocation(t *testing.T) {
	cases := []struct {
		name       string
		opts       func(dir string) Options
		wantDir    string // relative to the test dir
		wantPrefix string
	}{
		{"default", func(string) Options { return Options{} }, ".", ".out.tmp-"},
		{"temp dir", func(dir string) Options { return Options{TempDir: filepath.Join(dir, "tmp")} }, "tmp", ".out.tmp-"},
		{"pattern", func(string) Options { return Options{TempPattern: "out.*.part"} }, ".", "out."},
		{"both", func(dir string) Options { return Options{TempDir: filepath.Join(dir, "tmp"), TempPattern: "file-"} }, "tmp", "file-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			var tmp string
			err := Write(filepath.Join(dir, "out"), 0o644, func(w io.Writer) error {
				tmp = w.(*os.File).Name()
				return nil
			}, c.opts(dir))
			if err != nil {
				t.Fatal(err)
			}
			if got := filepath.Dir(tmp); got != filepath.Join(dir, c.wantDir) {
				t.Errorf("temp file in %s, want %s", got, filepath.Join(dir, c.wantDir))
			}
			if base := filepath.Base(tmp); !strings.HasPrefix(base, c.wantPrefix) || base == c.wantPrefix {
				t.Errorf("temp file %s, want %s<random>", base, c.wantPrefix)
			}
			if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("temp file %s left: %v", tmp, err)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("data"), 0o600, Options{}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "data" {
		t.Errorf("content %q, %v", data, err)
	}
}

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir(%s): %v", dir, err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(missing) = %v, want ErrNotExist", err)
	}
}

func text(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// partial writes s, then fails with err.
func partial(s string, err error) func(io.Writer) error {
	return func(w io.Writer) error {
		if _, werr := io.WriteString(w, s); werr != nil {
			return werr
		}
		return err
	}
}

// listing returns the sorted paths below dir, relative to it.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
