package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCompareFiles(t *testing.T) {
	base := []file{dir("./"), dir("etc/"), reg("etc/passwd", "root:x:0:0\n"), reg("stamp", "one")}
	// layers returns one-layer specs of a plain tar of a and one of b.
	layers := func(a, b []file) (spec, spec) {
		return spec{layers: [][]byte{gzipOf(t, tarOf(t, a...))}}, spec{layers: [][]byte{gzipOf(t, tarOf(t, b...))}}
	}
	// change returns base and base with the entry named name changed by fn.
	change := func(name string, fn func(h *tar.Header)) (spec, spec) {
		var b []file
		for _, f := range base {
			if f.hdr.Name == name {
				f = f.with(fn)
			}
			b = append(b, f)
		}
		return layers(base, b)
	}
	one := func(a, b file) (spec, spec) { return layers([]file{a}, []file{b}) }
	var cases []diffCase
	// add expects the layer line flagged as given, then the file lines.
	addFlagged := func(name string, a, b spec, layerLine string, files ...string) {
		cases = append(cases, diffCase{name: name, a: a, b: b, want: append([]string{layerLine}, files...)})
	}
	add := func(name string, a, b spec, files ...string) { addFlagged(name, a, b, "layer 0", files...) }

	a, b := layers(base, []file{dir("./"), dir("etc/"), reg("new", "x"), reg("stamp", "two")})
	add("added, removed, changed content", a, b,
		"  removed /etc/passwd", "  added /new",
		"  changed /stamp; content "+contentOf("one")+" != "+contentOf("two"))
	a, b = change("stamp", func(h *tar.Header) { h.Mode = 0o4755 })
	add("mode with setuid", a, b, "  changed /stamp; mode 0644 != 4755")
	a, b = change("etc/", func(h *tar.Header) { h.Mode = 0o1777 })
	add("mode with sticky bit", a, b, "  changed /etc; mode 0755 != 1777")
	a, b = change("stamp", func(h *tar.Header) { h.Uid, h.Gid = 1000, 100 })
	add("uid and gid", a, b, "  changed /stamp; uid 0 != 1000; gid 0 != 100")
	a, b = change("stamp", func(h *tar.Header) { h.Uname, h.Gname = "root", "wheel" })
	add("uname and gname", a, b, "  changed /stamp; uname  != root; gname  != wheel")
	a, b = change("stamp", func(h *tar.Header) { h.ModTime = t0.Add(5 * time.Minute) })
	add("mtime", a, b, "  changed /stamp; mtime 2026-11-26T09:00:00Z != 2026-11-26T09:05:00Z")
	a, b = change("etc/", func(h *tar.Header) { h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, "/usr/etc", 0o777 })
	add("type change", a, b, "  changed /etc; type dir != symlink; mode 0755 != 0777; link  != /usr/etc")
	a, b = change("stamp", func(h *tar.Header) { h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755 })
	add("file becomes dir", a, b, "  changed /stamp; type file != dir; content "+contentOf("one")+" != ; mode 0644 != 0755")
	a, b = one(symlink("bin/sh", "busybox"), symlink("bin/sh", "dash"))
	add("symlink target", a, b, "  changed /bin/sh; link busybox != dash")
	a, b = layers([]file{reg("a", "1"), reg("c", "1"), hardlink("b", "a")}, []file{reg("a", "1"), reg("c", "1"), hardlink("b", "./c")})
	add("hardlink target", a, b, "  changed /b; link /a != /c")
	a, b = one(char("dev/null", 1, 3), char("dev/null", 1, 5))
	add("device numbers", a, b, "  changed /dev/null; dev 1:3 != 1:5")
	a, b = one(char("dev/x", 1, 3), file{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/x", Mode: 0o666, ModTime: t0, Devmajor: 1, Devminor: 3}})
	add("char vs block", a, b, "  changed /dev/x; type char != block")
	xattrs := func(kv ...string) func(h *tar.Header) {
		return func(h *tar.Header) {
			h.PAXRecords = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
			}
		}
	}
	a, b = one(reg("bin/ping", "p").with(xattrs("user.k", "v1", "security.capability", "\x01\x00")),
		reg("bin/ping", "p").with(xattrs("user.k", "v2", "user.new", "")))
	add("xattrs", a, b, `  changed /bin/ping; xattr security.capability "\x01\x00" != ; xattr user.k "v1" != "v2"; xattr user.new  != ""`)
	pax := func(kv ...string) func(h *tar.Header) {
		return func(h *tar.Header) {
			h.Format = tar.FormatPAX
			h.PAXRecords = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				h.PAXRecords[kv[i]] = kv[i+1]
			}
		}
	}
	a, b = one(reg("f", "1").with(pax("BUILDER.note", "a")),
		reg("f", "1").with(pax("BUILDER.note", "b", "BUILDER.more", "c")).with(func(h *tar.Header) { h.AccessTime = t0.Add(time.Second / 2) }))
	add("pax records and atime", a, b, `  changed /f; atime  != 2026-11-26T09:00:00.5Z; pax BUILDER.more  != "c"; pax BUILDER.note "a" != "b"`)
	a, b = one(reg("f", "1").with(func(h *tar.Header) { h.Format = tar.FormatUSTAR }), reg("f", "1").with(func(h *tar.Header) { h.Format = tar.FormatGNU }))
	add("tar format", a, b, "  changed /f; format USTAR != GNU")
	a, b = layers([]file{reg("x", "one"), reg("x", "two")}, []file{reg("x", "one")})
	add("repeated path: the last one wins", a, b, "  changed /x; content "+contentOf("two")+" != "+contentOf("one"))
	a, b = layers(base, append(base[:3:3], reg(".wh.stamp", "")))
	add("whiteouts keep their name", a, b, "  added /.wh.stamp", "  removed /stamp")

	a, b = layers([]file{dir("./"), reg("a", "1"), reg("b", "2")}, []file{dir("./"), reg("b", "2"), reg("a", "1")})
	addFlagged("order only", a, b, "layer 0 order")
	plain := tarOf(t, base...)
	for _, enc := range []struct {
		name string
		b    []file
		blob []byte
	}{
		{name: "encoding: extra zero blocks", blob: append(bytes.Clone(plain), make([]byte, 4096)...)},
		{name: "encoding: file type bits in the mode field", b: []file{dir("./"), dir("etc/"), reg("etc/passwd", "root:x:0:0\n"), reg("stamp", "one").with(func(h *tar.Header) { h.Mode = 0o100644 })}},
		{name: "encoding: names normalized", b: []file{dir("."), dir("/etc"), reg("/etc/passwd", "root:x:0:0\n"), reg("./stamp", "one")}},
	} {
		blob := enc.blob
		if blob == nil {
			blob = tarOf(t, enc.b...)
		}
		addFlagged(enc.name, spec{layers: [][]byte{gzipOf(t, plain)}}, spec{layers: [][]byte{gzipOf(t, blob)}}, "layer 0 encoding")
	}
	runCases(t, cases)
}

