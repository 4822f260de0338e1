package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// caseSetup makes the context files of a golden case that git cannot hold:
// hardlinks, setuid/setgid/sticky modes, directory modes, archives. They are
// made in the test's copy of the context, never in testdata.
var caseSetup = map[string]func(t *testing.T, ctx string){
	"copy-hardlinks": func(t *testing.T, ctx string) {
		setupWrite(t, filepath.Join(ctx, "hl/a.txt"), "one inode, three names\n", 0o644)
		setupWrite(t, filepath.Join(ctx, "hl/own.txt"), "not linked\n", 0o644)
		setupDo(t, os.MkdirAll(filepath.Join(ctx, "hl/sub"), 0o755))
		setupDo(t, os.Link(filepath.Join(ctx, "hl/a.txt"), filepath.Join(ctx, "hl/b.txt")))
		setupDo(t, os.Link(filepath.Join(ctx, "hl/a.txt"), filepath.Join(ctx, "hl/sub/c.txt")))
	},
	"copy-setuid": func(t *testing.T, ctx string) {
		setupWrite(t, filepath.Join(ctx, "tree/bin/suid"), "#!/bin/sh\n", 0o755)
		setupWrite(t, filepath.Join(ctx, "tree/bin/sgid"), "#!/bin/sh\n", 0o755)
		setupWrite(t, filepath.Join(ctx, "tree/private"), "secret\n", 0o600)
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree/bin/suid"), 0o755|os.ModeSetuid))
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree/bin/sgid"), 0o711|os.ModeSetgid))
		setupDo(t, os.MkdirAll(filepath.Join(ctx, "tree/shared/empty"), 0o755))
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree/shared"), 0o777|os.ModeSticky))
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree/shared/empty"), 0o700))
	},
	"copy-dir-contents": func(t *testing.T, ctx string) {
		// The copied dir's own mode is not given to a new destination dir.
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree"), 0o750))
		setupDo(t, os.Chmod(filepath.Join(ctx, "tree/sub"), 0o700))
	},
	"add-archives": func(t *testing.T, ctx string) {
		plain := tarOf(t, []tarFile{
			{name: "top.txt", body: "top of plain.tar\n", mode: 0o644},
			{name: "dir/", mode: 0o750, uid: 1000, gid: 1000},
			{name: "dir/owned.txt", body: "owned by 1234:5678\n", mode: 0o600, uid: 1234, gid: 5678},
			{name: "dir/link", link: "owned.txt", typ: tar.TypeSymlink},
			{name: "dir/hard", link: "top.txt", typ: tar.TypeLink},
		})
		setupWrite(t, filepath.Join(ctx, "plain.tar"), string(plain), 0o644)
		one := func(name string) []byte {
			return tarOf(t, []tarFile{{name: name, body: "from " + name + "\n", mode: 0o644}})
		}
		setupWrite(t, filepath.Join(ctx, "gz.tar.gz"), string(gzipOf(t, one("gz.txt"))), 0o644)
		setupWrite(t, filepath.Join(ctx, "bz.tar.bz2"), string(pipeTool(t, one("bz.txt"), "bzip2", "-c")), 0o644)
		setupWrite(t, filepath.Join(ctx, "xz.tar.xz"), string(pipeTool(t, one("xz.txt"), "xz", "-c")), 0o644)
		setupWrite(t, filepath.Join(ctx, "zst.tar.zst"), string(zstdOf(t, one("zst.txt"))), 0o644)
	},
	"copy-tar-not-extracted": func(t *testing.T, ctx string) {
		data := tarOf(t, []tarFile{{name: "inside.txt", body: "stays packed\n", mode: 0o644}})
		setupWrite(t, filepath.Join(ctx, "plain.tar"), string(data), 0o644)
	},
}

func setupDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func setupWrite(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	setupDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
	setupDo(t, os.WriteFile(p, []byte(data), mode))
	setupDo(t, os.Chmod(p, mode))
}

type tarFile struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
}

// tarOf writes a deterministic tar (fixed times, numeric owners).
func tarOf(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, Linkname: f.link,
			ModTime: time.Unix(1577836800, 0), Format: tar.FormatPAX, Typeflag: f.typ}
		switch {
		case f.typ != 0:
			h.Mode = 0o777
		case f.name[len(f.name)-1] == '/':
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		setupDo(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(f.body))
			setupDo(t, err)
		}
	}
	setupDo(t, tw.Close())
	return buf.Bytes()
}

func gzipOf(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	setupDo(t, err)
	setupDo(t, zw.Close())
	return buf.Bytes()
}

func zstdOf(t *testing.T, data []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	setupDo(t, err)
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

// pipeTool compresses data with a command-line tool (bzip2, xz): Go has no
// encoder for them.
func pipeTool(t *testing.T, data []byte, tool string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is needed to make a test archive: %v", tool, err)
	}
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}
