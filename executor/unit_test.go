package executor

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"80", []string{"80/tcp"}, false},
		{"53/udp", []string{"53/udp"}, false},
		{"8000-8002", []string{"8000/tcp", "8001/tcp", "8002/tcp"}, false},
		{"9000/SCTP", []string{"9000/sctp"}, false},
		{"127.0.0.1:80:80/tcp", []string{"80/tcp"}, false},
		{"http", nil, true},
		{"80/icmp", nil, true},
		{"90-80", nil, true},
	}
	for _, tt := range tests {
		got, err := parsePorts(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parsePorts(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCheckSignal(t *testing.T) {
	for _, ok := range []string{"SIGTERM", "TERM", "sigkill", "9", "SIGRTMIN+3", "SIGPWR"} {
		if err := checkSignal(ok); err != nil {
			t.Errorf("checkSignal(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"SIGFOO", "0", "99", ""} {
		if err := checkSignal(bad); err == nil {
			t.Errorf("checkSignal(%q) accepted", bad)
		}
	}
}

func TestParseChmod(t *testing.T) {
	file, dir, exe := fs.FileMode(0o644), fs.ModeDir|0o700, fs.FileMode(0o750)
	tests := []struct {
		in      string
		in0     fs.FileMode
		want    fs.FileMode
		invalid bool
	}{
		{"0755", file, 0o755, false},
		{"644", dir, fs.ModeDir | 0o644, false},
		{"4755", file, fs.ModeSetuid | 0o755, false},
		{"1777", dir, fs.ModeDir | fs.ModeSticky | 0o777, false},
		{"u+x", file, 0o744, false},
		{"go-r", file, 0o600, false},
		{"u=rwx,go=rx", file, 0o755, false},
		{"a+X", file, 0o644, false},
		{"a+X", exe, 0o751, false},
		{"a+X", dir, fs.ModeDir | 0o711, false},
		{"u+s", exe, fs.ModeSetuid | 0o750, false},
		{"+t", dir, fs.ModeDir | fs.ModeSticky | 0o700, false},
		{"o=", exe, 0o750, false},
		{"u+x-w", file, 0o544, false},
		{"99x", 0, 0, true},
		{"u*x", 0, 0, true},
		{"u", 0, 0, true},
		{"17777", 0, 0, true},
	}
	for _, tt := range tests {
		f, err := parseChmod(tt.in)
		if tt.invalid {
			if err == nil {
				t.Errorf("parseChmod(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseChmod(%q): %v", tt.in, err)
			continue
		}
		if got := f(tt.in0); got != tt.want {
			t.Errorf("parseChmod(%q)(%v) = %v, want %v", tt.in, tt.in0, got, tt.want)
		}
	}
	if f, err := parseChmod(""); f != nil || err != nil {
		t.Errorf(`parseChmod("") = %v, %v; want nil, nil`, f, err)
	}
}

type files map[string]string

func (f files) ReadFile(p string) ([]byte, error) {
	if d, ok := f[p]; ok {
		return []byte(d), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

var etc = files{
	"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww:x:1000:1000:www:/home/www:/bin/sh\n# comment\nbroken:line\n",
	"/etc/group":  "root:x:0:\nwheel:x:10:root,www\nwww:x:1000:\nstaff:x:50:www\n",
}

func TestResolveUser(t *testing.T) {
	tests := []struct {
		spec string
		want execUser
		err  string
	}{
		{"", execUser{uid: 0, gid: 0, groups: []int{10}, home: "/root"}, ""},
		{"root", execUser{uid: 0, gid: 0, groups: []int{10}, home: "/root"}, ""},
		{"www", execUser{uid: 1000, gid: 1000, groups: []int{10, 50}, home: "/home/www"}, ""},
		{"www:staff", execUser{uid: 1000, gid: 50, home: "/home/www"}, ""},
		{"1000", execUser{uid: 1000, gid: 1000, groups: []int{10, 50}, home: "/home/www"}, ""},
		{"1234:5678", execUser{uid: 1234, gid: 5678, home: "/"}, ""},
		{"ghost", execUser{}, "unable to find user ghost"},
		{"www:ghosts", execUser{}, "unable to find group ghosts"},
	}
	for _, tt := range tests {
		got, err := resolveUser(etc, tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolveUser(%q) err = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("resolveUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	// No passwd file at all (FROM scratch): numeric ids still work.
	if u, err := resolveUser(files{}, "5:6"); err != nil || u.uid != 5 || u.gid != 6 {
		t.Errorf("scratch 5:6 = %+v, %v", u, err)
	}
}

func TestChownIDs(t *testing.T) {
	tests := []struct {
		spec     string
		uid, gid int
		err      bool
	}{
		{"www", 1000, 1000, false},
		{"www:wheel", 1000, 10, false},
		{"1001", 1001, 1001, false},
		{"1001:7", 1001, 7, false},
		{"nobody:www", 65534, 1000, false},
		{"ghost", 0, 0, true},
		{"www:ghosts", 0, 0, true},
	}
	for _, tt := range tests {
		uid, gid, err := chownIDs(etc, tt.spec)
		if (err != nil) != tt.err || uid != tt.uid || gid != tt.gid {
			t.Errorf("chownIDs(%q) = %d:%d %v; want %d:%d err=%v", tt.spec, uid, gid, err, tt.uid, tt.gid, tt.err)
		}
	}
}

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
	must(os.Symlink("/etc", filepath.Join(root, "abs")))
	must(os.Symlink("../../..", filepath.Join(root, "real/up")))
	must(os.Symlink("real", filepath.Join(root, "rel")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	d := dirFS{root: root}
	tests := []struct {
		in, want string
		err      bool
	}{
		{"/rel/sub", "/real/sub", false},
		{"/abs/passwd", "/etc/passwd", false}, // the image's /etc, never the host's
		{"/real/up/real", "/real", false},
		{"/rel/missing", "/real/missing", false},
		{"/missing/x", "", true},
		{"/loop", "", true},
	}
	for _, tt := range tests {
		got, err := d.Resolve(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestAncestors(t *testing.T) {
	if got := ancestors("/a/b/c"); !reflect.DeepEqual(got, []string{"/a", "/a/b", "/a/b/c"}) {
		t.Errorf("ancestors = %v", got)
	}
	if got := ancestors("/"); got != nil {
		t.Errorf("ancestors(/) = %v", got)
	}
}

func TestRunHistory(t *testing.T) {
	st := &imageState{}
	st.args = st.args.set("A", "1").set("B", "x y")
	st.argDefs = []kv{{"A", "0"}, {"B", ""}, {"A", "1"}}
	got := runHistory([]string{"/bin/sh", "-c", "echo hi"}, st)
	if want := "|2 A=1 B=x y /bin/sh -c echo hi"; got != want {
		t.Errorf("runHistory = %q, want %q", got, want)
	}
}
