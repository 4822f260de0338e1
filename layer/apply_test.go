//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// buildSampleTree writes a tree with every file kind, owner, special mode
// bits, xattrs and hardlinks.
func buildSampleTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "usr/bin", "home/app/.cache", "tmp", "empty"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("box\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), bytes.Repeat([]byte("tool"), 50000), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.WriteFile(filepath.Join(root, "home/app/data"), []byte("secret"), 0o600))
	must(os.WriteFile(filepath.Join(root, "home/app/.cache/empty"), nil, 0o640))
	must(os.Chown(filepath.Join(root, "home/app"), 1000, 1000))
	must(os.Chown(filepath.Join(root, "home/app/data"), 1000, 1001))
	must(os.Symlink("../usr/bin/tool", filepath.Join(root, "etc/tool-link")))
	must(os.Symlink("/nonexistent/abs", filepath.Join(root, "etc/dangling")))
	must(os.Lchown(filepath.Join(root, "etc/dangling"), 5, 6))
	must(unix.Mkfifo(filepath.Join(root, "tmp/fifo"), 0o600))
	must(unix.Mknod(filepath.Join(root, "tmp/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "tmp/blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	must(os.WriteFile(filepath.Join(root, "usr/bin/suid"), []byte("s"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/suid"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky))
	must(unix.Lsetxattr(filepath.Join(root, "etc/hostname"), "user.origin", []byte("test\x00bin"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "home"), "user.dir", []byte("d"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "usr/bin/suid"), "security.capability", capNetBind(), 0))
	must(unix.Lsetxattr(filepath.Join(root, "etc/hostname"), "trusted.skip", []byte("x"), 0))
	// Fixed, distinct times, some with nanoseconds.
	i := 0
	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		i++
		ts := []unix.Timespec{unix.NsecToTimespec(int64(i) * 1e9), unix.NsecToTimespec(1e18 + int64(i)*1e9 + 77)}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
}

// capNetBind is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_bind_service (effective).
func capNetBind() []byte {
	return []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestRoundtrip(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	buildSampleTree(t, src)
	entries, err := DirEntries(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := e.Xattrs["trusted.skip"]; ok {
			t.Errorf("DirEntries kept trusted.* xattr on %s", e.Name)
		}
	}
	want := treeState(t, src, false)
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			blob, p := pack(t, entries, PackOptions{Compression: c})
			dst := t.TempDir()
			got, err := Apply(context.Background(), dst, bytes.NewReader(blob), ApplyOptions{DiffID: p.DiffID})
			if err != nil {
				t.Fatal(err)
			}
			if got != p.DiffID {
				t.Errorf("Apply diffID %s, Pack diffID %s", got, p.DiffID)
			}
			if d := diffStates(want, treeState(t, dst, false)); d != "" {
				t.Errorf("trees differ:\n%s", d)
			}
			if inode(t, filepath.Join(dst, "usr/bin/tool")) != inode(t, filepath.Join(dst, "usr/bin/tool2")) {
				t.Error("hardlink not restored")
			}
			// Packing the copy gives the same layer.
			again, err := DirEntries(dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, p2 := pack(t, again, PackOptions{Compression: c}); p2 != p {
				t.Errorf("repacked %+v, want %+v", p2, p)
			}
		})
	}
}

func TestApplyDiffIDMismatch(t *testing.T) {
	blob := testutil.TarBytes(t, testutil.TarFile("f", "x"))
	wrong := digest.FromString("not the layer")
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(blob), ApplyOptions{DiffID: wrong})
	if err == nil || !strings.Contains(err.Error(), "verify diffID") {
		t.Fatalf("err = %v, want a diffID mismatch", err)
	}
	right := digest.FromBytes(blob)
	if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(blob), ApplyOptions{DiffID: right}); err != nil {
		t.Fatalf("matching diffID: %v", err)
	}
}

func TestApplyDiffIDIncludesPadding(t *testing.T) {
	// Trailing zero blocks beyond the end marker are part of the stream.
	blob := append(testutil.TarBytes(t, testutil.TarFile("f", "x")), make([]byte, 4096)...)
	got, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(blob), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(blob); got != want {
		t.Errorf("diffID %s, want %s", got, want)
	}
}

func TestApplyReplace(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	steps := [][]testutil.TarEntry{
		{testutil.TarDir("d/"), testutil.TarFile("d/f", "1"), testutil.TarLink("l", "d", tar.TypeSymlink)},
		{testutil.TarFile("d", "now a file"), testutil.TarDir("l/"), testutil.TarFile("l/inner", "2")},
		{testutil.TarDir("d/"), testutil.TarFile("d/g", "3")},
		{testutil.TarDir("d/"), testutil.TarEntry{Header: tar.Header{Name: "d/h", Typeflag: tar.TypeFifo}}},
	}
	for _, s := range steps {
		applyBytes(t, dir, testutil.TarBytes(t, s...), WhiteoutReject)
	}
	got := treeState(t, dir, true)
	var names []string
	for _, s := range got {
		names = append(names, s.Name+":"+s.Mode.Type().String())
	}
	want := []string{"d:d---------", "d/g:----------", "d/h:p---------", "l:d---------", "l/inner:----------"}
	if !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
}

func TestApplyDirMtimeLast(t *testing.T) {
	dir := t.TempDir()
	blob := testutil.TarBytes(t,
		testutil.TarDir("d/"),
		testutil.TarFile("d/a", "x"),
		testutil.TarDir("d/sub/"),
		testutil.TarFile("d/sub/b", ""),
	)
	applyBytes(t, dir, blob, WhiteoutReject)
	for _, p := range []string{"d", "d/sub", "d/a"} {
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(time.Unix(1e9, 0)) {
			t.Errorf("%s mtime %v", p, st.ModTime())
		}
	}
}

func TestApplyRejectsBadEntries(t *testing.T) {
	cases := []struct {
		name    string
		members []testutil.TarEntry
		want    string
	}{
		{"dotdot", []testutil.TarEntry{testutil.TarFile("a/../../x", "")}, "escapes"},
		{"root file", []testutil.TarEntry{testutil.TarFile(".", "")}, "root must be a directory"},
		{"hardlink missing", []testutil.TarEntry{testutil.TarLink("h", "nope", tar.TypeLink)}, "no such file"},
		{"hardlink self", []testutil.TarEntry{testutil.TarLink("h", "./h", tar.TypeLink)}, "invalid"},
		{"file as parent", []testutil.TarEntry{testutil.TarFile("f", ""), testutil.TarFile("f/x", "")}, "not a directory"},
		{"dangling parent", []testutil.TarEntry{testutil.TarLink("s", "/nowhere", tar.TypeSymlink), testutil.TarFile("s/x", "")}, `"s/x"`},
		{"whiteout reject", []testutil.TarEntry{testutil.TarFile("a/.wh.b", "")}, "whiteouts are not allowed"},
		{"opaque reject", []testutil.TarEntry{testutil.TarFile("a/.wh..wh..opq", "")}, "whiteouts are not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(testutil.TarBytes(t, c.members...)), ApplyOptions{Whiteouts: WhiteoutReject})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			last := c.members[len(c.members)-1].Header.Name
			if !strings.Contains(err.Error(), `"`+last+`"`) {
				t.Errorf("error %q does not name %q", err, last)
			}
		})
	}
}

func TestApplyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	blob := testutil.TarBytes(t, testutil.TarFile("f", ""))
	if _, err := Apply(ctx, t.TempDir(), bytes.NewReader(blob), ApplyOptions{}); err == nil {
		t.Fatal("Apply ignored a canceled context")
	}
}

func TestWhiteoutOverlay(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keep/old"), 0o755); err != nil {
		t.Fatal(err)
	}
	blob := testutil.TarBytes(t,
		testutil.TarDir("a/"),
		testutil.TarFile("a/.wh.b", ""),
		testutil.TarDir("c/"),
		testutil.TarFile("c/.wh..wh..opq", ""),
		testutil.TarFile("c/new", "n"),
		testutil.TarFile("implicit/.wh.x", ""),
		testutil.TarFile("keep/.wh.old", ""),
		testutil.TarFile(".wh..wh.plnk", ""),
	)
	applyBytes(t, dir, blob, WhiteoutOverlay)
	for _, p := range []string{"a/b", "implicit/x", "keep/old"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %o rdev %d owner %d:%d, want a 0/0 char device owned by root", p, st.Mode, st.Rdev, st.Uid, st.Gid)
		}
	}
	v, ok, err := getXattr(filepath.Join(dir, "c"), "trusted.overlay.opaque")
	if err != nil || !ok || string(v) != "y" {
		t.Errorf("opaque xattr = %q, %v, %v", v, ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "c/new")); err != nil || string(b) != "n" {
		t.Errorf("c/new = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh..wh.plnk")); err == nil {
		t.Error("AUFS metadata written")
	}
}

