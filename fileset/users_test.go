package fileset

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

type files map[string]string

func (f files) ReadFile(p string) ([]byte, error) {
	if d, ok := f[p]; ok {
		return []byte(d), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

// mapReader reads a rootfs held in a MapFS.
type mapReader struct{ fstest.MapFS }

func (m mapReader) ReadFile(p string) ([]byte, error) {
	return fs.ReadFile(m.MapFS, strings.TrimPrefix(p, "/"))
}

// failReader fails every read with a non-ENOENT error.
type failReader struct{}

func (failReader) ReadFile(string) ([]byte, error) { return nil, errors.New("i/o error") }

var etc = files{
	"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww:x:1000:1000:www:/home/www:/bin/sh\n# comment\nbroken:line\n",
	"/etc/group":  "root:x:0:\nwheel:x:10:root,www\nwww:x:1000:\nstaff:x:50:www\n",
}

func TestResolveUser(t *testing.T) {
	tests := []struct {
		spec string
		want User
		err  string
	}{
		{"", User{UID: 0, GID: 0, Groups: []int{10}, Home: "/root"}, ""},
		{"root", User{UID: 0, GID: 0, Groups: []int{10}, Home: "/root"}, ""},
		{"www", User{UID: 1000, GID: 1000, Groups: []int{10, 50}, Home: "/home/www"}, ""},
		{"www:staff", User{UID: 1000, GID: 50, Home: "/home/www"}, ""},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{10, 50}, Home: "/home/www"}, ""},
		{"1234:5678", User{UID: 1234, GID: 5678, Home: "/"}, ""},
		{"ghost", User{}, "unable to find user ghost"},
		{"www:ghosts", User{}, "unable to find group ghosts"},
	}
	for _, tt := range tests {
		got, err := ResolveUser(etc, tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ResolveUser(%q) err = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	// No passwd file at all (FROM scratch): numeric ids still work.
	if u, err := ResolveUser(files{}, "5:6"); err != nil || u.UID != 5 || u.GID != 6 {
		t.Errorf("scratch 5:6 = %+v, %v", u, err)
	}
}

// A richer rootfs, read through a MapFS.
var rootfs = mapReader{fstest.MapFS{
	"etc/passwd": {Data: []byte(`root:x:0:0:root:/root:/bin/sh
  # an indented comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
bad:x:uid:1:::
short:x:7
toor:x:0:0::/:/bin/sh
dup:x:2000:2000::/first:/bin/sh
dup:x:2001:2001::/second:/bin/sh
`)},
	"etc/group": {Data: []byte(`root:x:0:
daemon:x:1:app
app:x:1000:app
wheel:x:10:root,app
bad:x:gid:app
docker:x:999:app,other
tty:x:5:
`)},
}}

func TestResolveUserRootfs(t *testing.T) {
	tests := []struct {
		spec string
		want User
		err  string
	}{
		// Supplementary groups: every group listing the user, but not its primary one.
		{"app", User{UID: 1000, GID: 1000, Groups: []int{1, 10, 999}, Home: "/home/app"}, ""},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{1, 10, 999}, Home: "/home/app"}, ""},
		// An explicit group drops the supplementary groups.
		{"app:tty", User{UID: 1000, GID: 5, Home: "/home/app"}, ""},
		{"app:4242", User{UID: 1000, GID: 4242, Home: "/home/app"}, ""},
		{"1000:docker", User{UID: 1000, GID: 999, Home: "/home/app"}, ""},
		{"daemon", User{UID: 1, GID: 1, Home: "/usr/sbin"}, ""},
		// The first entry of a uid or name wins; "/" stays for a named root.
		{"0", User{UID: 0, GID: 0, Groups: []int{10}, Home: "/root"}, ""},
		{"toor", User{UID: 0, GID: 0, Home: "/"}, ""},
		{"dup", User{UID: 2000, GID: 2000, Home: "/first"}, ""},
		{"2001", User{UID: 2001, GID: 2001, Home: "/second"}, ""},
		// Unknown ids are fine; unknown names are not.
		{"4242", User{UID: 4242, GID: 0, Home: "/"}, ""},
		{"4242:app", User{UID: 4242, GID: 1000, Home: "/"}, ""},
		{"0:4242", User{UID: 0, GID: 4242, Home: "/root"}, ""},
		{"bad", User{}, "unable to find user bad: no matching entries in passwd file"},
		{"short", User{}, "unable to find user short: no matching entries in passwd file"},
		{"app:bad", User{}, "unable to find group bad: no matching entries in group file"},
		{"other", User{}, "unable to find user other: no matching entries in passwd file"},
	}
	for _, tt := range tests {
		got, err := ResolveUser(rootfs, tt.spec)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ResolveUser(%q) err = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

func TestResolveUserMissingFiles(t *testing.T) {
	tests := []struct {
		r    FileReader
		spec string
		want User
		err  string
	}{
		{files{}, "", User{Home: "/root"}, ""},
		{files{}, "0", User{Home: "/root"}, ""},
		{files{}, "5:6", User{UID: 5, GID: 6, Home: "/"}, ""},
		{files{}, "root", User{}, "unable to find user root: no matching entries in passwd file"},
		{files{}, "0:wheel", User{}, "unable to find group wheel: no matching entries in group file"},
		// passwd without group: no supplementary groups.
		{files{"/etc/passwd": "app:x:1000:1000::/home/app:/bin/sh\n"}, "app", User{UID: 1000, GID: 1000, Home: "/home/app"}, ""},
		// A read error other than "missing" fails, even for ids.
		{failReader{}, "5:6", User{}, "read /etc/passwd: i/o error"},
		{partial{files{"/etc/passwd": ""}}, "5", User{}, "read /etc/group: i/o error"},
	}
	for _, tt := range tests {
		got, err := ResolveUser(tt.r, tt.spec)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ResolveUser(%T, %q) err = %v, want %q", tt.r, tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ResolveUser(%T, %q) = %+v, %v; want %+v", tt.r, tt.spec, got, err, tt.want)
		}
	}
}

