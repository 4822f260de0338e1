package fileset

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// memLayers is an in-memory Layers: a MapFS (with symlinks) resolved as a
// chroot, whose files are said to live under host.
type memLayers struct {
	m    fstest.MapFS
	host string
}

func rel(p string) string {
	if p = strings.TrimPrefix(path.Clean("/"+p), "/"); p == "" {
		return "."
	}
	return p
}

func (l memLayers) Lstat(p string) (fs.FileInfo, error) { return l.m.Lstat(rel(p)) }

func (l memLayers) ReadDir(p string) ([]fs.FileInfo, error) {
	ents, err := l.m.ReadDir(rel(p))
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, len(ents))
	for i, e := range ents {
		if out[i], err = e.Info(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l memLayers) HostPath(p string) (string, error) {
	if _, err := l.Lstat(p); err != nil {
		return "", err
	}
	return filepath.Join(l.host, filepath.FromSlash(rel(p))), nil
}

func (l memLayers) LstatHost(p string) (fs.FileInfo, string, error) {
	fi, err := l.Lstat(p)
	if err != nil {
		return nil, "", err
	}
	h, err := l.HostPath(p)
	return fi, h, err
}

func (l memLayers) Resolve(p string) (string, error) {
	return resolveIn(p, l.Lstat, func(q string) (string, error) { return l.m.ReadLink(rel(q)) })
}

func (l memLayers) ReadFile(p string) ([]byte, error) {
	r, err := l.Resolve(p)
	if err != nil {
		return nil, err
	}
	return l.m.ReadFile(rel(r))
}

func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
}

func TestViewFS(t *testing.T) {
	host := mkTree(t, "bin/sh", "bin/ls -> sh")
	l := memLayers{host: host, m: fstest.MapFS{
		"bin/sh":      {Data: []byte("#!"), Mode: 0o755},
		"bin/ls":      link("sh"),
		"bin/zz":      {Mode: 0o644},
		"etc/passwd":  {Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")},
		"etc/group":   {Data: []byte("root:x:0:\napp:x:1000:\nwheel:x:10:app\n")},
		"usr/lib/x":   {Data: []byte("x")},
		"lib":         link("/usr/lib"),
		"run":         {Mode: fs.ModeDir | 0o755},
		"usr/lib/dir": {Mode: fs.ModeDir | 0o700},
	}}
	v := View(l)
	if v.Empty() {
		t.Error("View(l).Empty() = true")
	}

	ents, err := v.ReadDir("/bin")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name()+":"+e.Type().String())
	}
	if want := []string{"ls:L---------", "sh:----------", "zz:----------"}; !equal(got, want) {
		t.Errorf("ReadDir(/bin) = %q, want %q", got, want)
	}
	if fi, err := ents[1].Info(); err != nil || fi.Mode() != 0o755 {
		t.Errorf("entry Info = %v, %v", fi, err)
	}
	if fi, err := v.Lstat("/bin/ls"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(/bin/ls) = %v, %v", fi, err)
	}
	if r, err := v.Resolve("/lib/x"); r != "/usr/lib/x" || err != nil {
		t.Errorf("Resolve(/lib/x) = %q, %v", r, err)
	}
	if b, err := v.ReadFile("/lib/x"); string(b) != "x" || err != nil {
		t.Errorf("ReadFile(/lib/x) = %q, %v", b, err)
	}
	// Open and Readlink go through HostPath to the host files.
	if h, err := v.HostPath("/bin/sh"); h != filepath.Join(host, "bin", "sh") || err != nil {
		t.Errorf("HostPath = %q, %v", h, err)
	}
	f, err := v.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "bin/sh" {
		t.Errorf("Open(/bin/sh) read %q", b)
	}
	if tg, err := v.Readlink("/bin/ls"); tg != "sh" || err != nil {
		t.Errorf("Readlink(/bin/ls) = %q, %v", tg, err)
	}
	if _, err := v.Open("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(/nope) = %v", err)
	}

	// Selection over a rootfs (COPY --from): globs, links, no context rules.
	sel := &Selection{FS: v}
	runMatch(t, sel, []matchCase{
		{src: "bin/*", want: []matchRow{{Path: "/bin/sh", Matched: "/bin/ls", DestRel: "ls"}, file("/bin/sh", "sh"), file("/bin/zz", "zz")}},
		{src: "lib", want: []matchRow{{Path: "/usr/lib", Matched: "/lib", Dir: true}}},
		{src: "../etc/passwd", want: []matchRow{file("/etc/passwd", "passwd")}},
		{src: "lib/nope", err: "lib/nope: no such file", is: ErrNoSource},
		{src: "run/*"},
	})
	ms, err := sel.Match("lib")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := sel.Walk(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	if g := rels(ws); !equal(g, []string{"", "dir", "x"}) {
		t.Errorf("Walk(lib) = %q", g)
	}

	// Users resolve through the view's /etc (runc's groups: the primary
	// gid first, then the groups that list the user).
	if u, err := ResolveUser(v, "app"); err != nil || u.UID != 1000 || u.GID != 1000 || u.Home != "/home/app" || !equal(u.Groups, []int{1000, 10}) {
		t.Errorf("ResolveUser(view, app) = %+v, %v", u, err)
	}
}

