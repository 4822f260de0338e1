package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Foreign architectures for the multi-platform tests and benchmarks: a
// static busybox of the architecture (Debian's busybox-static of it,
// downloaded once by scripts/foreign-busybox.sh with apt's multiarch
// support) run under QEMU user-mode emulation (Debian's qemu-user-static)
// through the kernel's binfmt_misc.

const binfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuNames maps Debian architecture names to QEMU's.
var qemuNames = map[string]string{"arm64": "aarch64", "armhf": "arm", "riscv64": "riscv64", "ppc64el": "ppc64le", "s390x": "s390x"}

var foreign struct {
	sync.Mutex
	paths map[string]string
}

// ForeignBusybox returns a static busybox of the Debian architecture arch
// ("arm64") that this host runs, emulated: it mounts binfmt_misc and
// registers QEMU's handler for arch (the line qemu-user-static ships in
// /usr/lib/binfmt.d) when they are missing, and undoes what it did when t
// ends. It skips t only when the kernel has no binfmt_misc. Root only.
func ForeignBusybox(t testing.TB, arch string) string {
	t.Helper()
	RequiresRoot(t)
	q, ok := qemuNames[arch]
	if !ok {
		t.Fatalf("ForeignBusybox: unknown architecture %q", arch)
	}
	bb := foreignBinary(t, arch)
	conf := "/usr/lib/binfmt.d/qemu-" + q + ".conf"
	if _, err := os.Stat(conf); err != nil {
		t.Fatalf("qemu-user-static is not installed (make deps installs it): %v", err)
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir).CombinedOutput(); err != nil {
			t.Skipf("skipping: this kernel has no binfmt_misc to run %s binaries under QEMU (mount: %v: %s)", arch, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", binfmtDir).Run() })
	}
	handler := filepath.Join(binfmtDir, "qemu-"+q)
	data, err := os.ReadFile(handler)
	switch {
	case errors.Is(err, os.ErrNotExist):
		line, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binfmtDir, "register"), line, 0); err != nil {
			t.Skipf("skipping: cannot register qemu-%s with binfmt_misc: %v", q, err)
		}
		// Before the unmount (cleanups run last first).
		t.Cleanup(func() { _ = os.WriteFile(handler, []byte("-1"), 0) })
	case err != nil:
		t.Fatal(err)
	case strings.HasPrefix(string(data), "disabled"):
		if err := os.WriteFile(handler, []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(handler, []byte("0"), 0) })
	}
	if out, err := exec.Command(bb, "true").CombinedOutput(); err != nil {
		t.Fatalf("%s busybox does not run under QEMU: %v: %s", arch, err, out)
	}
	return bb
}

// foreignBinary runs scripts/foreign-busybox.sh once per arch and process.
func foreignBinary(t testing.TB, arch string) string {
	t.Helper()
	foreign.Lock()
	defer foreign.Unlock()
	if p := foreign.paths[arch]; p != "" {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "foreign-busybox.sh"), arch).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("get the %s busybox: %v", arch, err)
	}
	if foreign.paths == nil {
		foreign.paths = map[string]string{}
	}
	foreign.paths[arch] = strings.TrimSpace(string(out))
	return foreign.paths[arch]
}
