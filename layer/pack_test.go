package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// sampleEntries covers every entry kind Pack writes.
func sampleEntries() []Entry {
	t0 := time.Unix(1700000000, 123456789)
	link := memEntry("bin/tool", "#!/bin/sh\necho hi\n", fs.ModeSetuid|0o755, t0)
	link.Dev, link.Ino = 7, 42
	link2 := memEntry("usr/bin/tool-alias", "#!/bin/sh\necho hi\n", fs.ModeSetuid|0o755, t0)
	link2.Dev, link2.Ino = 7, 42
	capFile := memEntry("usr/bin/ping", "ping", 0o755, t0)
	capFile.Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "user.note": "x"}
	owned := memEntry("home/app/data", "data", 0o600, t0)
	owned.UID, owned.GID = 1000, 1000
	return []Entry{
		memEntry("etc/hostname", "box\n", 0o644, t0),
		dirEntry("etc", 0o755, t0),
		dirEntry("sbin", fs.ModeSetgid|0o750, t0),
		dirEntry("bin", 0o755, t0),
		link2,
		link,
		capFile,
		owned,
		dirEntry("home", 0o755, t0),
		dirEntry("home/app", 0o700, t0),
		dirEntry("usr", 0o755, t0),
		dirEntry("usr/bin", 0o755, t0),
		{Name: "bin/sh", Mode: fs.ModeSymlink | 0o777, Linkname: "busybox", ModTime: t0},
		{Name: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Devmajor: 1, Devminor: 3, ModTime: t0},
		{Name: "dev/sda", Mode: fs.ModeDevice | 0o660, Devmajor: 8, Devminor: 0, ModTime: t0},
		{Name: "dev/fifo", Mode: fs.ModeNamedPipe | 0o644, ModTime: t0},
		dirEntry("dev", 0o755, t0),
		dirEntry("tmp", fs.ModeSticky|0o777, t0),
		{Name: "var/old", Whiteout: true, ModTime: t0},
		{Name: "var", Mode: fs.ModeDir | 0o755, Opaque: true, ModTime: t0},
		dirEntry("a", 0o755, t0),
		memEntry("a.b", "", 0o644, t0),
		memEntry("a/b", "", 0o644, t0),
		memEntry("a-b", "", 0o644, t0),
	}
}

func TestPackGolden(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			blob, p := pack(t, sampleEntries(), PackOptions{Compression: c})
			checkGolden(t, "pack_listing.golden", listing(tarHeaders(t, blob)))
			if p.DiffID.String() != "sha256:"+goldenDiffID(t) {
				t.Errorf("diffID = %s, want the one in testdata/pack_diffid.golden", p.DiffID)
			}
		})
	}
}

func goldenDiffID(t *testing.T) string {
	t.Helper()
	_, p := pack(t, sampleEntries(), PackOptions{})
	checkGolden(t, "pack_diffid.golden", p.DiffID.Encoded()+"\n")
	return p.DiffID.Encoded()
}

func TestPackDeterministic(t *testing.T) {
	for _, c := range []Compression{"", Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			es := sampleEntries()
			blob1, p1 := pack(t, es, PackOptions{Compression: c})
			rev := make([]Entry, len(es))
			for i, e := range es {
				rev[len(es)-1-i] = e
			}
			blob2, p2 := pack(t, rev, PackOptions{Compression: c})
			if !bytes.Equal(blob1, blob2) || p1 != p2 {
				t.Fatalf("different output for reordered entries: %+v vs %+v", p1, p2)
			}
			if p1.Size != int64(len(blob1)) {
				t.Errorf("Size = %d, blob has %d bytes", p1.Size, len(blob1))
			}
			want := map[Compression]string{"": ocispec.MediaTypeImageLayerGzip, Gzip: ocispec.MediaTypeImageLayerGzip, Zstd: ocispec.MediaTypeImageLayerZstd}[c]
			if p1.MediaType != want {
				t.Errorf("MediaType = %s, want %s", p1.MediaType, want)
			}
			if c != Zstd && !bytes.Equal(blob1[:10], []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) {
				t.Errorf("gzip header not fixed: % x", blob1[:10])
			}
		})
	}
}