// partial fails reads of files it does not hold.
type partial struct{ files }

func (p partial) ReadFile(name string) ([]byte, error) {
	if _, ok := p.files[name]; ok {
		return p.files.ReadFile(name)
	}
	return nil, errors.New("i/o error")
}

func TestChownIDs(t *testing.T) {
	tests := []struct {
		r        FileReader
		spec     string
		uid, gid int
		err      string
	}{
		{etc, "www", 1000, 1000, ""},
		{etc, "www:wheel", 1000, 10, ""},
		{etc, "1001", 1001, 1001, ""},
		{etc, "1001:7", 1001, 7, ""},
		{etc, "nobody:www", 65534, 1000, ""},
		{etc, "ghost", 0, 0, "--chown=ghost: unable to find user ghost in /etc/passwd"},
		{etc, "www:ghosts", 0, 0, "--chown=www:ghosts: unable to find group ghosts in /etc/group"},
		// A numeric user gets the same gid, not its passwd group.
		{rootfs, "1", 1, 1, ""},
		{rootfs, "1000", 1000, 1000, ""},
		{rootfs, "daemon", 1, 1, ""},
		{rootfs, "app:docker", 1000, 999, ""},
		{rootfs, "app:0", 1000, 0, ""},
		{rootfs, "0:app", 0, 1000, ""},
		{rootfs, "dup", 2000, 2000, ""},
		{rootfs, "bad", 0, 0, "--chown=bad: unable to find user bad in /etc/passwd"},
		{rootfs, "app:bad", 0, 0, "--chown=app:bad: unable to find group bad in /etc/group"},
		// Missing files: ids work, names do not.
		{files{}, "10:20", 10, 20, ""},
		{files{}, "app", 0, 0, "--chown=app: unable to find user app in /etc/passwd"},
		{files{}, "10:app", 0, 0, "--chown=10:app: unable to find group app in /etc/group"},
		// Ids never read the files; names pass read errors through.
		{failReader{}, "10:20", 10, 20, ""},
		{failReader{}, "app", 0, 0, "i/o error"},
		{failReader{}, "10:app", 0, 0, "i/o error"},
	}
	for _, tt := range tests {
		uid, gid, err := ChownIDs(tt.r, tt.spec)
		if (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) || uid != tt.uid || gid != tt.gid {
			t.Errorf("ChownIDs(%T, %q) = %d:%d %v; want %d:%d %q", tt.r, tt.spec, uid, gid, err, tt.uid, tt.gid, tt.err)
		}
	}
}
