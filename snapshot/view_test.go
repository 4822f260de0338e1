//go:build linux

package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A layer fixture line: "f path content", "d path", "l path target",
// "w path" (whiteout, root only) or "o path" (opaque dir, root only).
type layerSpec []string

// makeLayers writes the layers (top first) under t.TempDir and returns
// their dirs. Root-only entries are skipped when not root.
func makeLayers(t *testing.T, specs ...layerSpec) []string {
	t.Helper()
	base := t.TempDir()
	dirs := make([]string, len(specs))
	for i, spec := range specs {
		dir := filepath.Join(base, "l"+string(rune('a'+i)))
		dirs[i] = dir
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, line := range spec {
			kind, rest, _ := strings.Cut(line, " ")
			p, arg, _ := strings.Cut(rest, " ")
			full := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			switch kind {
			case "f":
				err = os.WriteFile(full, []byte(arg), 0o644)
			case "d":
				err = os.MkdirAll(full, 0o755)
			case "l":
				err = os.Symlink(arg, full)
			case "w":
				if os.Geteuid() == 0 {
					err = unix.Mknod(full, unix.S_IFCHR|0o000, 0)
				}
			case "o":
				err = os.MkdirAll(full, 0o755)
				if err == nil && os.Geteuid() == 0 {
					err = unix.Setxattr(full, "trusted.overlay.opaque", []byte("y"), 0)
				}
			default:
				t.Fatalf("bad fixture line %q", line)
			}
			if err != nil {
				t.Fatalf("fixture %q: %v", line, err)
			}
		}
	}
	return dirs
}

// testView is an image of two layers over which every View test runs.
func testView(t *testing.T) View {
	upper := layerSpec{
		"f etc/hosts upper hosts",
		"f usr/lib/c c",
		"f data now a file",
		"w gone",
		"l opt /etc",
		"o opq",
		"f opq/shown shown",
		"w usr/lib/b",
	}
	lower := layerSpec{
		"f etc/passwd root:x:0:0",
		"f etc/hosts lower hosts",
		"f usr/lib/a a",
		"f usr/lib/b b",
		"f data/old old",
		"f gone gone",
		"f opt/y y",
		"f opq/hidden hidden",
		"l lnk-abs /etc/passwd",
		"l lnk-rel etc/hosts",
		"l lnk-up ../../../../etc/passwd",
		"l loop1 /loop2",
		"l loop2 loop1",
		"l escape /etc",
		"l escape-rel ../../../../../../../etc",
		"l hostonly /proc/self/status",
		"l dir-link usr/lib",
		"l dangling /nowhere/x",
		"l dangling-final /newfile",
		"l to-gone /gone",
		"l empty-dir-up usr/..",
	}
	return View{Lowers: makeLayers(t, upper, lower)}
}

