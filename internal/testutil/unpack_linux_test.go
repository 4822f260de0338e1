package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func checkOwnerMode(t *testing.T, path string, id int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != id || int(st.Gid) != id || fi.Mode() != mode {
		t.Errorf("%s: %d:%d %v, want %d:%d %v", path, st.Uid, st.Gid, fi.Mode(), id, id, mode)
	}
}

func TestBusyboxUmociUnpackChroot(t *testing.T) {
	RequiresRoot(t)
	requireBusybox(t)
	skopeo := requireTool(t, "skopeo")
	umoci := requireTool(t, "umoci")
	chroot := requireTool(t, "chroot")
	dir := t.TempDir()
	archive := writeBusybox(t, BusyboxOptions{})
	layout := filepath.Join(dir, "layout")
	bundle := filepath.Join(dir, "bundle")
	run(t, skopeo, "copy", "--quiet", "oci-archive:"+archive, "oci:"+layout+":latest")
	run(t, umoci, "unpack", "--image", layout+":latest", bundle)
	rootfs := filepath.Join(bundle, "rootfs")

	if link, err := os.Readlink(filepath.Join(rootfs, "bin", "sh")); err != nil || link != "busybox" {
		t.Errorf("bin/sh -> %q, %v; want busybox", link, err)
	}
	checkOwnerMode(t, filepath.Join(rootfs, "home", "www"), 1000, os.ModeDir|0o755)
	checkOwnerMode(t, filepath.Join(rootfs, "tmp"), 0, os.ModeDir|os.ModeSticky|0o777)
	checkOwnerMode(t, filepath.Join(rootfs, "root"), 0, os.ModeDir|0o700)

	if got := run(t, chroot, rootfs, "/bin/sh", "-c", "echo ok"); got != "ok\n" {
		t.Errorf("chroot echo ok printed %q", got)
	}
	if got := run(t, chroot, rootfs, "/bin/sh", "-c", "id -u www; id -G www"); got != "1000\n1000 10\n" {
		t.Errorf("id www printed %q", got)
	}
}