func TestWhiteoutNamesInvalid(t *testing.T) {
	for _, name := range []string{".wh.", "a/.wh..", "a/.wh..."} {
		for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
			blob := testutil.TarBytes(t, testutil.TarFile(name, ""))
			_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(blob), ApplyOptions{Whiteouts: mode})
			if err == nil || !strings.Contains(err.Error(), "invalid whiteout") {
				t.Errorf("%s mode %d: err = %v", name, mode, err)
			}
		}
	}
}

func TestOverlayTrustedXattrsFromTarIgnored(t *testing.T) {
	requireRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.ok": "1"}}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	dir := t.TempDir()
	applyBytes(t, dir, buf.Bytes(), WhiteoutOverlay)
	x, err := readXattrs(filepath.Join(dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := x["trusted.overlay.redirect"]; bad || x["user.ok"] != "1" {
		t.Errorf("xattrs = %q", x)
	}
}

func TestWhiteoutDeleteFlatten(t *testing.T) {
	requireRoot(t)
	t0 := time.Unix(1e9, 0)
	layers := [][]Entry{
		{
			dirEntry("a", 0o755, t0), memEntry("a/f1", "1", 0o644, t0), memEntry("a/f2", "2", 0o644, t0),
			dirEntry("a/sub", 0o755, t0), memEntry("a/sub/deep", "d", 0o644, t0),
			dirEntry("b", 0o755, t0), memEntry("b/x", "x", 0o644, t0), memEntry("c", "c", 0o644, t0),
			dirEntry("e", 0o755, t0), memEntry("e/keep", "k", 0o644, t0), memEntry("e/gone", "g", 0o644, t0),
		},
		{
			{Name: "c", Whiteout: true},
			{Name: "a", Mode: fs.ModeDir | 0o700, Opaque: true, ModTime: t0},
			dirEntry("a/sub", 0o755, t0), memEntry("a/sub/new", "n", 0o644, t0), memEntry("a/new", "new", 0o644, t0),
			memEntry("b/y", "y", 0o644, t0),
			{Name: "e/gone", Whiteout: true},
			{Name: "nothing/here", Whiteout: true},
		},
		{
			{Name: "b", Whiteout: true},
			memEntry("a/f1", "again", 0o644, t0),
			memEntry("c", "back", 0o644, t0),
		},
	}
	dir := t.TempDir()
	for _, l := range layers {
		blob, _ := pack(t, l, PackOptions{})
		applyBytes(t, dir, blob, WhiteoutDelete)
	}
	var got []string
	for _, s := range treeState(t, dir, true) {
		got = append(got, s.Name)
	}
	want := []string{"a", "a/f1", "a/new", "a/sub", "a/sub/new", "c", "e", "e/keep"}
	if !slices.Equal(got, want) {
		t.Errorf("flattened %v, want %v", got, want)
	}
	if st, err := os.Stat(filepath.Join(dir, "a")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("opaque dir metadata not updated: %v %v", st.Mode(), err)
	}
}

func TestWhiteoutDeleteSameLayer(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	applyBytes(t, dir, testutil.TarBytes(t,
		testutil.TarDir("d/"),
		testutil.TarFile("d/old", ""),
		testutil.TarDir("d/kept/"),
		testutil.TarFile("d/kept/old", ""),
		testutil.TarFile("x", ""),
	), WhiteoutDelete)
	// The opaque marker comes after this layer's own children and a
	// whiteout names a file of this same layer: neither may remove them.
	applyBytes(t, dir, testutil.TarBytes(t,
		testutil.TarFile("d/-new", ""),
		testutil.TarDir("d/kept/"),
		testutil.TarFile("d/kept/new", ""),
		testutil.TarFile("d/.wh..wh..opq", ""),
		testutil.TarFile("y", ""),
		testutil.TarFile(".wh.y", ""),
		testutil.TarFile(".wh.x", ""),
	), WhiteoutDelete)
	var got []string
	for _, s := range treeState(t, dir, true) {
		got = append(got, s.Name)
	}
	want := []string{"d", "d/-new", "d/kept", "d/kept/new", "y"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDirEntriesSkipsSockets(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("abc"), 0o640); err != nil {
		t.Fatal(err)
	}
	es, err := DirEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "f" || es[0].Size != 3 || es[0].Mode != 0o640 || es[0].Ino == 0 {
		t.Fatalf("entries %+v", es)
	}
	st, _ := os.Lstat(filepath.Join(dir, "f"))
	if sys := st.Sys().(*syscall.Stat_t); es[0].Ino != sys.Ino || es[0].Dev != uint64(sys.Dev) {
		t.Errorf("Dev/Ino %d/%d, want %d/%d", es[0].Dev, es[0].Ino, sys.Dev, sys.Ino)
	}
	if _, err := DirEntries(filepath.Join(dir, "f")); err == nil {
		t.Error("DirEntries of a file succeeded")
	}
}

func TestApplyDirOverDirReplacesMetadata(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	t0 := time.Unix(1e9, 0)
	d1 := dirEntry("d", 0o700, t0)
	d1.UID, d1.Xattrs = 5, map[string]string{"user.old": "1", "user.both": "1"}
	l1, _ := pack(t, []Entry{d1, memEntry("d/f", "f", 0o644, t0)}, PackOptions{})
	d2 := dirEntry("d", 0o755, t0.Add(time.Hour))
	d2.Xattrs = map[string]string{"user.new": "2", "user.both": "2"}
	l2, _ := pack(t, []Entry{d2}, PackOptions{})
	applyBytes(t, dir, l1, WhiteoutDelete)
	applyBytes(t, dir, l2, WhiteoutDelete)
	got := treeState(t, dir, false)
	want := []fileState{
		{Name: "d", Mode: fs.ModeDir | 0o755, MTime: t0.Add(time.Hour).Unix(), Xattrs: "user.both=2,user.new=2"},
		{Name: "d/f", Mode: 0o644, MTime: t0.Unix(), Size: 1, Content: "252f10c83610"},
	}
	if d := diffStates(want, got); d != "" {
		t.Errorf("dir over dir:\n%s", d)
	}
}