func TestViewEmpty(t *testing.T) {
	for name, v := range map[string]ViewFS{"View(nil)": View(nil), "ViewFS{}": {}} {
		if !v.Empty() {
			t.Errorf("%s.Empty() = false", name)
		}
		for _, p := range []string{"/", "/etc/passwd"} {
			if _, err := v.Lstat(p); !isNotExist(err, "lstat") {
				t.Errorf("%s.Lstat(%q) = %v", name, p, err)
			}
			if _, err := v.ReadDir(p); !isNotExist(err, "readdir") {
				t.Errorf("%s.ReadDir(%q) = %v", name, p, err)
			}
			if _, err := v.HostPath(p); !isNotExist(err, "open") {
				t.Errorf("%s.HostPath(%q) = %v", name, p, err)
			}
			if _, err := v.Open(p); !isNotExist(err, "open") {
				t.Errorf("%s.Open(%q) = %v", name, p, err)
			}
			if _, err := v.Readlink(p); !isNotExist(err, "open") {
				t.Errorf("%s.Readlink(%q) = %v", name, p, err)
			}
			if _, err := v.ReadFile(p); !isNotExist(err, "open") {
				t.Errorf("%s.ReadFile(%q) = %v", name, p, err)
			}
		}
		// Resolve only cleans: every path is a missing file of an empty root.
		for in, want := range map[string]string{"/": "/", "": "/", "/a/../b": "/b", "/../x": "/x", "/x/": "/x"} {
			if got, err := v.Resolve(in); got != want || err != nil {
				t.Errorf("%s.Resolve(%q) = %q, %v; want %q", name, in, got, err, want)
			}
		}
		if _, err := v.Resolve("/a/b"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s.Resolve(/a/b) = %v, want not exist (a missing parent)", name, err)
		}
		runMatch(t, &Selection{FS: v}, []matchCase{
			{src: "x", err: "x: no such file", is: ErrNoSource},
			{src: "*", err: "*: no such file", is: ErrNoSource},
			{src: ".", err: ".: no such file", is: ErrNoSource},
		})
		// No /etc/passwd: root by ids, HOME "/" and the gid as its only
		// group, as runc gives it.
		if u, err := ResolveUser(v, ""); err != nil || u.UID != 0 || u.GID != 0 || u.Home != "/" || !equal(u.Groups, []int{0}) {
			t.Errorf("%s: ResolveUser = %+v, %v", name, u, err)
		}
		if uid, gid, err := ChownIDs(v, "10:20"); uid != 10 || gid != 20 || err != nil {
			t.Errorf("%s: ChownIDs = %d:%d, %v", name, uid, gid, err)
		}
		if _, _, err := ChownIDs(v, "app"); err == nil {
			t.Errorf("%s: ChownIDs(app) found a user in the empty tree", name)
		}
	}
}

// A Layers error passes through unchanged.
func TestViewErrors(t *testing.T) {
	v := View(memLayers{m: fstest.MapFS{"f": {}}, host: os.DevNull})
	for op, err := range map[string]error{
		"lstat":    func() error { _, err := v.Lstat("/x"); return err }(),
		"readdir":  func() error { _, err := v.ReadDir("/f"); return err }(),
		"readfile": func() error { _, err := v.ReadFile("/x"); return err }(),
		"resolve":  func() error { _, err := v.Resolve("/f/x"); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", op)
		}
	}
}
