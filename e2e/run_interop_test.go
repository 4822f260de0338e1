//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// runFileInfo is what the interop test compares of one file of a rootfs.
type runFileInfo struct {
	typ      fs.FileMode
	perm     fs.FileMode // permission bits with setuid, setgid, sticky
	uid, gid uint32
	size     int64 // regular files
	sum      string
	link     string
	rdev     uint64
	nlink    uint64 // hardlinked regular files: the size of their group
	group    string // first path (sorted) of the hardlink group
}

func (f runFileInfo) String() string {
	return fmt.Sprintf("%v %o %d:%d size=%d sum=%.12s link=%q rdev=%d nlink=%d group=%q",
		f.typ, f.perm, f.uid, f.gid, f.size, f.sum, f.link, f.rdev, f.nlink, f.group)
}

// scanRunTree describes every file below root, by slash path relative to it.
func scanRunTree(t *testing.T, root string) map[string]runFileInfo {
	t.Helper()
	out := map[string]runFileInfo{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		f := runFileInfo{typ: fi.Mode().Type(), perm: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			f.size = fi.Size()
			f.sum = runFileSum(t, p)
			f.nlink = uint64(st.Nlink)
			inodes[st.Ino] = append(inodes[st.Ino], filepath.ToSlash(rel))
		case fi.Mode()&fs.ModeSymlink != 0:
			if f.link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			f.rdev = uint64(st.Rdev)
		}
		out[filepath.ToSlash(rel)] = f
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	for _, paths := range inodes {
		slices.Sort(paths)
		for _, p := range paths {
			f := out[p]
			f.group = paths[0]
			out[p] = f
		}
	}
	return out
}

func runFileSum(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runMkdev is makedev(3) for small major and minor numbers.
func runMkdev(major, minor uint64) uint64 { return major<<8 | minor }

func runHostTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestRunInteropUmoci checks that umoci, unpacking our OCI archive on its
// own, gets exactly the rootfs of our type=local export.
func TestRunInteropUmoci(t *testing.T) {
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps)", tool)
		}
	}
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN mkdir -p /app/d/sub /app/kd /opq/old && echo a >/app/d/sub/f && echo gone >/app/gone && echo x >/opq/old/x \
 && echo keep >/app/kd/keep && echo g >/app/kd/g && ln -s ../gone /app/kd/dangling && echo old >/app/h1
RUN rm /app/gone /app/kd/g /etc/group && rm -rf /opq && mkdir -p /opq/new && echo n >/opq/new/n \
 && echo h >/app/h1 && ln /app/h1 /app/h2 && ln /app/h1 /app/kd/h3 && ln -s h1 /app/sym && ln -s /nonexistent /app/abs \
 && mkfifo -m 600 /app/fifo && echo s >/app/suid && chmod 4755 /app/suid && mkdir /app/sg && chmod 2775 /app/sg \
 && chown 1000:10 /app/sg /app/h1 && chmod 1777 /app/kd && chmod 600 /app/kd/keep && mknod -m 640 /app/null c 1 3
USER www
RUN mkdir /home/www/w && echo w >/home/www/w/f && ln /home/www/w/f /home/www/w/f2
`})
	// umoci 0.4 reads gzip layers only: skopeo recompresses zstd ones, so
	// skopeo's zstd reader checks ours on the way.
	for _, c := range []struct{ name, tag string }{{"gzip", "interop:v1"}, {"zstd", "interopz:v1"}} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			archive := filepath.Join(tmp, "img.tar")
			local := filepath.Join(tmp, "local")
			e.mustRun("build", dir, "--no-cache", "--compression", c.name, "-t", c.tag,
				"-o", "type=oci,dest="+archive, "-o", "type=local,dest="+local)
			copyArgs := []string{"copy", "--quiet"}
			if c.name == "zstd" {
				for _, l := range e.runInspect(c.tag).Manifest.Layers[1:] {
					if !strings.HasSuffix(l.MediaType, "+zstd") {
						t.Fatalf("--compression zstd made a %s layer", l.MediaType)
					}
				}
				copyArgs = append(copyArgs, "--dest-compress", "--dest-compress-format", "gzip")
			}
			layout := filepath.Join(tmp, "layout")
			bundle := filepath.Join(tmp, "bundle")
			runHostTool(t, "skopeo", append(copyArgs, "oci-archive:"+archive, "oci:"+layout+":interop")...)
			runHostTool(t, "umoci", "unpack", "--image", layout+":interop", bundle)
			compareRootfs(t, local, filepath.Join(bundle, "rootfs"))
		})
	}
}

// compareRootfs compares our export with umoci's unpack, file by file, and
// checks that the tricky parts of the test image are there.
func compareRootfs(t *testing.T, local, umociRootfs string) {
	ours, theirs := scanRunTree(t, local), scanRunTree(t, umociRootfs)
	var names []string
	for p := range ours {
		names = append(names, p)
	}
	for p := range theirs {
		if _, ok := ours[p]; !ok {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	for _, p := range names {
		a, inOurs := ours[p]
		b, inTheirs := theirs[p]
		switch {
		case !inOurs:
			t.Errorf("%s: only in umoci's rootfs: %v", p, b)
		case !inTheirs:
			t.Errorf("%s: only in our local export: %v", p, a)
		case a != b:
			t.Errorf("%s differs:\n  ours:  %v\n  umoci: %v", p, a, b)
		}
	}

	// The tricky parts did happen (so the comparison means something).
	for p, want := range map[string]runFileInfo{
		"app/h1":        {perm: 0o644, uid: 1000, gid: 10, group: "app/h1", nlink: 3},
		"app/h2":        {perm: 0o644, uid: 1000, gid: 10, group: "app/h1", nlink: 3},
		"app/kd/h3":     {perm: 0o644, uid: 1000, gid: 10, group: "app/h1", nlink: 3},
		"home/www/w/f2": {perm: 0o644, uid: 1000, gid: 1000, group: "home/www/w/f", nlink: 2},
		"app/suid":      {perm: 0o755 | fs.ModeSetuid, group: "app/suid", nlink: 1},
		"app/sg":        {typ: fs.ModeDir, perm: 0o775 | fs.ModeSetgid, uid: 1000, gid: 10},
		"app/kd":        {typ: fs.ModeDir, perm: 0o777 | fs.ModeSticky},
		"app/fifo":      {typ: fs.ModeNamedPipe, perm: 0o600},
		"app/null":      {typ: fs.ModeDevice | fs.ModeCharDevice, perm: 0o640, rdev: runMkdev(1, 3)},
		"app/sym":       {typ: fs.ModeSymlink, perm: 0o777, link: "h1"},
		"app/abs":       {typ: fs.ModeSymlink, perm: 0o777, link: "/nonexistent"},
		"app/kd/keep":   {perm: 0o600, group: "app/kd/keep", nlink: 1},
	} {
		got, ok := ours[p]
		got.size, got.sum = 0, ""
		if !ok || got != want {
			t.Errorf("%s: %v, want %v", p, got, want)
		}
	}
	for _, gone := range []string{"app/gone", "app/kd/g", "etc/group", "opq/old"} {
		if _, ok := ours[gone]; ok {
			t.Errorf("%s survived its deletion", gone)
		}
	}
	if f := ours["home/www/w/f"]; f.uid != 1000 || f.gid != 1000 {
		t.Errorf("home/www/w/f: %v, want owner 1000:1000", f)
	}
}
