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

// TestResolveUser follows BuildKit's executor/oci GetUser + moby/sys/user
// GetExecUser + ensureAdditionalGids: Groups is what setgroups gets.
func TestResolveUser(t *testing.T) {
	tests := []struct {
		spec string
		want User
		err  string
	}{
		{"", User{UID: 0, GID: 0, Groups: []int{0, 10}, Home: "/root"}, ""},
		{"root", User{UID: 0, GID: 0, Groups: []int{0, 10}, Home: "/root"}, ""},
		{"0", User{UID: 0, GID: 0, Groups: []int{0, 10}, Home: "/root"}, ""},
		{"www", User{UID: 1000, GID: 1000, Groups: []int{1000, 10, 50}, Home: "/home/www"}, ""},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{1000, 10, 50}, Home: "/home/www"}, ""},
		{"nobody", User{UID: 65534, GID: 65534, Groups: []int{65534}, Home: "/nonexistent"}, ""},
		// An explicit group: that gid only, whatever the form.
		{"www:staff", User{UID: 1000, GID: 50, Groups: []int{50}, Home: "/home/www"}, ""},
		{"www:1000", User{UID: 1000, GID: 1000, Groups: []int{1000}, Home: "/home/www"}, ""},
		{"1000:www", User{UID: 1000, GID: 1000, Groups: []int{1000}, Home: "/home/www"}, ""},
		{"1000:50", User{UID: 1000, GID: 50, Groups: []int{50}, Home: "/home/www"}, ""},
		// "uid:gid" (and "root" for either) is BuildKit's fast path: no
		// group file lookup, so root:root has no wheel.
		{"root:root", User{UID: 0, GID: 0, Groups: []int{0}, Home: "/root"}, ""},
		{"0:0", User{UID: 0, GID: 0, Groups: []int{0}, Home: "/root"}, ""},
		{"root:10", User{UID: 0, GID: 10, Groups: []int{10}, Home: "/root"}, ""},
		{"root:wheel", User{UID: 0, GID: 10, Groups: []int{10}, Home: "/root"}, ""},
		// Ids without entries: gid 0 for a lone uid.
		{"1234", User{UID: 1234, GID: 0, Groups: []int{0}, Home: "/"}, ""},
		{"1234:5678", User{UID: 1234, GID: 5678, Groups: []int{5678}, Home: "/"}, ""},
		{"1234:staff", User{UID: 1234, GID: 50, Groups: []int{50}, Home: "/"}, ""},
		{"4294967295:1", User{UID: 4294967295, GID: 1, Groups: []int{1}, Home: "/"}, ""},
		// GetExecUser parses passwd lines loosely: "broken:line" is uid 0.
		{"broken", User{UID: 0, GID: 0, Groups: []int{0}, Home: "/root"}, ""},
		{"4294967295", User{}, "uids and gids must be in range 0-2147483647"},
		{"www:4294967295", User{}, "uids and gids must be in range 0-2147483647"},
		{"ghost", User{}, "unable to find user ghost: no matching entries in passwd file"},
		{"ghost:0", User{}, "unable to find user ghost: no matching entries in passwd file"},
		{"www:ghosts", User{}, "unable to find group ghosts: no matching entries in group file"},
		{"1234:ghosts", User{}, "unable to find group ghosts: no matching entries in group file"},
	}
	for _, tt := range tests {
		got, err := ResolveUser(etc, tt.spec)
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
		// Supplementary groups: every group listing the name, in file
		// order, the primary one included (so gid is not prepended); the
		// "bad" group's unparsable gid counts as 0, as in GetExecUser.
		{"app", User{UID: 1000, GID: 1000, Groups: []int{1, 1000, 10, 0, 999}, Home: "/home/app"}, ""},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{1, 1000, 10, 0, 999}, Home: "/home/app"}, ""},
		// An explicit group drops the supplementary groups.
		{"app:tty", User{UID: 1000, GID: 5, Groups: []int{5}, Home: "/home/app"}, ""},
		{"app:4242", User{UID: 1000, GID: 4242, Groups: []int{4242}, Home: "/home/app"}, ""},
		{"1000:docker", User{UID: 1000, GID: 999, Groups: []int{999}, Home: "/home/app"}, ""},
		{"app:bad", User{UID: 1000, GID: 0, Groups: []int{0}, Home: "/home/app"}, ""},
		{"daemon", User{UID: 1, GID: 1, Groups: []int{1}, Home: "/usr/sbin"}, ""},
		// The first entry of a uid or name wins; HOME comes from the first
		// entry of the resolved uid (runc's LookupUid).
		{"0", User{UID: 0, GID: 0, Groups: []int{0, 10}, Home: "/root"}, ""},
		{"toor", User{UID: 0, GID: 0, Groups: []int{0}, Home: "/root"}, ""},
		{"dup", User{UID: 2000, GID: 2000, Groups: []int{2000}, Home: "/first"}, ""},
		{"2001", User{UID: 2001, GID: 2001, Groups: []int{2001}, Home: "/second"}, ""},
		// Loose passwd parsing: missing or bad numbers are 0, missing home "".
		{"bad", User{UID: 0, GID: 1, Groups: []int{1}, Home: "/root"}, ""},
		{"short", User{UID: 7, GID: 0, Groups: []int{0}, Home: ""}, ""},
		// Unknown ids are fine; unknown names are not.
		{"4242", User{UID: 4242, GID: 0, Groups: []int{0}, Home: "/"}, ""},
		{"4242:app", User{UID: 4242, GID: 1000, Groups: []int{1000}, Home: "/"}, ""},
		{"0:4242", User{UID: 0, GID: 4242, Groups: []int{4242}, Home: "/root"}, ""},
		{"app:nope", User{}, "unable to find group nope: no matching entries in group file"},
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
		// No passwd: the default user is root with gid 0, HOME "/".
		{files{}, "", User{Groups: []int{0}, Home: "/"}, ""},
		{files{}, "0", User{Groups: []int{0}, Home: "/"}, ""},
		{files{}, "5", User{UID: 5, Groups: []int{0}, Home: "/"}, ""},
		{files{}, "5:6", User{UID: 5, GID: 6, Groups: []int{6}, Home: "/"}, ""},
		{files{}, "root:root", User{Groups: []int{0}, Home: "/"}, ""},
		{files{}, "root", User{}, "unable to find user root: no matching entries in passwd file"},
		{files{}, "0:wheel", User{}, "unable to find group wheel: no matching entries in group file"},
		// passwd without group: no supplementary groups.
		{files{"/etc/passwd": "app:x:1000:1000::/home/app:/bin/sh\n"}, "app", User{UID: 1000, GID: 1000, Groups: []int{1000}, Home: "/home/app"}, ""},
		// A default user that cannot be resolved is root, not an error.
		{files{"/etc/passwd": strings.Repeat("x", 70000)}, "", User{Groups: []int{0}, Home: "/"}, ""},
		{files{"/etc/passwd": strings.Repeat("x", 70000)}, "1", User{}, "unable to find user 1: bufio.Scanner: token too long"},
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
		{etc, "ghost", 0, 0, ""},            // BuildKit: an unknown user is 0:0
		{etc, "www:ghosts", 1000, 1000, ""}, // an unknown group keeps the user's gid
		// A numeric user gets the same gid, not its passwd group.
		{rootfs, "1", 1, 1, ""},
		{rootfs, "1000", 1000, 1000, ""},
		{rootfs, "daemon", 1, 1, ""},
		{rootfs, "app:docker", 1000, 999, ""},
		{rootfs, "app:0", 1000, 0, ""},
		{rootfs, "0:app", 0, 1000, ""},
		{rootfs, "dup", 2000, 2000, ""},
		{rootfs, "bad", 0, 0, ""},
		{rootfs, "bad:docker", 0, 999, ""},
		{rootfs, "app:bad", 1000, 1000, ""},
		{rootfs, "7:bad", 7, 7, ""},
		// Missing files: ids work, names are not found (0, or the gid so far).
		{files{}, "10:20", 10, 20, ""},
		{files{}, "app", 0, 0, ""},
		{files{}, "10:app", 10, 10, ""},
		// No tree at all (scratch): names are errors, ids work.
		{View(nil), "app", 0, 0, "--chown=app: unable to find app: the stage has no files (FROM scratch)"},
		{View(nil), "10:app", 0, 0, "--chown=10:app: unable to find app: the stage has no files (FROM scratch)"},
		{View(nil), "10:20", 10, 20, ""},
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