func TestPackOrder(t *testing.T) {
	blob, _ := pack(t, sampleEntries(), PackOptions{})
	var names []string
	for _, h := range tarHeaders(t, blob) {
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if i := strings.LastIndex(n, "/"); i > 0 && !seen[n[:i]] && n[:i] != "var" {
			t.Errorf("%s comes before its parent", n)
		}
		seen[n] = true
	}
	if i, j := indexOf(names, "var"), indexOf(names, "var/.wh..wh..opq"); j != i+1 {
		t.Errorf("opaque marker not right after its directory: %v", names)
	}
	if i, j, k := indexOf(names, "a"), indexOf(names, "a/b"), indexOf(names, "a.b"); !(i < j && j < k) {
		t.Errorf("want a < a/b < a.b, got %v", names)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestPackSourceDateEpoch(t *testing.T) {
	epoch := time.Unix(1600000000, 0)
	before, after := time.Unix(1500000000, 999), time.Unix(1700000000, 0)
	es := []Entry{
		memEntry("old", "x", 0o644, before),
		memEntry("new", "y", 0o644, after),
		dirEntry("d", 0o755, after),
		{Name: "gone", Whiteout: true, ModTime: after},
		memEntry("zero", "", 0o644, time.Time{}),
	}
	blob, _ := pack(t, es, PackOptions{SourceDateEpoch: &epoch})
	want := map[string]int64{"old": 1500000000, "new": 1600000000, "d/": 1600000000, ".wh.gone": 0, "zero": 0}
	for _, h := range tarHeaders(t, blob) {
		if got := h.ModTime.Unix(); got != want[h.Name] || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s mtime = %v, want %d", h.Name, h.ModTime, want[h.Name])
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s has atime/ctime", h.Name)
		}
	}
	// Without SourceDateEpoch the same entries keep their (whole-second) mtimes.
	blob, _ = pack(t, es, PackOptions{})
	if h := tarHeaders(t, blob)[2]; h.Name != "new" || h.ModTime.Unix() != 1700000000 {
		t.Errorf("unclamped %s mtime = %v", h.Name, h.ModTime)
	}
}

func TestPackHardlinks(t *testing.T) {
	a := memEntry("z/first", "same", 0o644, time.Unix(1, 0))
	b := memEntry("a/second", "same", 0o644, time.Unix(1, 0))
	c := memEntry("m/third", "same", 0o644, time.Unix(1, 0))
	other := memEntry("other", "x", 0o644, time.Unix(1, 0))
	a.Dev, a.Ino, b.Dev, b.Ino, c.Dev, c.Ino = 1, 9, 1, 9, 1, 9
	other.Dev, other.Ino = 2, 9 // same inode number, other device
	blob, _ := pack(t, []Entry{a, b, c, other}, PackOptions{})
	got := listing(tarHeaders(t, blob))
	want := "a/second 0 mode=644 uid=0 gid=0 size=4 mtime=1\n" +
		"m/third 1 mode=644 uid=0 gid=0 size=0 mtime=1 link=a/second\n" +
		"other 0 mode=644 uid=0 gid=0 size=1 mtime=1\n" +
		"z/first 1 mode=644 uid=0 gid=0 size=0 mtime=1 link=a/second\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPackWhiteouts(t *testing.T) {
	es := []Entry{
		{Name: "etc/passwd", Whiteout: true, ModTime: time.Unix(5, 0), Mode: 0o644, UID: 3},
		{Name: "top", Whiteout: true},
		{Name: "etc", Mode: fs.ModeDir | 0o755, Opaque: true},
		{Name: "etc/-first", Mode: 0o644},
	}
	blob, _ := pack(t, es, PackOptions{})
	got := listing(tarHeaders(t, blob))
	want := "etc/ 5 mode=755 uid=0 gid=0 size=0 mtime=0\n" +
		"etc/.wh..wh..opq 0 mode=0 uid=0 gid=0 size=0 mtime=0\n" +
		"etc/-first 0 mode=644 uid=0 gid=0 size=0 mtime=0\n" +
		"etc/.wh.passwd 0 mode=0 uid=0 gid=0 size=0 mtime=0\n" +
		".wh.top 0 mode=0 uid=0 gid=0 size=0 mtime=0\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPackXattrs(t *testing.T) {
	e := memEntry("f", "x", 0o644, time.Unix(1, 0))
	e.Xattrs = map[string]string{"user.b": "2", "user.a": "1\x00bin", "security.capability": "\x01\x02"}
	blob, _ := pack(t, []Entry{e}, PackOptions{})
	h := tarHeaders(t, blob)[0]
	for k, v := range e.Xattrs {
		if got := h.PAXRecords["SCHILY.xattr."+k]; got != v {
			t.Errorf("xattr %s = %q, want %q", k, got, v)
		}
	}
}

func TestPackRejects(t *testing.T) {
	open := func(s string) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
	}
	cases := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"empty name", []Entry{{Name: ""}}, "empty name"},
		{"dot", []Entry{{Name: "."}}, "empty name"},
		{"absolute", []Entry{{Name: "/etc/x"}}, "absolute"},
		{"dotdot", []Entry{{Name: "../x"}}, "escapes"},
		{"inner dotdot", []Entry{{Name: "a/../b"}}, "not clean"},
		{"trailing slash", []Entry{{Name: "a/"}}, "not clean"},
		{"double slash", []Entry{{Name: "a//b"}}, "not clean"},
		{"whiteout prefix", []Entry{{Name: "a/.wh.b"}}, "whiteout prefix"},
		{"duplicate", []Entry{{Name: "a"}, {Name: "a", Whiteout: true}}, "duplicate"},
		{"socket", []Entry{{Name: "s", Mode: fs.ModeSocket}}, "unsupported file type"},
		{"no opener", []Entry{{Name: "f", Size: 3}}, "no content opener"},
		{"symlink without target", []Entry{{Name: "l", Mode: fs.ModeSymlink}}, "no target"},
		{"shrank", []Entry{{Name: "f", Size: 10, Open: open("12345")}}, "shrank"},
		{"grew", []Entry{{Name: "f", Size: 3, Open: open("12345")}}, "grew"},
		{"negative uid", []Entry{{Name: "f", UID: -1}}, "negative owner"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Pack(context.Background(), io.Discard, c.entries, PackOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if !strings.Contains(err.Error(), `"`+c.entries[0].Name+`"`) {
				t.Errorf("error %q does not name the entry", err)
			}
		})
	}
	if _, err := Pack(context.Background(), io.Discard, nil, PackOptions{Compression: "lz4"}); err == nil {
		t.Error("unknown compression accepted")
	}
}

func TestPackCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Pack(ctx, io.Discard, sampleEntries(), PackOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPackEmpty(t *testing.T) {
	blob, p := pack(t, nil, PackOptions{})
	if len(tarHeaders(t, blob)) != 0 || p.DiffID.String() != "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" {
		t.Errorf("empty layer: %+v", p)
	}
}

func TestFilterXattrs(t *testing.T) {
	tests := []struct {
		name   string
		in     map[string]string
		prefix string
		want   map[string]string
	}{
		{"host labels go", map[string]string{"security.selinux": "system_u:object_r:tmp_t:s0",
			"security.ima": "x", "security.evm": "y", "security.capability": "cap", "user.a": "1"},
			"trusted.overlay.", map[string]string{"security.capability": "cap", "user.a": "1"}},
		{"prefix goes", map[string]string{"trusted.overlay.opaque": "y", "trusted.other": "kept"},
			"trusted.overlay.", map[string]string{"trusted.other": "kept"}},
		{"nothing left is nil", map[string]string{"security.selinux": "l"}, "trusted.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := filterXattrs(maps.Clone(tt.in), tt.prefix)
			if !maps.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