func TestCompareManyFiles(t *testing.T) {
	var a, b []file
	for i := range 3000 {
		f := reg(fmt.Sprintf("d/%05d", i), "x")
		a = append(a, f)
		if i%1000 == 0 {
			f = f.with(func(h *tar.Header) { h.Uid = 1 })
		}
		b = append(b, f)
	}
	blobs := memBlobs{}
	ia := spec{layers: [][]byte{tarOf(t, a...)}}.build(t, blobs, "a")
	ib := spec{layers: [][]byte{zstdOf(t, tarOf(t, b...))}}.build(t, blobs, "b")
	r, err := Compare(context.Background(), ia, ib, Options{Steps: []string{"Dockerfile:2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 1 || r.Layers[0].Step != "Dockerfile:2" {
		t.Fatalf("layers: %+v", r.Layers)
	}
	var paths []string
	for _, f := range r.Layers[0].Files {
		paths = append(paths, f.Path)
	}
	if fmt.Sprint(paths) != "[/d/00000 /d/01000 /d/02000]" {
		t.Errorf("paths %v", paths)
	}
}

func TestCompareHostileNames(t *testing.T) {
	hostile := []file{
		dir("/"),
		reg("", "empty name"),
		reg("../../etc/shadow", "1"),
		dir("a//b//"),
		reg("evil\nname", "3"),
		{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "git"}}},
		{hdr: tar.Header{Typeflag: 'V', Name: "volume-label", Mode: 0o644, ModTime: t0}},
	}
	runCases(t, []diffCase{{
		name: "hostile",
		a:    spec{layers: [][]byte{tarOf(t, hostile...)}},
		b:    spec{layers: [][]byte{tarOf(t, reg(".", "root as a file"))}},
		want: []string{
			"layer 0",
			"  changed /; content " + contentOf("empty name") + " != " + contentOf("root as a file"),
			"  removed /../../etc/shadow",
			"  removed /a/b",
			"  removed /evil\nname",
			"  removed /pax_global_header",
			"  removed /volume-label",
		},
		check: func(t *testing.T, r *Report) {
			var buf bytes.Buffer
			if err := r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(buf.Bytes(), []byte(`  removed "/evil\nname"`+"\n")) {
				t.Errorf("control characters not quoted:\n%s", buf.Bytes())
			}
		},
	}})
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", ".": "/", "./": "/", "/": "/", "a": "/a", "./a/": "/a", "/a": "/a",
		"a//b//": "/a/b", "a/./b": "/a/b", "./../x": "/../x", "a/../b": "/a/../b",
	} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompactLongValues(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	got := compact(long, maxValue)
	if len(got) > 2*maxValue || !strings.Contains(got, "1048576 bytes") {
		t.Errorf("compact of 1 MiB: %d bytes: %.80q", len(got), got)
	}
	if compact(long, maxValue) != got || compact(long+"y", maxValue) == got {
		t.Error("compact is not a function of the whole value")
	}
	if s := "short"; compact(s, maxValue) != s {
		t.Errorf("short value changed: %q", compact(s, maxValue))
	}
}
