package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// mountAt mounts ms at a fresh dir and returns it; t.Cleanup unmounts.
func mountAt(t *testing.T, a *Active) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range a.Mounts(target) {
		if err := m.Mount(""); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	return target
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatalf("unmount %s: %v", target, err)
	}
}

// requireNotMounted fails when /proc/self/mountinfo lists anything at or
// below dir.
func requireNotMounted(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			t.Errorf("leftover mount: %s", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMountDeepStack(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	s := openStore(t)
	const layers = 140
	var parent digest.Digest
	for i := range layers {
		commitFile(t, s, parent, chain(i), fmt.Sprintf("file-%03d", i), strconv.Itoa(i))
		parent = chain(i)
	}
	a, err := s.Prepare(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(a) })
	if len(a.Lowers) != layers {
		t.Fatalf("%d lowers, want %d", len(a.Lowers), layers)
	}
	ms := a.Mounts("/")
	if n := len(strings.Join(ms[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options are %d bytes: this test must exceed a page to use lowerdir+", n)
	}
	target := mountAt(t, a)
	for i := range layers {
		name := fmt.Sprintf("file-%03d", i)
		b, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(b) != strconv.Itoa(i) {
			t.Fatalf("read %s: %q %v", name, b, err)
		}
	}
	entries, err := os.ReadDir(target)
	if err != nil || len(entries) != layers {
		t.Fatalf("merged root has %d entries (%v), want %d", len(entries), err, layers)
	}
	unmount(t, target)
	requireNotMounted(t, filepath.Dir(target))

	// View sees the same merged tree without mounting.
	v := View{Lowers: a.Lowers}
	for _, i := range []int{0, 70, layers - 1} {
		if b, err := v.ReadFile(fmt.Sprintf("/file-%03d", i)); err != nil || string(b) != strconv.Itoa(i) {
			t.Errorf("View.ReadFile file-%03d: %q %v", i, b, err)
		}
	}
}

func TestMountUpperIsChangeset(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	s := openStore(t)
	base, err := s.Prepare(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"keep", "del", "d/old", "d/sub/x"} {
		full := filepath.Join(base.Upper, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Commit(ctx, base, chain(1)); err != nil {
		t.Fatal(err)
	}

	a, err := s.Prepare(ctx, chain(1))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(a.Mounts("/")[0].Options, ",")); n >= os.Getpagesize() {
		t.Fatalf("options are %d bytes: this test must use mount(2)", n)
	}
	target := mountAt(t, a)
	if err := os.WriteFile(filepath.Join(target, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(target, "del")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(target, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(target, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "d/newfile"), []byte("nf"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount(t, target)
	requireNotMounted(t, filepath.Dir(target))

	if b, err := os.ReadFile(filepath.Join(a.Upper, "new")); err != nil || string(b) != "new" {
		t.Errorf("upper/new: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(a.Upper, "keep")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unchanged file copied up: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(a.Upper, "del"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper/del is mode %o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
	}
	if opaque, err := isOpaque(filepath.Join(a.Upper, "d")); err != nil || !opaque {
		t.Errorf("upper/d opaque = %v, %v; want true", opaque, err)
	}

	// The changeset committed over its parent reads like the mount did.
	if _, err := s.Commit(ctx, a, chain(2)); err != nil {
		t.Fatal(err)
	}
	lowers, err := s.Lowers(ctx, chain(2))
	if err != nil {
		t.Fatal(err)
	}
	v := View{Lowers: lowers}
	for p, want := range map[string]string{"/keep": "keep", "/new": "new", "/d/newfile": "nf", "/del": "", "/d/old": "", "/d/sub/x": ""} {
		b, err := v.ReadFile(p)
		if want == "" {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("View.ReadFile(%s) = %q, %v; want not found", p, b, err)
			}
			continue
		}
		if err != nil || string(b) != want {
			t.Errorf("View.ReadFile(%s) = %q, %v; want %q", p, b, err, want)
		}
	}
}

func TestMountBindWithoutLowers(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	a, err := s.Prepare(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(a) })
	target := mountAt(t, a)
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount(t, target)
	requireNotMounted(t, filepath.Dir(target))
	if b, err := os.ReadFile(filepath.Join(a.Upper, "f")); err != nil || string(b) != "x" {
		t.Errorf("upper/f: %q %v", b, err)
	}
}

func TestMountError(t *testing.T) {
	requireRoot(t)
	missing := filepath.Join(t.TempDir(), "missing")
	long := make([]string, 200)
	for i := range long {
		long[i] = fmt.Sprintf("%s/%020d", missing, i)
	}
	for _, m := range []Mount{
		{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + missing, "upperdir=" + missing, "workdir=" + missing}},
		{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(long, ":"), "upperdir=" + missing, "workdir=" + missing}},
	} {
		target := t.TempDir()
		err := m.Mount(target)
		if err == nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			t.Fatal("mount over missing dirs succeeded")
		}
		t.Log(err)
		if !strings.HasPrefix(err.Error(), "mount overlay at "+target+": ") {
			t.Errorf("error %q", err)
		}
	}
}