func TestViewResolve(t *testing.T) {
	v := testView(t)
	tests := []struct {
		path, want string
		err        error
		root       bool
	}{
		{path: "/", want: "/"},
		{path: "", want: "/"},
		{path: "/etc/passwd", want: "/etc/passwd"},
		{path: "etc//passwd/", want: "/etc/passwd"},
		{path: "/../../etc/./passwd", want: "/etc/passwd"},
		{path: "/lnk-abs", want: "/etc/passwd"},
		{path: "/lnk-rel", want: "/etc/hosts"},
		{path: "/lnk-up", want: "/etc/passwd"},
		{path: "/dir-link/a", want: "/usr/lib/a"},
		{path: "/dir-link/../lib/c", want: "/usr/lib/c"}, // ".." of the link target, not lexical
		{path: "/escape/passwd", want: "/etc/passwd"},
		{path: "/escape-rel/passwd", want: "/etc/passwd"},
		{path: "/hostonly", err: fs.ErrNotExist},
		{path: "/opt/passwd", want: "/etc/passwd"}, // upper symlink hides lower dir
		{path: "/opt/y", want: "/etc/y"},
		{path: "/newdir", want: "/newdir"},
		{path: "/usr/lib/new", want: "/usr/lib/new"},
		{path: "/missing/x", err: fs.ErrNotExist},
		{path: "/dangling", err: fs.ErrNotExist},
		{path: "/dangling-final", want: "/newfile"},
		{path: "/loop1", err: syscall.ELOOP},
		{path: "/loop1/x", err: syscall.ELOOP},
		{path: "/etc/passwd/x", err: syscall.ENOTDIR},
		{path: "/data/old", err: syscall.ENOTDIR},
		{path: "/empty-dir-up/etc", want: "/etc"},
		{path: "/to-gone", want: "/gone", root: true},
		{path: "/gone/x", err: fs.ErrNotExist, root: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if tt.root {
				requireRoot(t)
			}
			got, err := v.Resolve(tt.path)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Resolve(%q) = %q, %v; want error %v", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestViewReadFile(t *testing.T) {
	v := testView(t)
	tests := []struct {
		path, want string
		err        error
		root       bool
	}{
		{path: "/etc/hosts", want: "upper hosts"},
		{path: "/etc/passwd", want: "root:x:0:0"},
		{path: "/lnk-rel", want: "upper hosts"},
		{path: "/lnk-abs", want: "root:x:0:0"},
		{path: "/usr/lib/a", want: "a"},
		{path: "/usr/lib/c", want: "c"},
		{path: "/dir-link/c", want: "c"},
		{path: "/data", want: "now a file"},
		{path: "/escape/passwd", want: "root:x:0:0"},
		{path: "/escape-rel/passwd", want: "root:x:0:0"},
		{path: "/opt/passwd", want: "root:x:0:0"},
		{path: "/opq/shown", want: "shown"},
		{path: "/opq/hidden", want: "hidden"}, // not opaque without root
		{path: "/hostonly", err: fs.ErrNotExist},
		{path: "/etc", err: syscall.EISDIR},
		{path: "/newfile", err: fs.ErrNotExist},
		{path: "/gone", err: fs.ErrNotExist, root: true},
		{path: "/to-gone", err: fs.ErrNotExist, root: true},
		{path: "/usr/lib/b", err: fs.ErrNotExist, root: true},
		{path: "/opq/hidden", err: fs.ErrNotExist, root: true},
	}
	for _, tt := range tests {
		name := tt.path
		if tt.root {
			name += "(root)"
		}
		t.Run(name, func(t *testing.T) {
			if tt.root {
				requireRoot(t)
			} else if tt.path == "/opq/hidden" && os.Geteuid() == 0 {
				t.Skip("as root /opq is opaque")
			}
			got, err := v.ReadFile(tt.path)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ReadFile(%q) = %q, %v; want error %v", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("ReadFile(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestViewLstat(t *testing.T) {
	v := testView(t)
	tests := []struct {
		path, name string
		mode       fs.FileMode // type bits
		size       int64       // checked for regular files
		layer      int         // index of the layer that must win
		err        error
	}{
		{path: "/", name: "/", mode: fs.ModeDir, layer: 0},
		{path: "/etc", name: "etc", mode: fs.ModeDir, layer: 0},
		{path: "/etc/passwd", name: "passwd", mode: 0, size: 10, layer: 1},
		{path: "/etc/hosts", name: "hosts", mode: 0, size: 11, layer: 0},
		{path: "/lnk-abs", name: "lnk-abs", mode: fs.ModeSymlink, layer: 1},
		{path: "/opt", name: "opt", mode: fs.ModeSymlink, layer: 0},
		{path: "/escape/hosts", name: "hosts", mode: 0, size: 11, layer: 0},
		{path: "/dir-link/..", name: "usr", mode: fs.ModeDir, layer: 0},
		{path: "/data", name: "data", mode: 0, size: 10, layer: 0},
		{path: "/nope", err: fs.ErrNotExist},
		{path: "/nope/x", err: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			fi, err := v.Lstat(tt.path)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Lstat(%q) = %v, %v; want error %v", tt.path, fi, err, tt.err)
				}
				if _, _, err := v.LstatHost(tt.path); !errors.Is(err, tt.err) {
					t.Fatalf("LstatHost(%q): %v, want error %v", tt.path, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Name() != tt.name || fi.Mode().Type() != tt.mode {
				t.Errorf("Lstat(%q): name %q type %v, want %q %v", tt.path, fi.Name(), fi.Mode().Type(), tt.name, tt.mode)
			}
			if tt.mode == 0 && fi.Size() != tt.size {
				t.Errorf("Lstat(%q): size %d, want %d", tt.path, fi.Size(), tt.size)
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				t.Fatalf("Lstat(%q).Sys() is %T", tt.path, fi.Sys())
			}
			resolved, err := v.Resolve(filepath.Dir(tt.path))
			if err != nil {
				t.Fatal(err)
			}
			var want syscall.Stat_t
			hostPath := filepath.Join(v.Lowers[tt.layer], resolved, fi.Name())
			if tt.path == "/" {
				hostPath = v.Lowers[tt.layer]
			} else if strings.HasSuffix(tt.path, "..") {
				hostPath = filepath.Join(v.Lowers[tt.layer], "usr")
			}
			if err := syscall.Lstat(hostPath, &want); err != nil {
				t.Fatal(err)
			}
			if st.Ino != want.Ino || st.Dev != want.Dev {
				t.Errorf("Lstat(%q) is inode %d, want %d of %s", tt.path, st.Ino, want.Ino, hostPath)
			}
			// LstatHost: the same in one walk, with HostPath's answer.
			fi2, host, err := v.LstatHost(tt.path)
			wantHost, herr := v.HostPath(tt.path)
			if st2, _ := fi2.Sys().(*syscall.Stat_t); err != nil || herr != nil || host != wantHost ||
				fi2.Name() != fi.Name() || st2 == nil || st2.Ino != st.Ino || st2.Dev != st.Dev {
				t.Errorf("LstatHost(%q) = %v, %q, %v; want %v, %q, %v", tt.path, fi2, host, err, fi, wantHost, herr)
			}
		})
	}
}

func TestViewNoLowers(t *testing.T) {
	var v View
	if got, err := v.Resolve("/a"); err != nil || got != "/a" {
		t.Errorf("Resolve: %q %v", got, err)
	}
	if _, err := v.ReadFile("/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile: %v", err)
	}
	if _, err := v.Lstat("/"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat: %v", err)
	}
}

// A symlink in a layer must never reach the host, even when the host path
// exists and the image path does not.
func TestViewEscapes(t *testing.T) {
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := View{Lowers: makeLayers(t, layerSpec{
		"l abs " + hostDir,
		"l rel ../../../../../../../../../.." + hostDir,
		"l host-etc /etc",
		"l file " + filepath.Join(hostDir, "secret"),
		"d " + strings.TrimPrefix(hostDir, "/"),
	})}
	for _, p := range []string{"/abs/secret", "/rel/secret", "/file", "/host-etc/hostname", "/host-etc/passwd"} {
		if b, err := v.ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) = %q, %v; want not found inside the image", p, b, err)
		}
	}
	if got, err := v.Resolve("/rel/secret"); err != nil || got != hostDir+"/secret" {
		t.Errorf("Resolve(/rel/secret) = %q, %v", got, err)
	}
}

// TestViewReadDir: the merged listing hides whiteouts and what an opaque
// dir covers, and each entry is exactly what Lstat of its path returns.
func TestViewReadDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: whiteout and opaque fixtures need root")
	}
	v := testView(t)
	for dir, want := range map[string]string{
		"/usr/lib": "a c",
		"/opq":     "shown",
		"/etc":     "hosts passwd",
	} {
		infos, err := v.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%s): %v", dir, err)
		}
		var names []string
		for _, fi := range infos {
			names = append(names, fi.Name())
			lst, err := v.Lstat(filepath.Join(dir, fi.Name()))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := fi.Sys().(*syscall.Stat_t)
			b, _ := lst.Sys().(*syscall.Stat_t)
			if a == nil || b == nil || a.Ino != b.Ino || a.Dev != b.Dev || fi.Mode() != lst.Mode() {
				t.Errorf("ReadDir(%s) entry %s is not what Lstat returns", dir, fi.Name())
			}
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("ReadDir(%s) = %q, want %q", dir, got, want)
		}
	}
	if _, err := v.ReadDir("/etc/hosts"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("ReadDir of a file: %v", err)
	}
}
